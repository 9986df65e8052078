"""R_N, the number of linear regions a ReLU network cuts its input samples into (TE-NAS expressivity).

Two inputs lie in the same linear region when every ReLU of the network is
on/off for both alike, so R = the number of distinct on/off patterns over the
samples. As in the reference code, forward hooks on every ``nn.ReLU`` record
``output > 0``, the network runs in train mode (BatchNorm normalises each batch
with its own statistics), batches go through separately and their patterns
are pooled. Patterns are packed into bytes and counted with
``torch.unique(dim=0)``, never as Python tuples.

A network whose output is the same for every sample (a cell with no path from
input to output) is a constant function: one region, whatever its dead
branches' ReLUs do.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from rayneas.indicators.inputs import REGION_CROP
from rayneas.indicators.registry import InputSpec, register_indicator
from rayneas.nn_state import device_of, train_mode

_BIT_WEIGHTS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


@register_indicator("linear_regions", direction="higher", network="thin",
                    inputs=InputSpec(batch_size=1000, channels=1, size=REGION_CROP, batches=3))
def count_linear_regions(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor]) -> int:
    """Distinct ReLU on/off patterns of ``model`` over ``inputs`` (one S×C×H×W batch or a list of them)."""
    batches = _as_batches(inputs)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU module: count_linear_regions records activation patterns "
            "with forward hooks on nn.ReLU modules (functional relu calls are invisible to it)"
        )
    device = device_of(model)
    records: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        records.append((out > 0).reshape(out.shape[0], -1))

    handles = [relu.register_forward_hook(record) for relu in relus]
    patterns: list[torch.Tensor] = []
    first_output: torch.Tensor | None = None
    constant = True
    try:
        with train_mode(model), torch.no_grad():
            for batch in batches:
                records.clear()
                out = model(batch.to(device))
                if not records:
                    raise ValueError(f"none of the nn.ReLU modules of {type(model).__name__} ran in its forward")
                patterns.append(torch.cat(records, dim=1))
                first_output = out[:1] if first_output is None else first_output
                constant = constant and bool((out == first_output).all())
    finally:
        for handle in handles:
            handle.remove()
    if constant:
        return 1
    return int(torch.unique(pack_bits(torch.cat(patterns)), dim=0).shape[0])


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """N × F booleans → N × ceil(F/8) uint8, so equal rows stay equal and unequal rows unequal."""
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(bits.shape[0], pad)], dim=1)
    grouped = bits.reshape(bits.shape[0], -1, 8).to(torch.uint8)
    return (grouped * _BIT_WEIGHTS.to(bits.device)).sum(dim=2, dtype=torch.uint8)


def _as_batches(inputs: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    batches = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    if not batches:
        raise ValueError("count_linear_regions needs at least one input batch, got an empty list")
    for i, batch in enumerate(batches):
        if not isinstance(batch, torch.Tensor) or batch.dim() != 4 or batch.shape[0] < 1:
            raise ValueError(
                f"input batch {i} must be a non-empty S×C×H×W tensor (e.g. 1000×1×3×3 crops from "
                f"region_inputs), got {type(batch).__name__} {tuple(getattr(batch, 'shape', ()))}"
            )
    return batches
