"""Random search over EAS-v0, the baseline the RL controller must beat, as an RLlib Algorithm.

It is REINFORCE without the update: the same env runners sample the same
number of whole episodes per iteration from the same env (same transforms,
same NetPool, same budget), but the module is `EASController` in ``uniform``
mode, so every choice the masks allow is equally likely: each widenable
layer is widened with probability 1/2, and a Net2Deeper step picks a valid
block, then a valid position in it, then a kernel, uniformly. Running it
through RLlib keeps the outputs, checkpoints and `--resume` of an RL search.
"""
from __future__ import annotations

from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rayneas.rl.modules import EASController
from rayneas.rl.reinforce import REINFORCE, REINFORCEConfig

#: What `controller_config` gives the random search instead of ``controller.module``.
UNIFORM_MODULE = RLModuleSpec(module_class=EASController, model_config={"uniform": True})


class RandomSearchConfig(REINFORCEConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or RandomSearch)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return UNIFORM_MODULE


class RandomSearch(REINFORCE):
    """Each iteration samples ``episodes_per_iteration`` uniformly random valid episodes; nothing is learned."""

    @classmethod
    def get_default_config(cls) -> RandomSearchConfig:
        return RandomSearchConfig()

    def training_step(self) -> None:
        self.sample_episodes()
