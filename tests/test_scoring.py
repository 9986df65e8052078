"""ScorerPool on a real local Ray with logical GPUs: exact agreement with the serial path, one
ray.put, packing of half-GPU actors, tasks queued in each actor, recovery from actor death (queued
tasks included), and clear errors.

Starting an actor costs seconds (a process that imports torch), so most tests share one
module-scoped pool of four half-GPU actors and ask it for well- or ill-behaved jobs.
"""
from __future__ import annotations

import logging
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pytest
import ray
import torch
from torch import nn

from rayneas.scoring import ScorerPool, ScoringError, actors_that_fit, ensure_ray

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
# Ray workers cannot import this test module: ship its scorer classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

THREADS = 2


@dataclass(frozen=True)
class Job:
    seed: int
    misbehave: str = ""  # "raise", "die" (every time) or "die-once" (first time, marker in folder)
    folder: str = ""  # where each call is logged as a file, when set


JOBS = [Job(seed) for seed in range(6)]


def _images() -> torch.Tensor:
    return torch.randn(8, 3, 12, 12, generator=torch.Generator().manual_seed(0))


class JobScorer:
    """Forward and backward of a small conv net seeded by the job: many float reductions."""

    def __call__(self, job: Job, shared: Mapping[str, Any]) -> torch.Tensor:
        if job.folder:
            (Path(job.folder) / f"call-{job.seed}-{uuid.uuid4().hex}").touch()
        if job.misbehave == "raise":
            raise ValueError("this candidate has no path from input to output")
        marker = Path(job.folder) / "died"
        if job.misbehave == "die" or (job.misbehave == "die-once" and not marker.exists()):
            marker.touch()
            time.sleep(0.5)  # part way through, as a scorer running out of memory; the last result has left
            os._exit(1)
        gen = torch.Generator().manual_seed(job.seed)
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(),
                            nn.Linear(8 * 8 * 8, 10)).to(shared["device"])
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        net(shared["images"]).square().sum().backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()]).cpu()


def _broken_factory() -> JobScorer:
    raise OSError("scorer weights file missing")


def _serial(jobs: list[Job]) -> list[torch.Tensor]:
    with ScorerPool(JobScorer, shared={"images": _images()}, threads_per_actor=THREADS,
                    num_gpus_per_actor=0.5) as pool:
        return pool.score(jobs)


def _assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# --- no Ray needed ---------------------------------------------------------------------------------

def test_serial_path_sets_threads_only_while_scoring() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    with ScorerPool(lambda: lambda task, shared: seen.append(torch.get_num_threads()), threads_per_actor=2) as pool:
        pool.score([0])
    assert seen == [2] and torch.get_num_threads() == before


def test_serial_error_names_the_task() -> None:
    with ScorerPool(JobScorer, shared={"images": _images()}) as pool:
        with pytest.raises(ScoringError, match=r"task 1 of 2 \(Job\(seed=1, misbehave='raise'.*\) raised "
                                               r"ValueError: this candidate has no path"):
            pool.score([Job(0), Job(1, "raise")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_actors": -1}, "num_actors must be an integer >= 0"),
        ({"in_flight_per_actor": 0}, "in_flight_per_actor must be an integer >= 1"),
        ({"threads_per_actor": 0}, "threads_per_actor must be an integer >= 1"),
        ({"num_gpus_per_actor": 1.5}, "Ray shares a GPU only for fractions below 1"),
        ({"num_cpus_per_actor": -1}, "num_cpus_per_actor must be >= 0"),
        ({"shared": {"device": "cpu"}}, r"shared\['device'\] is reserved"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScorerPool(JobScorer, **kwargs)


def test_actors_without_ray_say_how_to_start_it() -> None:
    if ray.is_initialized():
        pytest.skip("Ray already running in this process")
    with pytest.raises(RuntimeError, match=r"needs Ray: call rayneas.scoring.ensure_ray"):
        ScorerPool(JobScorer, num_actors=2)


def test_ensure_ray_refuses_resources_for_an_existing_cluster() -> None:
    if ray.is_initialized():
        pytest.skip("Ray already running in this process")
    with pytest.raises(ValueError, match=r"num_cpus/num_gpus size a new local Ray, but the cluster at "
                                         r"'10.0.0.1:6379' has its own resources"):
        ensure_ray(num_cpus=2, address="10.0.0.1:6379")


def test_fractional_gpus_pack_per_gpu() -> None:
    node = {"CPU": 16.0, "GPU": 2.0}
    assert actors_that_fit([node], 1, 0.5) == 4
    assert actors_that_fit([node], 1, 0.6) == 2  # two 0.6 shares do not fit on one GPU
    assert actors_that_fit([node, node], 1, 2) == 2
    assert actors_that_fit([{"CPU": 3.0}], 2, 0) == 1  # an actor lives on one node
    assert actors_that_fit([{"CPU": 3.0}], 0, 0) == float("inf")


# --- actors ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def half_gpu_pool(local_ray):
    """Four actors of 0.5 logical GPU, built while counting ray.put calls; they leave 2 CPUs free."""
    puts: list[Any] = []
    real_put = ray.put
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ray, "put", lambda value, **kw: puts.append(value) or real_put(value, **kw))
        pool = ScorerPool(JobScorer, num_actors=4, num_gpus_per_actor=0.5, num_cpus_per_actor=0.5,
                          threads_per_actor=THREADS, shared={"images": _images()})
        yield pool, puts
    pool.shutdown()


def test_half_gpu_actors_pack_two_per_gpu(half_gpu_pool) -> None:
    pool, _ = half_gpu_pool
    placements = pool.placements()  # all four at once: each holds its share while the others run
    assert len({p.pid for p in placements}) == 4
    assert all(len(p.gpu_ids) == 1 for p in placements)
    assert sorted(Counter(p.gpu_ids[0] for p in placements).values()) == [2, 2]
    assert {(p.device, p.threads) for p in placements} == {("cuda" if torch.cuda.is_available() else "cpu", THREADS)}


def test_results_match_serial_bit_for_bit_in_order_with_one_put(half_gpu_pool) -> None:
    pool, puts = half_gpu_pool
    calls: list[tuple[int, int]] = []
    pool.progress = lambda done, total: calls.append((done, total))
    try:
        first, second = pool.score(JOBS), pool.score(JOBS[::-1])
    finally:
        pool.progress = None
    expected = _serial(JOBS)
    _assert_same(first, expected)
    _assert_same(second, expected[::-1])
    assert len(puts) == 1  # the shared batch went to the object store once, not per actor or call
    assert calls == [(i, len(JOBS)) for i in range(1, len(JOBS) + 1)] * 2


def test_queued_tasks_give_the_results_of_one_at_a_time_and_of_serial(half_gpu_pool) -> None:
    pool, _ = half_gpu_pool
    jobs = [Job(seed) for seed in range(12)]  # more than the 4 actors: each gets a second task queued
    try:
        pool.in_flight = 1
        one_at_a_time = pool.score(jobs)
    finally:
        pool.in_flight = 2
    expected = _serial(jobs)
    _assert_same(one_at_a_time, expected)
    _assert_same(pool.score(jobs), expected)


def test_scorer_exception_is_not_retried_and_names_the_task(half_gpu_pool, tmp_path: Path) -> None:
    pool, _ = half_gpu_pool
    bad = Job(2, "raise", str(tmp_path))
    with pytest.raises(ScoringError, match=r"task 2 of 4 \(Job\(seed=2, misbehave='raise'.*\) raised "
                                           r"ValueError: this candidate has no path"):
        pool.score([Job(0), Job(1), bad, Job(3)])
    assert len(list(tmp_path.glob("call-2-*"))) == 1
    _assert_same(pool.score(JOBS[:2]), _serial(JOBS[:2]))  # and the pool still works


def test_dead_actor_is_replaced_and_only_its_task_retried(half_gpu_pool, tmp_path: Path) -> None:
    pool, _ = half_gpu_pool
    jobs = [Job(seed, "die-once" if seed == 3 else "", str(tmp_path)) for seed in range(6)]
    results = pool.score(jobs)
    _assert_same(results, _serial([Job(seed) for seed in range(6)]))
    calls = Counter(int(p.name.split("-")[1]) for p in tmp_path.glob("call-*"))
    assert calls == {seed: 2 if seed == 3 else 1 for seed in range(6)}
    assert len({p.pid for p in pool.placements()}) == 4  # the replacement is up, on a GPU share
    assert sorted(Counter(p.gpu_ids[0] for p in pool.placements()).values()) == [2, 2]


class Nap:
    """Sleeps, then says when (wall clock) and in which process it ran."""

    def __call__(self, task: int, shared: Mapping[str, Any]) -> tuple[int, float, float]:
        start = time.time()
        time.sleep(0.5)
        return os.getpid(), start, time.time()


def test_a_queued_task_starts_without_waiting_for_the_driver(local_ray) -> None:
    """The driver takes 0.3 s per result (a slow round trip): one task at a time, the actor waits that
    long between tasks; with two in flight the next one is already in the actor."""
    gaps: dict[int, list[float]] = {}
    with ScorerPool(Nap, num_actors=1, progress=lambda done, total: time.sleep(0.3)) as pool:
        pool.placements()
        for in_flight in (1, 2):
            pool.in_flight = in_flight
            spans = pool.score(list(range(6)))
            assert len({pid for pid, _, _ in spans}) == 1
            gaps[in_flight] = [nxt[1] - prev[2] for prev, nxt in zip(spans, spans[1:])]
    assert min(gaps[1]) >= 0.3
    # the last task leaves only when the actor is idle (no task waits behind another at the end)
    assert max(gaps[2][:-1]) < 0.3 <= gaps[2][-1], gaps[2]
    assert statistics.median(gaps[2]) < statistics.median(gaps[1])


def test_actor_lost_with_a_queued_task_hands_both_out_again(local_ray, tmp_path: Path, caplog) -> None:
    """Task 1 kills the actor while task 2 waits behind it: both run again on the replacement, and only
    task 1's try counts, so task 2 (which kills its own actor once later) still has a retry left."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    jobs = [Job(0, folder=str(tmp_path)), Job(1, "die-once", str(first)), Job(2, "die-once", str(second)),
            Job(3, folder=str(tmp_path))]
    with ScorerPool(JobScorer, num_actors=1, max_retries=1, threads_per_actor=THREADS,
                    shared={"images": _images()}) as pool, \
            caplog.at_level(logging.WARNING, logger="rayneas.scoring.pool"):
        results = pool.score(jobs)
    _assert_same(results, _serial([Job(seed) for seed in range(4)]))
    assert "on task 1 of 4 (Job(seed=1, misbehave='die-once'" in caplog.text
    assert "and the 1 task(s) queued behind it" in caplog.text
    calls = Counter(int(p.name.split("-")[1]) for p in tmp_path.rglob("call-*"))
    assert calls == {0: 1, 1: 2, 2: 2, 3: 1}  # task 2 never started on the first actor


def test_task_that_kills_its_actor_too_often_gives_up(local_ray, tmp_path: Path) -> None:
    with ScorerPool(JobScorer, num_actors=1, max_retries=0, threads_per_actor=THREADS,
                    shared={"images": _images()}) as pool:  # a CPU actor
        with pytest.raises(ScoringError, match=r"task 0 of 1 \(Job\(seed=0, misbehave='die'.*\) lost its actor "
                                               r"1 times \(max_retries=0\)"):
            pool.score([Job(0, "die", str(tmp_path))])
        assert pool.placements()[0].gpu_ids == ()  # its replacement is up, without a GPU
        _assert_same(pool.score([Job(1)]), _serial([Job(1)]))


def test_failing_factory_is_reported(local_ray) -> None:
    with ScorerPool(_broken_factory, num_actors=1) as pool:
        with pytest.raises(ScoringError, match=r"(?s)scorer factory failed.*OSError: scorer weights file missing"):
            pool.score([Job(0)])


def test_more_actors_than_fit_fail_fast(local_ray) -> None:
    with pytest.raises(ValueError, match=r"5 actors of 1 CPU \+ 0.5 GPU each.*4 CPU, 2 GPU\) holds only 4"):
        ScorerPool(JobScorer, num_actors=5, num_gpus_per_actor=0.5)


def test_ensure_ray_keeps_the_running_instance(local_ray) -> None:
    assert ensure_ray(num_cpus=64)["CPU"] == 4
