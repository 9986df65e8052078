"""EAS's DenseNet space: a stem conv, dense blocks of BN-ReLU-conv layers, transitions, a classifier.

A network is a sequence of layer tokens separated by whitespace, e.g.
``"stem-16-3 dense-8-3 dense-8-3 trans-16 dense-8-3 dense-8-5"``:

* ``stem-{channels}-{kernel}``: the first token and only there: a plain conv
  (stride 1, "same" padding, no bias, no BN or ReLU: every reader normalises its
  own input, the pre-activation order of the EAS code);
* ``dense-{growth}-{kernel}``: a dense layer, BN -> ReLU -> conv (stride 1,
  "same" padding, no bias) giving ``growth`` new channels. It reads the
  concatenation of its block's input and the outputs of all earlier layers of
  its block, and its output is appended to that concatenation;
* ``trans-{channels}``: a transition, BN -> ReLU -> 1x1 conv to ``channels`` ->
  2x2 average pooling, stride 2 (``ceil_mode``, so a 1x1 map stays 1x1). It
  reads its block's whole concatenation and ends the block.

Consecutive dense tokens form a dense block; the stem and each transition are
followed by one, so no block is empty, and the network ends in a block. The
classifier is not a token: BN -> ReLU -> global average pooling -> linear, on
the last block's concatenation (the EAS code's ``T_to_classes``). Kernels are
1, 3 or 5, as in the plain space.

The EAS code names a network ``g8-g8_t_g8-g8`` (growth rates only; every layer
is a DenseNet-BC 1x1-bottleneck + 3x3 pair, transitions halve the width). Here
each layer carries its kernel and each transition its width instead, so the
token list alone fixes every parameter shape: `DenseNet.spec` is kept in sync
with the modules through every Net2Net transform, and a fresh ``DenseNet(spec)``
takes the morphed network's state dict key for key.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rayneas.errors import RayneasError
from rayneas.spaces.common import check_length, he_init, parse_tokens, token_numbers
from rayneas.spaces.plain import KERNEL_SIZES, MAX_LAYERS

SEPARATOR = " "
# The EAS DenseNet search's growth rates (arch_search_densenet_net2net.py: 4, 6, ..., 48).
GROWTH_RATES: tuple[int, ...] = tuple(range(4, 50, 2))
# The EAS code's start network (run_dense_net.py: growth 4, depth 10, 3 blocks,
# first_ratio 2, reduction 0.5) without the BC bottleneck: a stem of 2 x growth
# channels, one layer per block, transitions halving the concatenated width.
DEMO_START = "stem-8-3 dense-4-3 trans-6 dense-4-3 trans-5 dense-4-3"

LayerKind = Literal["stem", "dense", "trans"]
_FORMS = "stem-{channels}-{kernel}, dense-{growth}-{kernel} or trans-{channels}"
_NUMBERS: dict[str, tuple[str, ...]] = {"stem": ("channels", "kernel"), "dense": ("growth", "kernel"),
                                        "trans": ("channels",)}
_EXAMPLES = {"stem": "stem-{channels}-{kernel}, e.g. stem-16-3", "dense": "dense-{growth}-{kernel}, e.g. dense-12-3",
             "trans": "trans-{channels}, e.g. trans-24"}


class SpecError(RayneasError, ValueError):
    """A DenseNet spec string or layer list is malformed; the message names the token and the allowed forms."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One token: ``width`` is channels (stem, trans) or growth (dense); ``kernel`` is 0 for a transition."""

    kind: LayerKind
    width: int
    kernel: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _NUMBERS:
            raise SpecError(f"unknown layer type {self.kind!r}; use {_FORMS}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise SpecError(f"{self.kind} width must be a positive integer, got {self.width!r}")
        if self.kind == "trans":
            if self.kernel:
                raise SpecError(f"a transition's conv is always 1x1 and takes no kernel, got kernel={self.kernel}")
        elif self.kernel not in KERNEL_SIZES:
            raise SpecError(f"{self.kind} kernel must be one of {KERNEL_SIZES}, got {self.kernel!r}")

    @property
    def token(self) -> str:
        return f"{self.kind}-{self.width}" + (f"-{self.kernel}" if self.kernel else "")

    @classmethod
    def from_token(cls, token: str) -> "Layer":
        kind, *numbers = token.split("-")
        expected = _NUMBERS.get(kind)
        if expected is None:
            raise SpecError(f"unknown layer type {kind!r}; use {_FORMS}")
        values = token_numbers(kind, expected, numbers, _EXAMPLES[kind], SpecError, KERNEL_SIZES)
        return cls(kind, *values)


Spec = tuple[Layer, ...]


def check(layers: Sequence[Layer], max_layers: int = MAX_LAYERS) -> Spec:
    """Validate the token order and count; returns the layers as a tuple."""
    layers = tuple(layers)
    check_length(layers, max_layers, SpecError, "spec", DEMO_START)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise SpecError(f"layer {i}: expected a densenet Layer, got {type(layer).__name__}")
        if (layer.kind == "stem") != (i == 0):
            where = "the network must start with a stem conv" if i == 0 else "only the first layer is a stem"
            raise SpecError(f"layer {i} {layer.token!r}: {where} ({_EXAMPLES['stem']})")
        if layer.kind != "dense" and (i + 1 == len(layers) or layers[i + 1].kind != "dense"):
            raise SpecError(
                f"layer {i} {layer.token!r} must be followed by a dense layer: every dense block needs at least "
                "one layer, and the network ends with a block (the classifier is implicit)"
            )
    return layers


def parse(text: str, max_layers: int = MAX_LAYERS) -> Spec:
    """``"stem-16-3 dense-8-3 trans-12 dense-8-3"`` -> layers; an error names the bad token and its 0-based position."""
    return parse_tokens(text, Layer.from_token, lambda layers: check(layers, max_layers), SpecError,
                        "a DenseNet spec string")


def format(layers: Sequence[Layer]) -> str:  # noqa: A001 - shadows the builtin on purpose: parse/format
    """Layers -> the spec string `parse` reads back."""
    return SEPARATOR.join(layer.token for layer in layers)


to_string = format  # the plain space's name for the same function


def resolve(spec: "str | Sequence[Layer]", max_layers: int = MAX_LAYERS) -> Spec:
    return parse(spec, max_layers) if isinstance(spec, str) else check(spec, max_layers)


def in_widths(layers: Sequence[Layer], in_channels: int) -> list[int]:
    """Input width of each token, then of the classifier: dense layers add their growth, the others replace it."""
    widths, current = [], in_channels
    for layer in layers:
        widths.append(current)
        current = current + layer.width if layer.kind == "dense" else layer.width
    return widths + [current]


def block_end(layers: Sequence[Layer], index: int) -> int:
    """Index of the token that ends the dense block holding token ``index``: its transition, or len(layers)."""
    return next((j for j in range(index + 1, len(layers)) if layers[j].kind == "trans"), len(layers))


class DenseLayer(nn.Module):
    """BN -> ReLU -> conv: ``growth`` new channels from the block's concatenation so far."""

    def __init__(self, c_in: int, growth: int, kernel: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, growth, kernel, padding=kernel // 2, bias=False)
        self.relu = nn.ReLU()  # a module, not torch.relu: NASWOT reads ReLU codes with hooks on nn.ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(self.bn(x)))


class Transition(nn.Module):
    """BN -> ReLU -> 1x1 conv -> 2x2 average pool: ends a dense block and halves the map."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(self.relu(self.bn(x))), 2, 2, ceil_mode=True)


class Classifier(nn.Module):
    """BN -> ReLU -> global average pool -> linear, on the last block's concatenation."""

    def __init__(self, c_in: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.linear = nn.Linear(c_in, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.relu(self.bn(x)).mean(dim=(2, 3)))


def make_layer(layer: Layer, in_width: int) -> nn.Module:
    """The module of one token reading ``in_width`` channels."""
    if layer.kind == "stem":
        return nn.Conv2d(in_width, layer.width, layer.kernel, padding=layer.kernel // 2, bias=False)
    if layer.kind == "dense":
        return DenseLayer(in_width, layer.width, layer.kernel)
    return Transition(in_width, layer.width)


def _conv_of(module: nn.Module) -> nn.Conv2d:
    return module if isinstance(module, nn.Conv2d) else module.conv


class DenseNet(nn.Module):
    """A DenseNet whose ``spec`` tokens always describe its ``layers`` one to one.

    Change the structure only through `restructure` (as the Net2Net transforms
    do), which checks every module against the new spec before it commits.
    """

    def __init__(self, spec: "str | Sequence[Layer]", in_channels: int = 3, num_classes: int = 10,
                 seed: int = 0, max_layers: int = MAX_LAYERS) -> None:
        super().__init__()
        self.spec: Spec = resolve(spec, max_layers)
        self.in_channels, self.num_classes = in_channels, num_classes
        widths = in_widths(self.spec, in_channels)
        self.layers = nn.ModuleList(make_layer(layer, w) for layer, w in zip(self.spec, widths))
        self.classifier = Classifier(widths[-1], num_classes)
        he_init(self, torch.Generator().manual_seed(seed))

    @property
    def spec_string(self) -> str:
        return format(self.spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, module in zip(self.spec, self.layers):
            x = torch.cat([x, module(x)], dim=1) if layer.kind == "dense" else module(x)
        return self.classifier(x)

    def restructure(self, spec: Sequence[Layer], layers: Sequence[nn.Module], classifier: nn.Module) -> None:
        """Replace spec, layer modules and classifier at once; new modules follow the network's train/eval mode.

        Raises ValueError (a bug in the caller, nothing changed) if a module's
        shape does not match what ``spec`` says it reads and writes.
        """
        spec = check(spec, max_layers=len(spec) or 1)  # the transforms enforce the depth limit
        widths = in_widths(spec, self.in_channels)
        if len(layers) != len(spec):
            raise ValueError(f"{len(layers)} modules for {len(spec)} tokens")
        for i, (layer, module, width) in enumerate(zip(spec, layers, widths)):
            conv = _conv_of(module)
            kernel = layer.kernel or 1
            shape = (conv.out_channels, conv.in_channels, *conv.kernel_size)
            bn_width = width if layer.kind == "stem" else module.bn.num_features
            if shape != (layer.width, width, kernel, kernel) or bn_width != width:
                raise ValueError(f"layer {i} {layer.token!r} reading {width} channels does not match its module "
                                 f"{module}")
        if classifier.bn.num_features != widths[-1] or classifier.linear.in_features != widths[-1]:
            raise ValueError(f"the classifier must read {widths[-1]} channels, got {classifier}")
        self.spec = spec
        self.layers = nn.ModuleList(module.train(self.training) for module in layers)
        self.classifier = classifier.train(self.training)
