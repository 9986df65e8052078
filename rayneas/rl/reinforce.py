"""REINFORCE as the EAS paper trains its controller, as an RLlib Algorithm + Learner (the shape of RLlib's VPG example).

Whole episodes (``batch_mode: complete_episodes``), undiscounted returns to go,
a moving-average baseline of the episode returns (decay 0.95), an entropy bonus
(1e-5) and Adam at 2e-3: the paper's settings, as defaults any YAML key overrides.
"""
from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.connectors.learner import ComputeReturnsToGo
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.typing import ModuleID

from rayneas.rl.modules import EASController
from rayneas.seeding import derive_seed


class REINFORCEConfig(AlgorithmConfig):
    """Paper defaults; ``episodes_per_iteration`` is the number of child networks sampled per update (paper: 10)."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or REINFORCE)
        self.episodes_per_iteration = 10
        self.baseline_decay = 0.95
        self.entropy_coeff = 1e-5
        self.lr = 2e-3
        self.gamma = 1.0
        self.batch_mode = "complete_episodes"

    def training(self, *, episodes_per_iteration: Any = NotProvided, baseline_decay: Any = NotProvided,
                 entropy_coeff: Any = NotProvided, **kwargs: Any) -> "REINFORCEConfig":
        super().training(**kwargs)
        for key, value in (("episodes_per_iteration", episodes_per_iteration), ("baseline_decay", baseline_decay),
                           ("entropy_coeff", entropy_coeff)):
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=EASController)

    def get_default_learner_class(self) -> type:
        return REINFORCELearner


class REINFORCELearner(TorchLearner):
    """Loss -mean(logp(a) * (G - b)) - entropy_coeff * mean(entropy); b is the moving average of episode returns."""

    def build(self) -> None:
        super().build()
        self.baseline: float | None = None
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.prepend(ComputeReturnsToGo(gamma=self.config.gamma))

    def compute_loss_for_module(self, *, module_id: ModuleID, config: Any, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        dist = self.module[module_id].get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        returns = batch[Columns.RETURNS_TO_GO]
        baseline = float(returns.mean()) if self.baseline is None else self.baseline
        entropy = dist.entropy().mean()
        loss = -(dist.logp(batch[Columns.ACTIONS]) * (returns - baseline)).mean() - config.entropy_coeff * entropy
        self.baseline = config.baseline_decay * baseline + (1 - config.baseline_decay) * float(returns.mean())
        self.metrics.log_value((module_id, "baseline"), self.baseline, window=1)
        self.metrics.log_value((module_id, "entropy"), float(entropy.detach()), window=1)
        return loss

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The baseline travels with the weights, so a restored controller's advantages do not jump."""
        return {**super().get_state(*args, **kwargs), "baseline": self.baseline}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "baseline" in state:
            self.baseline = state["baseline"]


def reseed_runner(runner: Any, seed: int, iteration: int) -> None:
    """Seed the runner's action sampling (torch) and its envs' next reset for this iteration.

    `SingleAgentEnvRunner.sample(num_episodes=...)` resets its envs with the
    runner's ``_seed`` every call (Ray 2.60), so setting it here gives each
    iteration fresh env streams (transform noise, episode.order) instead of
    the same ones every iteration.
    """
    stream = derive_seed(seed, 0x5EA5, iteration, runner.worker_index)
    torch.manual_seed(stream)
    runner._seed = stream


class REINFORCE(Algorithm):
    """Each iteration: sample whole episodes on the env runners, one gradient step, sync the weights."""

    @classmethod
    def get_default_config(cls) -> REINFORCEConfig:
        return REINFORCEConfig()

    def sample_episodes(self) -> list[Any]:
        """``episodes_per_iteration`` whole episodes, split over the env runners (or the local one).

        Every runner's streams are reseeded from (seed, iteration, runner), so
        an iteration samples the same episodes whether the run went straight
        through or was restored from a checkpoint.
        """
        runners = self.config.num_env_runners or 1
        per_runner = -(-self.config.episodes_per_iteration // runners)
        seed, iteration = self.config.seed or 0, self.iteration

        def sample(runner: Any) -> tuple[list[Any], Any]:
            reseed_runner(runner, seed, iteration)
            return runner.sample(num_episodes=per_runner), runner.get_metrics()

        sampled = self.env_runner_group.foreach_env_runner(
            sample, local_env_runner=self.env_runner_group.num_remote_workers() <= 0)
        self.metrics.aggregate([metrics for _, metrics in sampled], key=ENV_RUNNER_RESULTS)
        return [episode for part, _ in sampled for episode in part]

    def training_step(self) -> None:
        episodes = self.sample_episodes()
        learner_results = self.learner_group.update(
            episodes=episodes,
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))})
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
