"""What a TE-NAS run leaves in ``runs/<name>/``, and the state it resumes from.

``state.json`` is rewritten (atomically) after every round: the current mask,
every round's supernet scores and decisions, every candidate's numbers, the
trajectory. It is the single source of truth: ``candidates.parquet``,
``result.json``, the plot and a resumed run are all derived from it. JSON
keeps κ = inf as ``Infinity`` (Python's json reads it back).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from rayneas.config import ConfigError, to_dict
from rayneas.files import write_json_atomic, write_parquet_atomic
from rayneas.tenas.config import DIGEST, TenasConfig, search_settings
from rayneas.tenas.prunable import Mask
from rayneas.tenas.rank import TENAS_INDICATORS

STATE, CANDIDATES, RESULT, CONFIG = "state.json", "candidates.parquet", "result.json", "config.json"
# 2: settings hold prune.mode, scoring threads, device and the inputs' digest (not inputs.root)
# 3: settings hold prune.indicators and prune.aggregate
STATE_VERSION = 3

#: One row per candidate per round: where it is (round, phase, cell, edge, node, op), its deltas and
#: ranks, whether it was pruned, and the per-repeat κ and R of the pruned net (and, in reference mode,
#: ``regions_baseline``: each candidate's own unpruned R per repeat); ``rank_sum`` sums the dense ranks of
#: every indicator searched by, ``aggregate`` is the value of ``prune.aggregate`` (equal for rank_sum).
CANDIDATE_SCHEMA = pa.schema([
    ("round", pa.int32()), ("phase", pa.string()), ("cell", pa.string()), ("edge", pa.int32()),
    ("edge_label", pa.string()), ("node", pa.int32()), ("op", pa.string()),
    ("dkappa", pa.float64()), ("dregions", pa.float64()),
    ("kappa_rank", pa.int32()), ("regions_rank", pa.int32()), ("rank_sum", pa.int32()), ("pruned", pa.bool_()),
    ("kappa", pa.list_(pa.float64())), ("regions", pa.list_(pa.int64())), ("regions_baseline", pa.list_(pa.int64())),
    ("aggregate", pa.float64()),
])


def candidate_schema(indicators: list[str] | tuple[str, ...]) -> pa.Schema:
    """`CANDIDATE_SCHEMA` (κ and R columns null when not searched by) plus, for every other indicator,
    ``delta_<name>`` (`value_delta`), ``rank_<name>`` (dense, 0 = best) and ``<name>`` (per repeat)."""
    schema = CANDIDATE_SCHEMA
    for name in indicators:
        if name not in TENAS_INDICATORS:
            for field in (pa.field(f"delta_{name}", pa.float64()), pa.field(f"rank_{name}", pa.int32()),
                          pa.field(name, pa.list_(pa.float64()))):
                schema = schema.append(field)
    return schema


class RunDirError(ConfigError):
    """The run folder does not fit the request (an existing run without --resume, or a different config)."""


@dataclasses.dataclass
class SearchState:
    settings: dict
    mask: Mask
    rounds: list[dict] = dataclasses.field(default_factory=list)
    candidates: list[dict] = dataclasses.field(default_factory=list)
    trajectory: list[dict] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    finished: bool = False
    genotype: str | None = None
    version: int = STATE_VERSION


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; is {path.parent} the folder of a TE-NAS run (runs/<name>/)?")
    return json.loads(path.read_text())


class RunStore:
    """Reads and writes the files of one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)

    @property
    def state_path(self) -> Path:
        return self.dir / STATE

    def start(self, cfg: TenasConfig, mask: Mask, resume: bool, digest: str) -> SearchState:
        """The state to continue from: a new one, or (``resume``) the saved one, checked against ``cfg``.

        ``digest`` is `inputs_digest` of the search's input tensors. Writes
        ``config.json`` (the config of the latest session, which export reads).
        """
        settings = search_settings(cfg, digest)
        state = self._resumed(settings) if resume else self._fresh(settings, mask)
        write_json_atomic(self.dir / CONFIG, to_dict(cfg))
        return state

    def _fresh(self, settings: dict, mask: Mask) -> SearchState:
        if self.state_path.is_file():
            raise RunDirError(f"{self.dir} already holds a TE-NAS run ({STATE}); continue it with --resume, or "
                              f"start a new one under another name (--set name=...)")
        self.dir.mkdir(parents=True, exist_ok=True)
        return SearchState(settings=settings, mask=mask)

    def _resumed(self, wanted: dict) -> SearchState:
        if not self.state_path.is_file():
            raise RunDirError(f"cannot resume: {self.state_path} does not exist; run without --resume to start")
        state = _state_from_json(read_json(self.state_path))
        saved = state.settings
        if state.version < 3:  # searched by κ and R, ranked by their rank sum: the defaults
            saved = {**saved, "prune": {"indicators": list(TENAS_INDICATORS), "aggregate": "rank_sum",
                                        **saved.get("prune", {})}}
        if state.version < 2:  # recorded neither scoring nor the digest, but inputs.root: compare what both hold
            saved = {**saved, "inputs": {k: v for k, v in saved["inputs"].items() if k != "root"}}
            wanted = {k: v for k, v in wanted.items() if k in saved}
        if saved != wanted:
            # The digest follows from the data and the other settings: name it only when nothing else differs.
            diff = sorted(diff_keys({**saved, DIGEST: None}, {**wanted, DIGEST: None})) or [
                f"the input images ({DIGEST} {saved.get(DIGEST)} -> {wanted.get(DIGEST)}): inputs.root holds "
                "different data than the saved run read"]
            raise RunDirError(f"cannot resume {self.dir}: the config differs from the saved run in {', '.join(diff)}; "
                              f"resume with the same settings or start a new run under another name")
        return state

    def save(self, state: SearchState) -> None:
        write_json_atomic(self.state_path, {**dataclasses.asdict(state), "mask": state.mask.to_json()})
        indicators = state.settings.get("prune", {}).get("indicators", TENAS_INDICATORS)
        table = pa.Table.from_pylist(state.candidates, schema=candidate_schema(indicators))
        write_parquet_atomic(self.dir / CANDIDATES, table)

    def write_result(self, result: dict) -> None:
        write_json_atomic(self.dir / RESULT, result)


def inputs_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the named tensors' shapes, dtypes and bytes: equal exactly when the search sees the same data."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def load_state(run_dir: Path) -> SearchState:
    return _state_from_json(read_json(Path(run_dir) / STATE))


def _state_from_json(data: dict) -> SearchState:
    """The mask is stored in its plain JSON form, as it always was, so old ``state.json`` files still load."""
    return SearchState(**{**data, "mask": Mask.from_json(data["mask"])})


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b))
                for k in diff_keys(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)]
    return [] if a == b else [f"{prefix} ({a!r} -> {b!r})"]
