"""An EAS run on a cluster whose worker node lacks the dataset stops before the controller starts, with one line
naming that node and ``dataset.root``; an env runner on such a node (one an autoscaler adds later) fails with the
same line.

Two real Ray nodes on this machine (`ray.cluster_utils.Cluster`) share its disk, so the worker node gets a home
folder of its own (its raylet's HOME, which its workers inherit): ``dataset.root: ~/cifar`` then exists for the
driver and not on the worker node, as a dataset copied to the head only would.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rayneas.cli import main
from rayneas.config import from_dict
from rayneas.eas.config import EASEnvConfig
from rayneas.eas.evaluator import ChildEvaluator
from test_data import _write_cifar10

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"
SETTINGS = ["dataset.name=cifar10", "dataset.root=~/cifar", "reward.mode=surrogate", "controller.num_env_runners=1",
            "budget.networks=1"]


@pytest.fixture
def worker_without_dataset(tmp_path, monkeypatch):
    """A head with no CPUs (the driver's node, dataset present) and a 1-CPU worker node whose ~ is empty."""
    # Ray's token auth reads ~/.ray/auth_token, and ~ differs per node here: every Ray process takes the token this
    # process already uses (an earlier test's local Ray made it) from the environment instead.
    token = Path.home() / ".ray" / "auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", token.read_text().strip() if token.exists() else secrets.token_hex(32))
    monkeypatch.setenv("HOME", str(tmp_path / "head_home"))
    _write_cifar10(tmp_path / "head_home" / "cifar")
    (tmp_path / "worker_home").mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, env_vars={"HOME": str(tmp_path / "worker_home")})
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield worker
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_node_without_the_dataset_stops_the_run_with_one_line(worker_without_dataset, tmp_path, capsys):
    # file://: a shared mount, as a cluster of several nodes needs (a plain local path is refused before this check)
    args = ["run", str(CONFIG), "--runs-dir", f"file://{tmp_path / 'runs'}", *[a for s in SETTINGS for a in ("--set", s)]]
    assert main(args) == 2
    stderr = capsys.readouterr().err  # RLlib's warnings, then the error
    err = stderr[stderr.index("rayneas: error: "):]
    assert err.count("\n") == 1  # one line, the last
    assert err.startswith(f"rayneas: error: node {worker_without_dataset.node_ip_address} (Ray node id "
                          f"{worker_without_dataset.node_id}) cannot read dataset.root ~/cifar: every node that runs "
                          "env runners needs the dataset at that path")
    assert f"dataset folder {tmp_path / 'worker_home' / 'cifar'} does not exist" in err
    assert not (tmp_path / "runs" / "eas_digits" / "checkpoint").exists()

    # An env runner that lands there anyway (on a node added after the check) fails with the same line.
    env = from_dict(EASEnvConfig, {"dataset": {"name": "cifar10", "root": "~/cifar"},
                                   "netpool": str(tmp_path / "netpool.parquet")})
    on_worker = NodeAffinitySchedulingStrategy(worker_without_dataset.node_id, soft=False)
    evaluator = ray.remote(num_cpus=0)(ChildEvaluator).options(scheduling_strategy=on_worker).remote(env)
    with pytest.raises(ray.exceptions.RayActorError) as failed:
        ray.get(evaluator.setting.remote("child"))
    assert err.removeprefix("rayneas: error: ").strip() in str(failed.value)
