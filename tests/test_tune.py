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
    ({"params": {"seed": {"randint": [3, 3]}}}, "tune: params.seed: randint: [3, 3] needs low < high"),
    ({"params": {"seed": {"uniform": [0, "1"]}}}, "tune: params.seed.uniform[1]: expected a number, got '1'"),
    ({"params": {"prune.repeats": {"randint": [0, 3]}}}, "tune.params.prune.repeats = 0: prune.repeats: 0 is out of "
                                                         "range"),
    ({"params": {"prune.repeats": {"quniform": [1, 3, 1]}}}, "tune.params.prune.repeats = 1.0: prune.repeats: "
                                                             "expected an integer, got 1.0"),
    ({"metric": "kappa"}, "tune.metric: a tenas trial does not report 'kappa'; it reports round, log10_kappa"),
    ({"metric": "regions"}, "tune.mode: say max or min for metric 'regions'"),
    ({"mode": "maximum"}, "tune.mode: 'maximum' is not allowed; choose one of 'max', 'min'"),
    ({"stop": {"rounds": 2}}, "tune.stop.rounds: a tenas trial does not report 'rounds'"),
    ({"search": "bayesopt"}, "tune.search: 'bayesopt' is not allowed; choose one of 'basic', 'optuna', 'hyperopt'"),
    ({"search": "optuna"}, "tune: params.seed: search optuna draws values itself and takes no grid; use choice"),
    ({"scheduler": {"kind": "median"}}, "tune.scheduler.kind: 'median' is not allowed; choose one of 'fifo', 'asha'"),
    ({"scheduler": {"kind": "asha", "grace_period": 5, "max_t": 4}}, "tune.scheduler: grace_period 5 exceeds max_t 4"),
    ({"scheduler": {"kind": "hyperband", "reduction_factor": 1}}, "tune.scheduler.reduction_factor: 1.0 is out of "
                                                                  "range; it must be > 1"),
    ({"scheduler": {"kind": "pbt", "hyperparam_mutations": {"seed": {"choice": [0]}}}},
     "tune.scheduler.perturbation_interval: required key is missing"),
    ({"scheduler": {"kind": "pbt", "perturbation_interval": 1, "hyperparam_mutations": {"seed": {"grid": [0, 1]}}}},
     "tune.scheduler: hyperparam_mutations.seed: grid has nothing to perturb; use choice"),
    ({"scheduler": {"kind": "pbt", "perturbation_interval": 1, "hyperparam_mutations": {"seed": {"choice": [0]}}}},
     "tune.scheduler.hyperparam_mutations.seed: a tenas trial continued from another's checkpoint may change only "
     "keys under (none)"),
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


def test_pbt_may_mutate_only_the_eas_controllers_learning_settings(tmp_path):
    doc = load_document(CONFIG.with_name("tune_eas_pbt.yaml"))
    experiment = load_experiment(CONFIG.with_name("tune_eas_pbt.yaml"))
    assert experiment.mutable == ("controller.rllib.lr", "controller.rllib.entropy_coeff")
    assert (experiment.metric, experiment.mode) == ("reward_mean", "max")
    doc["tune"]["scheduler"]["hyperparam_mutations"] = {"child.finetune_lr": {"loguniform": [0.001, 0.1]}}
    path = tmp_path / "pbt.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=re.escape("tune.scheduler.hyperparam_mutations.child.finetune_lr: a eas "
                                                    "trial continued from another's checkpoint may change only "
                                                    "keys under controller.rllib")):
        load_experiment(path)


def test_default_objective_per_run_kind(tmp_path):
    assert (load_experiment(CONFIG).metric, load_experiment(CONFIG).mode) == ("log10_kappa", "min")
    eas = CONFIG.with_name("tune_eas_digits.yaml")
    assert (load_experiment(eas).metric, load_experiment(eas).mode) == ("best_val_acc", "max")
    # nothing is trained in reward.mode indicators: the best reward instead of a NaN accuracy
    assert load_experiment(eas, ["reward.mode=indicators"]).metric == "best_reward"


def test_a_missing_search_library_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hyperopt" else real(name, *a))
    with pytest.raises(ConfigError, match=re.escape("tune.search: hyperopt needs the hyperopt package, which is not "
                                                    "installed; pip install 'rayneas[tune-search]'")):
        load_experiment(write(tmp_path, search="hyperopt", params={"seed": {"choice": [0, 1]}}))


def test_sweeps_become_tunes_own_sample_domains():
    from ray.tune.search.sample import Categorical, Float, Integer, Quantized

    from rayneas.config import from_dict
    from rayneas.tune.config import Sweep
    from rayneas.tune.schedule import domain, mutation

    def make(**spec):
        return domain(from_dict(Sweep, spec, "x"))

    assert make(grid=[1, 2]) == {"grid_search": [1, 2]}
    assert isinstance(make(choice=["a", "b"]), Categorical) and make(choice=["a", "b"]).categories == ["a", "b"]
    uniform, log, q = make(uniform=[0, 2]), make(loguniform=[1e-4, 1e-2]), make(quniform=[0, 1, 0.25])
    assert isinstance(uniform, Float) and (uniform.lower, uniform.upper) == (0, 2)
    assert isinstance(log.get_sampler(), Float._LogUniform) and (log.lower, log.upper) == (1e-4, 1e-2)
    assert isinstance(q.get_sampler(), Quantized) and q.get_sampler().q == 0.25
    integer = make(randint=[3, 7])
    assert isinstance(integer, Integer) and (integer.lower, integer.upper) == (3, 7)
    assert from_dict(Sweep, {"randint": [3, 7]}, "x").edges() == [3, 6]  # what is validated: the ends it can draw
    # PBT perturbs a choice by one step along its list (given a tune.choice, it would multiply the value)
    assert mutation(from_dict(Sweep, {"choice": [1e-5, 1e-3]}, "x")) == [1e-5, 1e-3]
    assert isinstance(mutation(from_dict(Sweep, {"loguniform": [1e-4, 1e-2]}, "x")), Float)


@pytest.mark.parametrize("search", ["basic", "optuna", "hyperopt"])
def test_every_search_algorithm_holds_at_most_max_concurrent_trials(search):
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    from rayneas.config import from_dict
    from rayneas.tune.config import TuneSettings
    from rayneas.tune.schedule import search_algorithm

    algorithm = search_algorithm(from_dict(TuneSettings, {"search": search, "max_concurrent_trials": 3}, "tune"))
    if search == "basic":
        assert isinstance(algorithm, BasicVariantGenerator) and algorithm.max_concurrent == 3
    else:
        assert isinstance(algorithm, ConcurrencyLimiter) and algorithm.max_concurrent == 3


def test_declared_metrics_are_what_the_searches_report():
    from rayneas.eas.report import IterationReport
    from rayneas.tenas.report import RoundReport
    from rayneas.tune.trials import trial_for

    eas = IterationReport(3, 6, 1.0, 0.5, 0.6, 2.0, "arch", 0.0, 1.5, {"loss": 0.1}).metrics()
    numeric = {k for k, v in eas.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    assert numeric == set(trial_for("eas").metrics) | {"controller/loss"}
    tenas = RoundReport(1, "prune", 10.0, 5.0, 20, 4, 1.0).metrics()
    numeric = {k for k, v in tenas.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    assert numeric == set(trial_for("tenas").metrics)
