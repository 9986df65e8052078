"""The RLlib config of an EAS controller: algorithm, module and batch sizes from the run config's few settings.

One place sizes every algorithm's batches from ``networks_per_iteration`` (an
iteration samples that many whole episodes, i.e. child networks), so swapping
the algorithm keeps the search budget the same. Two RLlib defaults are
changed for every algorithm, because an EAS episode is a child network's
training: the controller learns in the driver (``num_learners: 0``; IMPALA
and APPO would otherwise start a learner actor that needs a CPU beside the
env runners, which a 2-CPU machine does not have), and sampling has no
timeout (``sample_timeout_s: None``; RLlib's 60 s would make PPO drop every
episode whose children train longer). ``controller.rllib`` overrides both.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec

from rayneas.config import ConfigError
from rayneas.quiet import rllib_log_level
from rayneas.rl.algos import algorithm_config, apply_rllib
from rayneas.rl.modules import EASController
from rayneas.rl.random_search import UNIFORM_MODULE

ENV_ID = "rayneas_envs:rayneas/EAS-v0"
MODULES = ("bilstm", "default")


def module_class(name: str) -> type[RLModule] | None:
    """The RLModule class of ``controller.module``: bilstm, default (None: RLlib's) or ``package.module:Class``."""
    if name == "bilstm":
        return EASController
    if name == "default":
        return None
    if ":" not in name:
        raise ConfigError(f"controller.module: unknown module {name!r}; allowed values are "
                          f"{', '.join(MODULES)} or a class path package.module:Class")
    module_name, _, class_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"controller.module: cannot import {name!r} ({exc}); give package.module:Class of an "
                          "importable RLModule subclass, or one of " + ", ".join(MODULES)) from None
    if not (isinstance(cls, type) and issubclass(cls, RLModule)):
        raise ConfigError(f"controller.module: {name!r} is not an RLModule subclass")
    return cls


def _flatten(env: Any, spaces: Any, device: Any) -> FlattenObservations:
    return FlattenObservations()


def controller_config(*, algorithm: str, module: str, env_config: Mapping[str, Any], episode_steps: int,
                      networks_per_iteration: int, num_env_runners: int, seed: int,
                      rllib: Mapping[str, Any] | None = None) -> AlgorithmConfig:
    """An RLlib config that samples ``networks_per_iteration`` episodes per iteration; ``rllib`` keys win.

    ``random`` ignores ``module``: it always samples through the uniform
    Bi-LSTM controller (`rayneas.rl.random_search`).
    """
    config = algorithm_config(algorithm)
    cls = module_class(module)
    batch = networks_per_iteration * episode_steps
    config.environment(ENV_ID, env_config=dict(env_config)).debugging(seed=seed, log_level=rllib_log_level())
    config.env_runners(num_env_runners=num_env_runners, batch_mode="complete_episodes",
                       rollout_fragment_length=episode_steps, sample_timeout_s=None)
    config.learners(num_learners=0)
    config.reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0)
    if algorithm == "random":
        config.rl_module(rl_module_spec=UNIFORM_MODULE)
    elif cls is None:
        config.env_runners(env_to_module_connector=_flatten)
    else:
        config.rl_module(rl_module_spec=RLModuleSpec(module_class=cls))
    if algorithm in ("reinforce", "random"):
        config.training(episodes_per_iteration=networks_per_iteration)
    elif algorithm == "ppo":
        config.training(train_batch_size_per_learner=batch, minibatch_size=episode_steps, num_epochs=1)
    else:  # appo, impala: one learner update per batch of whole episodes, and an iteration ends after that many
        # steps, as the others' (RLlib's asynchronous default returns from train() with whatever has arrived,
        # often nothing: hundreds of iterations, each saving a checkpoint, for one batch of children)
        config.training(train_batch_size_per_learner=batch)
        config.reporting(min_sample_timesteps_per_iteration=batch)
    return apply_rllib(config, rllib or {})
