"""The files of an EAS run folder, and the checkpoint that makes ``--resume`` exact.

The RLlib checkpoint, the table of evaluated networks and the search's own
counters are written into one folder that replaces ``checkpoint/`` in one
rename, so a search killed at any moment resumes from an iteration whose
controller weights and network table agree.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from rayneas.config import from_dict, to_dict
from rayneas.eas.config import EASConfig
from rayneas.runs.files import write_parquet_atomic
from rayneas.runs.folder import CONFIG, RunDirError, RunFolder, read_json
from rayneas.runs.settings import diff_keys

CHECKPOINT, NETWORKS, SEARCH = "checkpoint", "networks.parquet", "search.json"
#: One row per evaluated child network, in the order the search collected them.
NETWORK_SCHEMA = pa.schema([
    ("iteration", pa.int64()), ("arch", pa.string()), ("parent", pa.string()), ("val_acc", pa.float64()),
    ("reward", pa.float64()), ("netpool_hit", pa.bool_()), ("train_seconds", pa.float64()),
    ("episode_seconds", pa.float64()), ("params", pa.int64()), ("invalid_actions", pa.int64()),
])
#: Settings a resumed run may change: none alters a number already computed (the NetPool's records are
#: keyed by everything they depend on, so where it lives does not matter).
RESUMABLE = ("name", "budget", "netpool")


@dataclasses.dataclass
class EASState:
    iterations: int = 0
    elapsed_s: float = 0.0
    networks: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def best(self, by: str = "val_acc") -> dict[str, Any] | None:
        """The child with the highest ``by`` so far (the first of equals, so the answer never flips on a tie):
        the most accurate, or (``by="reward"``, `best_key`) the best rewarded where nothing is trained."""
        return max(self.networks, key=lambda row: row[by], default=None)


def best_key(cfg: EASConfig) -> str:
    """What picks a run's best child: val_acc, but reward in ``reward.mode: indicators``, whose children are
    never trained (val_acc NaN)."""
    return "reward" if cfg.reward.mode == "indicators" else "val_acc"


def _settings(cfg: EASConfig, may_change: Sequence[str] = ()) -> dict[str, Any]:
    """The settings a resumed run must share with the saved one: all but `RESUMABLE` and the dotted keys
    ``may_change`` (what a PBT exploit mutates)."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in RESUMABLE}
    for key in may_change:
        *sections, last = key.split(".")
        node = data
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return data


class EASRunStore(RunFolder):
    """Reads and writes the files of one EAS run folder."""

    WHOLE = (CHECKPOINT,)

    @property
    def checkpoint(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def _old(self) -> Path:
        """Where `save` parks the previous checkpoint between its two renames."""
        return self.dir / f".{CHECKPOINT}.old"

    def start(self, cfg: EASConfig, resume: bool, may_change: Sequence[str] = ()) -> EASState:
        """A new state, or (``resume``) the checkpoint's, after checking the config changes no saved number
        (``may_change``: dotted keys that may differ too, e.g. the controller's lr a PBT exploit mutated).

        Resuming a run killed before its first checkpoint starts it afresh
        (its trained children are still in the NetPool file).
        """
        if not self.checkpoint.exists() and self._old.is_dir():  # killed between save()'s two renames
            os.replace(self._old, self.checkpoint)
        saved = (self.checkpoint / SEARCH).is_file()
        if saved and not resume:
            raise self.already_holds("an EAS run", f"{CHECKPOINT}/")
        if resume and not (self.dir / CONFIG).is_file():
            raise RunDirError(f"cannot resume: {self.dir} holds no EAS run ({CONFIG}); run without --resume to start")
        state = EASState()
        if resume and saved:
            # read through today's schema, so a key added since (e.g. space.kind) counts at its default
            diff = diff_keys(_settings(load_config(self.dir), may_change), _settings(cfg, may_change))
            if diff:
                raise RunDirError(f"cannot resume {self.dir}: the config differs from the saved run in "
                                  f"{', '.join(sorted(diff))}; only {' and '.join(RESUMABLE)} may change "
                                  "(e.g. --set budget.networks=200 to search longer)")
            state = self.saved_state()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config(cfg)
        return state

    def saved_state(self) -> EASState:
        """The counters and network table of the last checkpoint."""
        state = EASState(**read_json(self.checkpoint / SEARCH))
        state.networks = pq.read_table(self.checkpoint / NETWORKS).to_pylist()
        return state

    def save(self, algo: Any, state: EASState) -> None:
        """RLlib state + networks + counters as one new ``checkpoint/``; a copy of the table beside it."""
        tmp, old = self.dir / f".{CHECKPOINT}.tmp", self._old
        shutil.rmtree(tmp, ignore_errors=True)
        algo.save_to_path(str(tmp.resolve()))
        table = pa.Table.from_pylist(state.networks, schema=NETWORK_SCHEMA)
        pq.write_table(table, tmp / NETWORKS)
        (tmp / SEARCH).write_text(json.dumps({"iterations": state.iterations, "elapsed_s": state.elapsed_s}))
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            os.replace(self.checkpoint, old)
        os.replace(tmp, self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)
        write_parquet_atomic(self.dir / NETWORKS, table)
        self.saved()


def load_config(run_dir: Path) -> EASConfig:
    return from_dict(EASConfig, read_json(Path(run_dir) / CONFIG))


def load_networks(run_dir: Path) -> list[dict[str, Any]]:
    """``networks.parquet`` of a run folder: every child evaluated so far."""
    path = Path(run_dir) / NETWORKS
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; is {run_dir} the folder of an EAS run (runs/<name>/)?")
    return pq.read_table(path).to_pylist()
