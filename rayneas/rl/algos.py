"""Controller algorithm name -> RLlib config class, and YAML RLlib keys applied with one clear error per bad key.

The config classes are imported directly: looking a name up in RLlib's
registry imports every algorithm (and Pillow with them).
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.impala import IMPALAConfig
from ray.rllib.algorithms.ppo import PPOConfig

from rayneas.config import ConfigError
from rayneas.rl.random_search import RandomSearchConfig
from rayneas.rl.reinforce import REINFORCEConfig

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {
    "reinforce": REINFORCEConfig,
    "ppo": PPOConfig,
    "appo": APPOConfig,
    "impala": IMPALAConfig,
    "random": RandomSearchConfig,
}


def algorithm_config(name: str) -> AlgorithmConfig:
    """A fresh RLlib config of the named algorithm; an unknown name is a `ConfigError` listing the known ones."""
    if name not in ALGORITHMS:
        raise ConfigError(f"controller.algorithm: unknown algorithm {name!r}; allowed values are "
                          f"{', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name]()


def _accepted(method: Any) -> set[str]:
    """The keyword names a config method takes, through its overrides' ``**kwargs`` up the class chain."""
    names: set[str] = set()
    for cls in type(method.__self__).__mro__:
        func = cls.__dict__.get(method.__name__)
        if func is not None:
            names |= {p.name for p in inspect.signature(func).parameters.values()
                      if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
    return names


def apply_rllib(config: AlgorithmConfig, settings: Mapping[str, Any], path: str = "controller.rllib") -> AlgorithmConfig:
    """Pass each key to the `AlgorithmConfig` method that takes it (training, env_runners, learners, reporting...).

    A key no such method takes is a `ConfigError` naming it, so a typo never
    silently does nothing.
    """
    methods = [getattr(config, name) for name in ("training", "env_runners", "learners", "reporting",
                                                  "evaluation", "debugging", "resources")]
    for key, value in settings.items():
        method = next((m for m in methods if key in _accepted(m)), None)
        if method is None:
            allowed = sorted(set().union(*(_accepted(m) for m in methods)))
            raise ConfigError(f"{path}.{key}: {config.algo_class.__name__} has no setting {key!r}; "
                              f"allowed keys are {', '.join(allowed)}")
        try:
            method(**{key: value})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}.{key}: RLlib rejects {value!r}: {exc}") from None
    return config
