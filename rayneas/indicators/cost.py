"""Model size as a proxy: FLOPs per sample and parameter count (AZ-NAS's fourth proxy, NASLib's baselines).

On NAS-Bench-201 the bigger cells are the better ones often enough that
AZ-NAS ranks candidates by FLOPs too (its "complexity", ranked ascending like
its other proxies: more FLOPs ranks higher), so both are registered as
higher-is-better, computed on the evaluation-size network.

- ``flops``: floating-point operations of one forward per sample, as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them: 2 per
  multiply-accumulate of convolutions and matrix products (BatchNorm, ReLU,
  pooling and additions are not counted). NAS-Bench-201's tables list
  multiply-adds in millions, so its numbers are about half of these; the
  ranking is what matters here.
- ``params``: the number of parameters the output depends on (reached by the
  output's autograd graph): a masked supernet's switched-off ops and frozen
  parameters are not counted.

Both run the model in eval mode (a batch of one is enough) and restore its
modes and buffers. They stay finite for a network with no path from input to
output: its stem, reduction blocks and classifier still cost.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rayneas.indicators.common import check_image_batch, reached_parameters
from rayneas.indicators.registry import InputSpec, register_indicator
from rayneas.nn_state import device_of, eval_mode

COST_INPUTS = InputSpec(batch_size=1, size=32)


@register_indicator("flops", direction="higher", network="eval", inputs=COST_INPUTS)
def count_flops(model: nn.Module, inputs: torch.Tensor) -> float:
    """FLOPs of one forward of ``model`` per input sample (FlopCounterMode's count / batch size)."""
    x = check_image_batch(inputs, "flops", minimum=1).to(device_of(model))
    with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / x.shape[0]


@register_indicator("params", direction="higher", network="eval", inputs=COST_INPUTS)
def count_params(model: nn.Module, inputs: torch.Tensor) -> float:
    """Number of trainable parameter entries ``model``'s output depends on, on ``inputs``."""
    x = check_image_batch(inputs, "params", minimum=1).to(device_of(model))
    with eval_mode(model), torch.enable_grad():
        out = model(x)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"params: {type(model).__name__} must return a tensor, got {type(out).__name__}")
        return float(sum(p.numel() for _, p in reached_parameters(model, out)))
