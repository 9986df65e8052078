"""What an action does to the live network, shared by `rayneas/EAS-v0` and the training-free reward's
reference pool, whose random children must grow exactly as an episode's do (`rayneas.eas.trainfree`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rayneas.eas.config import EpisodeConfig, MorphNoiseConfig
from rayneas.eas.encoding import ArchEncoder, deeper_choice, wider_choice_error
from rayneas.eas.space import EASSpace

BN_BATCH = 64  # training images that set a new identity conv's BatchNorm (the paper's batch; plain space)


def episode_phases(episode: EpisodeConfig, rng: np.random.Generator) -> list[str]:
    """The phase of every step: the wider steps, then the deeper ones, or (``shuffled``, the EAS code's random
    search) the same steps in random order."""
    phases = ["wider"] * episode.wider_steps + ["deeper"] * episode.deeper_steps
    if episode.order == "shuffled":
        rng.shuffle(phases)
    return phases


def action_masks(encoder: ArchEncoder, arch: Any) -> dict[str, np.ndarray]:
    """The observation's masks of valid choices for ``arch`` (what `random_action` reads)."""
    block_mask, position_mask = encoder.deeper_masks(arch)
    return {"wider_mask": encoder.wider_mask(arch), "deeper_block_mask": block_mask,
            "deeper_position_mask": position_mask, "deeper_kernel_mask": encoder.kernel_mask(arch)}


def apply_action(space: EASSpace, net: nn.Module, phase: str, action: dict, *, rng: torch.Generator,
                 noise: MorphNoiseConfig, images: torch.Tensor, ignore_masked_wider: bool = False) -> str | None:
    """Transform ``net`` in place; the reason instead (network untouched) if the choice is masked.

    ``images``: training images, of which a transform that needs data (the
    plain space's identity BatchNorm) draws `BN_BATCH` with ``rng``.
    ``ignore_masked_wider``: a wider step widens the layers it may and ignores
    its 1s on masked slots (pool layers, layers at their last width, empty
    slots), as the EAS code's decision mask does, instead of refusing the step.
    """
    layers = space.layers(net)
    if phase == "wider":
        decisions = np.asarray(action["wider"])
        if ignore_masked_wider:
            decisions = decisions * [i < len(layers) and space.next_width(layers[i]) is not None
                                     for i in range(len(decisions))]
        problem = wider_choice_error(layers, space, decisions)
        if problem is None:
            for index in np.flatnonzero(decisions):
                width = space.next_width(layers[index])
                space.widen(net, int(index), width, rng=rng, noise=noise.wider)
        return problem
    block, position, kernel = (int(v) for v in action["deeper"])
    choice = deeper_choice(layers, space.max_layers, block, position, kernel, space)
    if isinstance(choice, str):
        return choice
    space.deepen(net, choice[0], choice[1], rng=rng, noise=noise.deeper,
                 batch=lambda: images[torch.randperm(len(images), generator=rng)[:BN_BATCH]])
    return None
