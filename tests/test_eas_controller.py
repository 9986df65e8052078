"""The Bi-LSTM controller module: masks always hold, logp is that of the taken action, PPO trains with it."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from ray.rllib.core import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rayneas.eas.encoding import deeper_choice, wider_choice_error
from rayneas.rl.modules import EASController


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "netpool.parquet"
    return gymnasium.make("rayneas_envs:rayneas/EAS-v0", reward={"mode": "surrogate"}, netpool=str(path)).unwrapped


def _module(env) -> EASController:
    torch.manual_seed(0)
    return RLModuleSpec(module_class=EASController, observation_space=env.observation_space,
                        action_space=env.action_space).build()


def _batch(observations: list[dict]) -> dict:
    return {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}}


def test_a_thousand_sampled_actions_are_never_masked(env):
    module = _module(env)
    observations, archs = [], []
    obs, _ = env.reset(seed=0)
    while len(observations) < 100:  # wider and deeper steps of real episodes, 100 states
        observations.append(obs)
        archs.append(list(env.net.arch))
        action = env.action_space.sample()
        action["wider"][:] = 0
        action["deeper"][:] = 0
        obs, _, done, _, _ = env.step(action)
        if done:
            obs, _ = env.reset(seed=len(observations))
    batch = _batch(observations)
    for _ in range(10):  # 10 x 100 = 1,000 actions
        with torch.no_grad():
            out = module.forward_exploration(batch)
        actions = out[Columns.ACTIONS]
        for i, (o, arch) in enumerate(zip(observations, archs)):
            if o["phase"] == 0:
                assert wider_choice_error(arch, env.schedule, actions["wider"][i].numpy()) is None
                assert not actions["deeper"][i].any()  # inactive head: fixed, log-prob 0
            else:
                assert not isinstance(deeper_choice(arch, env.max_layers, *actions["deeper"][i].tolist()), str)
                assert not actions["wider"][i].any()
        assert torch.isfinite(out[Columns.ACTION_LOGP]).all()


def test_train_logp_is_the_exploration_logp_of_the_taken_action(env):
    module = _module(env)
    obs, _ = env.reset(seed=1)
    observations = [obs]
    for _ in range(env.total_steps - 1):
        obs = env.step({"wider": np.zeros(env.max_layers, np.int64), "deeper": np.zeros(3, np.int64)})[0]
        observations.append(obs)
    batch = _batch(observations)
    with torch.no_grad():
        explored = module.forward_exploration(batch)
        trained = module.forward_train({**batch, Columns.ACTIONS: explored[Columns.ACTIONS]})
    dist = module.get_train_action_dist_cls().from_logits(trained[Columns.ACTION_DIST_INPUTS])
    assert torch.allclose(dist.logp(explored[Columns.ACTIONS]), explored[Columns.ACTION_LOGP], atol=1e-5)
    assert (dist.entropy() >= 0).all()
    assert module.compute_values(batch).shape == (len(observations),)


def test_the_kernel_after_an_fc_layer_is_no_decision_and_the_decoder_starts_from_the_encoders_state(env):
    """The EAS code masks the kernel decision out of its objective when the new layer follows an fc layer, and
    hands its deeper decoder the Bi-LSTM's final (h, c); so does the module."""
    module = _module(env)
    obs, _ = env.reset(seed=2)
    for _ in range(env.cfg.episode.wider_steps):
        obs = env.step({"wider": np.zeros(env.max_layers, np.int64), "deeper": np.zeros(3, np.int64)})[0]
    batch = _batch([obs] * 3)
    fc_block = int(np.flatnonzero(obs["deeper_block_mask"])[-1])  # the fc part is the last block
    taken = {"wider": torch.zeros(3, env.max_layers, dtype=torch.long),
             "deeper": torch.tensor([[fc_block, 0, 0], [fc_block, 0, 2], [0, 0, 2]])}
    with torch.no_grad():
        out = module.forward_train({**batch, Columns.ACTIONS: taken})
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(out[Columns.ACTIONS])
        _, (h, c) = module.pi.encode(batch[Columns.OBS])
        expected = module.pi.block_out(module.pi.decoder(module.pi.start.expand(3, -1), (h, c))[0])
    deeper = out[Columns.ACTIONS]["deeper"]
    assert deeper[:2, 2].tolist() == [0, 0] and deeper[2, 2] == 2  # after fc the kernel is pinned to index 0
    assert logp[0] == pytest.approx(logp[1].item())  # ... so it adds nothing to the log-probability
    assert logp[2] != pytest.approx(logp[0].item())
    start = out[Columns.ACTION_DIST_INPUTS][:, :module.num_blocks]  # "deeper" sorts first: block logits lead
    assert torch.allclose(start, expected.masked_fill(~batch[Columns.OBS]["deeper_block_mask"].bool(), -1e9))
    assert c.abs().sum() > 0  # a non-zero cell state, which a (h, 0) start would have dropped
