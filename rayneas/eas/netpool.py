"""The NetPool: every network a search has evaluated, so none is trained twice.

EAS meets the same architecture again and again (different transform
sequences reach the same net); its accuracy is looked up instead of trained
anew. A record is keyed by architecture *and* ``setting`` (a string naming
everything else the result depends on: dataset, seed, training settings), so
two settings never share a record. Many workers share one pool as an async Ray
actor (`NetPoolActor`): claims and look-ups run one at a time on its event loop,
so `NetPoolStore.get_or_claim` is atomic: the first worker to ask for a new
network gets the claim and trains it; the others see "busy" and wait, woken
by an event when its record arrives (`evaluate_once` does this). File reads and
writes run in threads, so one slow upload or download never holds up the others.

The pool lives at a location (`rayneas.storage`: a local folder, a shared
mount or an object-store URI), written only by appending: each record is one
small Parquet file in the location's folder (read back together as one
dataset) and each set of weights one file named by its content in
``<stem>.weights/`` beside it. Nothing is ever rewritten, so a restarted search
starts with the pool it had, a checkpoint needs to upload nothing of it, and
the best network can be exported.

Ray is imported only where an actor is made or called: workers that use a
local `NetPoolStore` never pay for it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import sys
import time
import uuid
from typing import Any, Callable, Literal, Protocol

from rayneas.eas.netpool_files import NetRecord, PoolFiles
from rayneas.storage import is_uri, resolve

__all__ = ["Claim", "Evaluation", "NetPoolActor", "NetPoolStore", "NetRecord", "call", "connect", "evaluate_once",
           "netpool_actor", "netpool_name", "release_claims"]


class Evaluation(Protocol):
    """What training a network yields (`rayneas.eas.train.TrainResult` is one); a Protocol so
    the pool, which workers and the driver import, does not pull in torch."""

    val_accuracy: float
    epochs: int
    seconds: float


Key = tuple[str, str]  # (setting, arch)


@dataclasses.dataclass(frozen=True)
class Claim:
    """``done``: ``record`` holds the result; ``claimed``: the asker must train it and `put` the record;
    ``busy``: ``owner`` is training it now, ask again later."""

    status: Literal["done", "claimed", "busy"]
    record: NetRecord | None = None
    owner: str | None = None


class NetPoolStore:
    """The pool itself, in one process (one thread); `NetPoolActor` shares it between workers.

    Without a location the pool, weights included, lives in memory only.
    """

    def __init__(self, location: str | None = None, claim_timeout_s: float = 6 * 3600) -> None:
        self.location = None if location is None else resolve(location)
        self.claim_timeout_s = claim_timeout_s
        self._files = None if self.location is None else PoolFiles(self.location)
        self._records: dict[Key, NetRecord] = {}
        self._weight_files: dict[Key, str] = {}
        self._weights: dict[Key, bytes] = {}  # only without a location
        self._claims: dict[Key, tuple[str, float]] = {}  # key -> (owner, monotonic time claimed)
        self._episodes: dict[str, list[dict[str, Any]]] = {}  # log -> finished episodes not yet collected
        for record, weights_file in [] if self._files is None else self._files.load():
            self._add(record, None, weights_file)

    def __len__(self) -> int:
        return len(self._records)

    def storage(self) -> str | None:
        return self.location

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
        if self._files is None:
            return self._weights.get(key)
        name = self._weight_files.get(key)
        return None if name is None else self._files.read_weights(name)

    def get_or_claim(self, arch: str, owner: str, setting: str = "") -> Claim:
        key = (setting, arch)
        if key in self._records:
            return Claim("done", record=self._records[key])
        holder = self._claims.get(key)
        # A claim older than the timeout belongs to a worker presumed dead.
        if holder is not None and holder[0] != owner and self._stale_in(key) > 0:
            return Claim("busy", owner=holder[0])
        self._claims[key] = (owner, time.monotonic())
        return Claim("claimed", owner=owner)

    def wait(self, arch: str, setting: str = "") -> None:
        """Return once the claim on (``setting``, ``arch``) may have changed. In one thread nothing but
        time changes it (the claim goes stale); `NetPoolActor.wait` also wakes on a put or release."""
        time.sleep(self._stale_in((setting, arch)))

    def release(self, arch: str, owner: str, setting: str = "") -> None:
        """Give up a claim (the training failed), so another worker may take it."""
        if self._claims.get((setting, arch), (None,))[0] == owner:
            del self._claims[(setting, arch)]

    def put(self, record: NetRecord, weights: bytes | None = None) -> NetRecord:
        """Store a result (and its weights) and persist it; the first record of a key wins and is returned."""
        if (record.setting, record.arch) in self._records:
            return self._add(record, weights, None)
        return self._add(record, weights, self._persist(record, weights))

    def release_all_claims(self, group: str = "") -> int:
        """Drop every claim of ``group``'s owners (a search whose workers are known dead; other searches
        sharing this pool keep theirs); returns how many there were."""
        dropped = [key for key, (owner, _) in self._claims.items() if owner.startswith(f"{group}/")]
        for key in dropped:
            del self._claims[key]
        return len(dropped)

    def log_episode(self, log: str, entry: dict[str, Any]) -> None:
        """A finished episode's child (arch, val_acc, reward, hit...), from whichever env runner ran it, in the
        episode log ``log`` of the search that sampled it (never persisted)."""
        self._episodes.setdefault(log, []).append(entry)

    def drain_episodes(self, log: str) -> list[dict[str, Any]]:
        """The episodes logged in ``log`` since the last call: the search driver collects them once per
        iteration, whatever RLlib algorithm sampled them. One log per search: the searches of a Tune
        experiment share one pool, and each must see only its own children."""
        return self._episodes.pop(log, [])

    def _persist(self, record: NetRecord, weights: bytes | None) -> str | None:
        """Write the record to the pool's files (file I/O only: `NetPoolActor` runs it in a thread)."""
        return None if self._files is None else self._files.add(record, weights)

    def _add(self, record: NetRecord, weights: bytes | None, weights_file: str | None) -> NetRecord:
        """Take a record into memory (unless its key has one: the first wins) and end its claim."""
        key = (record.setting, record.arch)
        self._claims.pop(key, None)
        if key in self._records:
            return self._records[key]
        self._records[key] = record
        if weights_file is not None:
            self._weight_files[key] = weights_file
        elif weights is not None and self._files is None:
            self._weights[key] = weights
        return record

    def _stale_in(self, key: Key) -> float:
        """Seconds until the claim on ``key`` goes stale (0: there is none, or it is stale)."""
        holder = self._claims.get(key)
        return 0.0 if holder is None else max(0.0, holder[1] + self.claim_timeout_s - time.monotonic())

    def _has_weights(self, key: Key) -> bool:
        return key in (self._weights if self._files is None else self._weight_files)


class NetPoolActor(NetPoolStore):
    """The pool as an async Ray actor: the methods that touch files or wait are coroutines.

    Claims and look-ups are plain methods, which Ray runs on the actor's event
    loop one at a time (so a claim is atomic); a put writes its files in a
    thread while the loop answers other workers, and a worker waiting for a
    network another one trains sleeps on an `asyncio.Event` that the put (or a
    release) sets, instead of asking again and again.
    """

    def __init__(self, location: str | None = None, claim_timeout_s: float = 6 * 3600) -> None:
        super().__init__(location, claim_timeout_s)
        self._changed: dict[Key, asyncio.Event] = {}

    async def weights(self, arch: str, setting: str = "") -> bytes | None:
        return await asyncio.to_thread(super().weights, arch, setting)

    async def wait(self, arch: str, setting: str = "") -> None:
        key = (setting, arch)
        timeout = self._stale_in(key)
        if key in self._records or timeout == 0:
            return
        try:
            await asyncio.wait_for(self._changed.setdefault(key, asyncio.Event()).wait(), timeout)
        except asyncio.TimeoutError:
            pass  # the claim went stale: the waiter may take it

    async def release(self, arch: str, owner: str, setting: str = "") -> None:
        super().release(arch, owner, setting)
        self._wake((setting, arch))

    async def put(self, record: NetRecord, weights: bytes | None = None) -> NetRecord:
        key = (record.setting, record.arch)
        name = None if key in self._records else await asyncio.to_thread(self._persist, record, weights)
        stored = self._add(record, weights, name)
        self._wake(key)
        return stored

    async def release_all_claims(self, group: str = "") -> int:
        count = super().release_all_claims(group)
        for key in list(self._changed):
            self._wake(key)
        return count

    def _wake(self, key: Key) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()


_LOCAL: dict[str | None, NetPoolStore] = {}


def netpool_name(location: str | None) -> str:
    """The actor name of the pool stored at ``location``: one pool per location, so two runs with their own
    pools never share an actor by accident (records are keyed by setting, so sharing a location is safe)."""
    where = "memory" if location is None else resolve(location)
    return "rayneas-netpool-" + hashlib.sha1(where.encode()).hexdigest()[:12]


@functools.cache
def _actor_class() -> Any:
    import ray

    return ray.remote(NetPoolActor)


def netpool_actor(location: str | None, name: str | None = None, claim_timeout_s: float = 6 * 3600):
    """The named pool actor of ``location`` in this Ray namespace, created (loading ``location``) on first use.

    A pool on a local path lives on the node of the process that creates it, where that path is; one in
    memory or at a URI may live on any node. Either way outside any placement group: a Tune trial's group
    (which captures its children) holds bundles for its workers only.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    location = None if location is None else resolve(location)
    name = name or netpool_name(location)
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                          soft=location is None or is_uri(location))
    actor = _actor_class().options(name=name, get_if_exists=True, num_cpus=0, scheduling_strategy=here).remote(
        location, claim_timeout_s)
    existing = ray.get(actor.storage.remote())
    if existing != location:
        raise ValueError(f"the NetPool actor {name!r} already exists with location {existing!r}, not {location!r}; "
                         "use the same location or another actor name")
    return actor


def connect(location: str | None) -> Any:
    """The pool a worker should use: the shared actor when this process is part of a Ray cluster,
    else one `NetPoolStore` per location per process (so every env in the process shares it)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return netpool_actor(location)
    key = None if location is None else resolve(location)
    if key not in _LOCAL:
        _LOCAL[key] = NetPoolStore(key)
    return _LOCAL[key]


def release_claims(location: str | None, group: str = "") -> int:
    """Release ``group``'s claims in the pool at ``location`` once every live worker of that search is idle: the
    rest belong to its dead workers, and an architecture they were training would otherwise wait for the claim
    timeout."""
    return call(connect(location), "release_all_claims", group)


def call(pool: Any, method: str, *args: Any) -> Any:
    """``pool.method(*args)`` on a `NetPoolStore` or on its actor."""
    if isinstance(pool, NetPoolStore):
        return getattr(pool, method)(*args)
    import ray

    return ray.get(getattr(pool, method).remote(*args))


def evaluate_once(pool: Any, arch: str, evaluate: Callable[[], Evaluation], *, parent: str | None = None,
                  setting: str = "", weights: Callable[[], bytes] | None = None,
                  group: str = "") -> tuple[NetRecord, bool]:
    """The pool's record of (``setting``, ``arch``), calling ``evaluate`` only if no worker has trained it.

    ``pool`` is a `NetPoolStore` or its actor. Returns (record, trained here).
    If another worker is training it, waits for its record (or for its claim to
    go stale); if ``evaluate``
    raises, the claim is released and the error re-raised. ``weights``, called
    after a successful ``evaluate``, gives the trained weights to keep. ``group`` names the search the claim is
    made for, so that `release_claims` of one search leaves the others' claims in a shared pool alone.
    """
    owner = f"{group}/{uuid.uuid4().hex}"
    while True:
        claim = call(pool, "get_or_claim", arch, owner, setting)
        if claim.status == "done":
            return claim.record, False
        if claim.status == "claimed":
            break
        call(pool, "wait", arch, setting)
    try:
        result = evaluate()
        trained = None if weights is None else weights()
    except BaseException:
        call(pool, "release", arch, owner, setting)
        raise
    record = NetRecord(arch, float(result.val_accuracy), int(result.epochs), float(result.seconds), parent, setting)
    stored = call(pool, "put", record, trained)
    return stored, stored == record
