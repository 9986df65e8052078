"""rayneas/EAS-v0 in the DenseNet space (space.kind: densenet): layout, masks, function preservation, a search."""
from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from ray.rllib.core import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import rayneas_envs
from rayneas.cli import main
from rayneas.config import ConfigError, from_dict, load_run, to_dict
from rayneas.data import digits_split
from rayneas.eas.config import EASConfig, EASEnvConfig
from rayneas.eas.encoding import blocks, deeper_choice, wider_choice_error
from rayneas.eas.random_policy import random_action
from rayneas.eas.record import CHECKPOINT, CONFIG, NETWORK_SCHEMA, EASRunStore
from rayneas.eas.reward import surrogate_accuracy, tan_reward
from rayneas.eas.search import run_eas
from rayneas.eas.space import DenseNetSpace, DenseNetSpaceConfig, PlainSpaceConfig
from rayneas.eas.train import accuracy
from rayneas.rl.modules import EASController
from rayneas.spaces.common import count_parameters
from rayneas.spaces.densenet import DEMO_START, GROWTH_RATES, DenseNet, parse
from rayneas.runs.export import load_exported

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DENSE = {"space": {"kind": "densenet", "growth_rates": [4, 6, 8, 10, 12]}}
SURROGATE = {**DENSE, "reward": {"mode": "surrogate"}}
FAST = {**DENSE, "start": {"epochs": 2}, "child": {"finetune_epochs": 1}}


def make(tmp_path, **settings) -> rayneas_envs.EASEnv:
    return gym.make(rayneas_envs.EAS_ENV_ID, netpool=str(tmp_path / "netpool.parquet"), **settings).unwrapped


def zeros(env) -> dict:
    return {"wider": np.zeros(env.max_layers, np.int64), "deeper": np.zeros(3, np.int64)}


def test_check_env_passes_and_the_layout_is_the_plain_spaces_plus_a_kernel_mask(tmp_path):
    for settings in (FAST, SURROGATE):
        env = make(tmp_path, **settings)
        check_env(env, skip_render_check=True)
    assert env.action_space["wider"].nvec.tolist() == [2] * 50
    assert env.action_space["deeper"].nvec.tolist() == [5, 10, 3]
    plain = make(tmp_path, reward={"mode": "surrogate"})
    assert set(env.observation_space) == set(plain.observation_space) | {"deeper_kernel_mask"}
    assert env.observation_space["deeper_kernel_mask"].shape == (5, 10, 3)


def test_the_start_state_encodes_the_spec_and_its_masks(tmp_path):
    env = make(tmp_path, **SURROGATE)
    obs, info = env.reset(seed=0)
    assert info["arch"] == DEMO_START and info["params"] == count_parameters(DenseNet(DEMO_START, 1, 10))
    vocab = env.space.vocabulary()
    assert len(vocab) == 5 * 3 + 3 and vocab[-3:] == ("stem-8-3", "trans-6", "trans-5")
    assert [vocab[i - 1] for i in obs["arch"][:obs["length"]]] == DEMO_START.split() and not obs["arch"][6:].any()
    assert obs["wider_mask"][:6].tolist() == [0, 1, 0, 1, 0, 1] and not obs["wider_mask"][6:].any()
    assert blocks(parse(DEMO_START), DenseNetSpace) == [[1], [3], [5]]
    assert obs["deeper_block_mask"].tolist() == [1, 1, 1, 0, 0]
    assert obs["deeper_position_mask"].sum(axis=1).tolist() == [1, 1, 1, 0, 0]
    kernels = obs["deeper_kernel_mask"]
    assert kernels[:3, 0].tolist() == [[0, 1, 1]] * 3 and kernels.sum() == 6  # never smaller than the copied 3x3


@pytest.mark.parametrize("text, expected", [
    ("stem-8-3 dense-4-3 dense-4-5 trans-6 dense-4-1", [[1, 2], [4]]),
    ("stem-8-3 dense-4-3", [[1]]),
])
def test_blocks_are_the_dense_blocks(text, expected):
    assert DenseNetSpace.blocks(parse(text)) == expected


def test_growth_steps_through_the_list_and_only_dense_layers_grow():
    space = DenseNetSpace(from_dict(EASEnvConfig, DENSE).space)
    stem, dense, trans = parse("stem-8-3 dense-5-3 trans-6 dense-12-3")[:3]
    assert (space.next_width(dense), space.next_width(parse(DEMO_START)[1])) == (6, 6)
    assert space.next_width(parse("stem-8-3 dense-12-3")[1]) is None  # the last growth rate
    assert space.next_width(stem) is None and space.next_width(trans) is None
    assert space.kernels_after(parse("stem-8-3 dense-4-5")[1]) == (5,)


def test_random_valid_actions_never_raise_with_invalid_action_error(tmp_path):
    env = make(tmp_path, **SURROGATE, episode={"invalid_action": "error", "wider_steps": 3, "deeper_steps": 6})
    rng = np.random.default_rng(0)
    for seed in range(15):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, reward, done, _, info = env.step(random_action(obs, rng))
        assert "invalid_action" not in info and info["arch"] != DEMO_START
        spec = parse(info["arch"])
        assert len(spec) == 6 + 6 and reward == pytest.approx(tan_reward(surrogate_accuracy(spec, ("dense",))))


def test_the_controller_never_samples_a_masked_kernel(tmp_path):
    env = make(tmp_path, **SURROGATE, episode={"wider_steps": 1, "deeper_steps": 8})
    torch.manual_seed(0)
    module = RLModuleSpec(module_class=EASController, observation_space=env.observation_space,
                          action_space=env.action_space).build()
    observations, specs = [], []
    rng = np.random.default_rng(1)
    for seed in range(6):  # deeper steps with kernels 3 and 5 in the network
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            observations.append(obs)
            specs.append(env.space.layers(env.net))
            obs, _, done, _, _ = env.step(random_action(obs, rng))
    batch = {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}}
    for _ in range(10):
        with torch.no_grad():
            actions = module.forward_exploration(batch)[Columns.ACTIONS]
        for i, (o, spec) in enumerate(zip(observations, specs)):
            if o["phase"] == 0:
                assert wider_choice_error(spec, env.space, actions["wider"][i].numpy()) is None
            else:
                choice = deeper_choice(spec, env.max_layers, *actions["deeper"][i].tolist(), env.space)
                assert not isinstance(choice, str), choice


@pytest.mark.parametrize("mode", ["error", "noop"])
def test_a_kernel_smaller_than_the_copied_layers_is_masked_and_refused(tmp_path, mode):
    env = make(tmp_path, **DENSE, reward={"mode": "surrogate", "invalid_penalty": -0.5},
               episode={"wider_steps": 0, "deeper_steps": 2, "invalid_action": mode})
    env.reset(seed=0)
    bad = {**zeros(env), "deeper": np.array([1, 0, 0])}  # kernel 1 after dense-4-3
    problem = ("step 0 (deeper): invalid action: deepen block 1 position 0: kernel 1 for a new layer after "
               "'dense-4-3', which allows only 3, 5")
    if mode == "error":
        with pytest.raises(ValueError, match=re.escape(problem)):
            env.step(bad)
        assert env.space.arch_string(env.net) == DEMO_START
        return
    _, reward, _, _, info = env.step(bad)
    assert (reward, info["invalid_action"], info["arch"]) == (-0.5, problem, DEMO_START)
    _, _, done, _, info = env.step({**zeros(env), "deeper": np.array([1, 0, 2])})
    assert done and info["arch"] == "stem-8-3 dense-4-3 trans-6 dense-4-3 dense-4-5 trans-5 dense-4-3"


def test_a_child_keeps_its_parents_function_before_fine_tuning(tmp_path):
    env = make(tmp_path, **DENSE, noise={"wider": 0.0, "deeper": 0.0}, start={"epochs": 3}, child={"finetune_epochs": 0})
    x = env.evaluator.data.x_val
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        start = info["start_val_accuracy"]
        with torch.no_grad():
            before = env.net.eval()(x)
        done = False
        while not done:
            obs, _, done, _, info = env.step(random_action(obs, rng))
        assert len(parse(info["arch"])) == 6 + 5
        with torch.no_grad():
            after = env.net.eval()(x)
        assert torch.allclose(after, before, atol=1e-4), (after - before).abs().max()
        assert start > 0.3 and abs(info["val_accuracy"] - start) < 1e-6  # scored with no training at all


def test_the_space_section_picks_the_space_by_kind():
    plain, dense = from_dict(EASEnvConfig, {}).space, from_dict(EASEnvConfig, {"space": {"kind": "densenet"}}).space
    assert isinstance(plain, PlainSpaceConfig) and isinstance(dense, DenseNetSpaceConfig)
    assert (plain.kind, dense.kind, dense.start_net, dense.growth_rates) == (
        "plain", "densenet", DEMO_START, list(GROWTH_RATES))
    assert to_dict(dense)["kind"] == "densenet"
    for space, message in [
        ({"kind": "resnet"}, "space.kind: 'resnet' is not allowed; choose one of 'plain', 'densenet'"),
        ({"kind": "densenet", "conv_widths": [4]}, "space: unknown key 'conv_widths'"),
        ({"kind": "densenet", "start_net": "stem-8-3 trans-4 dense-4-3"},
         "space: start_net: 'stem-8-3 trans-4 dense-4-3': layer 0 'stem-8-3' must be followed by a dense layer"),
        ({"kind": "densenet", "growth_rates": [8, 4]},
         "space: growth_rates: growth widths must be strictly increasing"),
    ]:
        with pytest.raises(ConfigError) as caught:
            from_dict(EASEnvConfig, {"space": space})
        assert message in str(caught.value)


def test_a_start_net_off_the_growth_list_or_with_too_many_blocks_fails_when_the_env_is_made(tmp_path):
    with pytest.raises(ConfigError, match=r"space.start_net: layer 1 'dense-5-3' is not in the vocabulary of the "
                                          r"growth list \[4, 6\]"):
        make(tmp_path, space={"kind": "densenet", "start_net": "stem-8-3 dense-5-3", "growth_rates": [4, 6]})
    with pytest.raises(ConfigError, match=r"has 6 blocks \(dense blocks between transitions\).*remove transitions"):
        make(tmp_path, space={"kind": "densenet", "start_net": "stem-8-3 dense-4-3" + " trans-4 dense-4-3" * 5})


def test_the_yaml_configs_are_what_the_env_takes(tmp_path):
    _, digits = load_run(CONFIGS / "eas_densenet_digits.yaml")
    env = make(tmp_path, **{k: v for k, v in digits.env_config(tmp_path / "netpool.parquet").items()
                            if k not in ("netpool", "episode_log")})
    assert env.space.kind == "densenet" and env.cfg.space == digits.space and digits.budget.networks == 40
    _, cifar = load_run(CONFIGS / "eas_densenet_cifar10.yaml")
    assert (cifar.space.kind, cifar.space.start_net, cifar.space.growth_rates) == ("densenet", DEMO_START,
                                                                                  list(GROWTH_RATES))
    assert (cifar.episode.wider_steps, cifar.episode.deeper_steps, cifar.dataset.val_fraction) == (10, 5, 0.1)
    assert (cifar.child.finetune_epochs, cifar.child.finetune_lr, cifar.noise.wider, cifar.noise.deeper) == (
        20, 0.02, 0.01, 0.01)
    assert (cifar.start.epochs, cifar.start.lr) == (300, 0.1)  # the EAS code's run_dense_net.py


def test_a_run_saved_before_space_kind_existed_resumes(tmp_path):
    cfg = from_dict(EASConfig, {})
    saved = to_dict(cfg)
    del saved["space"]["kind"]
    (tmp_path / CHECKPOINT).mkdir()
    (tmp_path / CONFIG).write_text(json.dumps(saved))
    (tmp_path / CHECKPOINT / "search.json").write_text(json.dumps({"iterations": 1, "elapsed_s": 2.0}))
    pq.write_table(pa.Table.from_pylist([], schema=NETWORK_SCHEMA), tmp_path / CHECKPOINT / "networks.parquet")
    assert EASRunStore(tmp_path).start(cfg, resume=True).iterations == 1


SMALL = ["start.epochs=1", "child.finetune_epochs=1", "controller.networks_per_iteration=2",
         "controller.num_env_runners=0", "budget.networks=4"]


def test_a_densenet_search_runs_and_its_export_loads_with_the_trained_weights(ray_local, tmp_path):
    _, cfg = load_run(CONFIGS / "eas_densenet_digits.yaml", SMALL)
    result = run_eas(cfg, tmp_path / "run")
    assert (result["space"], result["algorithm"], result["networks_evaluated"]) == ("densenet", "reinforce", 4)
    rows = pq.read_table(tmp_path / "run" / "networks.parquet").to_pylist()
    assert all(r["parent"] == DEMO_START and parse(r["arch"]) for r in rows)
    assert main(["export", str(tmp_path / "run")]) == 0
    info = json.loads((tmp_path / "run" / "export" / "genotype.json").read_text())
    assert (info["space"], info["builder"], info["genotype"]) == (
        "densenet", "rayneas.spaces.densenet:DenseNet", result["best"]["arch"])
    net = load_exported(tmp_path / "run" / "export").eval()
    assert isinstance(net, DenseNet) and net.spec_string == result["best"]["arch"]
    split = digits_split(0)
    assert accuracy(net, split.x_test, split.y_test) == result["best"]["test_acc"]  # the trained weights
    assert count_parameters(net) == result["best"]["params"]


def test_rllibs_default_module_runs_in_the_densenet_space(ray_local, tmp_path):
    overrides = ["controller.algorithm=ppo", "controller.module=default", "reward.mode=surrogate", "budget.networks=2"]
    _, cfg = load_run(CONFIGS / "eas_densenet_digits.yaml", [*SMALL, *overrides])
    result = run_eas(cfg, tmp_path / "default")
    assert (result["space"], result["module"], result["networks_evaluated"]) == ("densenet", "default", 2)
