"""REINFORCE as the EAS paper trains its controller, as an RLlib Algorithm + Learner (the shape of RLlib's VPG example).

Whole episodes (``batch_mode: complete_episodes``), undiscounted returns to go,
the reference code's moving-average baseline (`advance_baseline`), an entropy
bonus (1e-5) and Adam at 2e-3: the paper's settings, as defaults any YAML key
overrides. The objective is the reference's too (`reinforce_loss`): the sum of
every decision's log-probability times its advantage, divided by the number of
episodes (children) in the update.
"""
from __future__ import annotations

import logging
import time
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

from rayneas.eas.netpool import release_claims
from rayneas.rl.modules import EASController
from rayneas.seeding import derive_seed


logger = logging.getLogger(__name__)
MAX_RESAMPLES = 3  # restarts of lost env runners within one iteration
RESTART_TIMEOUT_S = 300


def advance_baseline(baseline: float, batch_mean: float, decay: float) -> float:
    """The baseline after a batch whose mean episode return is ``batch_mean``, as the EAS code's
    ``ArchManager.reward``: ``b += decay * (mean - b)``, from b = 0 before the first batch.

    With decay 0.95 the new baseline is 0.05·old + 0.95·this batch's mean, and it is
    updated *before* the batch's advantages ``R - b`` are taken, so each batch is
    almost centred on its own mean.
    """
    return baseline + decay * (batch_mean - baseline)


def reinforce_loss(logp: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor, num_episodes: int,
                   entropy_coeff: float) -> torch.Tensor:
    """``-sum(logp · A) / num_episodes - entropy_coeff · mean(entropy)`` over a batch of timesteps.

    The EAS code's objective: every decision's log-probability times its
    child's advantage, summed, with the rewards divided by the number of
    children per update. Minimising it raises the probability of actions with a
    positive advantage.
    """
    return -(logp * advantages).sum() / max(num_episodes, 1) - entropy_coeff * entropy.mean()


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
    """`reinforce_loss` with advantages G - b; b, the baseline, is learner state that `update` advances once
    per update from the mean return of *all* the update's episodes (``batch_return_mean``), before the loss
    is computed, so several learners or minibatches share one baseline."""

    def build(self) -> None:
        super().build()
        self.baseline = 0.0
        self._episodes = 0  # episodes in the batch being learned from
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.prepend(ComputeReturnsToGo(gamma=self.config.gamma))

    def update(self, *args: Any, batch_return_mean: float | None = None, **kwargs: Any) -> Any:
        """One update; ``batch_return_mean``: the mean return of the update's episodes over every learner (the
        `REINFORCE` algorithm passes it), else that of the episodes given here."""
        data = kwargs.get("training_data")
        episodes = kwargs.get("episodes") or (data.episodes if data is not None else None) or []
        if batch_return_mean is None:
            batch_return_mean = sum(e.get_return() for e in episodes) / max(len(episodes), 1)
        self.baseline = advance_baseline(self.baseline, batch_return_mean, self.config.baseline_decay)
        self._episodes = len(episodes)
        return super().update(*args, **kwargs)

    def compute_loss_for_module(self, *, module_id: ModuleID, config: Any, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        dist = self.module[module_id].get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        entropy = dist.entropy()
        advantages = batch[Columns.RETURNS_TO_GO] - self.baseline
        episodes = self._episodes or int(batch[Columns.TERMINATEDS].sum())
        loss = reinforce_loss(dist.logp(batch[Columns.ACTIONS]), advantages, entropy, episodes, config.entropy_coeff)
        self.metrics.log_value((module_id, "baseline"), self.baseline, window=1)
        self.metrics.log_value((module_id, "entropy"), float(entropy.mean().detach()), window=1)
        return loss

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The baseline travels with the weights, so a restored controller's advantages do not jump."""
        return {**super().get_state(*args, **kwargs), "baseline": self.baseline}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "baseline" in state:  # None in checkpoints written before the first update by older versions
            self.baseline = float(state["baseline"] or 0.0)


def episode_shares(episodes: int, runners: int) -> dict[int, int]:
    """Episodes per env runner index (1..runners) that add up to exactly ``episodes``: the first
    ``episodes % runners`` runners sample one more; runners with no share are left out."""
    base, extra = divmod(episodes, max(runners, 1))
    shares = {i: base + (i <= extra) for i in range(1, max(runners, 1) + 1)}
    return {i: n for i, n in shares.items() if n > 0}


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
        through, was restored from a checkpoint, or lost a runner mid-sample:
        a lost runner is restarted and its share sampled again, with the same
        seeds, before the update (`MAX_RESAMPLES` times at most).
        """
        group = self.env_runner_group
        local = group.num_remote_workers() <= 0
        shares = episode_shares(self.config.episodes_per_iteration, 1 if local else self.config.num_env_runners)
        seed, iteration = self.config.seed or 0, self.iteration

        def sample(runner: Any) -> tuple[int, list[Any], Any]:
            reseed_runner(runner, seed, iteration)
            count = shares[max(runner.worker_index, 1)]
            return runner.worker_index, runner.sample(num_episodes=count), runner.get_metrics()

        collected: dict[int, tuple[list[Any], Any]] = {}
        for _ in range(MAX_RESAMPLES + 1):
            missing = None if local else [i for i in shares if i not in collected]
            for index, episodes, metrics in group.foreach_env_runner(sample, local_env_runner=local,
                                                                     remote_worker_ids=missing):
                collected[index] = (episodes, metrics)
            if local or len(collected) == len(shares):
                break
            lost = sorted(set(shares) - set(collected))
            logger.warning("env runner(s) %s lost mid-sample in iteration %d: restarting them and sampling their "
                           "episodes again", lost, iteration + 1)
            # Every live runner has returned, so this search's claims still held in the NetPool are the lost
            # runners' (other searches sharing the pool, e.g. Tune trials, keep theirs).
            env = self.config.env_config
            release_claims(env.get("netpool"), env.get("episode_log") or "")
            self._await_restart(lost)
        else:
            raise RuntimeError(f"env runner(s) {lost} were lost {MAX_RESAMPLES + 1} times in iteration "
                               f"{iteration + 1}; see their logs (ray logs) for the cause")
        self.metrics.aggregate([collected[i][1] for i in sorted(collected)], key=ENV_RUNNER_RESULTS)
        return [episode for i in sorted(collected) for episode in collected[i][0]]

    def _await_restart(self, lost: list[int]) -> None:
        """Wait until Ray has restarted the lost runners (a new process imports torch: seconds) and RLlib has
        synced their weights."""
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while not set(lost) <= set(self.env_runner_group.healthy_env_runner_ids()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"env runner(s) {lost} did not come back within {RESTART_TIMEOUT_S} s; check "
                                   "config fault_tolerance(restart_failed_env_runners=True) and the runners' logs")
            time.sleep(1.0)
            self.restore_env_runners(self.env_runner_group)

    def training_step(self) -> None:
        episodes = self.sample_episodes()
        learner_results = self.learner_group.update(
            episodes=episodes, batch_return_mean=sum(e.get_return() for e in episodes) / len(episodes),
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))})
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
