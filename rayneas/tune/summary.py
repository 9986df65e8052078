"""The table `rayneas tune` prints at the end: one row per trial, its swept values, status and last report."""
from __future__ import annotations

from typing import Any, Sequence

from ray.tune import ResultGrid


def summary_rows(grid: ResultGrid, params: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Swept values, status (done / stopped / error), reports, seconds and the kind's ``columns``."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        status = "error" if result.error else ("done" if metrics.get("finished") else "stopped")
        row = {"trial": metrics.get("trial_id", "?"), **{key: result.config["params"].get(key) for key in params},
               "status": status, "reports": metrics.get("training_iteration", 0),
               "seconds": metrics.get("time_total_s")}
        rows.append({**row, **{key: metrics.get(key) for key in columns}})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain aligned text (no extra dependency); floats with 4 significant digits."""
    if not rows:
        return "(no trials)"
    cells = [[_text(row.get(key)) for key in rows[0]] for row in rows]
    header = list(rows[0])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
