"""What a TE-NAS run leaves in ``runs/<name>/``, and the state it resumes from.

``state.json`` is rewritten (atomically) after every round: the current mask,
every round's supernet scores and decisions, every candidate's numbers, the
trajectory. It is the single source of truth: ``candidates.parquet``,
``result.json``, the plot and a resumed run are all derived from it. JSON
keeps κ = inf as ``Infinity`` (Python's json reads it back).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa

from rayneas.runs.files import write_json_atomic, write_parquet_atomic
from rayneas.runs.folder import RunDirError, RunFolder, read_json
from rayneas.runs.settings import check_resumable
from rayneas.scoring.supernet import TENAS_INDICATORS
from rayneas.spaces.mask import Mask
from rayneas.tenas.config import TenasConfig, search_settings

STATE, CANDIDATES = "state.json", "candidates.parquet"
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


class RunStore(RunFolder):
    """Reads and writes the files of one TE-NAS run folder."""

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
        self.write_config(cfg)
        return state

    def _fresh(self, settings: dict, mask: Mask) -> SearchState:
        if self.state_path.is_file():
            raise self.already_holds("a TE-NAS run", STATE)
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
        check_resumable(self.dir, saved, wanted)
        return state

    def save(self, state: SearchState) -> None:
        write_json_atomic(self.state_path, {**dataclasses.asdict(state), "mask": state.mask.to_json()})
        indicators = state.settings.get("prune", {}).get("indicators", TENAS_INDICATORS)
        table = pa.Table.from_pylist(state.candidates, schema=candidate_schema(indicators))
        write_parquet_atomic(self.dir / CANDIDATES, table)
        self.saved()


def load_state(run_dir: Path) -> SearchState:
    return _state_from_json(read_json(Path(run_dir) / STATE))


def _state_from_json(data: dict) -> SearchState:
    """The mask is stored in its plain JSON form, as it always was, so old ``state.json`` files still load."""
    return SearchState(**{**data, "mask": Mask.from_json(data["mask"])})
