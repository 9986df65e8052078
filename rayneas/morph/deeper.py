"""Net2Deeper on a live `PlainCNN`: an extra layer that starts as the identity.

The new layer follows a conv or fc layer, whose output has passed a ReLU and
so is >= 0; the new layer's own ReLU is then the identity on it. An identity
fc is I with zero bias. An identity conv is a kernel with a single 1 at the
centre of each channel's own slice; its BatchNorm is set from the statistics
of one batch of data (mean m, variance v per channel, as the network computes
them in train mode): running stats (m, v), gamma sqrt(v + eps), beta m. In eval
mode BN(y) = y then holds exactly whatever (m, v) are; taking them from a train
mode pass also makes the new layer the identity when training resumes on
batches like that one.
"""
from __future__ import annotations

import torch

from rayneas.morph.arch import MorphError, deepened
from rayneas.morph.noise import add_noise, check_noise
from rayneas.nn_state import train_mode
from rayneas.spaces.plain import MAX_LAYERS, ConvBlock, FcBlock, PlainCNN, make_block


def _fit_identity_bn(net: PlainCNN, index: int, block: ConvBlock, batch: torch.Tensor) -> None:
    with train_mode(net):  # batch statistics, as the layer will see in training; running ones restored after
        y = block.conv(net.activation(batch, index))
    mean, var = y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), correction=0)
    block.bn.running_mean.copy_(mean)
    block.bn.running_var.copy_(var)
    block.bn.weight.copy_(torch.sqrt(var + block.bn.eps))
    block.bn.bias.copy_(mean)


def deepen(net: PlainCNN, index: int, *, kernel: int = 3, batch: torch.Tensor | None = None,
           rng: torch.Generator | None = None, noise: float = 0.0, max_layers: int = MAX_LAYERS) -> None:
    """Insert an identity layer after conv/fc layer ``index`` of ``net``, in place.

    A conv gets a ``kernel`` x ``kernel`` identity conv with as many filters,
    whose BN is fitted on ``batch`` (network inputs, e.g. 64 training images);
    an fc gets an identity fc (``kernel`` and ``batch`` are not used).
    ``noise`` > 0 adds N(0, (noise * std(W))^2) to the new weights, drawn from
    ``rng`` (the paper uses 0.001). Raises `MorphError` (net unchanged) for a
    pool layer, a bad index or kernel, or a network already at ``max_layers``.
    """
    new_arch = deepened(net.arch, index, kernel, max_layers)
    check_noise(noise)
    layer = new_arch[index + 1]
    if layer.kind == "conv" and batch is None:
        raise MorphError(f"cannot deepen after conv layer {index}: pass `batch` (a batch of inputs) so the "
                         "new BatchNorm can be set to the identity on real data statistics")
    if layer.kind == "conv" and (batch.dim() != 4 or batch.shape[1] != net.in_channels):
        raise MorphError(f"cannot deepen: `batch` must be network inputs of shape N x {net.in_channels} x H x W, "
                         f"got {tuple(batch.shape)}")
    if noise and rng is None:
        raise MorphError("noise > 0 needs `rng` (a seeded torch.Generator) to draw it from")
    reference = next(net.parameters())
    block = make_block(layer, layer.width).to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        weight = block.linear.weight if isinstance(block, FcBlock) else block.conv.weight
        weight.zero_()
        units = torch.arange(layer.width, device=weight.device)
        if isinstance(block, FcBlock):
            weight[units, units] = 1.0
            block.linear.bias.zero_()
        else:
            weight[units, units, kernel // 2, kernel // 2] = 1.0
        if noise:
            add_noise(weight, weight, noise, rng)
        if isinstance(block, ConvBlock):
            _fit_identity_bn(net, index, block, batch.to(device=reference.device, dtype=reference.dtype))
    net.insert(index + 1, layer, block)
