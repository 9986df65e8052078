"""The search spaces EAS runs in, each behind one adapter class (`EASSpace`): plain CNN and DenseNet.

The env, its encoder, the evaluator, the search and the export never name a
network class; they ask the run's space (`eas_space(cfg.space)`) for

* tokens: `parse` a network string, `to_string` it back, the `vocabulary` the
  controller embeds, the token `layers` of a live network and its `arch_string`
  (the NetPool key);
* the action layout: `blocks` (where the deeper action's (block, position)
  points), `next_width` (what the wider action grows a layer to) and
  `kernels_after` (the kernels a new layer after a layer may take);
* modules: `build` a network from a string, the `recipe` that rebuilds it
  after an export, and the Net2Net transforms `widen` and `deepen`, in place.

The config section ``space`` picks the space with ``kind``: ``plain`` (the
default, so configs without the key keep their meaning) or ``densenet``; the
rest of the section is that space's start net, width lists and depth limit.
Adding a space is one config dataclass, one `EASSpace` subclass and one entry
in `SPACES`.
"""
from __future__ import annotations

import abc
import dataclasses
from types import ModuleType
from typing import Callable, ClassVar, Literal, Sequence

import torch
from torch import nn

from rayneas import morph
from rayneas.config import spec
from rayneas.morph import densenet as dense_morph
from rayneas.spaces import densenet, plain
from rayneas.spaces.common import check_widths, next_width
from rayneas.spaces.plain import KERNEL_SIZES, MAX_LAYERS

_MAX_LAYERS_DOC = "Net2Deeper stops at this many tokens (the controller reads at most 50)"


@dataclasses.dataclass
class PlainSpaceConfig:
    kind: Literal["plain"] = spec("plain", doc="plain: chains of conv / max-pool / fc layers (docs/eas_env.md)")
    start_net: str = spec(plain.DEMO_START, doc="the network every episode starts from, tokens separated by spaces")
    conv_widths: list[int] = spec(default_factory=lambda: list(plain.DEMO_CONV_WIDTHS),
                                  doc="filter counts a widened conv steps through, increasing (paper: "
                                      f"{list(plain.PAPER_CONV_WIDTHS)})")
    fc_widths: list[int] = spec(default_factory=lambda: list(plain.DEMO_FC_WIDTHS),
                                doc="unit counts a widened fc steps through, increasing (paper: "
                                    f"{list(plain.PAPER_FC_WIDTHS)})")
    max_layers: int = spec(MAX_LAYERS, ge=1, le=MAX_LAYERS, doc=_MAX_LAYERS_DOC)

    def __post_init__(self) -> None:
        try:
            plain.parse(self.start_net, self.max_layers)
        except plain.ArchError as exc:
            raise ValueError(f"start_net: {exc}") from None
        try:
            self.schedule()
        except plain.ArchError as exc:
            raise ValueError(f"conv_widths/fc_widths: {exc}") from None

    def start_arch(self) -> plain.Arch:
        return plain.parse(self.start_net, self.max_layers)

    def schedule(self) -> plain.WidthSchedule:
        return plain.WidthSchedule(tuple(self.conv_widths), tuple(self.fc_widths))


@dataclasses.dataclass
class DenseNetSpaceConfig:
    kind: Literal["densenet"] = spec("densenet", doc="densenet: dense blocks of BN-ReLU-conv layers between "
                                                     "transitions (docs/densenet.md)")
    start_net: str = spec(densenet.DEMO_START, doc="the network every episode starts from: stem-{c}-{k}, "
                                                   "dense-{growth}-{k} and trans-{c} tokens separated by spaces")
    growth_rates: list[int] = spec(default_factory=lambda: list(densenet.GROWTH_RATES),
                                   doc="growth rates a widened dense layer steps through, increasing (the EAS "
                                       "DenseNet search: 4, 6, ..., 48)")
    max_layers: int = spec(MAX_LAYERS, ge=1, le=MAX_LAYERS, doc=_MAX_LAYERS_DOC)

    def __post_init__(self) -> None:
        try:
            self.start_arch()
        except densenet.SpecError as exc:
            raise ValueError(f"start_net: {exc}") from None
        try:
            check_widths("growth", self.growth_rates, densenet.SpecError)
        except densenet.SpecError as exc:
            raise ValueError(f"growth_rates: {exc}") from None

    def start_arch(self) -> densenet.Spec:
        return densenet.parse(self.start_net, self.max_layers)


SpaceConfig = PlainSpaceConfig | DenseNetSpaceConfig
Batch = Callable[[], torch.Tensor]  # draws a batch of training images, if a transform needs one


class EASSpace(abc.ABC):
    """What EAS needs of a search space; one subclass per space, built from its config section."""

    kind: ClassVar[str]  # the config's space.kind, and the export's "space"
    grown: ClassVar[tuple[str, ...]]  # token kinds the transforms widen and deepen; the others separate blocks
    blocks_are: ClassVar[str]  # what a block is, for errors
    fewer_blocks: ClassVar[str]  # how to have fewer blocks, for errors
    network: ClassVar[type[nn.Module]]  # built as network(arch, in_channels, num_classes, seed=, max_layers=)
    arch_key: ClassVar[str]  # network's first argument, and the attribute holding its token list
    transforms: ClassVar[ModuleType]  # the space's rayneas.morph module: widen(net, index, width, rng=, noise=)

    def __init__(self, cfg: SpaceConfig) -> None:
        self.cfg, self.start_net, self.max_layers = cfg, cfg.start_net, cfg.max_layers

    # tokens

    @abc.abstractmethod
    def parse(self, text: str) -> tuple: ...

    @staticmethod
    def to_string(layers: Sequence) -> str:
        return " ".join(layer.token for layer in layers)

    def start(self) -> tuple:
        return self.parse(self.start_net)

    @abc.abstractmethod
    def vocabulary(self) -> tuple[str, ...]:
        """Every token a network of the run can have; the controller embeds token ids 1..len (0 pads)."""

    @abc.abstractmethod
    def widths(self) -> str:
        """The width lists, for errors about tokens outside the vocabulary."""

    @abc.abstractmethod
    def next_width(self, layer) -> int | None:
        """The width the wider action grows ``layer`` to; None if it cannot grow."""

    @classmethod
    def blocks(cls, layers: Sequence) -> list[list[int]]:
        """Token indices per block: runs of one grown kind (the other kinds only separate them)."""
        groups: list[list[int]] = []
        for i, layer in enumerate(layers):
            if layer.kind not in cls.grown:
                continue
            if not groups or groups[-1][-1] != i - 1 or layers[i - 1].kind != layer.kind:
                groups.append([])
            groups[-1].append(i)
        return groups

    @staticmethod
    def kernels_after(layer) -> tuple[int, ...]:
        """Kernels a new layer inserted after ``layer`` may take; none if that layer has no kernel (a new fc
        layer), where the kernel choice is ignored."""
        return KERNEL_SIZES

    # networks

    @classmethod
    def layers(cls, net: nn.Module) -> tuple:
        """The token list that describes ``net`` (kept in sync through every transform)."""
        return getattr(net, cls.arch_key)

    def arch_string(self, net: nn.Module) -> str:
        return self.to_string(self.layers(net))

    def build(self, arch: "str | Sequence", in_channels: int, num_classes: int, seed: int = 0) -> nn.Module:
        return self.network(arch, in_channels, num_classes, seed=seed, max_layers=self.max_layers)

    def recipe(self, arch: str, in_channels: int, num_classes: int) -> dict:
        """How `rayneas.runs.export.load_exported` rebuilds ``arch``: builder path and keyword arguments."""
        return {"builder": f"{self.network.__module__}:{self.network.__qualname__}",
                "kwargs": {self.arch_key: arch, "in_channels": in_channels, "num_classes": num_classes,
                           "max_layers": self.max_layers}}

    def widen(self, net: nn.Module, index: int, width: int, *, rng: torch.Generator, noise: float) -> None:
        self.transforms.widen(net, index, width, rng=rng, noise=noise)

    @abc.abstractmethod
    def feature_modules(self, net: nn.Module) -> list[nn.Module]:
        """The modules whose outputs are AZ-NAS's feature maps f_0 ... f_L, in forward order (its indicators
        otherwise look for NAS-Bench-201's ``stem`` and ``cells``, which EAS networks do not have)."""

    @abc.abstractmethod
    def deepen(self, net: nn.Module, index: int, kernel: int, *, rng: torch.Generator, noise: float,
               batch: Batch) -> None: ...


class PlainSpace(EASSpace):
    """Conv runs between pools are blocks, the fc part the last; Net2Deeper inserts identity layers."""

    kind = "plain"
    grown = ("conv", "fc")
    blocks_are = "conv runs between pools, then the fc part"
    fewer_blocks = "remove pool layers"
    network = plain.PlainCNN
    arch_key = "arch"
    transforms = morph

    def __init__(self, cfg: PlainSpaceConfig) -> None:
        super().__init__(cfg)
        self.schedule = cfg.schedule()

    def parse(self, text: str) -> plain.Arch:
        return plain.parse(text, self.max_layers)

    def vocabulary(self) -> tuple[str, ...]:
        return self.schedule.vocabulary()

    def widths(self) -> str:
        return f"width lists (conv {list(self.schedule.conv)}, fc {list(self.schedule.fc)})"

    def next_width(self, layer: plain.Layer) -> int | None:
        return self.schedule.next_width(layer)

    @staticmethod
    def kernels_after(layer: plain.Layer) -> tuple[int, ...]:
        return () if layer.kind == "fc" else KERNEL_SIZES  # after an fc layer, Net2Deeper inserts an fc layer

    def deepen(self, net: plain.PlainCNN, index: int, kernel: int, *, rng: torch.Generator, noise: float,
               batch: Batch) -> None:
        # a new conv's identity BatchNorm is set on a batch of training images (an fc ignores kernel and batch)
        morph.deepen(net, index, kernel=kernel, batch=batch(), rng=rng, noise=noise, max_layers=self.max_layers)

    def feature_modules(self, net: plain.PlainCNN) -> list[nn.Module]:
        # The conv part only: the global average pool before the fc part is no module, and AZ-NAS matches
        # consecutive maps by channels and pixels, which a vector after a pooled map does not have.
        return [block for layer, block in zip(net.arch, net.blocks) if layer.kind != "fc"]


class DenseNetSpace(EASSpace):
    """Dense blocks are blocks; Net2Deeper inserts a copy of a dense layer, with a kernel at least its own."""

    kind = "densenet"
    grown = ("dense",)
    blocks_are = "dense blocks between transitions"
    fewer_blocks = "remove transitions"
    network = densenet.DenseNet
    arch_key = "spec"
    transforms = dense_morph

    def parse(self, text: str) -> densenet.Spec:
        return densenet.parse(text, self.max_layers)

    def vocabulary(self) -> tuple[str, ...]:
        """Every dense-{growth}-{kernel} of the growth list, then the start net's stem and transitions
        (which never change: only dense layers grow)."""
        dense = [densenet.Layer("dense", g, k).token for g in self.cfg.growth_rates for k in KERNEL_SIZES]
        fixed = [layer.token for layer in self.start() if layer.kind not in self.grown]
        return (*dense, *dict.fromkeys(fixed))

    def widths(self) -> str:
        return f"growth list {list(self.cfg.growth_rates)}"

    def next_width(self, layer: densenet.Layer) -> int | None:
        return next_width(self.cfg.growth_rates, layer.width) if layer.kind in self.grown else None

    @staticmethod
    def kernels_after(layer: densenet.Layer) -> tuple[int, ...]:
        # the new layer starts as a copy of this one's filters, zero-padded: never a smaller kernel
        return tuple(k for k in KERNEL_SIZES if k >= layer.kernel)

    def deepen(self, net: densenet.DenseNet, index: int, kernel: int, *, rng: torch.Generator, noise: float,
               batch: Batch) -> None:
        dense_morph.deepen(net, index, rng=rng, kernel=kernel, noise=noise, max_layers=self.max_layers)

    def feature_modules(self, net: densenet.DenseNet) -> list[nn.Module]:
        # Every layer's own output: the stem's, each dense layer's new channels (a block's concatenation is
        # no module's output) and each transition's.
        return list(net.layers)


SPACES: dict[str, type[EASSpace]] = {"plain": PlainSpace, "densenet": DenseNetSpace}


def eas_space(cfg: SpaceConfig) -> EASSpace:
    """The adapter of a run's ``space`` section."""
    return SPACES[cfg.kind](cfg)
