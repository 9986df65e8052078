"""The NetPool: every network a search has evaluated, so none is trained twice.

EAS meets the same architecture again and again (different transform
sequences reach the same net); its accuracy is looked up instead of trained
anew. Many workers share one pool as a Ray actor, whose methods run one at a
time, so `NetPoolStore.get_or_claim` is atomic: the first worker to ask for a
new architecture gets the claim and trains it; the others see "busy" and wait
for its record (`evaluate_once` does this). Every record is written through to
a Parquet file, so a restarted search starts with the pool it had.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from rayneas.files import write_parquet_atomic


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


SCHEMA = pa.schema([
    ("arch", pa.string()),
    ("accuracy", pa.float64()),
    ("epochs", pa.int64()),
    ("seconds", pa.float64()),
    ("parent", pa.string()),
])


@dataclasses.dataclass(frozen=True)
class Claim:
    """``done``: ``record`` holds the result; ``claimed``: the asker must train it and `put` the record;
    ``busy``: ``owner`` is training it now, ask again later."""

    status: Literal["done", "claimed", "busy"]
    record: NetRecord | None = None
    owner: str | None = None


class NetPoolStore:
    """The pool itself, in one process; `netpool_actor` shares it between workers."""

    def __init__(self, path: str | Path | None = None, claim_timeout_s: float = 6 * 3600) -> None:
        self.path = Path(path) if path is not None else None
        self.claim_timeout_s = claim_timeout_s
        self._records: dict[str, NetRecord] = {}
        self._claims: dict[str, tuple[str, float]] = {}  # arch -> (owner, monotonic time claimed)
        if self.path is not None and self.path.exists():
            self._records = {r.arch: r for r in _read(self.path)}

    def __len__(self) -> int:
        return len(self._records)

    def storage(self) -> str | None:
        return None if self.path is None else str(self.path)

    def get(self, arch: str) -> NetRecord | None:
        return self._records.get(arch)

    def records(self) -> list[NetRecord]:
        return list(self._records.values())

    def get_or_claim(self, arch: str, owner: str) -> Claim:
        if arch in self._records:
            return Claim("done", record=self._records[arch])
        holder = self._claims.get(arch)
        # A claim older than the timeout belongs to a worker presumed dead.
        if holder is not None and holder[0] != owner and time.monotonic() - holder[1] < self.claim_timeout_s:
            return Claim("busy", owner=holder[0])
        self._claims[arch] = (owner, time.monotonic())
        return Claim("claimed", owner=owner)

    def release(self, arch: str, owner: str) -> None:
        """Give up a claim (the training failed), so another worker may take it."""
        if self._claims.get(arch, (None,))[0] == owner:
            del self._claims[arch]

    def put(self, record: NetRecord) -> NetRecord:
        """Store a result and persist the pool; the first record of an architecture wins and is returned."""
        self._claims.pop(record.arch, None)
        if record.arch in self._records:
            return self._records[record.arch]
        self._records[record.arch] = record
        if self.path is not None:
            _write(self.path, self.records())
        return record


def _read(path: Path) -> list[NetRecord]:
    table = pq.read_table(path)
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a NetPool file: it lacks column(s) {missing}; "
                         "point the netpool setting at a new file or at one a NetPool wrote")
    return [NetRecord(**row) for row in table.select(SCHEMA.names).to_pylist()]


def _write(path: Path, records: list[NetRecord]) -> None:
    write_parquet_atomic(path, pa.Table.from_pylist([dataclasses.asdict(r) for r in records], schema=SCHEMA))


NetPool = ray.remote(NetPoolStore)


def netpool_actor(path: str | Path | None, name: str = "rayneas-netpool", claim_timeout_s: float = 6 * 3600):
    """The named pool actor of this Ray namespace, created (loading ``path``) on first use."""
    path = None if path is None else str(Path(path).resolve())
    actor = NetPool.options(name=name, get_if_exists=True, num_cpus=0).remote(path, claim_timeout_s)
    existing = ray.get(actor.storage.remote())
    if existing != path:
        raise ValueError(f"the NetPool actor {name!r} already exists with file {existing!r}, not {path!r}; "
                         "use the same file or another actor name")
    return actor


def _call(pool: Any, method: str, *args: Any) -> Any:
    if isinstance(pool, NetPoolStore):
        return getattr(pool, method)(*args)
    return ray.get(getattr(pool, method).remote(*args))


def evaluate_once(pool: Any, arch: str, evaluate: Callable[[], Evaluation], *, parent: str | None = None,
                  poll_s: float = 0.1) -> tuple[NetRecord, bool]:
    """The pool's record of ``arch``, calling ``evaluate`` only if no worker has trained it.

    ``pool`` is a `NetPoolStore` or its actor. Returns (record, trained here).
    If another worker is training ``arch``, waits for its record; if
    ``evaluate`` raises, the claim is released and the error re-raised.
    """
    owner = uuid.uuid4().hex
    while True:
        claim = _call(pool, "get_or_claim", arch, owner)
        if claim.status == "done":
            return claim.record, False
        if claim.status == "claimed":
            break
        time.sleep(poll_s)
    try:
        result = evaluate()
    except BaseException:
        _call(pool, "release", arch, owner)
        raise
    record = NetRecord(arch, float(result.val_accuracy), int(result.epochs), float(result.seconds), parent)
    stored = _call(pool, "put", record)
    return stored, stored == record
