"""Scoring a round's candidates in parallel on Ray actors, with the serial result bit for bit.

Every worker (each actor, or the driver on the serial path) runs the same
`ScorerHost` with the same torch thread count, because float reductions are
summed in a different order under a different number of threads: that is what
makes ``num_actors=0`` and ``num_actors=4`` agree exactly, not just closely.

Tasks go out one per free actor and the next one leaves when a result comes
back, so slow and fast candidates balance themselves. An actor that dies (or
becomes unreachable) is replaced by a new one and its task handed out again,
up to ``max_retries`` times per task; results already received are kept. The
pool replaces actors itself rather than through Ray's ``max_restarts``: calls
made while Ray restarts an actor fail at once with ActorUnavailableError,
whereas calls to a new actor wait until it has started.
"""
from __future__ import annotations

import functools
import logging
import reprlib
from collections import deque
from typing import Any, Callable, Mapping, Sequence

import ray
import torch
from ray.exceptions import RayActorError, RayTaskError
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rayneas.scoring.cluster import check_fits
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
    ``autoscaling``: see `check_fits`. Built inside a placement group (a Tune
    trial), the actors are placed in that group's bundles, not beside it.
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
    ) -> None:
        _check_count("num_actors", num_actors, 0)
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
        self.progress = progress
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
        strategy = None if group is None else PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_capture_child_tasks=True)
        actor_cls = RemoteScoringActor.options(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor,
                                               scheduling_strategy=strategy)
        self._new_actor = functools.partial(actor_cls.remote, scorer_factory, self._shared_ref, threads_per_actor)
        self._actors = [self._new_actor() for _ in range(num_actors)]

    @property
    def num_actors(self) -> int:
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
            return self._score_actors(tasks) if self._actors else self._score_serial(tasks)
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
        total = len(tasks)
        pending = deque(range(total))
        free = deque(range(len(self._actors)))  # actor slots
        failures = [0] * total
        in_flight: dict[ray.ObjectRef, tuple[int, int]] = {}
        results: dict[int, Any] = {}
        while len(results) < total:
            while free and pending:
                index, slot = pending.popleft(), free.popleft()
                in_flight[self._actors[slot].score.remote(tasks[index])] = (index, slot)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=STALL_WARNING_S)
            if not ready:
                free_now = ray.available_resources()
                log.warning("no scoring result for %d s with %d task(s) in flight: slow tasks, or actors waiting "
                            "for resources held by other Ray work (free now: %g CPU, %g GPU)", STALL_WARNING_S,
                            len(in_flight), free_now.get("CPU", 0.0), free_now.get("GPU", 0.0))
                continue
            ref = ready[0]
            index, slot = in_flight.pop(ref)
            try:
                results[index] = ray.get(ref)
            except RayActorError as err:
                if err.actor_init_failed:
                    raise ScoringError(f"the scorer factory failed in a scoring actor: {err}") from err
                failures[index] += 1
                what = _describe(index, total, tasks[index])
                self._replace(slot)
                if failures[index] > self.max_retries:
                    raise ScoringError(
                        f"{what} lost its actor {failures[index]} times (max_retries={self.max_retries}); "
                        f"last error: {err}"
                    ) from err
                log.warning("scoring actor lost on %s (failure %d of at most %d); replaced it, retrying",
                            what, failures[index], self.max_retries + 1)
                pending.appendleft(index)
            except RayTaskError as err:
                cause = err.cause if err.cause is not None else err
                raise ScoringError(
                    f"{_describe(index, total, tasks[index])} raised {type(cause).__name__}: {cause}"
                ) from err
            else:
                self._deliver(index, results[index], len(results), total)
            free.append(slot)
        return [results[i] for i in range(total)]

    def _replace(self, slot: int) -> None:
        """A fresh actor for a lost one (calls on it queue until it has started): the pool stays usable."""
        ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._new_actor()

