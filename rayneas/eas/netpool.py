"""The NetPool: every network a search has evaluated, so none is trained twice.

EAS meets the same architecture again and again (different transform
sequences reach the same net); its accuracy is looked up instead of trained
anew. A record is keyed by architecture *and* ``setting`` (a string naming
everything else the result depends on: dataset, seed, training settings), so
two settings never share a record. Many workers share one pool as a Ray
actor, whose methods run one at a time, so `NetPoolStore.get_or_claim` is
atomic: the first worker to ask for a new network gets the claim and trains
it; the others see "busy" and wait for its record (`evaluate_once` does this).
Every record is written through to a Parquet file, and trained weights to one
side file per record, so a restarted search starts with the pool it had and
the best network can be exported.

Ray is imported only where an actor is made or called: workers that use a
local `NetPoolStore` never pay for it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from rayneas.runs.files import write_bytes_atomic, write_parquet_atomic


class Evaluation(Protocol):
    """What training a network yields (`rayneas.eas.train.TrainResult` is one); a Protocol so
    the pool, which workers and the driver import, does not pull in torch."""

    val_accuracy: float
    epochs: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class NetRecord:
    arch: str
    accuracy: float  # validation accuracy
    epochs: int
    seconds: float  # training time
    parent: str | None = None  # the architecture it was morphed from, None for a start network
    setting: str = ""  # what else the result depends on (dataset, seed, training settings)


_ARROW_TYPES = {"str": pa.string(), "str | None": pa.string(), "float": pa.float64(), "int": pa.int64()}
#: The Parquet file's columns: every `NetRecord` field, then where the record's weights are kept.
SCHEMA = pa.schema([(f.name, _ARROW_TYPES[f.type]) for f in dataclasses.fields(NetRecord)]
                   + [("weights_file", pa.string())])

Key = tuple[str, str]  # (setting, arch)


@dataclasses.dataclass(frozen=True)
class Claim:
    """``done``: ``record`` holds the result; ``claimed``: the asker must train it and `put` the record;
    ``busy``: ``owner`` is training it now, ask again later."""

    status: Literal["done", "claimed", "busy"]
    record: NetRecord | None = None
    owner: str | None = None


class NetPoolStore:
    """The pool itself, in one process; `netpool_actor` shares it between workers.

    Weights (the bytes of a saved ``state_dict``) live beside the Parquet file
    in ``<stem>.weights/``, one file per record, so rewriting the table after
    each record never rewrites megabytes of weights.
    """

    def __init__(self, path: str | Path | None = None, claim_timeout_s: float = 6 * 3600) -> None:
        self.path = Path(path) if path is not None else None
        self.claim_timeout_s = claim_timeout_s
        self._records: dict[Key, NetRecord] = {}
        self._weight_files: dict[Key, str] = {}
        self._weights: dict[Key, bytes] = {}  # only without a path
        self._claims: dict[Key, tuple[str, float]] = {}  # key -> (owner, monotonic time claimed)
        self._episodes: list[dict[str, Any]] = []  # finished episodes not yet collected (never persisted)
        if self.path is not None and self.path.exists():
            for record, weights_file in _read(self.path):
                self._records[(record.setting, record.arch)] = record
                if weights_file:
                    self._weight_files[(record.setting, record.arch)] = weights_file

    def __len__(self) -> int:
        return len(self._records)

    def storage(self) -> str | None:
        return None if self.path is None else str(self.path)

    def get(self, arch: str, setting: str = "") -> NetRecord | None:
        return self._records.get((setting, arch))

    def records(self) -> list[NetRecord]:
        return list(self._records.values())

    def best(self, setting: str = "") -> NetRecord | None:
        """The most accurate record of ``setting`` that has weights: the network to export."""
        kept = [r for k, r in self._records.items() if k[0] == setting and self._has_weights(k)]
        return max(kept, key=lambda r: r.accuracy, default=None)

    def weights(self, arch: str, setting: str = "") -> bytes | None:
        key = (setting, arch)
        if self.path is None:
            return self._weights.get(key)
        name = self._weight_files.get(key)
        return None if name is None else (self._weights_dir() / name).read_bytes()

    def get_or_claim(self, arch: str, owner: str, setting: str = "") -> Claim:
        key = (setting, arch)
        if key in self._records:
            return Claim("done", record=self._records[key])
        holder = self._claims.get(key)
        # A claim older than the timeout belongs to a worker presumed dead.
        if holder is not None and holder[0] != owner and time.monotonic() - holder[1] < self.claim_timeout_s:
            return Claim("busy", owner=holder[0])
        self._claims[key] = (owner, time.monotonic())
        return Claim("claimed", owner=owner)

    def release(self, arch: str, owner: str, setting: str = "") -> None:
        """Give up a claim (the training failed), so another worker may take it."""
        if self._claims.get((setting, arch), (None,))[0] == owner:
            del self._claims[(setting, arch)]

    def put(self, record: NetRecord, weights: bytes | None = None) -> NetRecord:
        """Store a result (and its weights) and persist the pool; the first record of a key wins and is returned."""
        key = (record.setting, record.arch)
        self._claims.pop(key, None)
        if key in self._records:
            return self._records[key]
        self._records[key] = record
        if weights is not None:
            if self.path is None:
                self._weights[key] = weights
            else:
                name = hashlib.sha1(f"{record.setting}\n{record.arch}".encode()).hexdigest() + ".pt"
                write_bytes_atomic(self._weights_dir() / name, weights)
                self._weight_files[key] = name
        if self.path is not None:
            _write(self.path, [(r, self._weight_files.get(k)) for k, r in self._records.items()])
        return record

    def release_all_claims(self) -> int:
        """Drop every claim (when their owners are known dead); returns how many there were."""
        count, self._claims = len(self._claims), {}
        return count

    def log_episode(self, entry: dict[str, Any]) -> None:
        """A finished episode's child (arch, val_acc, reward, hit...), from whichever env runner ran it."""
        self._episodes.append(entry)

    def drain_episodes(self) -> list[dict[str, Any]]:
        """The episodes logged since the last call: the search driver collects them once per iteration,
        whatever RLlib algorithm sampled them."""
        episodes, self._episodes = self._episodes, []
        return episodes

    def _has_weights(self, key: Key) -> bool:
        return key in (self._weights if self.path is None else self._weight_files)

    def _weights_dir(self) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.stem}.weights")


def _read(path: Path) -> list[tuple[NetRecord, str | None]]:
    table = pq.read_table(path)
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a NetPool file: it lacks column(s) {missing}; "
                         "point the netpool setting at a new file or at one a NetPool wrote")
    rows = table.select(SCHEMA.names).to_pylist()
    return [(NetRecord(**{k: v for k, v in row.items() if k != "weights_file"}), row["weights_file"]) for row in rows]


def _write(path: Path, rows: list[tuple[NetRecord, str | None]]) -> None:
    table = pa.Table.from_pylist([{**dataclasses.asdict(r), "weights_file": w} for r, w in rows], schema=SCHEMA)
    write_parquet_atomic(path, table)


# Ray's own resource of the head node: the pool lives where the driver (and `ray job submit`'s
# entrypoint) runs, so a relative or local Parquet path lands on the driver's disk.
HEAD_NODE_RESOURCE = "node:__internal_head__"
_LOCAL: dict[str | None, NetPoolStore] = {}


def netpool_name(path: str | Path | None) -> str:
    """The actor name of the pool stored at ``path``: one pool per file, so two runs with their own
    files never share an actor by accident (records are keyed by setting, so sharing a file is safe)."""
    where = "memory" if path is None else str(Path(path).resolve())
    return "rayneas-netpool-" + hashlib.sha1(where.encode()).hexdigest()[:12]


@functools.cache
def _actor_class() -> Any:
    import ray

    return ray.remote(NetPoolStore)


def netpool_actor(path: str | Path | None, name: str | None = None, claim_timeout_s: float = 6 * 3600):
    """The named pool actor of ``path`` in this Ray namespace, created on the head node (loading ``path``) on first use."""
    import ray

    path = None if path is None else str(Path(path).resolve())
    name = name or netpool_name(path)
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Outside any placement group: a Tune trial's group (which captures its children) has no head-node bundle.
    options = {"name": name, "get_if_exists": True, "num_cpus": 0, "resources": {HEAD_NODE_RESOURCE: 0.001},
               "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=None)}
    actor = _actor_class().options(**options).remote(path, claim_timeout_s)
    existing = ray.get(actor.storage.remote())
    if existing != path:
        raise ValueError(f"the NetPool actor {name!r} already exists with file {existing!r}, not {path!r}; "
                         "use the same file or another actor name")
    return actor


def connect(path: str | Path | None) -> Any:
    """The pool a worker should use: the shared actor when this process is part of a Ray cluster,
    else one `NetPoolStore` per file per process (so every env in the process shares it)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return netpool_actor(path)
    key = None if path is None else str(Path(path).resolve())
    if key not in _LOCAL:
        _LOCAL[key] = NetPoolStore(key)
    return _LOCAL[key]


def release_claims(path: str | Path | None) -> int:
    """Release the claims in the pool of ``path`` once every live worker is idle: the rest belong to dead
    workers, and an architecture they were training would otherwise wait for the claim timeout."""
    return call(connect(path), "release_all_claims")


def call(pool: Any, method: str, *args: Any) -> Any:
    """``pool.method(*args)`` on a `NetPoolStore` or on its actor."""
    if isinstance(pool, NetPoolStore):
        return getattr(pool, method)(*args)
    import ray

    return ray.get(getattr(pool, method).remote(*args))


def evaluate_once(pool: Any, arch: str, evaluate: Callable[[], Evaluation], *, parent: str | None = None,
                  setting: str = "", weights: Callable[[], bytes] | None = None,
                  poll_s: float = 0.1) -> tuple[NetRecord, bool]:
    """The pool's record of (``setting``, ``arch``), calling ``evaluate`` only if no worker has trained it.

    ``pool`` is a `NetPoolStore` or its actor. Returns (record, trained here).
    If another worker is training it, waits for its record; if ``evaluate``
    raises, the claim is released and the error re-raised. ``weights``, called
    after a successful ``evaluate``, gives the trained weights to keep.
    """
    owner = uuid.uuid4().hex
    while True:
        claim = call(pool, "get_or_claim", arch, owner, setting)
        if claim.status == "done":
            return claim.record, False
        if claim.status == "claimed":
            break
        time.sleep(poll_s)
    try:
        result = evaluate()
        trained = None if weights is None else weights()
    except BaseException:
        call(pool, "release", arch, owner, setting)
        raise
    record = NetRecord(arch, float(result.val_accuracy), int(result.epochs), float(result.seconds), parent, setting)
    stored = call(pool, "put", record, trained)
    return stored, stored == record
