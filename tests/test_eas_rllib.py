"""RLlib PPO trains on rayneas/EAS-v0 by its id: default module, observations flattened by a connector.

The env runner process (num_env_runners=1) finds the env only through the
"rayneas_envs:" prefix of the id, as a fresh process on a cluster would.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.connectors.env_to_module import FlattenObservations  # noqa: E402

EPISODE_STEPS = 4 + 5


@pytest.fixture(scope="module")
def ray_local():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("num_env_runners", [0, 1])
def test_ppo_trains_one_iteration(ray_local, tmp_path, num_env_runners):
    config = (
        PPOConfig()
        .environment("rayneas_envs:rayneas/EAS-v0",
                     env_config={"reward": {"mode": "surrogate"}, "netpool": str(tmp_path / "netpool.parquet")})
        .env_runners(num_env_runners=num_env_runners, env_to_module_connector=lambda env, spaces, device: FlattenObservations())
        .training(train_batch_size_per_learner=2 * EPISODE_STEPS, minibatch_size=EPISODE_STEPS, num_epochs=1)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    runners = result["env_runners"]
    assert runners["num_env_steps_sampled_lifetime"] >= 2 * EPISODE_STEPS
    assert runners["num_episodes"] >= 1 and runners["episode_len_mean"] == EPISODE_STEPS
    # An untrained policy ignores the masks: its masked choices cost the no-op penalty, never a crash.
    assert runners["episode_return_mean"] > -EPISODE_STEPS
    assert "total_loss" in str(result["learners"])
