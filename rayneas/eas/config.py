"""Config sections of an EAS search in the plain-CNN space (see configs/eas_plain_digits.yaml).

Defaults are the paper's settings: paper-scale width lists, children trained
20 epochs with SGD (Nesterov 0.9, lr 0.02 cosine, wd 1e-4, batch 64), Net2Net
noise 0.01 (wider) / 0.001 (deeper). The digits config swaps in the EAS
code's small demo lists and start network.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from rayneas.config import spec
from rayneas.spaces.plain import (
    MAX_LAYERS,
    PAPER_CONV_WIDTHS,
    PAPER_FC_WIDTHS,
    PAPER_START,
    Arch,
    ArchError,
    WidthSchedule,
    parse,
)


@dataclasses.dataclass
class PlainSpaceConfig:
    start_net: str = spec(PAPER_START, doc="the network every episode starts from, tokens separated by spaces")
    conv_widths: list[int] = spec(default_factory=lambda: list(PAPER_CONV_WIDTHS),
                                  doc="filter counts a widened conv steps through, increasing")
    fc_widths: list[int] = spec(default_factory=lambda: list(PAPER_FC_WIDTHS),
                                doc="unit counts a widened fc steps through, increasing")
    max_layers: int = spec(MAX_LAYERS, ge=1, le=MAX_LAYERS, doc="Net2Deeper stops at this many layers")

    def __post_init__(self) -> None:
        try:
            parse(self.start_net, self.max_layers)
        except ArchError as exc:
            raise ValueError(f"start_net: {exc}") from None
        try:
            self.schedule()
        except ArchError as exc:
            raise ValueError(f"conv_widths/fc_widths: {exc}") from None

    def start_arch(self) -> Arch:
        return parse(self.start_net, self.max_layers)

    def schedule(self) -> WidthSchedule:
        return WidthSchedule(tuple(self.conv_widths), tuple(self.fc_widths))


@dataclasses.dataclass
class ChildTrainConfig:
    epochs: int = spec(20, ge=0, doc="training epochs per child network (paper: 20)")
    lr: float = spec(0.02, gt=0, doc="initial learning rate, annealed to 0 by a per-step cosine")
    momentum: float = spec(0.9, ge=0, le=1)
    nesterov: bool = True
    weight_decay: float = spec(1e-4, ge=0)
    batch_size: int = spec(64, ge=1)


@dataclasses.dataclass
class MorphNoiseConfig:
    wider: float = spec(0.01, ge=0, doc="noise on widened replicas, as a fraction of the layer weights' std")
    deeper: float = spec(0.001, ge=0, doc="noise on a new identity layer, as a fraction of its weights' std")


@dataclasses.dataclass
class EASPlainConfig:
    seed: int = 0
    space: PlainSpaceConfig = dataclasses.field(default_factory=PlainSpaceConfig)
    child: ChildTrainConfig = dataclasses.field(default_factory=ChildTrainConfig)
    noise: MorphNoiseConfig = dataclasses.field(default_factory=MorphNoiseConfig)
    netpool: Path | None = spec(None, doc="Parquet file of evaluated networks; a restarted search reloads it")
