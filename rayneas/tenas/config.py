"""The settings of a TE-NAS pruning search (``kind: tenas`` in a YAML run config).

Defaults are the reference code's NAS-Bench-201 settings (``prune_launch.py``:
κ batch 72, 3 repeats, prune 1 op per edge per round, Δκ rounded to 3
decimals); ``configs/tenas_darts_*.yaml`` set the DARTS values. Every value
that changes which cell is found is checked here, before any actor starts.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from rayneas.config import spec, to_dict
from rayneas.data.batch import Source
from rayneas.tenas.rank import TENAS_INDICATORS, KappaAggregate
from rayneas.spaces import darts, nb201

Space = Literal["nb201", "darts"]
Dataset = Literal["cifar10", "cifar100", "imagenet16", "imagenet"]
Mode = Literal["paper", "reference"]
Aggregate = Literal["rank_sum", "log_rank"]  # rayneas.indicators.aggregate.AGGREGATIONS

#: Ops a supernet edge may hold, in the space's own order; `none` is never searched (as in TE-NAS).
SEARCH_OPS: dict[str, tuple[str, ...]] = {"nb201": nb201.SEARCH_OPS,
                                          "darts": tuple(op for op in darts.PRIMITIVES if op != "none")}
#: Classifier width of the search networks for each dataset (ImageNet16-120 has 120 classes).
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "imagenet16": 120, "imagenet": 1000}
_DATASET_SOURCES = ("cifar10", "cifar100", "imagenet16")


@dataclasses.dataclass
class InputsConfig:
    """Where the images the indicators see come from; labels are never used."""

    source: Source = spec("sample_images", doc="sample_images (no download), gaussian, or the dataset's train split")
    root: Path | None = spec(None, doc="folder holding the dataset when source names one")
    image_size: int | None = spec(None, ge=1, doc="side of the κ images; null = the source's native size")
    batch_size: int = spec(72, ge=2, doc="images per κ batch (reference code: 72 NB201, 14 DARTS CIFAR, 24 ImageNet)")
    region_samples: int = spec(1000, ge=1, doc="3x3 one-channel crops per linear-region batch")
    region_batches: int = spec(3, ge=1, doc="batches of crops whose activation patterns are pooled")
    proxy_batch: int | None = spec(None, ge=2, doc="cap on the batch of each eval-network indicator (naswot, "
                                                   "az_*, ...); null = each indicator's declared batch")

    def __post_init__(self) -> None:
        if self.source in _DATASET_SOURCES and self.root is None:
            raise ValueError(f"inputs.source is {self.source!r}, which is read from disk: set inputs.root to the "
                             f"folder holding it, or use inputs.source: sample_images")


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
            thin = [n for n in self.indicators if n != "linear_regions" and _network(n) == "thin"]
            if thin:
                raise ValueError(f"prune.indicators {thin}: reference mode draws a thin network per candidate "
                                 "and compares only linear_regions with its own baseline; use mode: paper")


def _network(name: str) -> str:
    from rayneas.indicators import indicator_info

    return indicator_info(name).network


def check_indicators(names: list[str], where: str) -> None:
    """Refuse an empty list, repeats and names that are not registered, listing the registered ones."""
    from rayneas.indicators import available_indicators

    allowed = available_indicators()
    unknown = [n for n in names if n not in allowed]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"{where} {names} must list distinct registered indicators (at least one); unknown: "
                         f"{unknown or 'none'}; allowed: {', '.join(allowed)}")


@dataclasses.dataclass
class SupernetConfig:
    """The κ network; the linear-region network is always the thin C=1 copy (see docs/design.md)."""

    C: int = spec(3, ge=1, doc="channels of the first stage (NB201 3, DARTS 1)")
    N: int = spec(1, ge=1, doc="cells per stage (NB201); DARTS always uses its two-cell network")
    ops: list[str] | None = spec(None, doc="candidate ops on every edge; null = all of the space's but none")


@dataclasses.dataclass
class ScoringConfig:
    num_actors: int = spec(2, ge=0, doc="Ray actors scoring candidates; 0 scores in this process")
    num_gpus_per_actor: float = spec(0.0, ge=0, doc="GPU share per actor (0.5 puts two actors on a GPU)")
    num_cpus_per_actor: float = spec(1.0, gt=0)
    threads_per_actor: int = spec(1, ge=1, doc="torch threads in each actor (and in the serial path)")
    max_retries: int = spec(3, ge=0, doc="times a task is retried on a restarted actor after the actor dies")
    autoscaling: bool = spec(False, doc="the cluster adds nodes on demand (cluster launcher, KubeRay): a pool "
                                        "larger than today's nodes warns and waits instead of failing")


@dataclasses.dataclass
class NetSize:
    """Size of an evaluation-size network; null = the paper's size."""

    C: int | None = spec(None, ge=1, doc="NB201 16, DARTS CIFAR 36, DARTS ImageNet 48")
    layers: int | None = spec(None, ge=1, doc="NB201 cells per stage (5); DARTS cells (20 CIFAR, 14 ImageNet)")


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


def check_run(name: str, space: str, dataset: str, source: str) -> None:
    """The checks every search config makes: a plain run folder name, images of the searched dataset."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"name {name!r} must be a plain folder name, e.g. tenas_nb201_seed0")
    if source in _DATASET_SOURCES and source != dataset:
        raise ValueError(f"inputs.source {source!r} differs from dataset {dataset!r}; use the "
                         f"searched dataset's images, or sample_images / gaussian")
    if space == "nb201" and dataset == "imagenet":
        raise ValueError("dataset 'imagenet' is not in NAS-Bench-201; use cifar10, cifar100 or imagenet16, "
                         "or space: darts")


DIGEST = "inputs_digest"


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


def result_settings(cfg: Any, inputs_digest: str, indicators: list[str], leave_out: tuple[str, ...]) -> dict:
    """``cfg`` as plain data without ``leave_out`` and ``inputs.root``, plus the digest, threads and device.

    The eval-network settings (``proxy_net``, ``inputs.proxy_batch``) are kept
    only when an indicator of ``indicators`` is computed on that network: they
    change nothing otherwise, and runs saved before they existed still resume.
    """
    data = {k: v for k, v in to_dict(cfg).items() if k not in leave_out}
    data["inputs"] = {k: v for k, v in data["inputs"].items() if k != "root"}
    if not any(_network(name) == "eval" for name in indicators):
        data.pop("proxy_net", None)
        data["inputs"].pop("proxy_batch", None)
    data[DIGEST] = inputs_digest
    data["scoring"] = {"threads_per_actor": cfg.scoring.threads_per_actor,
                       "device": "gpu" if cfg.scoring.num_gpus_per_actor > 0 else "cpu"}
    return data
