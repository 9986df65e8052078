"""ScorerPool on a real local Ray: exact agreement with the serial path, one ray.put, recovery from
actor death, clear errors, and placement on logical GPUs."""
from __future__ import annotations

import functools
import os
import sys
import uuid
from collections import Counter
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

TASKS = list(range(6))


def _images() -> torch.Tensor:
    return torch.randn(8, 3, 12, 12, generator=torch.Generator().manual_seed(0))


class GradScorer:
    """Forward and backward of a small seeded conv net on the shared batch: many float reductions."""

    def __call__(self, task: int, shared: Mapping[str, Any]) -> torch.Tensor:
        gen = torch.Generator().manual_seed(task)
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(),
                            nn.Linear(8 * 8 * 8, 10)).to(shared["device"])
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        net(shared["images"]).square().sum().backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()]).cpu()


class DieOnce(GradScorer):
    """Kills its own process the first time it sees ``victim``; logs every call as a file."""

    def __init__(self, folder: Path, victim: int) -> None:
        self.folder, self.victim = folder, victim

    def __call__(self, task: int, shared: Mapping[str, Any]) -> torch.Tensor:
        (self.folder / f"call-{task}-{uuid.uuid4().hex}").touch()
        marker = self.folder / "died"
        if task == self.victim and not marker.exists():
            marker.touch()
            os._exit(1)
        return super().__call__(task, shared)


class AlwaysDie:
    def __call__(self, task: int, shared: Mapping[str, Any]) -> None:
        os._exit(1)


class RaiseOn:
    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, task: int, shared: Mapping[str, Any]) -> int:
        if task == self.bad:
            raise ValueError("this candidate has no path from input to output")
        return task


class SharedProbe:
    def __call__(self, task: int, shared: Mapping[str, Any]) -> tuple[float, str]:
        return float(shared["images"].double().sum()), str(shared["device"])


def _broken_factory() -> GradScorer:
    raise OSError("scorer weights file missing")


def _serial(threads: int = 1, gpus: float = 0.0) -> list[Any]:
    with ScorerPool(GradScorer, shared={"images": _images()}, threads_per_actor=threads,
                    num_gpus_per_actor=gpus) as pool:
        return pool.score(TASKS)


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
    with ScorerPool(functools.partial(RaiseOn, 2)) as pool:
        with pytest.raises(ScoringError, match=r"task 2 of 4 \(2\) raised ValueError: this candidate has no path"):
            pool.score(range(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_actors": -1}, "num_actors must be an integer >= 0"),
        ({"threads_per_actor": 0}, "threads_per_actor must be an integer >= 1"),
        ({"num_gpus_per_actor": 1.5}, "Ray shares a GPU only for fractions below 1"),
        ({"num_cpus_per_actor": -1}, "num_cpus_per_actor must be >= 0"),
        ({"shared": {"device": "cpu"}}, r"shared\['device'\] is reserved"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScorerPool(GradScorer, **kwargs)


def test_actors_without_ray_say_how_to_start_it() -> None:
    if ray.is_initialized():
        pytest.skip("Ray already running in this process")
    with pytest.raises(RuntimeError, match=r"needs Ray: call rayneas.scoring.ensure_ray"):
        ScorerPool(GradScorer, num_actors=2)


def test_fractional_gpus_pack_per_gpu() -> None:
    node = {"CPU": 16.0, "GPU": 2.0}
    assert actors_that_fit([node], 1, 0.5) == 4
    assert actors_that_fit([node], 1, 0.6) == 2  # two 0.6 shares do not fit on one GPU
    assert actors_that_fit([node, node], 1, 2) == 2
    assert actors_that_fit([{"CPU": 3.0}], 2, 0) == 1  # an actor lives on one node
    assert actors_that_fit([{"CPU": 3.0}], 0, 0) == float("inf")


# --- CPU actors --------------------------------------------------------------------------------------

@pytest.fixture(scope="class")
def cpu_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.mark.usefixtures("cpu_ray")
class TestCPUActors:
    def test_results_match_serial_bit_for_bit_in_order(self) -> None:
        calls: list[tuple[int, int]] = []
        with ScorerPool(GradScorer, num_actors=2, threads_per_actor=2, shared={"images": _images()},
                        progress=lambda done, total: calls.append((done, total))) as pool:
            _assert_same(pool.score(TASKS), _serial(threads=2))
        assert calls == [(i, len(TASKS)) for i in range(1, len(TASKS) + 1)]

    def test_shared_inputs_are_put_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        puts = []
        real_put = ray.put
        monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(value) or real_put(value, **kw))
        with ScorerPool(SharedProbe, num_actors=2, shared={"images": _images()}) as pool:
            first, second = pool.score(TASKS), pool.score(TASKS)
        assert len(puts) == 1
        assert set(first + second) == {(float(_images().double().sum()), "cpu")}

    def test_dead_actor_is_restarted_and_only_its_task_retried(self, tmp_path: Path) -> None:
        with ScorerPool(functools.partial(DieOnce, tmp_path, 3), num_actors=2,
                        shared={"images": _images()}) as pool:
            results = pool.score(TASKS)
            assert len({p.pid for p in pool.placements()}) == 2  # both actors alive again
        _assert_same(results, _serial())
        calls = Counter(int(p.name.split("-")[1]) for p in tmp_path.glob("call-*"))
        assert calls == {t: 2 if t == 3 else 1 for t in TASKS}

    def test_task_that_keeps_killing_its_actor_gives_up(self) -> None:
        with ScorerPool(AlwaysDie, num_actors=1, max_retries=1) as pool:
            with pytest.raises(ScoringError, match=r"task 0 of 1 \(0\) lost its actor 2 times \(max_retries=1\)"):
                pool.score([0])

    def test_scorer_exception_is_not_retried_and_names_the_task(self) -> None:
        with ScorerPool(functools.partial(RaiseOn, 2), num_actors=2) as pool:
            with pytest.raises(ScoringError, match=r"task 2 of 4 \(2\) raised ValueError: this candidate has no path"):
                pool.score(range(4))

    def test_failing_factory_is_reported(self) -> None:
        with ScorerPool(_broken_factory, num_actors=1) as pool:
            with pytest.raises(ScoringError, match=r"scorer factory failed.*scorer weights file missing"):
                pool.score([0])

    def test_ensure_ray_keeps_the_running_instance(self) -> None:
        assert ensure_ray(num_cpus=64)["CPU"] == 2


# --- logical GPUs --------------------------------------------------------------------------------------

@pytest.fixture(scope="class")
def gpu_ray():
    ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.mark.usefixtures("gpu_ray")
class TestLogicalGPUs:
    def test_half_gpu_actors_pack_two_per_gpu(self) -> None:
        with ScorerPool(GradScorer, num_actors=4, num_gpus_per_actor=0.5, shared={"images": _images()}) as pool:
            placements = pool.placements()
            results = pool.score(TASKS)
        assert len({p.pid for p in placements}) == 4
        assert all(len(p.gpu_ids) == 1 for p in placements)
        assert sorted(Counter(p.gpu_ids[0] for p in placements).values()) == [2, 2]
        assert {p.device for p in placements} == {"cuda" if torch.cuda.is_available() else "cpu"}
        _assert_same(results, _serial(gpus=0.5))

    def test_more_actors_than_fit_fail_fast(self) -> None:
        with pytest.raises(ValueError, match=r"5 actors of 1 CPU \+ 0.5 GPU each.*4 CPU, 2 GPU\) holds only 4"):
            ScorerPool(GradScorer, num_actors=5, num_gpus_per_actor=0.5)
