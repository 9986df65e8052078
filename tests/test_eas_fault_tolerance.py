"""An EAS search survives a killed driver (``--resume``), an interrupted Tune experiment (``Tuner.restore``)
and an env runner killed mid-sample.

Each ends with exactly the network table and best child of one uninterrupted run: every iteration
reseeds the env runners from (seed, iteration, runner), and the checkpoint holds the controller's
weights, optimizer and REINFORCE baseline. The subprocesses join this module's local Ray through
RAY_ADDRESS, so killing their driver also ends their env runners and NetPool actor, and nothing else.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray
import yaml

from helpers import interrupt_tune, rayneas_process, wait_for
from rayneas.config import load_document, parse_run
from rayneas.eas.netpool import NetPoolStore
from rayneas.eas.search import run_eas
from rayneas.rl.reinforce import REINFORCE
from rayneas.tune.experiment import load_experiment, run_experiment

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tune_eas_digits.yaml"
# 4 iterations of 2 children fine-tuned 5 epochs: long enough to kill a run between checkpoints.
SMALL = {"start": {"epochs": 1}, "child": {"finetune_epochs": 5}, "budget": {"networks": 8},
         "controller": {"algorithm": "reinforce", "networks_per_iteration": 2, "num_env_runners": 1}}


def small_doc(**changes) -> dict:
    return {**load_document(CONFIG), **SMALL, **changes}


def table(run_dir: Path) -> list[tuple]:
    """What the search decided: the children of each iteration and their scores (not who trained them)."""
    return [(r["iteration"], r["arch"], r["val_acc"], r["reward"], r["params"])
            for r in pq.read_table(run_dir / "networks.parquet").to_pylist()]


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("reference")
    data = small_doc()
    data.pop("tune")
    summary = run_eas(parse_run(data)[1], run_dir)
    return {"best": summary["best"], "table": table(run_dir)}


def test_killed_driver_resumes_with_resume(reference, cluster, tmp_path):
    data = small_doc(name="killed")
    data.pop("tune")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(data))
    run_dir, log = tmp_path / "runs" / "killed", tmp_path / "log.txt"
    args = ["run", str(config), "--runs-dir", str(tmp_path / "runs")]
    proc = rayneas_process(args, cluster, log)
    wait_for(lambda: (run_dir / "checkpoint" / "search.json").is_file(), proc, "the first iteration's checkpoint")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "result.json").exists()
    resumed = rayneas_process([*args, "--resume"], cluster, log)
    assert resumed.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert json.loads((run_dir / "result.json").read_text())["best"] == reference["best"]
    assert table(run_dir) == reference["table"]


def test_interrupted_eas_tune_experiment_finishes_with_tuner_restore(reference, cluster, tmp_path):
    doc = small_doc()
    doc["tune"] = {**doc["tune"], "storage_path": str(tmp_path / "tune"),
                   "params": {"controller.algorithm": {"grid": ["reinforce"]}}}
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(doc))
    experiment = load_experiment(config)
    interrupt_tune(config, cluster, Path(experiment.path), "*/checkpoint_000000/checkpoint/search.json",
                   "*/checkpoint_000003", tmp_path / "log.txt")
    (result,) = run_experiment(experiment, resume=True)
    metrics = result.metrics
    assert result.error is None and metrics["networks_evaluated"] == 8
    assert metrics["iterations_since_restore"] < metrics["training_iteration"] == 4  # continued, not restarted
    run_dir = Path(result.path) / "run"
    assert table(run_dir) == reference["table"]
    assert json.loads((run_dir / "result.json").read_text())["best"] == reference["best"]
    # The NetPool lives once in the experiment's storage, each child's weights written once as it was
    # trained: no checkpoint uploads any of it again.
    storage = Path(experiment.path)
    checkpoints = sorted(storage.glob("*/checkpoint_*"))
    assert checkpoints and not [p for c in checkpoints for p in c.rglob("*") if "netpool" in p.name]
    records = NetPoolStore(storage / "netpool.parquet").records()
    assert len(records) == len({row[1] for row in reference["table"]}) + 1  # every child once, and the start net
    assert len(list((storage / "netpool.weights").iterdir())) == len(records)


def test_a_runner_killed_mid_sample_is_restarted_and_the_table_is_unchanged(cluster, tmp_path, monkeypatch, caplog):
    data = small_doc()
    data.pop("tune")
    data["controller"] = {**data["controller"], "num_env_runners": 2}
    cfg = parse_run(data)[1]
    uninterrupted = run_eas(cfg, tmp_path / "uninterrupted")
    killed: list[int] = []
    train = REINFORCE.training_step

    def training_step(self):
        if self.iteration == 1 and not killed:  # mid-way through the second iteration's children
            runner = self.env_runner_group._worker_manager._actors[1]  # Ray 2.60's handle of runner 1
            killer = threading.Timer(0.5, lambda: ray.kill(runner, no_restart=False))
            killer.start()
            killed.append(1)
        return train(self)

    monkeypatch.setattr(REINFORCE, "training_step", training_step)
    with caplog.at_level(logging.WARNING, logger="rayneas.rl.reinforce"):
        summary = run_eas(cfg, tmp_path / "killed")
    assert killed and "env runner(s) [1] lost mid-sample in iteration 2" in caplog.text
    assert summary["best"] == uninterrupted["best"]
    assert table(tmp_path / "killed") == table(tmp_path / "uninterrupted")
