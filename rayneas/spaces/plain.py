"""EAS's plain CNN space: a chain of conv / max-pool / fc layers with no skip connections.

A network is a sequence of layer tokens separated by single spaces, e.g.
``"conv-16-3 pool conv-32-3 fc-64"``:

* ``conv-{filters}-{kernel}``: Conv (stride 1, "same" padding, no bias) -> BatchNorm -> ReLU,
  kernel in {1, 3, 5};
* ``pool``: 2x2 max pooling, stride 2 (the EAS code max-pools; ``ceil_mode`` keeps a
  1x1 map at 1x1, like TensorFlow's "same" pooling, so any number of pools fits any image);
* ``fc-{units}``: Linear -> ReLU.

The conv/pool part comes first; a global average pool turns its last feature
map into a vector for the fc part, and a linear classifier (not a token) ends
the network. Tokens are what the EAS controller reads, so the module keeps its
token list (`PlainCNN.arch`) in sync with its layers through every Net2Net
transform.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

import torch
from torch import nn

from rayneas.errors import RayneasError
from rayneas.spaces.common import check_length, check_widths, he_init, next_width, parse_tokens, token_numbers

MAX_LAYERS = 50  # the controller's encoder reads at most 50 tokens
KERNEL_SIZES: tuple[int, ...] = (1, 3, 5)
SEPARATOR = " "

# Width schedules: a widened layer steps to the next entry of its list.
PAPER_CONV_WIDTHS: tuple[int, ...] = (16, 32, 64, 96, 128, 192, 256, 320, 384, 448, 512, 576, 640)
PAPER_FC_WIDTHS: tuple[int, ...] = (64, 128, 256, 384, 512, 640, 768, 896, 1024, 1152, 1280)
DEMO_CONV_WIDTHS: tuple[int, ...] = tuple(range(4, 44, 4))
DEMO_FC_WIDTHS: tuple[int, ...] = tuple(range(8, 88, 8))
# The EAS code's start network (run_simple_convnet.py: four blocks of one 3x3 conv
# with 4 filters, max-pools between blocks, one fc of 8 units), and the same
# topology at the first paper-scale widths (the public code does not ship the
# paper's CIFAR start network).
DEMO_START = "conv-4-3 pool conv-4-3 pool conv-4-3 pool conv-4-3 fc-8"
PAPER_START = "conv-16-3 pool conv-16-3 pool conv-16-3 pool conv-16-3 fc-64"

LayerKind = Literal["conv", "pool", "fc"]
_FORMS = "conv-{filters}-{kernel}, pool or fc-{units}"


class ArchError(RayneasError, ValueError):
    """A plain-CNN architecture string or layer list is malformed."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One token: ``width`` is filters (conv) or units (fc), 0 for pool; ``kernel`` is 0 unless conv."""

    kind: LayerKind
    width: int = 0
    kernel: int = 0

    def __post_init__(self) -> None:
        if self.kind == "pool":
            if self.width or self.kernel:
                raise ArchError(f"a pool layer has no width or kernel, got width={self.width}, kernel={self.kernel}")
            return
        if self.kind not in ("conv", "fc"):
            raise ArchError(f"unknown layer type {self.kind!r}; use {_FORMS}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ArchError(f"{self.kind} width must be a positive integer, got {self.width!r}")
        if self.kind == "conv" and self.kernel not in KERNEL_SIZES:
            raise ArchError(f"conv kernel must be one of {KERNEL_SIZES}, got {self.kernel!r}")
        if self.kind == "fc" and self.kernel:
            raise ArchError(f"an fc layer has no kernel, got kernel={self.kernel}")

    @property
    def token(self) -> str:
        if self.kind == "conv":
            return f"conv-{self.width}-{self.kernel}"
        return "pool" if self.kind == "pool" else f"fc-{self.width}"

    @classmethod
    def from_token(cls, token: str) -> "Layer":
        kind, *numbers = token.split("-")
        if kind == "pool":
            if numbers:
                raise ArchError("pool takes no numbers: write pool (always 2x2 max pooling)")
            return cls("pool")
        expected = {"conv": ("filters", "kernel"), "fc": ("units",)}.get(kind)
        if expected is None:
            raise ArchError(f"unknown layer type {kind!r}; use {_FORMS}")
        form = "conv-{filters}-{kernel}, e.g. conv-16-3" if kind == "conv" else "fc-{units}, e.g. fc-64"
        values = token_numbers(kind, expected, numbers, form, ArchError, KERNEL_SIZES)
        return cls(kind, *values)


Arch = tuple[Layer, ...]


def check(layers: Sequence[Layer], max_layers: int = MAX_LAYERS) -> Arch:
    """Validate the layer order and count; returns the layers as a tuple."""
    layers = tuple(layers)
    check_length(layers, max_layers, ArchError, "architecture", DEMO_START)
    if layers[0].kind != "conv":
        raise ArchError(f"layer 0 {layers[0].token!r}: the network must start with a conv layer")
    seen_fc = False
    for i, layer in enumerate(layers):
        if layer.kind == "fc":
            seen_fc = True
        elif seen_fc:
            raise ArchError(
                f"layer {i} {layer.token!r} comes after an fc layer; every conv and pool layer must come "
                "before the fc part (global average pooling sits between them)"
            )
    return layers


def parse(text: str, max_layers: int = MAX_LAYERS) -> Arch:
    """``"conv-16-3 pool fc-64"`` -> layers; an error names the bad token and its 0-based position."""
    return parse_tokens(text, Layer.from_token, lambda layers: check(layers, max_layers), ArchError,
                        "an architecture string")


def to_string(layers: Sequence[Layer]) -> str:
    return SEPARATOR.join(layer.token for layer in layers)


def resolve(arch: "str | Sequence[Layer]", max_layers: int = MAX_LAYERS) -> Arch:
    return parse(arch, max_layers) if isinstance(arch, str) else check(arch, max_layers)


@dataclasses.dataclass(frozen=True)
class WidthSchedule:
    """The widths a layer may grow through, smallest first."""

    conv: tuple[int, ...]
    fc: tuple[int, ...]

    def __post_init__(self) -> None:
        for name, widths in (("conv", self.conv), ("fc", self.fc)):
            check_widths(name, widths, ArchError)

    def next_width(self, layer: Layer) -> int | None:
        """The next larger width of the layer's list; None for pool layers and layers at the last width."""
        if layer.kind == "pool":
            return None
        return next_width(self.conv if layer.kind == "conv" else self.fc, layer.width)

    def vocabulary(self) -> tuple[str, ...]:
        """Every token the controller can meet: each conv width x kernel, each fc width, and pool."""
        convs = [Layer("conv", w, k).token for w in self.conv for k in KERNEL_SIZES]
        return (*convs, *(Layer("fc", u).token for u in self.fc), "pool")


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()  # a module, not torch.relu: NASWOT reads ReLU codes with hooks on nn.ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class FcBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.linear(x))


def make_block(layer: Layer, in_width: int) -> nn.Module:
    if layer.kind == "conv":
        return ConvBlock(in_width, layer.width, layer.kernel)
    if layer.kind == "fc":
        return FcBlock(in_width, layer.width)
    return nn.MaxPool2d(2, 2, ceil_mode=True)


def in_widths(layers: Sequence[Layer], in_channels: int) -> list[int]:
    """Input width of each layer, then of the classifier (pools keep the channel count)."""
    widths, current = [], in_channels
    for layer in layers:
        widths.append(current)
        current = layer.width or current
    return widths + [current]


class PlainCNN(nn.Module):
    """A plain CNN whose ``arch`` tokens always describe its ``blocks`` one to one.

    Change the structure only through `replace` / `insert` / `set_classifier`
    (as the Net2Net transforms do), which keep the two in sync.
    """

    def __init__(self, arch: "str | Sequence[Layer]", in_channels: int = 1, num_classes: int = 10,
                 seed: int = 0, max_layers: int = MAX_LAYERS) -> None:
        super().__init__()
        self.arch: Arch = resolve(arch, max_layers)
        self.in_channels, self.num_classes = in_channels, num_classes
        widths = in_widths(self.arch, in_channels)
        self.blocks = nn.ModuleList(make_block(layer, w) for layer, w in zip(self.arch, widths))
        self.classifier = nn.Linear(widths[-1], num_classes)
        he_init(self, torch.Generator().manual_seed(seed))

    @property
    def arch_string(self) -> str:
        return to_string(self.arch)

    def _run(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        for layer, block in zip(self.arch[:stop], self.blocks):
            if layer.kind == "fc" and x.dim() == 4:
                x = x.mean(dim=(2, 3))  # global average pooling before the fc part
            x = block(x)
        return x

    def activation(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Output of layer ``index`` (after its ReLU)."""
        return self._run(x, index + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._run(x, len(self.arch))
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return self.classifier(x)

    def replace(self, index: int, layer: Layer, block: nn.Module) -> None:
        self.arch = self.arch[:index] + (layer,) + self.arch[index + 1:]
        self.blocks[index] = block.train(self.training)

    def insert(self, index: int, layer: Layer, block: nn.Module) -> None:
        self.arch = self.arch[:index] + (layer,) + self.arch[index:]
        self.blocks.insert(index, block.train(self.training))

    def set_classifier(self, classifier: nn.Linear) -> None:
        self.classifier = classifier.train(self.training)
