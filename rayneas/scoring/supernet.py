"""What one scoring task computes: κ and R (or any registered indicators) of one masked supernet.

TE-NAS scores a round's candidates this way, a zero-cost search its sampled
cells (a cell is the supernet masked to one op per edge), so an indicator
gives the same number for the same network in both.

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
import functools
import math
from typing import Any, Mapping, NamedTuple, Sequence

import torch

from rayneas.data import image_batch
from rayneas.indicators import indicator_info, init_weights, measure, measure_indicators, ntk_batch, region_inputs
from rayneas.scoring.config import Mode
from rayneas.scoring.host import DEVICE_KEY
from rayneas.seeding import derive_seed
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import PrunableSpace

#: The indicators TE-NAS prunes by; ``prune.indicators`` and a zero-cost run's ``indicators`` default to them.
TENAS_INDICATORS: tuple[str, ...] = ("ntk", "linear_regions")


class Score(NamedTuple):
    """One network, one repeat: NTK condition number (inf when degenerate) and linear-region count.

    ``regions_baseline`` is set in reference mode only: the unpruned thin
    network's R under this candidate's own init (the reference code draws a
    fresh thin supernet for every candidate), so ΔR compares like with like.
    ``others``: every other indicator scored, name → value. κ and R are NaN
    when they were not asked for.
    """

    kappa: float
    regions: float
    regions_baseline: int | None = None
    others: Mapping[str, float] | None = None

    def value(self, name: str) -> float:
        """The value of indicator ``name`` (``ntk`` is κ, ``linear_regions`` R)."""
        if name == "ntk":
            return self.kappa
        if name == "linear_regions":
            return self.regions
        return (self.others or {})[name]


def mean_over_repeats(values: Sequence[float]) -> float:
    """A network's value over its repeats: the mean, or the infinity a degenerate repeat gave (κ = inf, −inf)."""
    for v in values:
        if math.isinf(v):
            return v
    return math.fsum(values) / len(values)


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


def shared_inputs(cfg: Any, indicators: Sequence[str] = TENAS_INDICATORS) -> dict[str, torch.Tensor]:
    """Input batches of every repeat, stacked, for the networks ``indicators`` are computed on.

    κ network: [repeats, B, 3, H, W]; thin network: [repeats, batches, n, 1, 3, 3];
    every eval-network indicator its declared batch ([repeats, B, C, H, W],
    batch capped by ``inputs.proxy_batch``, under `input_key`; indicators with
    the same declaration share one tensor). Drawn once per search (repeat r
    uses the same batches in every round) and shipped to the actors once with
    ``ray.put``. ``cfg``: a config with ``seed``, ``inputs`` and ``repeats``
    (TE-NAS: ``prune.repeats``).
    """
    inputs, repeats = cfg.inputs, _repeats(cfg)
    networks = {indicator_info(name).network for name in indicators}
    shared: dict[str, torch.Tensor] = {}
    if "kappa" in networks:
        shared[NTK_KEY] = torch.stack([ntk_batch(inputs.batch_size, derive_seed(cfg.seed, 0, r), inputs.source,
                                                 inputs.image_size, inputs.root) for r in range(repeats)])
    if "thin" in networks:
        shared[REGIONS_KEY] = torch.stack([
            torch.stack(region_inputs(derive_seed(cfg.seed, 1, r), n=inputs.region_samples,
                                      batches=inputs.region_batches, source=inputs.source, root=inputs.root))
            for r in range(repeats)])
    drawn: dict[tuple, torch.Tensor] = {}
    for name in indicators:
        spec = indicator_info(name).inputs
        if indicator_info(name).network != "eval":
            continue
        batch = spec.batch_size or inputs.batch_size
        key = (spec.source or inputs.source, min(batch, inputs.proxy_batch or batch), spec.channels,
               spec.size or inputs.image_size, spec.batches)
        if key not in drawn:
            source, n, channels, size, batches = key
            drawn[key] = torch.stack([
                torch.stack([image_batch(source, n, derive_seed(cfg.seed, 5, r, b), size, inputs.root,
                                         channels=channels).contiguous() for b in range(batches)])
                for r in range(repeats)])
        shared[input_key(name)] = drawn[key]
    return shared


def input_key(name: str) -> str:
    """Where an eval-network indicator's batches are in ``shared``: [repeats, batches, B, C, H, W]."""
    return f"inputs_{name}"


def _repeats(cfg: Any) -> int:
    prune = getattr(cfg, "prune", None)
    return prune.repeats if prune is not None else cfg.repeats


class TenasScorer:
    """The scorer every worker builds; ``functools.partial(TenasScorer, space, mode)`` is the picklable factory.

    paper mode draws Kaiming-normal weights (fan_out for κ, fan_in for R and
    the eval network, as the reference's ``kaiming_norm_fanout`` / ``_fanin``
    branches and AZ-NAS would); reference mode PyTorch's default init, which
    is what that code runs. ``indicators`` (default κ and R) are each computed
    on the network their registration names: the κ network and the
    eval-size network from the task's ``kappa_seed``, the thin network from
    its ``regions_seed``.

    Each worker builds its networks once and only re-masks them per task:
    every op is built whatever the mask, and `init_weights` redraws every
    weight and norm statistic, so a re-masked network computes exactly what a
    fresh one would (tested), without paying for a few hundred modules per task.
    """

    def __init__(self, space: PrunableSpace, mode: Mode, indicators: Sequence[str] = TENAS_INDICATORS) -> None:
        self.space, self.mode, self.indicators = space, mode, tuple(indicators)
        self._nets: dict[str, torch.nn.Module] = {}

    def _net(self, which: str, mask: Mask, device: torch.device) -> torch.nn.Module:
        net = self._nets.get(which)
        if net is None:
            build = {"kappa": self.space.kappa_net, "thin": self.space.regions_net, "eval": self.space.eval_net}
            net = self._nets[which] = build[which](mask).to(device)
        else:
            net.set_mask(mask)
        return net

    def __call__(self, task: ScoreTask, shared: Mapping[str, Any]) -> Score:
        device = shared[DEVICE_KEY]
        values: dict[str, float] = {}
        baseline = None
        for which, fan, seed in (("kappa", "out", task.kappa_seed), ("thin", "in", task.regions_seed),
                                 ("eval", "in", task.kappa_seed)):
            names = [n for n in self.indicators if indicator_info(n).network == which]
            if not names:
                continue
            if which == "thin" and task.regions_baseline is not None and "linear_regions" in names:
                thin = init_weights(self._net(which, task.regions_baseline, device), self.mode, seed, fan=fan)
                baseline = int(measure("linear_regions", thin, self._inputs(which, "linear_regions", task, shared),
                                       task.label))
            net = init_weights(self._net(which, task.mask, device), self.mode, seed, fan=fan)
            values.update(measure_indicators(names, net, lambda name: self._inputs(which, name, task, shared),
                                             functools.partial(measure, label=task.label)))
        regions = values.pop("linear_regions", math.nan)
        return Score(values.pop("ntk", math.nan), regions if math.isnan(regions) else int(regions), baseline,
                     values or None)

    @staticmethod
    def _inputs(which: str, name: str, task: ScoreTask, shared: Mapping[str, Any]) -> Any:
        if which == "kappa":
            return shared[NTK_KEY][task.repeat]
        if which == "thin":
            return list(shared[REGIONS_KEY][task.repeat])
        batches = shared[input_key(name)][task.repeat]
        return batches[0] if len(batches) == 1 else list(batches)
