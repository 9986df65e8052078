"""`rayneas/EAS-v0`: EAS as a Gymnasium environment whose actions are Net2Net transforms of a live network.

The network lives in the config's search space (``space.kind``: ``plain`` CNN,
the default, or ``densenet``); everything space-specific (tokens, blocks,
widths, building, the transforms) comes from its adapter, `rayneas.eas.space`.
An episode starts from the trained start network (`ChildEvaluator`), takes
``episode.wider_steps`` Net2Wider steps, then ``episode.deeper_steps``
Net2Deeper steps (or the same steps in random order: ``episode.order:
shuffled``, as the EAS code's random search), each applied in place with `rayneas.morph`, so the child
keeps its parent's trained weights; the last step scores the child.

Actions are a Dict of MultiDiscrete parts (RLlib's default Catalog rejects
MultiBinary); only the active phase's part is read:

* ``wider``: MultiDiscrete([2] * max_layers), 1 = widen layer i to the next
  width of its list (a DenseNet dense layer: its growth rate);
* ``deeper``: MultiDiscrete([5, 10, 3]) = (block, position in block, kernel
  index into (1, 3, 5)); a new layer is inserted after that layer (plain: an
  identity layer; DenseNet: a copy of that dense layer, kernel at least its own).

The observation carries the masks of valid choices (``deeper_kernel_mask``: the
kernels a new layer may take, none after an fc layer, where the kernel is
ignored); a masked choice raises (``invalid_action: error``) or, with ``noop``
(the default, since an RL policy that ignores the masks must not crash a run),
a masked deeper choice is a no-op with a penalty and a wider step's 1s on
masked slots are ignored while its other decisions apply (the EAS code masks
those decisions out; refusing the whole step would keep a mask-blind policy
from ever widening).
"""
from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from rayneas.config import ConfigError, from_dict
from rayneas.eas.config import EASEnvConfig
from rayneas.eas.actions import action_masks, apply_action, episode_phases
from rayneas.eas.encoding import BLOCK_POSITIONS, NUM_BLOCKS, ArchEncoder, EncodingError
from rayneas.eas.evaluator import ChildEvaluator
from rayneas.eas.space import eas_space
from rayneas.spaces.common import count_parameters
from rayneas.spaces.plain import KERNEL_SIZES


class EASEnv(gym.Env):
    """Pass an `EASEnvConfig` or its sections as keywords (an RLlib ``env_config``), never both."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: EASEnvConfig | None = None, **settings: Any) -> None:
        if config is not None and settings:
            raise ConfigError(f"pass either config= or the settings {sorted(settings)} as keywords, not both")
        if config is not None and not isinstance(config, EASEnvConfig):
            raise ConfigError(f"config must be an EASEnvConfig, got {type(config).__name__}; pass a mapping of "
                              "settings as keywords instead: EASEnv(**settings)")
        self.cfg = config if config is not None else from_dict(EASEnvConfig, settings)
        # `schedule` is the older name of the same object (what the wider action's widths come from)
        self.space = self.schedule = space = eas_space(self.cfg.space)
        self.max_layers = space.max_layers
        self.encoder = ArchEncoder(space)
        try:
            self.encoder.check(space.start())
        except EncodingError as exc:
            raise ConfigError(f"space.start_net: {exc}") from None
        self.evaluator = ChildEvaluator(self.cfg)
        episode = self.cfg.episode
        self.total_steps = episode.wider_steps + episode.deeper_steps
        observations = {
            "arch": spaces.Box(0, self.encoder.num_tokens - 1, (self.max_layers,), np.int64),
            "length": spaces.Discrete(self.max_layers + 1),
            "phase": spaces.Discrete(2),  # 0 wider, 1 deeper
            "step": spaces.Discrete(max(episode.wider_steps, episode.deeper_steps) + 1),  # step within the phase
            "wider_mask": spaces.Box(0, 1, (self.max_layers,), np.float32),
            "deeper_block_mask": spaces.Box(0, 1, (NUM_BLOCKS,), np.float32),
            "deeper_position_mask": spaces.Box(0, 1, (NUM_BLOCKS, BLOCK_POSITIONS), np.float32),
            "deeper_kernel_mask": spaces.Box(0, 1, (NUM_BLOCKS, BLOCK_POSITIONS, len(KERNEL_SIZES)), np.float32),
        }
        self.observation_space = spaces.Dict(observations)
        self.action_space = spaces.Dict({
            "wider": spaces.MultiDiscrete([2] * self.max_layers),
            "deeper": spaces.MultiDiscrete([NUM_BLOCKS, BLOCK_POSITIONS, len(KERNEL_SIZES)]),
        })
        self.net = None
        self._step = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        # Morph draws (replicated units, noise, BN batches) come from the episode's seed.
        self._gen = torch.Generator().manual_seed(int(self.np_random.integers(2**62)))
        self.net, start_accuracy = self.evaluator.start_network()
        self._step = 0
        self._return, self._invalid, self._started = 0.0, 0, time.perf_counter()
        self._phases = episode_phases(self.cfg.episode, self.np_random)
        return self._observation(), {**self._describe(), "start_val_accuracy": start_accuracy}

    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        if self.net is None or self._step >= self.total_steps:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        if not self.action_space.contains(action):
            raise ValueError(f"step {self._step}: action {action!r} is not in the action space {self.action_space}; "
                             "pass a dict of int arrays: 'wider' (one 0/1 per layer slot) and 'deeper' "
                             "(block, position, kernel index)")
        phase = self._phase()
        problem = apply_action(self.space, self.net, phase, action, rng=self._gen, noise=self.cfg.noise,
                               images=self.evaluator.data.x_train,
                               ignore_masked_wider=self.cfg.episode.invalid_action == "noop")
        info: dict[str, Any] = {}
        reward = 0.0
        if problem is not None:
            message = f"step {self._step} ({phase}): invalid action: {problem}"
            if self.cfg.episode.invalid_action == "error":
                raise ValueError(f"{message}; choose only what the observation's masks allow, or set "
                                 "episode.invalid_action: noop")
            reward, info["invalid_action"] = self.cfg.reward.invalid_penalty, message
            self._invalid += 1
        self._step += 1
        terminated = self._step == self.total_steps
        if terminated:
            score = self.evaluator.score(self.net)
            reward += score.reward
            info.update(val_accuracy=score.val_accuracy, netpool_hit=score.netpool_hit,
                        train_seconds=score.train_seconds)
        self._return += reward
        described = self._describe()
        if terminated and self.cfg.episode_log is not None:
            self.evaluator.log_episode({
                "arch": described["arch"], "parent": self.cfg.space.start_net, "val_acc": score.val_accuracy,
                "reward": self._return, "netpool_hit": score.netpool_hit, "train_seconds": score.train_seconds,
                "episode_seconds": time.perf_counter() - self._started, "params": described["params"],
                "invalid_actions": self._invalid})
        return self._observation(), reward, terminated, False, {**info, **described}

    def _phase(self) -> str:
        return self._phases[min(self._step, self.total_steps - 1)]

    def _observation(self) -> dict[str, Any]:
        arch = self.space.layers(self.net)
        return {
            "arch": self.encoder.encode(arch),
            "length": np.int64(len(arch)),
            "phase": np.int64(0 if self._phase() == "wider" else 1),
            "step": np.int64(self._phases[:self._step].count(self._phase())),
            **action_masks(self.encoder, arch),
        }

    def _describe(self) -> dict[str, Any]:
        return {"arch": self.space.arch_string(self.net), "params": count_parameters(self.net),
                "reward_mode": self.cfg.reward.mode}
