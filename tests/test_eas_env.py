"""rayneas/EAS-v0: spaces, masks, invalid actions, weight inheritance, determinism, NetPool reuse, CIFAR-10+."""
from __future__ import annotations

import json
import math
import pickle
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rayneas_envs
from rayneas.config import ConfigError, from_dict, load_run
from rayneas.eas.config import EASEnvConfig
from rayneas.eas.data import cifar_plus
from rayneas.eas.encoding import blocks
from rayneas.eas.evaluator import load_state
from rayneas.eas.netpool import NetPoolStore
from rayneas.eas.random_policy import random_action
from rayneas.eas.reward import surrogate_accuracy, tan_reward
from rayneas.eas.train import accuracy
from rayneas.spaces.plain import DEMO_START, PlainCNN, parse

FAST = {"start": {"epochs": 2}, "child": {"finetune_epochs": 1}}
SURROGATE = {"reward": {"mode": "surrogate"}}


def make(tmp_path, **settings) -> rayneas_envs.EASEnv:
    """A fresh env with its own NetPool file, so no test sees another's records."""
    return gym.make(rayneas_envs.EAS_ENV_ID, netpool=str(tmp_path / "netpool.parquet"), **settings).unwrapped


def play(env, seed: int) -> tuple[list[str], float, dict, dict]:
    """One random valid episode: (architecture after each step, return, final info, weights before the last step)."""
    obs, info = env.reset(seed=seed)
    rng, archs, total = np.random.default_rng(seed), [info["arch"]], 0.0
    for step in range(env.total_steps):
        if step == env.total_steps - 1:  # the last step scores (and may fine-tune): keep the weights it starts from
            weights = {k: v.clone() for k, v in env.net.state_dict().items()}
        obs, reward, done, _, info = env.step(random_action(obs, rng))
        archs.append(info["arch"])
        total += reward
    return archs, total, info, weights


def test_check_env_passes_on_the_default_and_the_surrogate_env(tmp_path):
    for settings in (FAST, SURROGATE):
        env = make(tmp_path, **settings)
        check_env(env, skip_render_check=True)
        assert env.action_space["wider"].nvec.tolist() == [2] * 50
        assert env.action_space["deeper"].nvec.tolist() == [5, 10, 3]


def test_the_start_state_encodes_the_net_and_its_masks(tmp_path):
    env = make(tmp_path, **SURROGATE)
    obs, info = env.reset(seed=0)
    assert info["arch"] == DEMO_START and info["reward_mode"] == "surrogate" and info["params"] == 630
    vocab = env.schedule.vocabulary()
    assert [vocab[i - 1] for i in obs["arch"][:obs["length"]]] == DEMO_START.split() and not obs["arch"][9:].any()
    assert obs["wider_mask"][:9].tolist() == [1, 0, 1, 0, 1, 0, 1, 1, 0] and not obs["wider_mask"][9:].any()
    assert blocks(parse(DEMO_START)) == [[0], [2], [4], [6], [7]]
    assert obs["deeper_block_mask"].tolist() == [1] * 5
    assert obs["deeper_position_mask"].sum(axis=1).tolist() == [1] * 5 and obs["deeper_position_mask"][:, 0].all()
    # after a conv every kernel is allowed; after the fc (block 4) none: the new fc layer has no kernel
    assert obs["deeper_kernel_mask"][:4, 0].all() and not obs["deeper_kernel_mask"][4].any()
    assert obs["deeper_kernel_mask"].sum() == 4 * 3
    assert (obs["phase"], obs["step"]) == (0, 0)


@pytest.mark.parametrize("text, expected", [
    ("conv-4-3 conv-4-3 pool conv-4-3 fc-8 fc-8", [[0, 1], [3], [4, 5]]),
    ("conv-4-3 pool pool conv-4-3 pool", [[0], [3]]),  # no empty blocks: nothing to deepen there
    ("conv-4-3 fc-8", [[0], [1]]),
])
def test_blocks_are_conv_runs_between_pools_then_the_fc_part(text, expected):
    assert blocks(parse(text)) == expected


def test_bad_settings_fail_at_construction_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="reward: unknown key 'mod'"):
        make(tmp_path, reward={"mod": "train"})
    with pytest.raises(ConfigError, match=r"space.start_net: layer 0 'conv-5-3' is not in the vocabulary"):
        make(tmp_path, space={"start_net": "conv-5-3 pool fc-8", "conv_widths": [4, 8], "fc_widths": [8]})
    with pytest.raises(ConfigError, match="has 6 blocks"):
        make(tmp_path, space={"start_net": "conv-4-3 " + "pool conv-4-3 " * 5, "conv_widths": [4], "fc_widths": [8]})
    with pytest.raises(ConfigError, match="not both"):
        rayneas_envs.EASEnv(from_dict(EASEnvConfig, {}), seed=1)
    with pytest.raises(ConfigError, match=r"config must be an EASEnvConfig, got dict; .* EASEnv\(\*\*settings\)"):
        rayneas_envs.EASEnv({"seed": 1})


NO_WIDER = {"wider": np.zeros(9, dtype=np.int64), "deeper": np.zeros(3, dtype=np.int64)}
POOL = {"wider": np.eye(9, dtype=np.int64)[3], "deeper": np.zeros(3, dtype=np.int64)}  # layer 3 is a pool


def deeper(block: int, position: int, kernel: int = 1) -> dict:
    return {"wider": np.zeros(9, dtype=np.int64), "deeper": np.array([block, position, kernel])}


# (valid actions first, the masked action, what is wrong with it); 1 wider + 2 deeper steps, max_layers 9
MASKED = {
    "wider on a pool layer": ([], POOL, "step 0 (wider): invalid action: widen layer 3: it is a pool layer"),
    "position beyond the block": ([NO_WIDER], deeper(0, 3), "step 1 (deeper): invalid action: deepen block 0 "
                                  "position 3: the block has only 1 layers"),
    "deeper past max_layers": ([NO_WIDER, deeper(4, 0)], deeper(0, 0), "step 2 (deeper): invalid action: deepen: "
                               "the network already has 9 layers, the maximum (max_layers=9)"),
}


@pytest.mark.parametrize("case", MASKED)
@pytest.mark.parametrize("mode", ["error", "noop"])
def test_a_masked_action_raises_or_is_a_noop_with_the_penalty(tmp_path, case, mode):
    env = make(tmp_path, episode={"wider_steps": 1, "deeper_steps": 2, "invalid_action": mode},
               space={"max_layers": 9}, reward={"mode": "surrogate", "invalid_penalty": -0.5})
    obs, _ = env.reset(seed=0)
    before, bad, problem = MASKED[case]
    for action in before:
        obs, _, _, _, info = env.step(action)
        assert "invalid_action" not in info
    arch = env.net.arch_string
    if mode == "error":
        with pytest.raises(ValueError, match=re.escape(problem) + "; choose only what the observation's masks allow"):
            env.step(bad)
        assert env.net.arch_string == arch
        return
    obs, reward, done, _, info = env.step(bad)
    if bad is POOL:  # noop ignores a wider step's 1s on masked slots: nothing else was chosen, so no change
        assert info["arch"] == arch and "invalid_action" not in info and reward == 0.0
        return
    assert info["arch"] == arch and info["invalid_action"] == problem
    final = tan_reward(surrogate_accuracy(parse(arch))) if done else 0.0  # the last step still scores the child
    assert reward == pytest.approx(-0.5 + final)


def test_noop_widens_the_unmasked_layers_of_a_step_that_also_picks_masked_slots(tmp_path):
    """A mask-blind policy (module: default) puts 1s on pool layers and empty slots; the EAS code masks those
    decisions out, so the step still widens every layer it may, with no penalty."""
    env = make(tmp_path, episode={"wider_steps": 1, "deeper_steps": 1}, **SURROGATE)
    env.reset(seed=0)
    everything = {"wider": np.ones(env.max_layers, dtype=np.int64), "deeper": np.zeros(3, dtype=np.int64)}
    _, reward, _, _, info = env.step(everything)
    assert "invalid_action" not in info and reward == 0.0
    assert info["arch"] == "conv-8-3 pool conv-8-3 pool conv-8-3 pool conv-8-3 fc-16"
    strict = make(tmp_path, episode={"wider_steps": 1, "deeper_steps": 1, "invalid_action": "error"}, **SURROGATE)
    strict.reset(seed=0)
    with pytest.raises(ValueError, match=r"widen layer 1: it is a pool layer"):
        strict.step(everything)


def test_masks_close_deeper_choices_at_max_layers(tmp_path):
    env = make(tmp_path, episode={"wider_steps": 1, "deeper_steps": 2}, space={"max_layers": 9}, **SURROGATE)
    obs, _ = env.reset(seed=0)
    assert obs["deeper_block_mask"].all()
    env.step(NO_WIDER)
    obs, *_ = env.step(deeper(4, 0))  # an fc after the fc: 9 layers
    assert obs["length"] == 9 and not obs["deeper_block_mask"].any() and not obs["deeper_position_mask"].any()


def test_a_default_episode_keeps_the_start_nets_function(tmp_path):
    env = make(tmp_path, noise={"wider": 0.0, "deeper": 0.0}, child={"finetune_epochs": 0})
    for seed in range(3):
        archs, _, info, _ = play(env, seed)
        start = env.reset(seed=seed)[1]["start_val_accuracy"]
        assert len(parse(archs[-1])) == 8 + 5 and archs[-1] != DEMO_START
        assert start > 0.5 and abs(info["val_accuracy"] - start) < 1e-6  # scored with no training at all


def test_default_fine_tuning_lifts_children_above_the_start_net(tmp_path):
    # docs/eas_env.md measures 20 + 40 episodes; three keep the test fast
    env = make(tmp_path)
    start = env.reset(seed=0)[1]["start_val_accuracy"]
    children = [play(env, seed)[2]["val_accuracy"] for seed in range(3)]
    assert min(children) > start


EPISODE = """
import json, sys, gymnasium, numpy as np, torch
torch.set_num_threads(1)
from rayneas.eas.random_policy import random_action
env = gymnasium.make("rayneas_envs:rayneas/EAS-v0", **json.loads(sys.argv[1]))
obs, info = env.reset(seed=7)
rng, archs, total, done = np.random.default_rng(7), [info["arch"]], 0.0, False
while not done:
    obs, reward, done, _, info = env.step(random_action(obs, rng))
    archs.append(info["arch"])
    total += reward
print(json.dumps([archs, total]))
"""


def test_same_seed_and_actions_give_the_same_episode_here_and_in_a_fresh_process(tmp_path):
    settings = {**FAST, "netpool": str(tmp_path / "netpool.parquet")}
    env = gym.make("rayneas_envs:rayneas/EAS-v0", **settings).unwrapped
    first, second, other = play(env, 7), play(env, 7), play(env, 8)
    assert first[:2] == second[:2] and first[2]["netpool_hit"] is False and second[2]["netpool_hit"] is True
    assert all(torch.equal(first[3][k], second[3][k]) for k in first[3])  # the same replicas, noise and BN batches
    assert other[0] != first[0]  # another seed, other transforms
    settings["netpool"] = str(tmp_path / "other.parquet")  # the other process trains everything again
    out = subprocess.run([sys.executable, "-c", EPISODE, json.dumps(settings)], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [first[0], first[1]]


def test_the_netpool_trains_the_start_net_once_and_keeps_child_weights(tmp_path):
    path = tmp_path / "netpool.parquet"
    archs, reward, info, _ = play(make(tmp_path, **FAST), 0)
    env = make(tmp_path, **FAST)  # another env of the run: the start net comes from the pool
    assert env.reset(seed=0)[1]["start_val_accuracy"] == NetPoolStore(path).records()[0].accuracy
    assert play(env, 0)[2]["netpool_hit"] and play(env, 0)[1] == reward
    store = NetPoolStore(path)
    best = store.best(env.evaluator.setting("child"))
    assert best.arch == archs[-1] and best.parent == DEMO_START and best.accuracy == info["val_accuracy"]
    child = PlainCNN(best.arch, seed=99)
    load_state(child, store.weights(best.arch, best.setting))  # the exported child scores what the pool says
    assert accuracy(child, env.evaluator.data.x_val, env.evaluator.data.y_val) == best.accuracy
    other = make(tmp_path, start={"epochs": 2}, child={"finetune_epochs": 1, "finetune_lr": 0.001})
    assert not play(other, 0)[2]["netpool_hit"]  # another fine-tune setting never reuses a record
    assert len(NetPoolStore(path)) == 3  # one start net, two children
    longer = make(tmp_path, start={"epochs": 3}, child={"finetune_epochs": 1})
    assert not play(longer, 0)[2]["netpool_hit"]  # another start net: its own record, and its children theirs
    starts = [r for r in NetPoolStore(path).records() if r.parent is None]
    assert sorted(r.epochs for r in starts) == [2, 3] and len(NetPoolStore(path)) == 5


def test_the_yaml_config_is_what_the_env_takes(tmp_path):
    _, run = load_run(Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml")
    env = make(tmp_path, **{k: v for k, v in run.env_config(tmp_path / "netpool.parquet").items()
                            if k not in ("netpool", "episode_log")})
    assert env.cfg.space == from_dict(EASEnvConfig, {}).space and env.cfg.space.start_net == DEMO_START
    assert (env.cfg.episode.wider_steps, env.cfg.episode.deeper_steps, env.cfg.reward.mode) == (4, 5, "train")
    assert (env.cfg.child.finetune_epochs, env.cfg.child.finetune_lr) == (20, 0.02)  # docs/eas_env.md
    with pytest.raises(ConfigError, match="dataset.root: CIFAR-10 needs"):
        from_dict(EASEnvConfig, {"dataset": {"name": "cifar10"}})
    with pytest.raises(ConfigError, match=r"^child.epochs: the start net's training has its own section now: set "
                                          r"start.epochs \(child.finetune_epochs is each child's\)$"):
        from_dict(EASEnvConfig, {"child": {"epochs": 20}})  # a config written before the start section


def _write_cifar10_train(root, per_batch: int = 10) -> None:
    """Only the five training batches: the env must never need the test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        images = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": images, b"labels": rng.integers(0, 10, per_batch).tolist()}, f)


def test_cifar10_children_train_on_augmented_training_images_only(tmp_path):
    _write_cifar10_train(tmp_path)
    env = make(tmp_path, dataset={"name": "cifar10", "root": str(tmp_path)},
               space={"start_net": "conv-4-3 pool conv-4-3 fc-8", "conv_widths": [4, 8], "fc_widths": [8, 16]},
               start={"epochs": 1}, child={"finetune_epochs": 1, "batch_size": 8})
    data = env.evaluator.data
    assert data.x_train.shape == (45, 3, 32, 32) and data.x_val.shape == (5, 3, 32, 32) and data.augment is cifar_plus
    archs, reward, info, _ = play(env, 0)
    assert 0 <= info["val_accuracy"] <= 1 and reward == pytest.approx(tan_reward(info["val_accuracy"]))


def test_cifar_plus_is_a_seeded_padded_crop_and_flip():
    x = torch.randn(6, 3, 32, 32)
    a, b = cifar_plus(x, torch.Generator().manual_seed(0)), cifar_plus(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, cifar_plus(x, torch.Generator().manual_seed(1)))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for image, out in zip(padded, a):
        windows = [w for top in range(9) for left in range(9) for w in
                   (image[:, top:top + 32, left:left + 32], image[:, top:top + 32, left:left + 32].flip(-1))]
        assert any(torch.equal(out, w) for w in windows)
    assert not torch.equal(a, x)


def test_the_tan_reward_and_the_surrogate():
    assert tan_reward(0.5) == pytest.approx(1.0) and math.isfinite(tan_reward(1.0))
    small, wide, deep = (surrogate_accuracy(parse(a)) for a in
                         ("conv-4-3 fc-8", "conv-40-3 fc-8", "conv-4-3 conv-4-3 conv-4-3 fc-8"))
    assert 0 < small < wide < 0.95 and small < deep
