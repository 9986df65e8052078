"""The settings of a TE-NAS pruning search (``kind: tenas`` in a YAML run config).

Defaults are the reference code's NAS-Bench-201 settings (``prune_launch.py``:
κ batch 72, 3 repeats, prune 1 op per edge per round, Δκ rounded to 3
decimals); ``configs/tenas_darts_*.yaml`` set the DARTS values. Every value
that changes which cell is found is checked here, before any actor starts.
"""
from __future__ import annotations

import dataclasses

from rayneas.config import spec
from rayneas.indicators import check_indicators, indicator_info
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
    result_settings,
)
from rayneas.scoring.supernet import TENAS_INDICATORS
from rayneas.spaces.prunable import NUM_CLASSES, SEARCH_OPS
from rayneas.tenas.rank import KappaAggregate


@dataclasses.dataclass
class PruneConfig:
    repeats: int = spec(3, ge=1, doc="input batches (and, in paper mode, inits) Δκ and ΔR are averaged over")
    mode: Mode = spec("paper", doc="paper: Kaiming-normal per repeat, absolute ΔR; reference: what the public "
                                   "TE-NAS code runs (one PyTorch-default κ net per round, relative rounded ΔR)")
    kappa_aggregate: KappaAggregate = spec("mean", doc="Δκ over repeats: mean (reference), median or geomean")
    prune_number: int = spec(1, ge=1, doc="ops pruned per edge per round (NB201 1, DARTS CIFAR 3, ImageNet 2)")
    edges_per_node: int = spec(2, ge=1, doc="DARTS: incoming edges each node keeps after the op rounds")
    precision: int = spec(3, ge=0, le=15, doc="decimals each repeat's Δκ (and, in reference mode, ΔR) is "
                                               "rounded to before averaging")
    max_rounds: int | None = spec(None, ge=1, doc="stop after this many rounds (resume later with --resume)")
    indicators: list[str] = spec(default_factory=lambda: list(TENAS_INDICATORS),
                                 doc="registered indicators a candidate is ranked by (rayneas.indicators)")
    aggregate: Aggregate = spec("rank_sum", doc="how the indicators' ranks combine: rank_sum (TE-NAS) or "
                                                "log_rank (AZ-NAS)")

    def __post_init__(self) -> None:
        check_indicators(self.indicators, "prune.indicators")
        if self.mode == "reference":
            thin = [n for n in self.indicators if n != "linear_regions" and indicator_info(n).network == "thin"]
            if thin:
                raise ValueError(f"prune.indicators {thin}: reference mode draws a thin network per candidate "
                                 "and compares only linear_regions with its own baseline; use mode: paper")


@dataclasses.dataclass
class ExportConfig(NetSize):
    """Size of the network ``rayneas export`` builds from the found cell; null = the paper's size."""

    auxiliary: bool = spec(False, doc="DARTS: add the auxiliary head used in training")


@dataclasses.dataclass
class TenasConfig:
    name: str = spec("tenas", doc="run folder: runs/<name>/")
    seed: int = spec(0, ge=0)
    space: Space = "nb201"
    dataset: Dataset = spec("cifar10", doc="sets the classifier width of the search networks")
    inputs: InputsConfig = dataclasses.field(default_factory=InputsConfig)
    prune: PruneConfig = dataclasses.field(default_factory=PruneConfig)
    supernet: SupernetConfig = dataclasses.field(default_factory=SupernetConfig)
    scoring: ScoringConfig = dataclasses.field(default_factory=ScoringConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    proxy_net: NetSize = dataclasses.field(default_factory=NetSize)  # the eval-network indicators' network

    def __post_init__(self) -> None:
        check_run(self.name, self.space, self.dataset, self.inputs.source)
        ops = self.supernet.ops
        if ops is not None:
            allowed = SEARCH_OPS[self.space]
            unknown = [op for op in ops if op not in allowed]
            if unknown or not ops or len(set(ops)) != len(ops):
                raise ValueError(f"supernet.ops {ops} must list distinct ops of the {self.space} space without "
                                 f"'none' (TE-NAS masks it out), at least one of: {', '.join(allowed)}")

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.dataset]


def search_settings(cfg: TenasConfig, inputs_digest: str) -> dict:
    """The part of the config that decides the result; a resumed run must match it exactly.

    Kept from ``scoring``: torch threads per worker and the device (whether
    actors get GPUs), since float sums differ with either. Where the data lives
    (``inputs.root``) is replaced by ``inputs_digest``, the hash of the input
    tensors the indicators see: a moved dataset resumes, a changed one does not.
    Left out: where the run goes, how many actors score (serial and parallel
    give the same numbers), how it is exported, and where it stops early.
    """
    data = result_settings(cfg, inputs_digest, cfg.prune.indicators, ("name", "scoring", "export"))
    data["prune"] = {k: v for k, v in data["prune"].items() if k != "max_rounds"}
    return data
