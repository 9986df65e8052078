"""Rewards of an EAS episode: the paper's tan transform of validation accuracy, and a cheap surrogate.

(The training-free rewards, `rayneas.eas.trainfree`, put an indicator quantile through the same tan.)

tan(acc * pi / 2) grows steeply near 1, so each further point of accuracy is
worth more than the last (the paper's choice). The surrogate exists so that
tests and RL plumbing run in milliseconds; it says nothing about real
accuracy and is never the default.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from rayneas.spaces.plain import Layer

# tan(pi / 2) is infinite: a perfect validation score is capped just below it (reward ~636.6).
MAX_ACCURACY = 0.999


def tan_reward(accuracy: float) -> float:
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}")
    return math.tan(min(accuracy, MAX_ACCURACY) * math.pi / 2)


def surrogate_accuracy(arch: Sequence[Layer], grown: Sequence[str] = ("conv", "fc")) -> float:
    """A made-up, deterministic "accuracy" in (0, 0.95) that rises with depth and log-width of the layers of the
    ``grown`` kinds (those the transforms act on: `EASSpace.grown`; by default the plain space's)."""
    layers = [layer for layer in arch if layer.kind in grown]
    capacity = sum(math.log2(layer.width) for layer in layers) / len(layers) + 0.25 * len(layers)
    return 0.95 * (1 - math.exp(-capacity / 8))


@dataclasses.dataclass(frozen=True)
class UntrainedResult:
    """A score reached without training (the surrogate, an indicator quantile, an inherited-weights accuracy)
    in the shape of a training result, so the NetPool records it like one."""

    val_accuracy: float
    epochs: int = 0
    seconds: float = 0.0
