"""Function-preserving Net2Wider / Net2Deeper on a live `DenseNet` (the EAS DenseNet space).

Inside a dense block every layer, the block's transition (or, for the last
block, the classifier) reads the concatenation of the block input and all
earlier outputs, each through its own BN -> ReLU first (pre-activation). A
dense layer's output is therefore a segment of channels that *several* modules
read, each with its own BN entries and input weights for that segment.

Net2Wider (`widen`) grows a dense layer's growth rate: its conv gets copies of
randomly chosen output units (its own BN sits before the conv, on its inputs,
and is unchanged). Every reader of the segment then sees replicated channels:
its BN parameters and running statistics for a copy are those of the original
channel (so the copy's normalised, rectified value equals the original's) and
its input weights for the original and all copies are the original weights
divided by the number of copies, so the sum it computes is unchanged. Exact in
eval mode, and in train mode too (a copy has the original's batch statistics).

Net2Deeper (`deepen`) does what the EAS code does (``DenseBlock.insert_miniblock``,
scheme 0): the new layer goes right after dense layer ``index`` and starts as a
*copy* of it. It reads everything that layer read (same BN, filters remapped to
a random choice of that layer's units, with replacement) plus that layer's own
output, with zero weights; so its output is a replica of that layer's output
(channel ``i`` copies unit ``mapping[i]``). For every later reader the new
channels are replicas, handled as in Net2Wider: BN entries copied, the weights
of a unit and its copies split equally. An identity layer, as in the plain
space, would not preserve anything here: its output is concatenated, not
substituted, so readers would see extra channels anyway.

``noise`` > 0 is the paper's symmetry-breaking noise: N(0, (noise * std(W))^2)
on the new replicas' filters (wider, the paper uses 0.01) or on the new layer's
whole filter bank, zero block included (deeper, 0.001 in the paper's plain CNN;
the EAS DenseNet code applies its wider ratio 0.01 there). 0 keeps the function
exactly. An impossible transform raises `MorphError` before any weight is
touched; the network is rebuilt in one `DenseNet.restructure` call at the end.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from rayneas.morph.arch import MorphError, check_depth, check_index, check_wider
from rayneas.morph.noise import add_noise, check_noise
from rayneas.morph.units import inputs_replicated, random_mapping, replicated, split_factors
from rayneas.spaces.densenet import (
    Classifier, DenseLayer, DenseNet, Layer, Spec, block_end, in_widths, make_layer,
)
from rayneas.spaces.plain import KERNEL_SIZES, MAX_LAYERS

_WHAT = {"stem": "the stem conv", "trans": "a transition"}


def _dense_at(spec: Sequence[Layer], index: int, action: str, why: str) -> Layer:
    check_index(len(spec), index, action)
    layer = spec[index]
    if layer.kind != "dense":
        raise MorphError(f"cannot {action} layer {index} {layer.token!r}: it is {_WHAT[layer.kind]}; {why}")
    return layer


def widened(spec: Sequence[Layer], index: int, width: int) -> Spec:
    """The spec with dense layer ``index`` at growth ``width``."""
    layer = _dense_at(spec, index, "widen", "only dense layers (their growth) can be widened")
    check_wider(index, layer.token, layer.width, width)
    return (*spec[:index], Layer("dense", width, layer.kernel), *spec[index + 1:])


def deepened(spec: Sequence[Layer], index: int, kernel: int | None = None, max_layers: int = MAX_LAYERS) -> Spec:
    """The spec with a copy of dense layer ``index`` (same growth; ``kernel``, default its own) right after it."""
    layer = _dense_at(spec, index, "deepen after",
                      "a new layer goes into a dense block, after the dense layer it starts as a copy of")
    check_depth(len(spec), max_layers)
    kernel = layer.kernel if kernel is None else kernel
    allowed = tuple(k for k in KERNEL_SIZES if k >= layer.kernel)
    if kernel not in allowed:
        raise MorphError(
            f"cannot deepen after layer {index} {layer.token!r} with kernel {kernel!r}: the new layer starts as a "
            f"copy of its {layer.kernel}x{layer.kernel} filters (zero-padded), so the kernel must be one of {allowed}"
        )
    return (*spec[:index + 1], Layer("dense", layer.width, kernel), *spec[index + 1:])


def _check_rng(rng: torch.Generator) -> None:
    if not isinstance(rng, torch.Generator):
        raise MorphError(f"pass `rng`, a seeded torch.Generator, to draw the copied units from; got {rng!r}")


def _weights(module: nn.Module) -> nn.Module:
    """The Conv2d/Linear behind a module's BN -> ReLU."""
    return module.linear if isinstance(module, Classifier) else module.conv


def _reading(module: nn.Module, layer: Layer | None, mapping: torch.Tensor, scale: torch.Tensor,
             num_classes: int) -> nn.Module:
    """A copy of reader ``module`` (dense layer, transition or, with ``layer`` None, the classifier) whose
    input channel i is old input mapping[i]: BN entries copied, input weights times ``scale[i]``."""
    new = Classifier(len(mapping), num_classes) if layer is None else make_layer(layer, len(mapping))
    weight = _weights(module).weight
    new = new.to(device=weight.device, dtype=weight.dtype)
    replicated(module.bn, new.bn, mapping)
    inputs_replicated(_weights(module), _weights(new), mapping, scale)
    return new


def _readers(net: DenseNet, index: int, segment: torch.Tensor,
             factors: torch.Tensor) -> tuple[dict[int, nn.Module], nn.Module]:
    """Every module that reads dense layer ``index``'s output, rebuilt for a new layout of that segment.

    The segment's channels become ``segment`` (old channel numbers within it),
    their input weights multiplied by ``factors``; the channels before and
    after it are unchanged. Returns the rebuilt layers by token index, and the
    classifier (rebuilt if the layer is in the last block, else the old one).
    """
    widths = in_widths(net.spec, net.in_channels)
    offset, growth = widths[index], net.spec[index].width
    new, classifier = {}, net.classifier
    for j in range(index + 1, block_end(net.spec, index) + 1):
        rest = torch.arange(offset + growth, widths[j])
        mapping = torch.cat([torch.arange(offset), offset + segment, rest])
        ones = torch.ones(len(mapping), dtype=factors.dtype)
        scale = torch.cat([ones[:offset], factors, ones[:len(rest)]])
        if j == len(net.spec):
            classifier = _reading(net.classifier, None, mapping, scale, net.num_classes)
        else:
            new[j] = _reading(net.layers[j], net.spec[j], mapping, scale, net.num_classes)
    return new, classifier


def widen(net: DenseNet, index: int, width: int, *, rng: torch.Generator, noise: float = 0.0) -> None:
    """Widen dense layer ``index`` of ``net`` in place to growth ``width``.

    New units copy randomly chosen old ones (drawn from ``rng``); ``noise`` > 0
    perturbs the copies' filters only. Raises `MorphError` (net unchanged) for
    the stem or a transition, a width not above the current one or a bad index.
    """
    spec = widened(net.spec, index, width)
    check_noise(noise)
    _check_rng(rng)
    old_module: DenseLayer = net.layers[index]
    old = net.spec[index].width
    mapping = random_mapping(old, width, rng)
    with torch.no_grad():
        weight = old_module.conv.weight
        layer = make_layer(spec[index], old_module.bn.num_features).to(device=weight.device, dtype=weight.dtype)
        layer.bn.load_state_dict(old_module.bn.state_dict())
        replicated(old_module.conv, layer.conv, mapping)
        if noise:
            add_noise(layer.conv.weight[old:], weight, noise, rng)
        readers, classifier = _readers(net, index, mapping, split_factors(mapping, old))
    layers = [readers.get(j, module) for j, module in enumerate(net.layers)]
    layers[index] = layer
    net.restructure(spec, layers, classifier)


def _copy_layer(net: DenseNet, index: int, layer: Layer, mapping: torch.Tensor) -> DenseLayer:
    """The new layer after dense layer ``index``: its filters on the old inputs, zero on that layer's output.

    Its BN entries for the old inputs are layer ``index``'s; those for that
    layer's output come from the next module that reads it (so in eval mode the
    new channels are normalised with statistics of the data they carry, once
    training or noise gives them non-zero weights).
    """
    source: DenseLayer = net.layers[index]
    offset, growth = source.bn.num_features, net.spec[index].width
    following = net.layers[index + 1] if index + 1 < len(net.spec) else net.classifier
    weight = source.conv.weight
    new = make_layer(layer, offset + growth).to(device=weight.device, dtype=weight.dtype)
    ours, theirs = source.bn.state_dict(), following.bn.state_dict()
    new.bn.load_state_dict({k: torch.cat([v, theirs[k][offset:offset + growth]]) if v.dim() else v
                            for k, v in ours.items()})
    kernel = net.spec[index].kernel
    pad = (layer.kernel - kernel) // 2  # a k x k filter at the centre of the larger one: the same "same" conv
    new.conv.weight.zero_()
    new.conv.weight[:, :offset, pad:pad + kernel, pad:pad + kernel] = weight[mapping.to(weight.device)]
    return new


def deepen(net: DenseNet, index: int, *, rng: torch.Generator, kernel: int | None = None, noise: float = 0.0,
           max_layers: int = MAX_LAYERS) -> None:
    """Insert a copy of dense layer ``index`` right after it, in place (see the module docstring).

    ``kernel`` (default: the copied layer's) may be larger than the copied
    layer's: its filters are zero-padded, which computes the same with "same"
    padding. ``rng`` draws which units the copy replicates; ``noise`` > 0
    perturbs the new layer's filters. Raises `MorphError` (net unchanged) for
    the stem or a transition, a bad index or kernel, or a network already at
    ``max_layers`` tokens.
    """
    spec = deepened(net.spec, index, kernel, max_layers)
    check_noise(noise)
    _check_rng(rng)
    growth = net.spec[index].width
    # which unit each new channel copies: `growth` draws with replacement, as the EAS code's
    # np.random.choice(size, size) in LayerMultiBranch.remapped_branches
    mapping = torch.randint(growth, (growth,), generator=rng)
    with torch.no_grad():
        layer = _copy_layer(net, index, spec[index + 1], mapping)
        if noise:
            add_noise(layer.conv.weight, net.layers[index].conv.weight, noise, rng)
        segment = torch.cat([torch.arange(growth), mapping])
        readers, classifier = _readers(net, index, segment, split_factors(segment, growth))
    layers = [readers.get(j, module) for j, module in enumerate(net.layers)]
    layers.insert(index + 1, layer)
    net.restructure(spec, layers, classifier)
