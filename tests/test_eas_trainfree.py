"""The training-free EAS rewards (reward.mode indicators / hybrid): real env, real indicators, tiny reference pools."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rayneas_envs
from rayneas.cli import main
from rayneas.config import ConfigError, from_dict, load_run
from rayneas.eas import trainfree
from rayneas.eas.config import DEFAULT_INDICATORS, EASEnvConfig
from rayneas.eas.evaluator import ChildEvaluator
from rayneas.eas.netpool import call
from rayneas.eas.reward import tan_reward
from rayneas.eas.search import run_eas, trained_network
from rayneas.eas.train import accuracy
from rayneas.indicators import aggregate
from rayneas.indicators import az_nas as az_nas_module
from rayneas.indicators import measure
from test_eas_env import EPISODE, play

ROOT = Path(__file__).resolve().parents[1]
# A reference pool of 4 keeps each test's first scoring to a second; the children train 1 epoch.
INDICATORS = {"reward": {"mode": "indicators", "reference_size": 4}}
START, CHILD = {"epochs": 1}, {"finetune_epochs": 1}


@pytest.fixture(autouse=True)
def fresh_references(monkeypatch):
    """Every test starts with an empty per-process reference cache, as a new env runner does."""
    monkeypatch.setattr(trainfree, "REFERENCES", {})


def make(path: Path, **settings) -> rayneas_envs.EASEnv:
    return gym.make(rayneas_envs.EAS_ENV_ID, netpool=str(path), start=START, child=CHILD, **settings).unwrapped


def hybrid(train_quantile: float) -> dict:
    return {"reward": {"mode": "hybrid", "reference_size": 4, "train_quantile": train_quantile}}


def test_check_env_passes_in_indicators_mode_and_nothing_is_trained(tmp_path):
    env = make(tmp_path / "netpool.parquet", **INDICATORS)
    check_env(env, skip_render_check=True)
    archs, total, info, _ = play(env, 3)
    assert info["reward_mode"] == "indicators" and info["train_seconds"] == 0 and math.isnan(info["val_accuracy"])
    assert 0 <= total <= tan_reward(1.0)
    assert env.reset(seed=0)[1]["start_val_accuracy"] is None  # not even the start net is trained
    assert env.evaluator.cfg.reward.indicators == list(DEFAULT_INDICATORS)


def test_rewards_depend_on_the_seed_and_actions_only_not_on_order_cache_or_process(tmp_path, monkeypatch):
    env = make(tmp_path / "a.parquet", **INDICATORS)
    first = [play(env, s)[:2] for s in (1, 2)]
    monkeypatch.setattr(trainfree, "REFERENCES", {})  # a fresh process-level cache, a fresh NetPool, other order
    other = make(tmp_path / "b.parquet", **INDICATORS)
    second = [play(other, s)[:2] for s in (2, 1)]
    assert first == second[::-1] and first[0][1] != first[1][1]
    settings = {**INDICATORS, "child": CHILD, "netpool": str(tmp_path / "c.parquet")}
    out = subprocess.run([sys.executable, "-c", EPISODE, json.dumps(settings)], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == list(play(env, 7)[:2])


def test_the_reference_pool_is_the_runs_not_the_episodes_or_runners(tmp_path, monkeypatch):
    cfg = from_dict(EASEnvConfig, {**INDICATORS, "netpool": str(tmp_path / "netpool.parquet")})
    evaluator = ChildEvaluator(cfg)
    archs = trainfree.reference_archs(cfg, evaluator.space, evaluator.data)
    assert len(archs) == 4 and len(set(archs)) > 1 and all(a != cfg.space.start_net for a in archs)
    # RLlib seeds each runner's episodes from its worker index: the reference never reads them
    caches = []
    for seed in (5, 11):
        monkeypatch.setattr(trainfree, "REFERENCES", {})
        play(make(tmp_path / f"{seed}.parquet", **INDICATORS), seed)
        caches.append(trainfree.REFERENCES)
    assert caches[0] == caches[1] and len(caches[0]) == 1
    assert list(caches[0].values())[0] == tuple(evaluator.quantile.scorer(a) for a in archs)
    reseeded = dataclasses.replace(cfg, seed=1)
    assert trainfree.reference_archs(reseeded, evaluator.space, evaluator.data) != archs


def test_hybrid_fine_tunes_only_children_at_or_above_the_quantile(tmp_path):
    probe = make(tmp_path / "probe.parquet", **INDICATORS)
    quantiles = {s: probe.evaluator.quantile(play(probe, s)[0][-1]) for s in range(4)}
    seed = next(s for s, q in quantiles.items() if 0 < q < 1)  # a child some of the reference beats
    arch, q = play(probe, seed)[0][-1], quantiles[seed]
    above = make(tmp_path / "above.parquet", **hybrid(q))
    _, reward, info, _ = play(above, seed)
    assert info["train_seconds"] > 0 and reward == tan_reward(info["val_accuracy"])
    record = call(above.evaluator.pool, "get", arch, above.evaluator.setting("child"))
    assert record.epochs == CHILD["finetune_epochs"]
    below = make(tmp_path / "below.parquet", **hybrid(q + 0.1))
    _, reward, info, _ = play(below, seed)
    inherited = accuracy(below.net, below.evaluator.data.x_val, below.evaluator.data.y_val)  # the child, untrained
    assert info["train_seconds"] == 0 and not info["netpool_hit"]
    assert info["val_accuracy"] == inherited and reward == tan_reward(inherited)
    assert call(below.evaluator.pool, "get", arch, below.evaluator.setting("child")).epochs == 0


def test_a_degenerate_network_gets_its_worst_value_and_ranks_last(tmp_path):
    cfg = from_dict(EASEnvConfig, {"reward": {"mode": "indicators", "indicators": ["naswot", "az_expressivity"]}})
    evaluator = ChildEvaluator(cfg)
    # no EAS network is degenerate at init (every one has a path from input to output), but one that cannot
    # tell its inputs apart is: identical images stand in for it
    blind = dataclasses.replace(evaluator.data, x_train=torch.zeros_like(evaluator.data.x_train))
    arch = cfg.space.start_net
    worst = trainfree.IndicatorScorer(cfg, evaluator.space, blind)(arch)
    assert worst == {"naswot": -math.inf, "az_expressivity": -math.inf}
    reference = [evaluator.quantile.scorer(a) for a in trainfree.reference_archs(cfg, evaluator.space, evaluator.data)[:4]]
    pool = [*reference, worst]
    values = aggregate("log_rank", {n: [row[n] for row in pool] for n in worst}, nonfinite="worst")
    assert trainfree.quantile("log_rank", values) == 0.0


def test_the_scorer_takes_the_az_set_from_one_pass_over_the_eas_feature_maps(monkeypatch):
    cfg = from_dict(EASEnvConfig, {"reward": {"mode": "indicators"}})
    evaluator = ChildEvaluator(cfg)
    scorer = trainfree.IndicatorScorer(cfg, evaluator.space, evaluator.data)
    arch = trainfree.reference_archs(cfg, evaluator.space, evaluator.data)[0]
    net = scorer._net(arch)
    features = evaluator.space.feature_modules(net)
    with trainfree.one_thread():
        separate = {name: measure(name, net, scorer.inputs(name), arch,
                                  **({"features": features} if name.startswith("az_") else {}))
                    for name in scorer.names}
    calls = []
    forward = az_nas_module._feature_maps
    monkeypatch.setattr(az_nas_module, "_feature_maps", lambda *args: calls.append(args[2]) or forward(*args))
    assert scorer(arch) == separate
    assert len(calls) == 1 and len(calls[0]) == len(features)  # one forward, over the EAS net's own maps


@pytest.mark.parametrize("reward, message", [
    ({"indicators": ["naswot"]}, r"reward\.indicators is read only in reward\.mode indicators or hybrid, not train; "
                                 r"remove reward\.indicators or set reward\.mode: indicators"),
    ({"mode": "surrogate", "indicators": ["naswot"]}, r"not surrogate"),
    ({"mode": "indicators", "indicators": ["nope"]}, r"reward\.indicators \['nope'\] must list distinct registered "
                                                     r"indicators \(at least one\); unknown: \['nope'\]; allowed: "),
    ({"mode": "hybrid", "indicators": []}, r"reward\.indicators \[\] must list distinct registered indicators"),
    ({"mode": "indicators", "indicators": ["linear_regions"]}, r"need TE-NAS's thin network or labels; remove them"),
    ({"mode": "hybrid", "train_quantile": 0}, r"reward\.train_quantile: 0\.0 is out of range; it must be > 0"),
    ({"mode": "hybrid", "train_quantile": 1.5}, r"reward\.train_quantile: 1\.5 is out of range; it must be <= 1"),
    ({"mode": "indicators", "reference_size": 1}, r"reward\.reference_size: 1 is out of range; it must be >= 2"),
])
def test_bad_reward_settings_name_the_key_and_the_fix(reward, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(EASEnvConfig, {"reward": reward})


def test_az_indicators_need_two_feature_maps_in_the_start_net():
    cfg = from_dict(EASEnvConfig, {"reward": {"mode": "indicators"}, "space": {"start_net": "conv-4-3 fc-8"}})
    with pytest.raises(ConfigError, match=r"reward\.indicators \['az_expressivity', 'az_progressivity', "
                                          r"'az_trainability'\] compare consecutive feature maps, and the start net "
                                          r"'conv-4-3 fc-8' has 1 .*remove them from reward\.indicators"):
        ChildEvaluator(cfg)


def test_every_reward_setting_has_its_own_netpool_setting():
    variants = [{"mode": "train"}, {"mode": "indicators"}, {"mode": "hybrid"}, {"mode": "hybrid", "train_quantile": 0.5},
                {"mode": "indicators", "aggregate": "rank_sum"}, {"mode": "indicators", "reference_size": 8},
                {"mode": "indicators", "indicators": ["naswot", "flops"]}]
    settings = [ChildEvaluator(from_dict(EASEnvConfig, {"reward": r})).setting("child") for r in variants]
    assert len(set(settings)) == len(variants)
    assert json.loads(settings[1])["reward"] == {"mode": "indicators", "indicators": list(DEFAULT_INDICATORS),
                                                 "aggregate": "log_rank", "reference_size": 32}
    start = {ChildEvaluator(from_dict(EASEnvConfig, {"reward": r})).setting("start") for r in variants}
    assert len(start) == 1  # the start net is trained alike in every mode that trains it


def test_an_indicators_search_runs_end_to_end_and_picks_its_best_by_reward(ray_local, tmp_path, capsys):
    config = ROOT / "configs" / "eas_digits_trainfree.yaml"
    small = ["controller.networks_per_iteration=2", "controller.num_env_runners=0", "budget.networks=4",
             "reward.reference_size=4"]
    assert main(["run", str(config), "--runs-dir", str(tmp_path), *[a for o in small for a in ("--set", o)]]) == 0
    cfg, run = load_run(config, small)[1], tmp_path / "eas_digits_trainfree"
    result = json.loads((run / "result.json").read_text())
    rows = pq.read_table(run / "networks.parquet").to_pylist()
    best = max(rows, key=lambda r: r["reward"])
    # the progress bar shows what was measured: the best reward, not a NaN val_acc
    progress = capsys.readouterr().err
    assert f"iteration 2, best reward {best['reward']:.3f}" in progress and "val_acc nan" not in progress
    assert (result["reward_mode"], result["networks_evaluated"]) == ("indicators", 4)
    assert result["best"]["arch"] == best["arch"] and result["best"]["reward"] == best["reward"]
    assert result["best"]["val_acc"] is None and result["best"]["test_acc"] is None
    assert all(math.isnan(r["val_acc"]) and r["train_seconds"] == 0 for r in rows)
    np.testing.assert_array_less(-1e-9, [r["reward"] + r["invalid_actions"] for r in rows])
    with pytest.raises(FileNotFoundError, match="reward.mode: surrogate or indicators"):
        trained_network(cfg, run, best["arch"])
    assert main(["export", str(run)]) == 2
    assert "reward.mode: indicators, which trains no child, so there are no weights to export" in capsys.readouterr().err
    (run / "reward_curve.png").unlink()
    assert main(["plot", str(run)]) == 0 and (run / "reward_curve.png").stat().st_size > 0


def test_two_env_runners_reward_every_child_as_this_process_does(ray_local, tmp_path):
    cfg = load_run(ROOT / "configs" / "eas_digits_trainfree.yaml", [
        "controller.networks_per_iteration=2", "controller.num_env_runners=2", "budget.networks=2",
        "reward.reference_size=4"])[1]
    run_eas(cfg, tmp_path / "run")
    here = ChildEvaluator(from_dict(EASEnvConfig, cfg.env_config(tmp_path / "here.parquet")))
    rows = pq.read_table(tmp_path / "run" / "networks.parquet").to_pylist()
    assert len(rows) == 2 and all(
        r["reward"] == pytest.approx(tan_reward(here.quantile(r["arch"])) - r["invalid_actions"], rel=1e-12)
        for r in rows)


def test_a_hybrid_search_measures_and_exports_its_most_accurate_child(ray_local, tmp_path):
    cfg = load_run(ROOT / "configs" / "eas_digits_trainfree.yaml", [
        "controller.networks_per_iteration=2", "controller.num_env_runners=0", "budget.networks=2",
        "reward.mode=hybrid", "reward.reference_size=4", "start.epochs=1", "child.finetune_epochs=1"])[1]
    result = run_eas(cfg, tmp_path / "run")
    rows = pq.read_table(tmp_path / "run" / "networks.parquet").to_pylist()
    best = max(rows, key=lambda r: r["val_acc"])
    assert result["best"]["arch"] == best["arch"] and 0 < result["best"]["test_acc"] <= 1
    assert all(r["reward"] == pytest.approx(tan_reward(r["val_acc"]) - r["invalid_actions"]) for r in rows)
    assert main(["export", str(tmp_path / "run")]) == 0  # trained or not, every child kept its weights
