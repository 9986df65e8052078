"""The settings of a zero-cost sampling search (``kind: zero_cost`` in a YAML run config).

It shares the TE-NAS config's sections (`rayneas.scoring.config`: inputs, the
κ network, the evaluation-size network, scoring), so an indicator is computed
on the same networks with the same inputs in both searches.
"""
from __future__ import annotations

import dataclasses

from rayneas.config import spec
from rayneas.spaces import nb201
from rayneas.indicators import check_indicators
from rayneas.scoring.config import (
    Aggregate,
    Dataset,
    InputsConfig,
    Mode,
    NetSize,
    ScoringConfig,
    Space,
    SupernetConfig,
    check_run,
)
from rayneas.scoring.supernet import TENAS_INDICATORS


@dataclasses.dataclass
class SampleConfig:
    cells: int = spec(1000, ge=1, doc="random cells scored; drawn from seed, so a larger number extends a run "
                                      "(the first cells stay the same)")
    save_every: int = spec(50, ge=1, doc="scored cells between writes of cells.parquet (what a resume starts from)")


@dataclasses.dataclass
class ZeroCostConfig:
    name: str = spec("zero_cost", doc="run folder: runs/<name>/")
    seed: int = spec(0, ge=0, doc="draws the cells, the inits and the input batches")
    space: Space = "nb201"
    dataset: Dataset = spec("cifar10", doc="sets the classifier width of the scored networks")
    indicators: list[str] = spec(default_factory=lambda: list(TENAS_INDICATORS),
                                 doc="registered indicators every cell is scored by (rayneas.indicators)")
    aggregate: Aggregate = spec("rank_sum", doc="how the indicators' ranks over all cells combine: rank_sum "
                                                "(TE-NAS) or log_rank (AZ-NAS)")
    mode: Mode = spec("paper", doc="paper: Kaiming-normal inits; reference: PyTorch's default init")
    repeats: int = spec(1, ge=1, doc="inits and input batches each indicator is averaged over, per cell")
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)
    inputs: InputsConfig = dataclasses.field(default_factory=InputsConfig)
    supernet: SupernetConfig = dataclasses.field(default_factory=SupernetConfig)  # the κ network
    proxy_net: NetSize = dataclasses.field(default_factory=NetSize)  # the eval-network indicators' network
    scoring: ScoringConfig = dataclasses.field(default_factory=ScoringConfig)

    def __post_init__(self) -> None:
        check_run(self.name, self.space, self.dataset, self.inputs.source)
        check_indicators(self.indicators, "indicators")
        if self.supernet.ops is not None:
            raise ValueError("supernet.ops must stay null in a zero_cost run: sampled cells may use every op")
        if self.space == "nb201" and self.sample.cells > nb201.NUM_ARCHS:
            raise ValueError(f"sample.cells {self.sample.cells} exceeds the {nb201.NUM_ARCHS} cells of NAS-Bench-201")
