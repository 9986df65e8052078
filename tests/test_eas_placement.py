"""What an EAS controller asks Ray for is counted before the run: the shipped digits config runs with every
algorithm on 2 CPUs, a controller that cannot be placed fails at once with one line, sampling never times an
episode out, and a Tune trial's placement group holds every actor RLlib starts (learners included)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rayneas.cli import main
from rayneas.config import load_run
from rayneas.eas.search import rllib_config
from rayneas.rl.algos import ALGORITHMS
from rayneas.rl.resources import controller_bundles
from rayneas.scoring.cluster import bundles_that_fit
from rayneas.tune.experiment import _resources, load_experiment

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "eas_digits.yaml"
# The README's one-line swap: the shipped settings (2 env runners, 10 networks per iteration), surrogate reward.
SWAP = ["reward.mode=surrogate", "budget.networks=10"]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_each_algorithm_finishes_the_shipped_digits_config_on_two_cpus(ray_local, tmp_path, algorithm):
    import ray

    assert ray.cluster_resources()["CPU"] == 2
    overrides = [f"controller.algorithm={algorithm}", *SWAP]
    assert main(["run", str(CONFIG), "--runs-dir", str(tmp_path), *_sets(overrides)]) == 0
    result = json.loads((tmp_path / "eas_digits" / "result.json").read_text())
    assert result["algorithm"] == algorithm and result["networks_evaluated"] >= 10
    assert result["iterations"] == 1  # one iteration = networks_per_iteration children, whatever the algorithm


def test_a_controller_that_cannot_be_placed_fails_at_once_with_one_line(ray_local, tmp_path, capsys):
    overrides = ["controller.algorithm=impala", *SWAP, "controller.rllib={num_learners: 1}"]
    assert main(["run", str(CONFIG), "--runs-dir", str(tmp_path), *_sets(overrides)]) == 2
    stderr = capsys.readouterr().err  # RLlib's warnings, then the error
    err = stderr[stderr.index("rayneas: error: "):]
    assert err.count("\n") == 1  # one line, the last
    assert err.startswith("rayneas: error: the controller (IMPALA) asks Ray for 2 env runner(s) of {CPU: 1} each "
                          "and 1 learner/evaluation bundle(s) of {CPU: 1} (num_learners=1, ")
    assert "(3 CPU, 0 GPU in all), but the Ray cluster (1 node(s), 2 CPU, 0 GPU) holds only 2 of those 3" in err
    assert "lower controller.num_env_runners, set controller.rllib.num_learners: 0" in err
    assert "controller.autoscaling: true" in err
    assert not (tmp_path / "eas_digits" / "checkpoint").exists()  # nothing ran


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_no_episode_is_thrown_away_by_a_sampling_timeout(tmp_path, algorithm):
    """RLlib's default sample_timeout_s (60 s) drops the episodes of env runners still training a child."""
    config = rllib_config(load_run(CONFIG, [f"controller.algorithm={algorithm}"])[1], tmp_path)
    assert config.sample_timeout_s is None and config.num_learners == 0
    _, actors = controller_bundles(config)
    assert actors == [{"CPU": 1.0}] * 2  # the env runners, nothing else
    chosen = rllib_config(load_run(CONFIG, [f"controller.algorithm={algorithm}",
                                            "controller.rllib={sample_timeout_s: 900}"])[1], tmp_path)
    assert chosen.sample_timeout_s == 900


def test_tune_trial_placement_group_holds_remote_learners_and_a_local_learners_gpu():
    experiment = load_experiment(ROOT / "configs" / "tune_eas_digits.yaml")
    remote = _resources(experiment, {"params": {"controller.algorithm": "random", "controller.rllib": {
        "num_learners": 2, "num_gpus_per_learner": 1}}})
    assert remote.bundles == [{"CPU": 1.0}, {"CPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0}]  # driver, runner, learners
    local = _resources(experiment, {"params": {"controller.algorithm": "random", "controller.rllib": {
        "num_gpus_per_learner": 1}}})
    assert local.bundles == [{"CPU": 1.0, "GPU": 1.0}, {"CPU": 1.0}]  # the learner runs in the trial driver


def test_bundles_are_packed_per_node_and_per_gpu():
    node = {"CPU": 4.0, "GPU": 2.0}
    assert bundles_that_fit([node], [{"CPU": 1.0}] * 5) == 4
    assert bundles_that_fit([node], [{"CPU": 1.0, "GPU": 0.6}] * 3) == 2  # one 0.6 share per GPU
    assert bundles_that_fit([node], [{"GPU": 0.5}] * 2 + [{"GPU": 1.0}]) == 3  # the halves share one GPU
    assert bundles_that_fit([node, node], [{"CPU": 3.0}] * 3) == 2  # a bundle lives on one node
    assert bundles_that_fit([{"CPU": 2.0}], [{"CPU": 1.0, "memory": 1.0}]) == 0  # a resource no node has
