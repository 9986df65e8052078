"""The config sections every indicator-scored search shares (TE-NAS's ``kind: tenas``, ``kind: zero_cost``).

Both searches read their inputs, build their κ and evaluation-size networks
and place their scoring actors from these sections, so an indicator is
computed on the same networks with the same inputs in both. `result_settings`
is the part of such a config that decides the numbers, which a resume checks.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from rayneas.config import spec, to_dict
from rayneas.data.batch import Source
from rayneas.indicators import indicator_info
from rayneas.runs.settings import DIGEST

Space = Literal["nb201", "darts"]
Dataset = Literal["cifar10", "cifar100", "imagenet16", "imagenet"]
Mode = Literal["paper", "reference"]
Aggregate = Literal["rank_sum", "log_rank"]  # rayneas.indicators.aggregate.AGGREGATIONS

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
class SupernetConfig:
    """The κ network; the linear-region network is always the thin C=1 copy (see docs/design.md)."""

    C: int = spec(3, ge=1, doc="channels of the first stage (NB201 3, DARTS 1)")
    N: int = spec(1, ge=1, doc="cells per stage (NB201); DARTS always uses its two-cell network")
    ops: list[str] | None = spec(None, doc="candidate ops on every edge; null = all of the space's but none")


@dataclasses.dataclass
class ScoringConfig:
    """`ScorerPool`'s keyword arguments, by the same names (a search passes them on as they are)."""

    num_actors: int = spec(2, ge=0, doc="Ray actors scoring candidates; 0 scores in this process")
    num_gpus_per_actor: float = spec(0.0, ge=0, doc="GPU share per actor (0.5 puts two actors on a GPU)")
    num_cpus_per_actor: float = spec(1.0, gt=0)
    threads_per_actor: int = spec(1, ge=1, doc="torch threads in each actor (and in the serial path)")
    max_retries: int = spec(3, ge=0, doc="times a task is retried on a restarted actor after the actor dies")
    in_flight_per_actor: int = spec(2, ge=1, doc="tasks queued in each actor at once, so it never waits for the "
                                                 "driver between tasks; 1: one at a time (same numbers)")
    autoscaling: bool = spec(False, doc="the cluster adds nodes on demand (cluster launcher, KubeRay): a pool "
                                        "larger than today's nodes warns and waits instead of failing")


@dataclasses.dataclass
class NetSize:
    """Size of an evaluation-size network; null = the paper's size."""

    C: int | None = spec(None, ge=1, doc="NB201 16, DARTS CIFAR 36, DARTS ImageNet 48")
    layers: int | None = spec(None, ge=1, doc="NB201 cells per stage (5); DARTS cells (20 CIFAR, 14 ImageNet)")


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


def result_settings(cfg: Any, inputs_digest: str, indicators: list[str], leave_out: tuple[str, ...]) -> dict:
    """``cfg`` as plain data without ``leave_out`` and ``inputs.root``, plus the digest, threads and device.

    The eval-network settings (``proxy_net``, ``inputs.proxy_batch``) are kept
    only when an indicator of ``indicators`` is computed on that network: they
    change nothing otherwise, and runs saved before they existed still resume.
    """
    data = {k: v for k, v in to_dict(cfg).items() if k not in leave_out}
    data["inputs"] = {k: v for k, v in data["inputs"].items() if k != "root"}
    if not any(indicator_info(name).network == "eval" for name in indicators):
        data.pop("proxy_net", None)
        data["inputs"].pop("proxy_batch", None)
    data[DIGEST] = inputs_digest
    data["scoring"] = {"threads_per_actor": cfg.scoring.threads_per_actor,
                       "device": "gpu" if cfg.scoring.num_gpus_per_actor > 0 else "cpu"}
    return data
