"""A TE-NAS search survives what kills long runs: a lost scorer actor, a killed driver (``--resume``), an
interrupted Tune experiment (``Tuner.restore``); and ``--resume`` refuses settings that would change the numbers.

Every interrupted run must end with exactly the candidates table and cell of one uninterrupted serial run
(the same seed and torch threads give bit-identical scores on actors and in process). The searches use
configs/tune_tenas_nb201.yaml's small inputs: rounds of a few seconds, long enough to kill one mid-search.
The subprocesses join this module's local Ray through RAY_ADDRESS, so killing their driver also ends
their actors and trials (Ray ends a dead driver's actors) and nothing else.
"""
from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import pytest
import ray
import yaml

from helpers import interrupt_tune, rayneas_process, wait_for
from rayneas.config import ConfigError, load_document, parse_run
from rayneas.scoring import ScorerPool
from rayneas.tenas import search
from rayneas.tenas.search import run_tenas
from rayneas.tune.experiment import load_experiment, run_experiment

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tune_tenas_nb201.yaml"


def small_doc(**changes) -> dict:
    """The small config as plain data (tune block included); ``changes`` replace whole top-level sections."""
    return {**load_document(CONFIG), **changes}


def small(**changes):
    data = small_doc(**changes)
    data.pop("tune")
    return parse_run(data)[1]


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted serial run: what every interrupted run must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference")
    summary = run_tenas(small(scoring={"num_actors": 0, "threads_per_actor": 1}), run_dir)
    return {"genotype": summary["genotype"], "candidates": state(run_dir)["candidates"]}


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_killed_scorer_actor_mid_round_gives_the_uninterrupted_result(reference, cluster, tmp_path, monkeypatch,
                                                                      caplog):
    killed: list[int] = []

    class KillingPool(ScorerPool):
        """Kills its first actor once, after the fifth result of the first round."""

        def _report(self, done: int, total: int) -> None:
            if done == 5 and not killed:
                killed.append(done)
                ray.kill(self._actors[0], no_restart=True)
            super()._report(done, total)

    monkeypatch.setattr(search, "ScorerPool", KillingPool)
    reports: list = []
    with caplog.at_level(logging.WARNING, logger="rayneas.scoring.pool"):
        summary = run_tenas(small(scoring={"num_actors": 2, "threads_per_actor": 1}), tmp_path,
                            callbacks=[reports.append])
    assert killed and "scoring actor lost" in caplog.text  # the kill hit a task in flight, which was retried
    assert summary["genotype"] == reference["genotype"]
    assert state(tmp_path)["candidates"] == reference["candidates"]
    # the callbacks (TensorBoard's Board is one, the Tune reporter another) saw every round's saved numbers
    trajectory = state(tmp_path)["trajectory"]
    assert [(r.round, r.kappa, r.regions, r.live_ops) for r in reports] == [
        (t["round"], t["kappa"], t["regions"], t["live_ops"]) for t in trajectory]
    assert [r.genotype for r in reports] == [None, None, None, summary["genotype"]]
    assert [r.phase for r in reports] == ["ops", "ops", "ops", "final"]


def test_killed_driver_resumes_with_resume(reference, cluster, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(small_doc(name="killed")))
    run_dir, log = tmp_path / "runs" / "killed", tmp_path / "log.txt"
    args = ["run", str(config), "--runs-dir", str(tmp_path / "runs")]
    proc = rayneas_process(args, cluster, log)
    wait_for(lambda: (run_dir / "state.json").is_file(), proc, "state.json after round 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not state(run_dir)["finished"]
    resumed = rayneas_process([*args, "--resume"], cluster, log)
    assert resumed.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert json.loads((run_dir / "result.json").read_text())["genotype"] == reference["genotype"]
    assert state(run_dir)["candidates"] == reference["candidates"]


def test_interrupted_tune_experiment_finishes_with_tuner_restore(reference, cluster, tmp_path):
    doc = small_doc()
    doc["tune"] = {**doc["tune"], "storage_path": str(tmp_path / "tune"), "params": {"seed": {"grid": [0]}}}
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(doc))
    experiment = load_experiment(config)
    storage = Path(experiment.path)
    interrupt_tune(config, cluster, storage, "*/checkpoint_000000/state.json", "*/checkpoint_000003",
                   tmp_path / "log.txt")
    with pytest.raises(ConfigError, match="already holds a Tune experiment; continue it with --resume"):
        run_experiment(experiment)
    (result,) = run_experiment(experiment, resume=True)
    metrics = result.metrics
    assert result.error is None and metrics["finished"] and metrics["genotype"] == reference["genotype"]
    # continued from a checkpoint, not started again: fewer reports in this session than in the trial
    assert metrics["iterations_since_restore"] < metrics["training_iteration"] == 4
    assert state(Path(result.path) / "run")["candidates"] == reference["candidates"]


# --- what --resume compares --------------------------------------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """Round 1 of a serial search, read from a dataset folder that is then moved."""
    root = tmp_path_factory.mktemp("data")
    _write_cifar10_train(root / "first")
    run_dir = tmp_path_factory.mktemp("stopped")
    run_tenas(_cifar_cfg(root / "first"), run_dir)
    return run_dir


def _cifar_cfg(root: Path, **scoring):
    return small(inputs={"source": "cifar10", "root": str(root), "batch_size": 4, "image_size": 8,
                         "region_samples": 50, "region_batches": 1},
                 prune={"repeats": 1, "max_rounds": 1}, scoring={"num_actors": 0, **scoring})


@pytest.mark.parametrize("scoring, message", [
    ({"threads_per_actor": 2}, r"scoring.threads_per_actor \(1 -> 2\)"),
    ({"num_gpus_per_actor": 0.5}, r"scoring.device \('cpu' -> 'gpu'\)"),
])
def test_resume_refuses_threads_or_device_that_change_the_numbers(stopped, scoring, message):
    root = Path(json.loads((stopped / "config.json").read_text())["inputs"]["root"])
    with pytest.raises(ConfigError, match=f"config differs from the saved run in {message}"):
        run_tenas(_cifar_cfg(root, **scoring), stopped, resume=True)


def test_resume_accepts_the_same_data_moved_and_refuses_other_data(stopped, tmp_path):
    root = Path(json.loads((stopped / "config.json").read_text())["inputs"]["root"])
    moved = tmp_path / "moved"
    root.rename(moved)
    other = tmp_path / "other"
    _write_cifar10_train(other, seed=1)
    with pytest.raises(ConfigError, match="the input images .*inputs.root holds different data"):
        run_tenas(_cifar_cfg(other), stopped, resume=True)
    cfg = _cifar_cfg(moved)
    cfg.prune.max_rounds = 2
    assert run_tenas(cfg, stopped, resume=True)["rounds"] == 2


def test_resume_continues_a_state_saved_before_threads_device_and_digest_were_recorded(tmp_path):
    tiny = {"batch_size": 4, "image_size": 8, "region_samples": 50, "region_batches": 1}
    run_tenas(small(inputs=tiny, prune={"repeats": 1, "max_rounds": 1}, scoring={"num_actors": 0}), tmp_path)
    saved = state(tmp_path)
    old = {k: v for k, v in saved["settings"].items() if k not in ("scoring", "inputs_digest")}
    old["inputs"] = {**old["inputs"], "root": None}
    (tmp_path / "state.json").write_text(json.dumps({**saved, "settings": old, "version": 1}))
    resumed = run_tenas(small(inputs=tiny, prune={"repeats": 1, "max_rounds": 2}, scoring={"num_actors": 0}),
                        tmp_path, resume=True)
    assert resumed["rounds"] == 2


def _write_cifar10_train(root: Path, seed: int = 0) -> None:
    """The five CIFAR-10 training batches as distributed, 20 random images each."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": [0] * 20}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
