"""Every controller algorithm trains the Bi-LSTM module on EAS-v0 for 2 iterations; bad names and keys fail clearly."""
from __future__ import annotations

import math
import time

import pytest
from ray.rllib.algorithms.algorithm import Algorithm

from rayneas.config import ConfigError
from rayneas.rl.controller import controller_config

STEPS = 4 + 5


def _config(tmp_path, algorithm="reinforce", module="bilstm", rllib=None, runners=0):
    env_config = {"reward": {"mode": "surrogate"}, "netpool": str(tmp_path / "netpool.parquet")}
    return controller_config(algorithm=algorithm, module=module, env_config=env_config, episode_steps=STEPS,
                             networks_per_iteration=2, num_env_runners=runners, seed=0, rllib=rllib)


@pytest.mark.parametrize("algorithm,module", [("reinforce", "bilstm"), ("ppo", "bilstm"), ("appo", "bilstm"),
                                              ("impala", "bilstm"), ("ppo", "default")])
def test_trains_two_iterations(ray_local, tmp_path, algorithm, module):
    algo = _config(tmp_path, algorithm, module).build_algo()
    try:  # APPO and IMPALA learn asynchronously: their first iterations may only sample
        results = [algo.train() for _ in range(2)]
        deadline = time.monotonic() + 90
        while "learners" not in results[-1] and time.monotonic() < deadline:
            results.append(algo.train())
    finally:
        algo.stop()
    assert results[-1]["env_runners"]["num_episodes_lifetime"] >= 2
    learner = results[-1]["learners"]["default_policy"]
    assert math.isfinite(learner["total_loss"] if "total_loss" in learner else learner["policy_loss"])


def test_save_restore_continue(ray_local, tmp_path):
    algo = _config(tmp_path).build_algo()
    try:
        algo.train()
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        assert restored.iteration == 1
        restored.train()
        assert restored.iteration == 2
    finally:
        restored.stop()


def test_unknown_algorithm_and_module_name_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"controller.algorithm: unknown algorithm 'dqn'; allowed values are "
                                          r"appo, impala, ppo, random, reinforce"):
        _config(tmp_path, algorithm="dqn")
    with pytest.raises(ConfigError, match=r"controller.module: unknown module 'lstm'; allowed values are bilstm, "
                                          r"default"):
        _config(tmp_path, module="lstm")
    with pytest.raises(ConfigError, match=r"controller.module: cannot import 'nowhere.mod:Net'"):
        _config(tmp_path, module="nowhere.mod:Net")


def test_a_key_rllib_rejects_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"controller.rllib.clip_parm: PPO has no setting 'clip_parm'; "
                                          r"allowed keys are .*clip_param"):
        _config(tmp_path, algorithm="ppo", rllib={"clip_parm": 0.2})
    assert _config(tmp_path, algorithm="ppo", rllib={"clip_param": 0.1}).clip_param == 0.1
