"""The tune: block is validated like every config section, every swept value included, before Ray starts;
trial resources put the scoring actors' bundles in the trial's placement group; the summary table.

(Running and restoring experiments: tests/test_fault_tolerance.py.)
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import ray
import yaml

from rayneas.cli import main
from rayneas.config import ConfigError, load_document, load_run
from rayneas.tune.experiment import _resources, load_experiment
from rayneas.tune.summary import format_table

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tune_tenas_nb201.yaml"


def write(tmp_path: Path, **tune) -> Path:
    doc = load_document(CONFIG)
    doc["tune"] = {**doc["tune"], **tune}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_tune_config_sweeps_two_seeds_and_runs_plainly_too():
    experiment = load_experiment(CONFIG)
    assert experiment.kind == "tenas" and experiment.name == "tune_tenas_nb201_tune"
    assert experiment.settings.params["seed"].grid == [0, 1]
    assert experiment.path.endswith("runs/tune/tune_tenas_nb201_tune") and Path(experiment.path).is_absolute()
    kind, cfg = load_run(CONFIG)  # rayneas run ignores the (valid) tune block
    assert cfg.scoring.num_actors == 1


@pytest.mark.parametrize("tune, message", [
    ({"num_sample": 2}, "tune: unknown key 'num_sample'; allowed keys are max_concurrent_trials, max_failures"),
    ({"num_samples": 0}, "tune.num_samples: 0 is out of range; it must be >= 1"),
    ({"resources": {"driver_cpu": 1}}, "tune.resources: unknown key 'driver_cpu'"),
    ({"params": {"seed": [0, 1]}}, "tune: params.seed: expected a mapping of keys, got [0, 1]"),
    ({"params": {"seed": {"grid": [0], "choice": [1]}}}, "params.seed: give exactly one of grid, choice, uniform"),
    ({"params": {"scoring.num_actor": {"grid": [1, 2]}}}, "tune.params.scoring.num_actor = 1: scoring: unknown key "
                                                          "'num_actor'"),
    ({"params": {"prune.repeats": {"choice": [1, 0]}}}, "tune.params.prune.repeats = 0: prune.repeats: 0 is out of "
                                                         "range"),
])
def test_bad_tune_block_fails_before_anything_runs(tmp_path, tune, message):
    running = ray.is_initialized()
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_experiment(write(tmp_path, **tune))
    assert ray.is_initialized() == running  # validating started no Ray


def test_cli_names_the_bad_key_and_needs_a_tune_block(tmp_path, capsys):
    assert main(["tune", str(write(tmp_path, storage="x"))]) == 2
    assert "rayneas: error: tune: unknown key 'storage'" in capsys.readouterr().err
    assert main(["run", str(write(tmp_path, storage="x"))]) == 2  # rayneas run checks the block too
    assert main(["tune", str(CONFIG.parent / "tenas_nb201.yaml")]) == 2
    assert "no tune: block, so there is nothing to sweep" in capsys.readouterr().err


def test_trial_placement_group_holds_the_driver_and_one_bundle_per_actor(tmp_path):
    experiment = load_experiment(write(tmp_path, resources={"driver_cpus": 0.5},
                                       params={"scoring.num_actors": {"grid": [2]}}))
    gpu = _resources(experiment, {"params": {"scoring.num_actors": 3, "scoring.num_gpus_per_actor": 0.25}})
    assert gpu.bundles == [{"CPU": 0.5}] + [{"CPU": 1.0, "GPU": 0.25}] * 3
    assert _resources(experiment, {"params": {"scoring.num_actors": 0}}).bundles == [{"CPU": 0.5}]


def test_eas_trials_hold_one_bundle_per_env_runner():
    experiment = load_experiment(CONFIG.with_name("tune_eas_digits.yaml"))
    assert experiment.kind == "eas" and experiment.settings.params["controller.algorithm"].grid == ["reinforce", "random"]
    assert _resources(experiment, {"params": {"controller.algorithm": "random"}}).bundles == [{"CPU": 1.0}] * 2
    gpu = _resources(experiment, {"params": {"controller.num_env_runners": 3, "controller.rllib": {
        "num_cpus_per_env_runner": 2, "num_gpus_per_env_runner": 0.5}}})
    assert gpu.bundles == [{"CPU": 1.0}] + [{"CPU": 2.0, "GPU": 0.5}] * 3


def test_summary_table_aligns_columns():
    table = format_table([{"trial": "a", "seed": 0, "seconds": 12.3456, "genotype": None},
                          {"trial": "bb", "seed": 1, "seconds": 7.0, "genotype": "|x~0|"}])
    assert table.splitlines() == ["trial  seed  seconds  genotype", "a      0     12.35    -",
                                  "bb     1     7        |x~0|"]
