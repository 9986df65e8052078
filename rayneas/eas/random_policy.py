"""Uniformly random *valid* actions of `rayneas/EAS-v0`, read from the observation's masks.

The random-search baseline of the paper, and the episodes that the reward and
speed measurements (scripts/eas_env_rewards.py, scripts/bench_eas_env.py) run.
"""
from __future__ import annotations

import numpy as np


def random_action(obs: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Wider: widen each widenable layer with probability 1/2; deeper: a uniform valid (block, position, kernel).

    The kernel is uniform over those ``deeper_kernel_mask`` allows (0 where none is: after an fc layer the
    kernel is ignored)."""
    wider = (obs["wider_mask"] * rng.integers(0, 2, obs["wider_mask"].shape)).astype(np.int64)
    deeper = np.zeros(3, dtype=np.int64)
    blocks = np.flatnonzero(obs["deeper_block_mask"])
    if len(blocks):  # none: the net is at max_layers; any choice is then a masked one
        block = rng.choice(blocks)
        position = rng.choice(np.flatnonzero(obs["deeper_position_mask"][block]))
        kernels = np.flatnonzero(obs["deeper_kernel_mask"][block, position])
        kernel = rng.choice(kernels) if len(kernels) else 0
        deeper[:] = block, position, kernel
    return {"wider": wider, "deeper": deeper}
