"""Scoring a round's candidates in parallel on Ray actors, with the serial result bit for bit.

Every worker (each actor, or the driver on the serial path) runs the same
`ScorerHost` with the same torch thread count, because float reductions are
summed in a different order under a different number of threads: that is what
makes ``num_actors=0`` and ``num_actors=4`` agree exactly, not just closely.

Each actor holds up to ``in_flight_per_actor`` tasks (default 2): Ray runs an
actor's calls one after another, so the next task is already waiting in the
actor when the current one ends, instead of a driver round trip later. Tasks
go to the least loaded actor and the next leaves when a result comes back, so
slow and fast candidates balance themselves; near the end of the list only
idle actors get tasks, so none waits behind a slow one. Results are keyed by
task, so the order in which they come back never shows.

An actor that dies (or becomes unreachable: its process crashed, its node went
away) is replaced by a new one and its unfinished tasks, queued ones included,
handed out again, up to ``max_retries`` times per task; results already
computed are kept. The pool replaces actors itself rather than through Ray's
``max_restarts``: calls made while Ray restarts an actor fail at once with
ActorUnavailableError, whereas calls to a new actor wait until it has started.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import reprlib
from collections import Counter, deque
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import ray
import torch
from ray.exceptions import RayActorError, RayTaskError
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rayneas.scoring.cluster import actors_that_fit, alive_nodes, check_fits
from rayneas.scoring.actor import ActorPlacement, RemoteScoringActor
from rayneas.scoring.host import DEVICE_KEY, Scorer, ScorerHost, select_device

log = logging.getLogger(__name__)

STALL_WARNING_S = 300  # no result for this long: say what might be wrong, keep waiting

_REPR = reprlib.Repr()
_REPR.maxother = _REPR.maxstring = 160


class ScoringError(RuntimeError):
    """A task could not be scored; the message names the task."""


def _describe(index: int, total: int, task: Any) -> str:
    return f"task {index} of {total} ({_REPR.repr(task)})"


def _check_count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_resources(num_cpus: float, num_gpus: float) -> None:
    if not num_cpus >= 0:
        raise ValueError(f"num_cpus_per_actor must be >= 0, got {num_cpus!r}")
    if not num_gpus >= 0:
        raise ValueError(f"num_gpus_per_actor must be >= 0, got {num_gpus!r}")
    if num_gpus > 1 and not float(num_gpus).is_integer():
        raise ValueError(
            f"num_gpus_per_actor={num_gpus!r}: Ray shares a GPU only for fractions below 1; "
            "use a whole number of GPUs or a fraction such as 0.5"
        )


class _Flight(NamedTuple):
    """A task sent to an actor; ``actor`` is the handle it went to, which tells a replaced actor's calls apart."""

    index: int
    actor: Any


@dataclasses.dataclass
class _Round:
    """The state of one `ScorerPool.score` call on actors."""

    tasks: list[Any]
    pending: deque[int]  # task indices not sent yet, retries first
    failures: list[int]  # per task: actors lost while running it
    loads: Counter = dataclasses.field(default_factory=Counter)  # per actor: calls sent, not yet received
    flights: dict[ray.ObjectRef, _Flight] = dataclasses.field(default_factory=dict)  # in the order sent
    results: dict[int, Any] = dataclasses.field(default_factory=dict)


class ScorerPool:
    """Scores tasks with ``num_actors`` Ray actors, or in this process when ``num_actors=0``.

    ``scorer_factory`` (picklable, no arguments) builds the scorer inside each
    worker. ``shared`` (input batches, tensors) is stored once with ``ray.put``
    and every actor, replacements included, reads it from the object store;
    scorers see it plus ``shared["device"]``: CUDA when the actor was granted a
    GPU and torch sees one, else CPU (the serial path uses CUDA when
    ``num_gpus_per_actor > 0`` and torch sees one). Ray must be running
    (`ensure_ray`) for ``num_actors > 0``. ``progress(done, total)`` is called
    as each result arrives; the attribute may be swapped between calls.
    ``autoscaling``: see `check_fits`. ``in_flight_per_actor`` (the attribute
    ``in_flight``, which may be changed between calls): tasks queued in each
    actor at once (1: an actor's next task leaves only when its result is back).
    The actors are spread over the cluster's nodes (Ray's ``SPREAD``
    strategy); built inside a placement group (a Tune trial), they are placed in
    that group's bundles instead, not beside it.
    """

    def __init__(
        self,
        scorer_factory: Callable[[], Scorer],
        *,
        num_actors: int = 0,
        num_gpus_per_actor: float = 0.0,
        num_cpus_per_actor: float = 1.0,
        threads_per_actor: int = 1,
        shared: Mapping[str, Any] | None = None,
        max_retries: int = 3,
        progress: Callable[[int, int], None] | None = None,
        autoscaling: bool = False,
        in_flight_per_actor: int = 2,
    ) -> None:
        _check_count("num_actors", num_actors, 0)
        _check_count("in_flight_per_actor", in_flight_per_actor, 1)
        _check_count("threads_per_actor", threads_per_actor, 1)
        _check_count("max_retries", max_retries, 0)
        _check_resources(num_cpus_per_actor, num_gpus_per_actor)
        shared = dict(shared or {})
        if DEVICE_KEY in shared:
            raise ValueError(
                f"shared[{DEVICE_KEY!r}] is reserved: the pool sets it to each worker's torch device; rename your key"
            )
        self.threads = threads_per_actor
        self.max_retries = max_retries
        self.in_flight = in_flight_per_actor
        self.progress = progress
        self._size, self._autoscaling = num_actors, autoscaling
        self._per_actor = (num_cpus_per_actor, num_gpus_per_actor)
        self._actors: list[Any] = []
        self._host: ScorerHost | None = None
        self._shared_ref: ray.ObjectRef | None = None
        self._closed = False
        self._on_result: Callable[[int, Any], None] | None = None
        if num_actors == 0:
            self._host = ScorerHost(scorer_factory, shared, select_device(num_gpus_per_actor > 0))
            return
        if not ray.is_initialized():
            raise RuntimeError(
                f"ScorerPool(num_actors={num_actors}) needs Ray: call rayneas.scoring.ensure_ray(num_cpus=..., "
                "num_gpus=...) or ray.init(...) first, or use num_actors=0 to score in this process"
            )
        check_fits(num_actors, num_cpus_per_actor, num_gpus_per_actor, autoscaling=autoscaling)
        self._shared_ref = ray.put(shared)
        group = get_current_placement_group()
        strategy = "SPREAD" if group is None else PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_capture_child_tasks=True)
        actor_cls = RemoteScoringActor.options(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor,
                                               scheduling_strategy=strategy)
        self._new_actor = functools.partial(actor_cls.remote, scorer_factory, self._shared_ref, threads_per_actor)
        self._actors = [self._new_actor() for _ in range(num_actors)]

    @property
    def num_actors(self) -> int:
        """Actors now: fewer than asked for while lost nodes leave no room for them (see `_replace`)."""
        return len(self._actors)

    def score(self, tasks: Sequence[Any], on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """One result per task, in task order.

        ``on_result(index, result)`` is called as each result arrives (in
        completion order, which on actors is not task order), e.g. to save
        finished work before the whole list is done.
        """
        if self._closed:
            raise RuntimeError("this ScorerPool was shut down; build a new one")
        tasks = list(tasks)
        self._on_result = on_result
        try:
            return self._score_actors(tasks) if self._size else self._score_serial(tasks)
        finally:
            self._on_result = None

    def placements(self) -> list[ActorPlacement]:
        """Where each actor runs (waits for all of them to start); empty on the serial path."""
        return ray.get([actor.placement.remote() for actor in self._actors])

    def shutdown(self) -> None:
        for actor in self._actors:
            ray.kill(actor)
        self._actors, self._host, self._shared_ref, self._closed = [], None, None, True

    def __enter__(self) -> "ScorerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _deliver(self, index: int, result: Any, done: int, total: int) -> None:
        if self._on_result is not None:
            self._on_result(index, result)
        self._report(done, total)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def _score_serial(self, tasks: list[Any]) -> list[Any]:
        assert self._host is not None
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            results = []
            for i, task in enumerate(tasks):
                try:
                    results.append(self._host(task))
                except Exception as exc:
                    raise ScoringError(f"{_describe(i, len(tasks), task)} raised {type(exc).__name__}: {exc}") from exc
                self._deliver(i, results[-1], i + 1, len(tasks))
            return results
        finally:
            torch.set_num_threads(previous)

    def _score_actors(self, tasks: list[Any]) -> list[Any]:
        self._top_up()
        run = _Round(tasks, deque(range(len(tasks))), [0] * len(tasks))
        try:
            while len(run.results) < len(tasks):
                self._send(run)
                ready, _ = ray.wait(list(run.flights), num_returns=1, timeout=STALL_WARNING_S)
                if ready:
                    self._receive(run, ready[0])
                else:
                    free = ray.available_resources()
                    log.warning("no scoring result for %d s with %d task(s) in flight: slow tasks, or actors waiting "
                                "for resources held by other Ray work (free now: %g CPU, %g GPU)", STALL_WARNING_S,
                                len(run.flights), free.get("CPU", 0.0), free.get("GPU", 0.0))
            return [run.results[i] for i in range(len(tasks))]
        finally:
            for ref in run.flights:  # left when a task failed (or on Ctrl+C): queued calls are dropped, not run
                ray.cancel(ref)

    def _send(self, run: _Round) -> None:
        """Top the actors up, least loaded first: an idle actor always gets a task, a busy one a queued
        task (up to ``in_flight_per_actor``) only while more tasks wait than there are actors, so that
        near the end no task waits behind another actor's while an actor is idle."""
        while run.pending:
            actor = min(self._actors, key=run.loads.__getitem__)
            if run.loads[actor] >= (self.in_flight if len(run.pending) > len(self._actors) else 1):
                return
            index = run.pending.popleft()
            run.flights[actor.score.remote(run.tasks[index])] = _Flight(index, actor)
            run.loads[actor] += 1

    def _receive(self, run: _Round, ref: ray.ObjectRef) -> None:
        try:
            value = self._value(run, ref)
        except RayActorError as err:
            self._lost(run, run.flights[ref], err)
        else:
            self._accept(run, ref, value)

    def _value(self, run: _Round, ref: ray.ObjectRef) -> Any:
        """The result of a finished call; a scorer's exception becomes a ScoringError naming the task."""
        try:
            return ray.get(ref)
        except RayActorError as err:
            if err.actor_init_failed:
                raise ScoringError(f"the scorer factory failed in a scoring actor: {err}") from err
            raise
        except RayTaskError as err:
            index = run.flights[ref].index
            cause = err.cause if err.cause is not None else err
            raise ScoringError(
                f"{_describe(index, len(run.tasks), run.tasks[index])} raised {type(cause).__name__}: {cause}"
            ) from err

    def _accept(self, run: _Round, ref: ray.ObjectRef, value: Any) -> None:
        flight = run.flights.pop(ref)
        run.loads[flight.actor] -= 1
        run.results[flight.index] = value
        self._deliver(flight.index, value, len(run.results), len(run.tasks))

    def _lost(self, run: _Round, flight: _Flight, err: RayActorError) -> None:
        """``flight``'s actor is gone: replace it, keep what it returned, hand out again what it lost.

        Its calls are settled in the order they were sent (killing the actor
        fails those still open). Only the first lost one counts towards
        ``max_retries``: the actor died running it (or, if it died just
        after finishing it, before its result left), and the ones queued
        behind it never started.
        """
        self._replace(flight.actor)
        lost: list[int] = []
        for ref in [ref for ref, other in run.flights.items() if other.actor is flight.actor]:
            try:
                value = self._value(run, ref)
            except RayActorError:
                lost.append(run.flights.pop(ref).index)
            else:
                self._accept(run, ref, value)
        del run.loads[flight.actor]
        first = lost[0]
        run.failures[first] += 1
        what = _describe(first, len(run.tasks), run.tasks[first])
        if run.failures[first] > self.max_retries:
            raise ScoringError(f"{what} lost its actor {run.failures[first]} times (max_retries={self.max_retries}); "
                               f"last error: {err}") from err
        log.warning("scoring actor lost on %s (failure %d of at most %d); retrying it%s",
                    what, run.failures[first], self.max_retries + 1,
                    f" and the {len(lost) - 1} task(s) queued behind it" if len(lost) > 1 else "")
        run.pending.extendleft(reversed(lost))

    def _replace(self, lost: Any) -> None:
        """Kill a lost actor for good and start a fresh one (calls to it wait until it has started).

        When the nodes alive no longer hold as many actors (a node left a
        cluster that does not autoscale), a fresh one could never start and
        the tasks sent to it would wait forever: scoring goes on with the
        others instead, and `_top_up` restores the number at the next `score`
        call if nodes are back.
        """
        ray.kill(lost, no_restart=True)
        slot = self._actors.index(lost)
        if self._autoscaling or self._room() >= len(self._actors):
            self._actors[slot] = self._new_actor()
            return
        del self._actors[slot]
        if not self._actors:
            raise ScoringError(self._no_room())
        log.warning("scoring actor lost with its node, and the nodes alive hold only %d such actors: scoring goes "
                    "on with %d of %d", self._room(), len(self._actors), self._size)

    def _top_up(self) -> None:
        """Start the actors that `_replace` let go, as far as the nodes alive hold them."""
        missing = self._size - len(self._actors)
        if missing > 0:
            room = self._size if self._autoscaling else int(min(self._size, self._room()))
            self._actors += [self._new_actor() for _ in range(room - len(self._actors))]
            if not self._actors:
                raise ScoringError(self._no_room())

    def _room(self) -> float:
        return actors_that_fit(alive_nodes(), *self._per_actor)

    def _no_room(self) -> str:
        cpus, gpus = self._per_actor
        return (f"no node alive in the Ray cluster can hold a scoring actor of {cpus:g} CPU + {gpus:g} GPU any more "
                "(nodes left); add nodes, or set scoring.autoscaling: true on a cluster that adds them on demand")
