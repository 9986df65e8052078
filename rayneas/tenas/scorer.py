"""What one scoring task computes: κ and R of one masked supernet under one repeat's init and inputs.

A task is a pure function of (mask, repeat, init seed) and the shared input
batches, so any worker, in any order, gives the same numbers. The κ network
and the thin network are built with every op present and only the mask
changed, so the supernet and each pruned candidate of a repeat start from
exactly the same weights, as TE-NAS copies them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import torch

from rayneas.indicators import count_linear_regions, init_weights, ntk_batch, ntk_condition_number, region_inputs
from rayneas.scoring import DEVICE_KEY
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.prunable import Mask, PrunableSpace
from rayneas.tenas.rank import Score

NTK_KEY, REGIONS_KEY = "ntk_inputs", "region_inputs"


@dataclasses.dataclass(frozen=True)
class ScoreTask:
    """``label`` only names the network in logs (e.g. why its κ is infinite); it never changes a number."""

    mask: Mask
    repeat: int
    init_seed: int
    label: str


def derive_seed(seed: int, *keys: int) -> int:
    """A 31-bit seed for (seed, keys): independent streams for inputs, inits, rounds and repeats."""
    return int(np.random.SeedSequence(seed, spawn_key=keys).generate_state(1)[0] >> 1)


def init_seed(seed: int, round_index: int, repeat: int) -> int:
    """Weights are redrawn for every round and repeat (the reference code re-inits for every network)."""
    return derive_seed(seed, 2, round_index, repeat)


def shared_inputs(cfg: TenasConfig) -> dict[str, torch.Tensor]:
    """Input batches of every repeat, stacked: [repeats, B, 3, H, W] for κ, [repeats, batches, n, 1, 3, 3] for R.

    Drawn once per search (repeat r uses the same batches in every round) and
    shipped to the actors once with ``ray.put``.
    """
    inputs = cfg.inputs
    ntk = [ntk_batch(inputs.batch_size, derive_seed(cfg.seed, 0, r), inputs.source, inputs.image_size, inputs.root)
           for r in range(cfg.prune.repeats)]
    regions = [torch.stack(region_inputs(derive_seed(cfg.seed, 1, r), n=inputs.region_samples,
                                         batches=inputs.region_batches, source=inputs.source, root=inputs.root))
               for r in range(cfg.prune.repeats)]
    return {NTK_KEY: torch.stack(ntk), REGIONS_KEY: torch.stack(regions)}


@dataclasses.dataclass(frozen=True)
class TenasScorer:
    """The scorer every worker builds; ``functools.partial(TenasScorer, space, init)`` is the picklable factory."""

    space: PrunableSpace
    init: str

    def __call__(self, task: ScoreTask, shared: Mapping[str, Any]) -> Score:
        device = shared[DEVICE_KEY]
        net = self.space.kappa_net(task.mask)
        init_weights(net, self.init, task.init_seed, fan="out")
        kappa = ntk_condition_number(net.to(device), shared[NTK_KEY][task.repeat], label=task.label)
        thin = self.space.regions_net(task.mask)
        init_weights(thin, self.init, task.init_seed, fan="in")
        regions = count_linear_regions(thin.to(device), list(shared[REGIONS_KEY][task.repeat]))
        return Score(float(kappa), int(regions))
