"""The paper's optional Net2Net noise, a fraction of the weights' spread.

Exact copies stay exact copies under gradient descent (they get identical
gradients), so EAS perturbs new units a little; the preservation tests run
with it off.
"""
from __future__ import annotations

import torch

from rayneas.morph.arch import MorphError


def check_noise(noise: float) -> None:
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise MorphError(f"noise must be a number >= 0 (a fraction of the weights' std), got {noise!r}")


def add_noise(target: torch.Tensor, reference: torch.Tensor, ratio: float, rng: torch.Generator) -> None:
    """target += N(0, (ratio * std(reference))^2), drawn on the CPU so every device gets the same draw."""
    std = reference.detach().double().std(correction=0).item()
    noise = torch.randn(target.shape, generator=rng, dtype=torch.float64) * (ratio * std)
    target.add_(noise.to(device=target.device, dtype=target.dtype))
