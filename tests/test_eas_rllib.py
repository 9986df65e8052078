"""RLlib PPO trains on rayneas/EAS-v0 by its id: default module, observations flattened by a connector.

The env runner process (num_env_runners=1) finds the env only through the
"rayneas_envs:" prefix of the id, as a fresh process on a cluster would.
"""
from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.connectors.env_to_module import FlattenObservations  # noqa: E402

EPISODE_STEPS = 4 + 5


@ray.remote(num_cpus=1)
def start_in_a_worker(settings: dict) -> tuple[float, bool]:
    """A fresh worker process's env: (start net accuracy, whether this worker trained the start net)."""
    import gymnasium

    env = gymnasium.make("rayneas_envs:rayneas/EAS-v0", **settings).unwrapped
    accuracy = env.reset(seed=0)[1]["start_val_accuracy"]
    return accuracy, env.evaluator.trained_start


def test_the_start_net_is_trained_once_for_all_workers(ray_local, tmp_path):
    from rayneas.eas.netpool import netpool_actor

    settings = {"start": {"epochs": 2}, "netpool": str(tmp_path / "netpool.parquet")}
    results = ray.get([start_in_a_worker.remote(settings) for _ in range(2)])
    assert results[0][0] == results[1][0] and sorted(trained for _, trained in results) == [False, True]
    records = ray.get(netpool_actor(settings["netpool"]).records.remote())
    assert [r.accuracy for r in records] == [results[0][0]]  # one record: the start net's


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
    assert math.isfinite(result["learners"]["default_policy"]["total_loss"])  # the learner updated the module
