"""``kind: eas`` runs end to end on digits: outputs, export, resume, determinism, random search, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import rayneas_envs
from rayneas.cli import main
from rayneas.config import ConfigError, load_run
from rayneas.data import digits_split
from rayneas.eas.record import NETWORK_SCHEMA, RunDirError, load_networks
from rayneas.eas.search import run_eas
from rayneas.eas.train import accuracy
from rayneas.rl.random_search import UNIFORM_MODULE
from rayneas.spaces.common import count_parameters
from rayneas.runs.export import load_exported

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"
# Children trained 1 epoch: the outputs are what is tested here, not search quality.
SMALL = ["start.epochs=1", "child.finetune_epochs=1", "controller.networks_per_iteration=2",
         "controller.num_env_runners=0", "budget.networks=4"]


def _config(*overrides: str):
    return load_run(CONFIG, [*SMALL, *overrides])[1]


def test_a_search_writes_every_output_and_exports_its_best_network(ray_local, tmp_path):
    assert main(["run", str(CONFIG), "--runs-dir", str(tmp_path), *[a for o in SMALL for a in ("--set", o)]]) == 0
    run = tmp_path / "eas_digits"
    result = json.loads((run / "result.json").read_text())
    assert (result["kind"], result["algorithm"], result["networks_evaluated"], result["iterations"]) == (
        "eas", "reinforce", 4, 2)
    table = pq.read_table(run / "networks.parquet")
    assert table.schema.equals(NETWORK_SCHEMA) and table.column("iteration").to_pylist() == [1, 1, 2, 2]
    rows = table.to_pylist()
    best = max(rows, key=lambda r: r["val_acc"])
    assert result["best"]["arch"] == best["arch"] and result["best"]["val_acc"] == best["val_acc"]
    assert all(r["parent"] == result["start_net"] and r["reward"] == pytest.approx(
        np.tan(r["val_acc"] * np.pi / 2) - r["invalid_actions"]) for r in rows)
    assert (run / "reward_curve.png").stat().st_size > 0 and any((run / "tb").iterdir())
    assert (run / "checkpoint" / "rllib_checkpoint.json").is_file()
    assert main(["export", str(run)]) == 0
    net = load_exported(run / "export").eval()
    split = digits_split(0)
    assert accuracy(net, split.x_test, split.y_test) == result["best"]["test_acc"]  # the trained weights
    assert count_parameters(net) == result["best"]["params"] == best["params"]


def test_resume_continues_the_controller_and_refuses_changed_settings(ray_local, tmp_path):
    first = run_eas(_config("budget.networks=2"), tmp_path / "run")
    algo = Algorithm.from_checkpoint(str(tmp_path / "run" / "checkpoint"))
    try:
        baseline = algo.learner_group._learner.baseline  # REINFORCE's baseline travels with the checkpoint
    finally:
        algo.stop()
    assert first["iterations"] == 1 and baseline is not None and np.isfinite(baseline)
    before = pq.read_table(tmp_path / "run" / "networks.parquet").to_pylist()
    with pytest.raises(RunDirError, match=r"already holds an EAS run .*--resume"):
        run_eas(_config(), tmp_path / "run")
    with pytest.raises(RunDirError, match=r"differs from the saved run in seed \(0 -> 1\); only name and budget"):
        run_eas(_config("seed=1"), tmp_path / "run", resume=True)
    resumed = run_eas(_config(), tmp_path / "run", resume=True)
    after = pq.read_table(tmp_path / "run" / "networks.parquet").to_pylist()
    assert resumed["iterations"] == 2 and after[:2] == before and [r["iteration"] for r in after] == [1, 1, 2, 2]


def test_the_same_seed_gives_the_same_search_on_two_env_runners(ray_local, tmp_path):
    tables = []
    for name in ("a", "b"):
        cfg = _config("controller.num_env_runners=2", "reward.mode=surrogate", "budget.networks=6")
        run_eas(cfg, tmp_path / name)
        tables.append([(r["iteration"], r["arch"], r["reward"])
                       for r in pq.read_table(tmp_path / name / "networks.parquet").to_pylist()])
    assert len(tables[0]) == 6 and tables[0] == tables[1]


def test_random_search_samples_uniformly_what_the_masks_allow(ray_local, tmp_path):
    env = rayneas_envs.EASEnv(reward={"mode": "surrogate"}, episode={"order": "shuffled"})
    module = RLModuleSpec(module_class=UNIFORM_MODULE.module_class, model_config=UNIFORM_MODULE.model_config,
                          observation_space=env.observation_space, action_space=env.action_space).build()
    obs, _ = env.reset(seed=3)
    phases = [env._phase()]
    batch = {Columns.OBS: {k: torch.as_tensor(np.asarray(v))[None] for k, v in obs.items()}}
    logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS][0]
    assert set(logits[logits > -1e8].tolist()) == {0.0}  # every allowed choice equally likely
    for _ in range(env.total_steps - 1):
        obs, *_ = env.step({"wider": np.zeros(env.max_layers, np.int64), "deeper": np.zeros(3, np.int64)})
        phases.append(env._phase())
    assert sorted(phases) == ["deeper"] * 5 + ["wider"] * 4 and phases != ["wider"] * 4 + ["deeper"] * 5
    result = run_eas(_config("controller.algorithm=random", "reward.mode=surrogate", "budget.networks=2"),
                     tmp_path / "random")
    assert (result["algorithm"], result["networks_evaluated"]) == ("random", 2)
    assert json.loads((tmp_path / "random" / "config.json").read_text())["episode"]["order"] is None


def test_bad_controller_settings_fail_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"controller.algorithm: 'dqn' is not allowed; choose one of 'reinforce', "
                                          r"'ppo', 'appo', 'impala', 'random'"):
        _config("controller.algorithm=dqn")
    with pytest.raises(ConfigError, match=r"controller.module: cannot import 'nowhere.mod:Net'"):
        run_eas(_config("controller.module=nowhere.mod:Net"), tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"controller.rllib.lr_schedul: REINFORCE has no setting 'lr_schedul'"):
        run_eas(_config("controller.rllib={lr_schedul: 1}"), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # no run folder left to block the corrected run


def test_the_demo_prints_the_best_child_and_reruns(ray_local, tmp_path, capsys):
    from rayneas.demo import DEMO_EAS, demo_eas

    cfg = _config(f"name={DEMO_EAS.name}", "budget.networks=2")
    summary = demo_eas(tmp_path, cfg)
    out = capsys.readouterr().out
    best = summary["best"]
    assert (f"best child {best['arch']}: val_acc {best['val_acc']:.4f}, test_acc {best['test_acc']:.4f}, "
            f"{best['params']} parameters (iteration 1)") in out
    assert demo_eas(tmp_path, cfg)["best"] == best  # a second `make demo` re-reads the finished run
    assert "continuing the earlier demo run" in capsys.readouterr().out


def test_the_readme_custom_controller_runs_by_class_path(ray_local, tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n# my_controller.py", 1)[1].split("```", 1)[0]
    (tmp_path / "my_controller.py").write_text("# my_controller.py" + code)
    monkeypatch.syspath_prepend(str(tmp_path))  # what PYTHONPATH=. does for the README's command
    run_eas(_config("controller.module=my_controller:MLPWiderController", "reward.mode=surrogate",
                    "budget.networks=2"), tmp_path / "custom")
    algo = Algorithm.from_checkpoint(str(tmp_path / "custom" / "checkpoint"))
    try:
        weights = algo.get_module().state_dict()
    finally:
        algo.stop()
    assert type(algo.get_module()).__name__ == "MLPWiderController" and "pi.wider.0.weight" in weights


def test_the_search_quality_study_pairs_the_methods_test_accuracy_per_seed(ray_local, tmp_path, capsys):
    """scripts/eas_search_quality.py at a toy size: both methods run per seed and are compared on test accuracy."""
    import runpy

    study = runpy.run_path(str(CONFIG.parents[1] / "scripts" / "eas_search_quality.py"), run_name="study")
    results = study["main"](["--seeds", "0", "--budget", "2", "--runners", "0", "--out", str(tmp_path),
                             *[a for o in SMALL[:3] for a in ("--set", o)]])
    out = capsys.readouterr().out
    assert set(results) == {"reinforce", "random"} and all(set(r) == {0} for r in results.values())
    gap = results["reinforce"][0]["best"]["test_acc"] - results["random"][0]["best"]["test_acc"]
    assert "| 0 | " in out and f"{gap:+.4f} |" in out and f"{gap:+.4f} ± 0.0000 (> 0 on " in out
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["random"]["0"]["best"]["test_acc"] == results["random"][0]["best"]["test_acc"]
    assert saved["random"]["0"]["algorithm"] == "random" and len(saved["reinforce"]["0"]["curve"]) == 1
    assert (tmp_path / "reward.png").stat().st_size > 0
    children = load_networks(tmp_path / "reinforce_seed0")
    mean_params = sum(r["params"] for r in children) / len(children)
    assert results["reinforce"][0]["params_curve"] == [mean_params]
    spread = float(np.std([r["val_acc"] for r in children], ddof=1))
    assert results["reinforce"][0]["val_acc_spread"] == pytest.approx(spread)
    assert results["reinforce"][0]["worst_val_acc"] == min(r["val_acc"] for r in children)
    assert "| Spearman(params, val_acc) |" in out and f"| reinforce | {mean_params:.0f} ± 0 " in out
