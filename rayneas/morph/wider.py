"""Net2Wider on a live `PlainCNN`: more filters/units, same function.

New units copy randomly chosen existing ones (incoming weights and, for a
conv, its BatchNorm parameters and running statistics); the layer that reads
them divides each copied unit's outgoing weights by its number of copies, so
the sum it computes is unchanged. Pools and the global average pool act per
channel, so a replicated channel stays a replica up to the next conv, fc or the
classifier, whichever reads it.
"""
from __future__ import annotations

import torch
from torch import nn

from rayneas.morph.arch import widened
from rayneas.morph.noise import add_noise, check_noise
from rayneas.morph.units import inputs_replicated, random_mapping, replicated, split_factors
from rayneas.spaces.plain import ConvBlock, PlainCNN, in_widths, make_block


def _reader(net: PlainCNN, index: int) -> tuple[nn.Module, str]:
    """The module (and its attribute name) whose weights read layer ``index``'s output."""
    for j in range(index + 1, len(net.arch)):
        if net.arch[j].kind == "conv":
            return net.blocks[j], "conv"
        if net.arch[j].kind == "fc":
            return net.blocks[j], "linear"
    return net, "classifier"


def _with_inputs(module: nn.Module, mapping: torch.Tensor, scale: torch.Tensor) -> nn.Module:
    """A copy of a Conv2d/Linear reading ``len(mapping)`` inputs: input i is old input mapping[i], scaled."""
    if isinstance(module, nn.Conv2d):
        new = nn.Conv2d(len(mapping), module.out_channels, module.kernel_size, padding=module.padding,
                        bias=module.bias is not None)
    else:
        new = nn.Linear(len(mapping), module.out_features, bias=module.bias is not None)
    new = new.to(device=module.weight.device, dtype=module.weight.dtype)
    inputs_replicated(module, new, mapping, scale)
    return new


def _incoming_weight(block: nn.Module) -> torch.Tensor:
    return block.conv.weight if isinstance(block, ConvBlock) else block.linear.weight


def widen(net: PlainCNN, index: int, width: int, *, rng: torch.Generator, noise: float = 0.0) -> None:
    """Widen conv/fc layer ``index`` of ``net`` in place to ``width`` units.

    ``noise`` > 0 adds N(0, (noise * std(W))^2) to the incoming weights of the
    new replicas only (the paper uses 0.01), breaking their symmetry with the
    originals; 0 keeps the function exactly. Raises `MorphError` (net unchanged)
    for pool layers, a width not above the current one or a bad index.
    """
    new_arch = widened(net.arch, index, width)
    check_noise(noise)
    block = net.blocks[index]
    old = net.arch[index].width
    mapping = random_mapping(old, width, rng)
    scale = split_factors(mapping, old)
    weight = _incoming_weight(block)
    with torch.no_grad():
        new_block = make_block(new_arch[index], in_widths(net.arch, net.in_channels)[index])
        new_block = new_block.to(device=weight.device, dtype=weight.dtype)
        replicated(block, new_block, mapping)
        if noise:
            add_noise(_incoming_weight(new_block)[old:], weight, noise, rng)
        owner, attr = _reader(net, index)
        reader = _with_inputs(getattr(owner, attr), mapping.to(weight.device), scale.to(weight.device))
    net.replace(index, new_arch[index], new_block)
    if owner is net:
        net.set_classifier(reader)
    else:
        setattr(owner, attr, reader.train(net.training))
