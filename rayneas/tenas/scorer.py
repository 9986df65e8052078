"""What one scoring task computes: κ and R of one masked supernet under one repeat's inits and inputs.

A task is a pure function of (masks, repeat, init seeds) and the shared input
batches, so any worker, in any order, gives the same numbers. Networks are
built with every op present and only the mask changed, so a supernet and its
pruned candidates start from exactly the same weights when their seeds are
equal, as TE-NAS copies them.

Which seed each network gets is the difference between the two modes
(`init_seeds`): "paper" redraws Kaiming weights for every (round, repeat);
"reference" does what the public TE-NAS code really runs (docs/tenas.md).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from rayneas.indicators import count_linear_regions, init_weights, ntk_batch, ntk_condition_number, region_inputs
from rayneas.scoring.host import DEVICE_KEY
from rayneas.seeding import derive_seed
from rayneas.tenas.config import Mode, TenasConfig
from rayneas.tenas.prunable import Candidate, Mask, PrunableSpace
from rayneas.tenas.rank import Score

NTK_KEY, REGIONS_KEY = "ntk_inputs", "region_inputs"


@dataclasses.dataclass(frozen=True)
class ScoreTask:
    """One network and repeat. ``label`` only names the network in logs; it never changes a number.

    ``regions_baseline`` (reference mode): also count the linear regions of
    this mask with the same thin-network init, the candidate's own R_full.
    """

    mask: Mask
    repeat: int
    kappa_seed: int
    regions_seed: int
    label: str
    regions_baseline: Mask | None = None


@dataclasses.dataclass(frozen=True)
class InitSeeds:
    kappa: int
    regions: int


def init_seeds(mode: Mode, seed: int, round_index: int, repeat: int, candidate: int | None) -> InitSeeds:
    """The weights each network of a round is drawn from; ``candidate`` is None for the supernet itself.

    paper: Kaiming weights redrawn per (round, repeat), shared by the supernet
    and every candidate of that repeat (κ and R networks from the same seed).
    reference: the reference launcher's ``--init kaiming_normal`` matches no
    branch of its ``init_model``, so nothing is ever re-initialised: one
    PyTorch-default κ supernet per round, shared by every candidate and repeat
    (repeats differ only in their input batches), and a fresh thin network per
    candidate, shared by its repeats.
    """
    if mode == "paper":
        shared = derive_seed(seed, 2, round_index, repeat)
        return InitSeeds(shared, shared)
    return InitSeeds(derive_seed(seed, 2, round_index), derive_seed(seed, 3, round_index, 0 if candidate is None
                                                                     else candidate + 1))


def candidate_name(space: PrunableSpace, c: Candidate) -> str:
    return f"{c.cell} {space.edge_label(c.edge)} {c.op}"


def round_tasks(cfg: TenasConfig, space: PrunableSpace, mask: Mask, index: int,
                candidates: tuple[Candidate, ...]) -> list[ScoreTask]:
    """One task per (network, repeat): the supernet once per repeat, then every candidate.

    In reference mode each candidate has its own thin network, so its task also
    counts the supernet's R under that init (``regions_baseline``).
    """
    mode = cfg.prune.mode
    baseline = mask if mode == "reference" else None
    nets = [(mask, None, None, f"round {index + 1} supernet")] + [
        (mask.without(*c), i, baseline, f"round {index + 1} without {candidate_name(space, c)}")
        for i, c in enumerate(candidates)]
    tasks = []
    for m, candidate, base, label in nets:
        for r in range(cfg.prune.repeats):
            seeds = init_seeds(mode, cfg.seed, index, r, candidate)
            tasks.append(ScoreTask(m, r, seeds.kappa, seeds.regions, f"{label}, repeat {r}", base))
    return tasks


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


class TenasScorer:
    """The scorer every worker builds; ``functools.partial(TenasScorer, space, mode)`` is the picklable factory.

    paper mode draws Kaiming-normal weights (fan_out for κ, fan_in for R, as
    the reference's ``kaiming_norm_fanout`` / ``_fanin`` branches would);
    reference mode PyTorch's default init, which is what that code runs.

    Each worker builds its two supernets once and only re-masks them per task:
    every op is built whatever the mask, and `init_weights` redraws every
    weight and norm statistic, so a re-masked network computes exactly what a
    fresh one would (tested), without paying for a few hundred modules per task.
    """

    def __init__(self, space: PrunableSpace, mode: Mode) -> None:
        self.space, self.mode = space, mode
        self._nets: dict[str, torch.nn.Module] = {}

    def _net(self, which: str, mask: Mask, device: torch.device) -> torch.nn.Module:
        net = self._nets.get(which)
        if net is None:
            build = self.space.kappa_net if which == "kappa" else self.space.regions_net
            net = self._nets[which] = build(mask).to(device)
        else:
            net.set_mask(mask)
        return net

    def __call__(self, task: ScoreTask, shared: Mapping[str, Any]) -> Score:
        device = shared[DEVICE_KEY]
        net = init_weights(self._net("kappa", task.mask, device), self.mode, task.kappa_seed, fan="out")
        kappa = ntk_condition_number(net, shared[NTK_KEY][task.repeat], label=task.label)
        crops = list(shared[REGIONS_KEY][task.repeat])

        def regions(mask: Mask) -> int:
            thin = init_weights(self._net("regions", mask, device), self.mode, task.regions_seed, fan="in")
            return int(count_linear_regions(thin, crops))

        baseline = None if task.regions_baseline is None else regions(task.regions_baseline)
        return Score(float(kappa), regions(task.mask), baseline)
