"""What the zero-cost proxies share: their errors, batch checks and a walk over the autograd graph.

A network whose output does not depend on its input (an NB201 cell of only
`none` ops, or any cell with no path from input to output) has no meaningful
NASWOT, JacoV or AZ-NAS score: its ReLU codes, input gradients and feature
maps are constant over the batch, and the formulas divide by zero or take
the log of zero. Those indicators raise `DegenerateNetworkError` for it
instead of returning NaN; `flops` and `params` stay finite and are returned.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from rayneas.errors import RayneasError


class IndicatorError(RayneasError, ValueError):
    """An indicator cannot give a number for this model and batch; the message names which and why."""


class DegenerateNetworkError(IndicatorError):
    """The model's output is the same for every input: no path leads from its input to its output."""


def check_image_batch(inputs: object, indicator: str, minimum: int = 2) -> torch.Tensor:
    """``inputs`` as a float N×C×H×W batch of at least ``minimum`` samples, or a ValueError saying what is wrong."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{indicator}: inputs must be a torch.Tensor batch, got {type(inputs).__name__}")
    if inputs.dim() != 4 or inputs.shape[0] < minimum:
        raise ValueError(f"{indicator} needs an N×C×H×W batch of at least {minimum} inputs, "
                         f"got shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise ValueError(f"{indicator}: inputs must be floating point images, got dtype {inputs.dtype}")
    return inputs


def check_output(model: nn.Module, out: object, batch: int, indicator: str) -> torch.Tensor:
    """The model's output, checked: one finite row per input that is not the same for every input."""
    if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != batch:
        raise ValueError(f"{indicator}: {type(model).__name__} must return a tensor with one row per input; "
                         f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))} for {batch} inputs")
    if not bool(torch.isfinite(out).all()):
        raise IndicatorError(f"{indicator}: {type(model).__name__} returns NaN or infinite outputs "
                             "(NaN or huge weights?), so no score can be computed")
    if bool((out == out[:1]).all()):
        raise DegenerateNetworkError(
            f"{indicator}: {type(model).__name__} gives the same output for all {batch} inputs: no path leads "
            "from its input to its output (e.g. a NAS-Bench-201 cell of only `none` ops), so it has no "
            f"{indicator} score; leave it out of the pool or rank it last (or, if the inputs are all equal, "
            "pass distinct ones)"
        )
    return out


def graph_nodes(roots: Iterable[torch.Tensor]) -> set[object]:
    """Every autograd node the graphs of ``roots`` reach (the nodes a backward from them would visit)."""
    seen: set[object] = set()
    stack = [root.grad_fn for root in roots]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return seen


def reached_parameters(model: nn.Module, out: torch.Tensor) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every parameter ``out``'s autograd graph reaches, in ``named_parameters`` order."""
    # AccumulateGrad nodes hold their leaf tensor in .variable.
    reached = {id(getattr(node, "variable")) for node in graph_nodes([out]) if hasattr(node, "variable")}
    return [(name, p) for name, p in model.named_parameters() if id(p) in reached]
