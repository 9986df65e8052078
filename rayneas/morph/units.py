"""Unit-level Net2Net arithmetic shared by the plain-CNN and DenseNet transforms.

Both spaces widen the same way: a layer's output units are replicated
(``mapping[i]`` is the old unit that new unit ``i`` copies) and whatever reads
them takes each copy's input weights divided by the number of copies, so the
sum it computes is unchanged. Only *which* modules read a layer differs between
the spaces, so that lookup stays in each space's transform and the arithmetic
lives here once.
"""
from __future__ import annotations

import torch
from torch import nn


def random_mapping(old: int, new: int, rng: torch.Generator) -> torch.Tensor:
    """``new`` units: the ``old`` ones in place, then copies of randomly chosen old units."""
    return torch.cat([torch.arange(old), torch.randint(old, (new - old,), generator=rng)])


def split_factors(mapping: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """1 / (number of copies of the unit each entry of ``mapping`` copies), as float64."""
    counts = torch.bincount(mapping, minlength=size or 0)
    return 1.0 / counts[mapping].double()


def replicated(source: nn.Module, target: nn.Module, mapping: torch.Tensor) -> None:
    """Fill ``target``'s units with copies of ``source``'s units ``mapping``.

    Every per-unit tensor of the modules meant here (conv/linear weight and
    bias, BN affine parameters and running statistics) has the units on its
    first axis; a scalar such as ``num_batches_tracked`` is copied as is.
    """
    mapping = mapping.to(next(iter(source.state_dict().values())).device)
    target.load_state_dict({k: v[mapping] if v.dim() else v for k, v in source.state_dict().items()})


def inputs_replicated(source: nn.Module, target: nn.Module, mapping: torch.Tensor, scale: torch.Tensor) -> None:
    """Fill a Conv2d/Linear ``target`` reading ``len(mapping)`` inputs: input i is ``source``'s input mapping[i],
    times ``scale[i]`` (a copied unit's outgoing weights divided by its number of copies)."""
    weight = source.weight.detach()
    view = (1, -1, 1, 1) if weight.dim() == 4 else (1, -1)
    with torch.no_grad():
        target.weight.copy_(weight[:, mapping.to(weight.device)] * scale.to(weight).view(view))
        if source.bias is not None:
            target.bias.copy_(source.bias.detach())
