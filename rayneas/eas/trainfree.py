"""The training-free EAS rewards (``reward.mode: indicators`` / ``hybrid``): a child's quantile among a fixed
reference pool of random children, by training-free indicators.

Indicators only rank networks within a pool, but an RLlib env runner must
return a reward when its episode ends, before the iteration's other children
exist. So every child is ranked against the same reference pool: the first
scoring in a process draws ``reward.reference_size`` random children of the
start net (random valid actions, episodes as the env runs them, seeded by the
run seed alone) and scores them once. The reward is then a function of the
child's architecture and the run's settings only: the same on any env runner,
in any order, after ``--resume``, and stationary over the search, which a rank
within the current iteration would not be.

Each network is scored at a fresh init seeded by the run seed and its
architecture string (the indicators are defined at init, not on the inherited
weights), on a batch of the dataset's own training images drawn once per run.
A network the indicators cannot tell inputs apart on gets its worst value
(`rayneas.indicators.measure`), never an error.
"""
from __future__ import annotations

import functools
import hashlib
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch

from rayneas.config import ConfigError
from rayneas.eas.actions import action_masks, apply_action, episode_phases
from rayneas.eas.config import EASEnvConfig
from rayneas.eas.data import ChildData
from rayneas.eas.encoding import ArchEncoder
from rayneas.eas.random_policy import random_action
from rayneas.eas.space import EASSpace
from rayneas.indicators import aggregate, indicator_info, init_weights, measure, measure_indicators, takes_option
from rayneas.indicators.aggregate import get_aggregation
from rayneas.seeding import derive_seed

# derive_seed streams of the run seed (the env's own draws come from reset(seed=...), never from these)
REFERENCE_STREAM, INIT_STREAM, INPUTS_STREAM = 101, 102, 103
DEFAULT_BATCH = 64  # images for an indicator whose registration asks for any batch size

#: Indicator values of each run's reference pool, per process, keyed by the NetPool setting of its children
#: (which names everything the values depend on).
REFERENCES: dict[str, tuple[dict[str, float], ...]] = {}


def arch_seed(seed: int, arch: str) -> int:
    """The init seed of ``arch`` in a run: the same network always gets the same weights, whoever scores it."""
    return derive_seed(seed, INIT_STREAM, int.from_bytes(hashlib.sha256(arch.encode()).digest()[:4], "big"))


@contextmanager
def one_thread() -> Iterator[None]:
    """Float reductions summed by one thread in every process, so the driver (several torch threads) and an
    env runner (one) compute identical values, and ranks never flip between them (as `ScorerPool` does)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class IndicatorScorer:
    """The values of ``reward.indicators`` for an architecture of the run's space."""

    def __init__(self, cfg: EASEnvConfig, space: EASSpace, data: ChildData) -> None:
        self.cfg, self.space, self.data = cfg, space, data
        self.names: tuple[str, ...] = tuple(cfg.reward.indicators or ())
        order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(
            derive_seed(cfg.seed, INPUTS_STREAM)))
        self.images = data.x_train[order]
        # AZ-NAS's indicators take the feature maps (`EASSpace.feature_modules`); the others do not
        self.featured = {n for n in self.names if takes_option(n, "features")}
        if self.featured:
            maps = len(space.feature_modules(self._net(space.to_string(space.start()))))
            if maps < 2:
                raise ConfigError(f"reward.indicators {sorted(self.featured)} compare consecutive feature maps, and "
                                  f"the start net {space.start_net!r} has {maps} (its conv and pool layers, or "
                                  "DenseNet layers); remove them from reward.indicators or start from a deeper net")

    def _net(self, arch: str) -> torch.nn.Module:
        net = self.space.build(arch, self.data.in_channels, self.data.num_classes)
        return init_weights(net, "paper", arch_seed(self.cfg.seed, arch), fan="in").to(self.cfg.device)

    def inputs(self, name: str) -> torch.Tensor:
        """The first images of the run's shuffled training set, as many as the indicator's registration asks
        (at most all of them)."""
        return self.images[:indicator_info(name).inputs.batch_size or DEFAULT_BATCH].to(self.cfg.device)

    def __call__(self, arch: str) -> dict[str, float]:
        net = self._net(arch)
        features = self.space.feature_modules(net) if self.featured else None
        with one_thread():
            return measure_indicators(self.names, net, self.inputs, functools.partial(measure, label=arch),
                                      lambda name: {"features": features} if name in self.featured else {})


def reference_archs(cfg: EASEnvConfig, space: EASSpace, data: ChildData) -> list[str]:
    """``reward.reference_size`` random children of the start net, as episodes of the run's settings grow them
    with uniformly random valid actions (`random_action`); child i depends on the run seed and i only."""
    encoder = ArchEncoder(space)
    archs = []
    for i in range(cfg.reward.reference_size):
        rng = np.random.default_rng(derive_seed(cfg.seed, REFERENCE_STREAM, i))
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, REFERENCE_STREAM, i, 1))
        net = space.build(space.start(), data.in_channels, data.num_classes, seed=cfg.seed)
        for phase in episode_phases(cfg.episode, rng):
            action = random_action(action_masks(encoder, space.layers(net)), rng)
            apply_action(space, net, phase, action, rng=gen, noise=cfg.noise, images=data.x_train)
        archs.append(space.arch_string(net))
    return archs


def quantile(method: str, values: Sequence[float]) -> float:
    """The share of the reference pool (``values[:-1]``) the child (``values[-1]``) beats, ties counting half."""
    child, reference = values[-1], values[:-1]
    sign = 1.0 if get_aggregation(method).direction == "higher" else -1.0
    beaten = sum(sign * (child - v) > 0 for v in reference) + 0.5 * sum(v == child for v in reference)
    return beaten / len(reference)


class ReferenceQuantile:
    """A child's quantile, in [0, 1], of its ``reward.aggregate`` among the reference pool and itself.

    ``key`` (the children's NetPool setting) names the reference in the
    per-process cache `REFERENCES`, so every env in a process scores it once.
    """

    def __init__(self, cfg: EASEnvConfig, space: EASSpace, data: ChildData, key: str) -> None:
        self.cfg, self.space, self.data, self.key = cfg, space, data, key
        self.scorer = IndicatorScorer(cfg, space, data)

    def reference(self) -> tuple[dict[str, float], ...]:
        if self.key not in REFERENCES:
            with one_thread():  # also the walks: many threads on a few tiny tensors are 30x slower on a busy CPU
                archs = reference_archs(self.cfg, self.space, self.data)
                REFERENCES[self.key] = tuple(self.scorer(arch) for arch in archs)
        return REFERENCES[self.key]

    def __call__(self, arch: str) -> float:
        pool = [*self.reference(), self.scorer(arch)]
        labels = [f"reference child {i}" for i in range(len(pool) - 1)] + [arch]
        method = self.cfg.reward.aggregate
        values = aggregate(method, {name: [row[name] for row in pool] for name in self.scorer.names},
                           candidates=labels, nonfinite="worst")
        return quantile(method, values)
