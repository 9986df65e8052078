"""Every scheduler and search algorithm of the ``tune:`` block runs a tiny real Tune experiment to its end
(fifo with basic: every other Tune test, e.g. tests/test_fault_tolerance.py).

PBT over EAS controllers: an exploiting trial continues the donor's search (its network table and controller,
with the experiment's shared NetPool) with the mutated lr, and a continued search accepts changes to the mutated
keys only. ASHA over EAS: a trial stopped at a rung leaves a readable run folder whose result.json says what it
reached. The EAS trials score children with the surrogate reward (no
training) and sample in the trial driver, so two 1-CPU trials run side by side on the 2-CPU Ray.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray
import yaml

from rayneas.cli import main
from rayneas.config import load_document, parse_run
from rayneas.eas.netpool import NetPoolStore, netpool_name
from rayneas.eas.record import load_config
from rayneas.eas.search import restore_controller, rllib_config, run_eas
from rayneas.runs.folder import RunDirError
from rayneas.tune.experiment import load_experiment, run_experiment
from rayneas.tune.summary import summary_rows

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# 2 children per iteration of 2 transforms each, scored without training.
EAS = {"reward": {"mode": "surrogate"}, "episode": {"wider_steps": 1, "deeper_steps": 1},
       "controller": {"algorithm": "reinforce", "networks_per_iteration": 2, "num_env_runners": 0}}


def run(tmp_path: Path, base: str, tune: dict, **sections):
    doc = {**load_document(CONFIGS / base), **sections}
    doc["tune"] = {"storage_path": str(tmp_path / "tune"), "resources": {"driver_cpus": 1.0}, **tune}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    experiment = load_experiment(path)
    return experiment, run_experiment(experiment)


def networks(result) -> list[dict]:
    return pq.read_table(Path(result.path) / "run" / "networks.parquet").to_pylist()


def test_pbt_exploit_continues_the_donors_search_with_the_mutated_lr(ray_local, tmp_path):
    experiment, grid = run(tmp_path, "eas_digits.yaml", {
        "params": {"seed": {"grid": [0, 1]}, "controller.rllib.lr": {"choice": [0.001]},
                   "controller.rllib.entropy_coeff": {"uniform": [0.0, 0.001]}},
        "stop": {"training_iteration": 2},
        "scheduler": {"kind": "pbt", "perturbation_interval": 1, "quantile_fraction": 0.5,
                      "resample_probability": 0.0,
                      "hyperparam_mutations": {"controller.rllib.lr": {"loguniform": [0.0001, 0.1]}}},
    }, **EAS, budget={"networks": 6})
    assert experiment.metric == "best_val_acc" and experiment.mode == "max"
    results = list(grid)
    assert all(r.error is None and r.metrics["training_iteration"] == 2 for r in results)
    # synch PBT: both trials meet after iteration 1, the worse one clones the better one; the stop criterion
    # ends both after iteration 2, before a second perturbation
    assert len((Path(experiment.path) / "pbt_global.txt").read_text().splitlines()) == 1
    [target] = [r for r in results if (Path(experiment.path) / f"pbt_policy_{r.metrics['trial_id']}.txt").exists()]
    [donor] = [r for r in results if r is not target]
    # the exploiting trial took the donor's seed and its checkpoint of iteration 1: the same children there
    assert target.config["params"]["seed"] == donor.config["params"]["seed"]
    rows, donor_rows = networks(target), networks(donor)
    assert [r for r in rows if r["iteration"] == 1] == [r for r in donor_rows if r["iteration"] == 1]
    assert [r["iteration"] for r in rows] == [1, 1, 2, 2]
    own = pq.read_table(Path(target.path) / "checkpoint_000000" / "checkpoint" / "networks.parquet").to_pylist()
    assert own != rows[:2]  # what it had found itself (its own seed) before the exploit is gone
    # one NetPool for the experiment, owned by its driver (alive after trials came and went), and every trial
    # collected only its own children from it
    location = str(Path(experiment.path) / "netpool.parquet")
    assert ray.get(ray.get_actor(netpool_name(location)).storage.remote()) == location
    pool = {r.arch for r in NetPoolStore(location).records()}
    assert {r["arch"] for r in rows + donor_rows} <= pool
    assert [r["iteration"] for r in donor_rows] == [1, 1, 2, 2]
    lr = target.config["params"]["controller.rllib.lr"]
    assert lr != 0.001 and load_config(Path(target.path) / "run").controller.rllib["lr"] == lr
    # its update after the exploit used the mutated lr from the first step on
    assert target.metrics["controller/default_optimizer_learning_rate"] == lr


def test_asha_with_optuna_stops_a_trial_early_and_its_run_folder_stays_valid(ray_local, tmp_path):
    # one trial at a time: the rung a trial reaches is compared with the trials before it (deterministic); max_t
    # beyond the budget (3 iterations), so a trial that is not stopped ends by itself, measured on the test split;
    # rungs at 2, 4, 8 iterations: after 1, no trial's value falls below the median of those before it; after 2, the
    # second trial's does
    experiment, grid = run(tmp_path, "eas_digits.yaml", {
        "num_samples": 4, "max_concurrent_trials": 1, "search": "optuna", "seed": 0,
        "metric": "val_acc_mean", "mode": "max",  # the iteration's children: fewer ties than the best so far
        "params": {"seed": {"randint": [0, 100]}, "controller.rllib.lr": {"loguniform": [0.0001, 0.1]},
                   "controller.rllib.entropy_coeff": {"quniform": [0, 0.01, 0.0025]}},
        "scheduler": {"kind": "asha", "max_t": 10, "grace_period": 2, "reduction_factor": 2},
    }, **EAS, budget={"networks": 6})
    results = list(grid)
    assert len({r.config["params"]["seed"] for r in results}) == 4 and all(r.error is None for r in results)
    assert all(r.config["params"]["controller.rllib.entropy_coeff"] in (0, 0.0025, 0.005, 0.0075, 0.01) for r in results)
    stopped = [r for r in results if r.metrics["training_iteration"] < 3]
    assert stopped, "ASHA stopped no trial"
    for result in results:
        run_dir = Path(result.path) / "run"
        summary = json.loads((run_dir / "result.json").read_text())
        rows = networks(result)
        # what the trial reached: every child of its reported iterations, its best, finished or not
        assert len(rows) == summary["networks_evaluated"] == result.metrics["networks_evaluated"]
        assert summary["iterations"] == result.metrics["training_iteration"]
        assert summary["finished"] == (result not in stopped)
        assert summary["best"]["val_acc"] == max(r["val_acc"] for r in rows) == result.metrics["best_val_acc"]
        assert load_config(run_dir).seed == result.config["params"]["seed"]
    rows = summary_rows(grid, ["seed"], ["best_val_acc"])
    assert [row["status"] for row in rows] == ["stopped" if r in stopped else "done" for r in results]
    assert main(["plot", str(Path(stopped[0].path) / "run")]) == 0
    assert (Path(stopped[0].path) / "run" / "reward_curve.png").is_file()


def test_hyperband_with_hyperopt_runs_tenas_trials_to_the_end(ray_local, tmp_path):
    tiny = {"inputs": {"source": "sample_images", "batch_size": 4, "image_size": 8, "region_samples": 50,
                       "region_batches": 1}, "scoring": {"num_actors": 0}}
    _, grid = run(tmp_path, "tune_tenas_nb201.yaml", {
        "num_samples": 3, "max_concurrent_trials": 2, "search": "hyperopt",
        "params": {"seed": {"randint": [0, 1000]}, "inputs.region_samples": {"randint": [20, 60]}},
        "scheduler": {"kind": "hyperband", "max_t": 4, "reduction_factor": 2},
    }, **tiny)
    results = list(grid)
    assert len(results) == 3 and all(r.error is None for r in results)
    assert all(20 <= r.config["params"]["inputs.region_samples"] < 60 for r in results)
    assert max(r.metrics["training_iteration"] for r in results) == 4  # the bracket's best reached max_t


def test_a_continued_search_accepts_changes_to_the_mutated_keys_only(ray_local, tmp_path):
    def cfg(**changes):
        return parse_run({**load_document(CONFIGS / "eas_digits.yaml"), **EAS, **changes})[1]

    run_eas(cfg(budget={"networks": 2}), tmp_path)
    mutated = {**EAS["controller"], "rllib": {"lr": 0.05}}
    with pytest.raises(RunDirError, match=re.escape("differs from the saved run in controller.rllib.lr")):
        run_eas(cfg(controller=mutated, budget={"networks": 4}), tmp_path, resume=True)
    with pytest.raises(RunDirError, match=re.escape("differs from the saved run in seed (0 -> 1)")):
        run_eas(cfg(controller=mutated, seed=1, budget={"networks": 4}), tmp_path, resume=True,
                may_change=["controller.rllib.lr"])
    summary = run_eas(cfg(controller=mutated, budget={"networks": 4}), tmp_path, resume=True,
                      may_change=["controller.rllib.lr"])
    assert summary["iterations"] == 2 and load_config(tmp_path).controller.rllib == {"lr": 0.05}


def test_a_restored_controller_learns_at_its_own_configs_lr_from_the_first_update(ray_local, tmp_path):
    def algo(lr: float):
        data = {**load_document(CONFIGS / "eas_digits.yaml"), **EAS}
        data["controller"] = {**EAS["controller"], "rllib": {"lr": lr}}
        return rllib_config(parse_run(data)[1], tmp_path).build_algo()

    def optimizer_lrs(built) -> list[float]:
        results = built.learner_group.foreach_learner(
            lambda learner: sorted({g["lr"] for o in learner._named_optimizers.values() for g in o.param_groups}))
        return [result.get() for result in results]

    donor = algo(0.001)
    donor.save_to_path(str(tmp_path / "donor"))
    donor.stop()
    exploiting = algo(0.05)
    exploiting.restore_from_path(str(tmp_path / "donor"))
    assert optimizer_lrs(exploiting) == [[0.001]]  # torch's load_state_dict brought the donor's lr back
    restore_controller(exploiting, tmp_path / "donor")
    assert optimizer_lrs(exploiting) == [[0.05]]
    exploiting.stop()
