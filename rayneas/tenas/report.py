"""Watching a TE-NAS run: console progress, TensorBoard scalars, the pruning-trajectory plot."""
from __future__ import annotations

import dataclasses
import math
import textwrap
from pathlib import Path
from typing import Protocol

from matplotlib.figure import Figure

from rayneas.runs import report as run_report
from rayneas.tenas.record import load_state

TRAJECTORY_PNG = "trajectory.png"


@dataclasses.dataclass(frozen=True)
class RoundReport:
    """What every watcher of a search is told after a round is saved; one object so they report the same numbers.

    ``round`` counts pruning rounds done before this scoring (the final cell's
    scoring has phase ``final``); ``genotype`` is set on that last report only.
    """

    round: int
    phase: str
    kappa: float  # the supernet's κ, mean over repeats
    regions: float  # its R, mean over repeats
    live_ops: int
    candidates: int
    seconds: float
    genotype: str | None = None

    @property
    def finished(self) -> bool:
        return self.genotype is not None

    def metrics(self) -> dict[str, float | int | str | bool]:
        """Flat scalars for Tune and TensorBoard (κ as log10: it spans orders of magnitude, and may be inf)."""
        data = {"round": self.round, "phase": self.phase, "log10_kappa": math.log10(self.kappa), "regions": self.regions,
                "live_ops": self.live_ops, "candidates": self.candidates, "round_seconds": self.seconds,
                "finished": self.finished}
        return {**data, "genotype": self.genotype} if self.genotype else data


class RoundCallback(Protocol):
    """Called by the search after each round's state is saved (so a checkpoint taken here is complete)."""

    def __call__(self, report: RoundReport) -> None: ...


class RoundProgress:
    """A tqdm bar over one round's scoring tasks; its rate gives the round's ETA."""

    def __init__(self, round_index: int, phase: str, candidates: int, tasks: int) -> None:
        desc = "final cell" if phase == "final" else f"round {round_index + 1} ({phase}, {candidates} candidates)"
        self.bar = run_report.progress_bar(tasks, "task", desc)

    def __call__(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self, message: str) -> None:
        self.bar.close()
        run_report.note(message)


class Board(run_report.Board):
    """TensorBoard scalars per round, in ``runs/<name>/tb``."""

    def __call__(self, report: RoundReport) -> None:
        """Step ``report.round`` = the supernet after that many pruning rounds."""
        m = report.metrics()
        scalars = {"supernet/log10_kappa": m["log10_kappa"], "supernet/regions": m["regions"],
                   "supernet/live_ops": m["live_ops"], "round/candidates": m["candidates"],
                   "round/seconds": m["round_seconds"]}
        # κ or R is NaN when not searched by
        self.scalars({tag: value for tag, value in scalars.items()
                      if not (isinstance(value, float) and math.isnan(value))}, report.round)


def plot_run(run_dir: Path) -> list[Path]:
    """``trajectory.png``: κ and R of the supernet after each round (works on an unfinished run too)."""
    run_dir = Path(run_dir)
    state = load_state(run_dir)
    points = state.trajectory
    rounds = [p["round"] for p in points]
    # A bare Figure, not pyplot: no global backend state, no display needed.
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax_k, ax_r = fig.subplots(1, 2)
    ax_k.plot(rounds, [p["kappa"] for p in points], "o-", color="tab:blue")
    ax_k.set_yscale("log")
    ax_k.set_ylabel("κ (NTK condition number, lower = more trainable)")
    ax_r.plot(rounds, [p["regions"] for p in points], "o-", color="tab:red")
    ax_r.set_ylabel("R (linear regions, higher = more expressive)")
    for ax in (ax_k, ax_r):
        ax.set_xlabel("pruning rounds done")
        ax.set_xticks(rounds)
        ax.grid(alpha=0.3)
    title = state.genotype if state.finished else f"unfinished: {len(state.rounds)} rounds done"
    heading = f"TE-NAS pruning trajectory ({state.settings['space']}, seed {state.settings['seed']})"
    fig.suptitle("\n".join([heading, *textwrap.wrap(title, 130)]), fontsize=7)
    path = run_dir / TRAJECTORY_PNG
    fig.savefig(path, dpi=120)
    return [path]
