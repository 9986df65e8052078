"""The ``tune:`` block of a run config: what `rayneas tune CONFIG` sweeps, how trials are scheduled and searched.

Validated like every other section (unknown keys, wrong types and bad
ranges fail with the key path) and kept free of Ray imports, so ``rayneas run``
can check the block of a config it runs without starting anything. The Tune
objects (sample domains, schedulers, search algorithms) are built from these
settings in `rayneas.tune.build`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

from rayneas.schema import ConfigError, from_dict, spec

DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint", "quniform")


@dataclasses.dataclass
class Sweep:
    """The values of one swept key: one of Tune's sample domains, given as ``{domain: arguments}``."""

    grid: list[Any] | None = spec(None, doc="every value, in every sample (tune.grid_search)")
    choice: list[Any] | None = spec(None, doc="one value drawn per sample (tune.choice)")
    uniform: tuple[float, float] | None = spec(None, doc="[low, high]: a float drawn uniformly (tune.uniform)")
    loguniform: tuple[float, float] | None = spec(None, doc="[low, high], low > 0: a float drawn uniformly in log "
                                                            "space, e.g. a learning rate (tune.loguniform)")
    randint: tuple[int, int] | None = spec(None, doc="[low, high]: an integer low <= n < high (tune.randint)")
    quniform: tuple[float, float, float] | None = spec(None, doc="[low, high, q]: uniform, rounded to a multiple "
                                                                 "of q (tune.quniform)")

    def __post_init__(self) -> None:
        given = [name for name in DOMAINS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DOMAINS)}, e.g. grid: [0, 1] or loguniform: "
                             f"[0.0001, 0.01]")
        if self.kind in ("grid", "choice"):
            if not self.args:
                raise ValueError(f"{self.kind}: give a non-empty list of values")
            return
        low, high = self.args[0], self.args[1]
        if not low < high:
            raise ValueError(f"{self.kind}: [{low}, {high}] needs low < high")
        if self.kind == "loguniform" and low <= 0:
            raise ValueError(f"loguniform: low {low} must be > 0 (a log scale has no 0)")
        if self.kind == "quniform" and self.args[2] <= 0:
            raise ValueError(f"quniform: q {self.args[2]} must be > 0")

    @property
    def kind(self) -> str:
        return next(name for name in DOMAINS if getattr(self, name) is not None)

    @property
    def args(self) -> list[Any]:
        return list(getattr(self, self.kind))

    def edges(self) -> list[Any]:
        """The values checked against the run config before anything runs: every listed value, or a range's ends
        (the largest integer ``randint`` draws is high - 1)."""
        if self.kind in ("grid", "choice"):
            return self.args
        low, high = self.args[0], self.args[1]
        return [low, high - 1] if self.kind == "randint" else [low, high]


TimeAttr = Literal["training_iteration", "time_total_s"]


@dataclasses.dataclass
class FifoScheduler:
    """Every trial runs to its end (or its ``stop`` criterion)."""

    kind: Literal["fifo"] = "fifo"


@dataclasses.dataclass
class AshaScheduler:
    """Asynchronous successive halving (tune.schedulers.ASHAScheduler): a trial below the top 1/reduction_factor
    at a rung is stopped there."""

    kind: Literal["asha"] = "asha"
    time_attr: TimeAttr = spec("training_iteration", doc="what rungs count: reports, or seconds of training")
    max_t: int = spec(100, ge=1, doc="time_attr at which every trial is stopped")
    grace_period: int = spec(1, ge=1, doc="time_attr before which no trial is stopped (the first rung)")
    reduction_factor: float = spec(4, gt=1, doc="1/reduction_factor of the trials at a rung go on")
    brackets: int = spec(1, ge=1)

    def __post_init__(self) -> None:
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period {self.grace_period} exceeds max_t {self.max_t}")


@dataclasses.dataclass
class HyperBandScheduler:
    """Synchronous HyperBand (tune.schedulers.HyperBandScheduler): brackets of trials, halved at each rung;
    a trial waiting for its bracket is paused (checkpointed and restored later)."""

    kind: Literal["hyperband"] = "hyperband"
    time_attr: TimeAttr = "training_iteration"
    max_t: int = spec(81, ge=1, doc="time_attr a trial may reach at most")
    reduction_factor: float = spec(3, gt=1, doc="trials kept per rung: 1/reduction_factor")


@dataclasses.dataclass(kw_only=True)
class PbtScheduler:
    """Population Based Training (tune.schedulers.PopulationBasedTraining): every perturbation_interval, a trial
    in the bottom quantile continues from a top trial's checkpoint with that trial's config, mutated."""

    kind: Literal["pbt"] = "pbt"
    perturbation_interval: float = spec(gt=0, doc="time_attr between exploits (each trial checkpoints every report)")
    hyperparam_mutations: dict[str, Any] = spec(
        default_factory=dict, doc="dotted config key -> a domain (choice, uniform, loguniform, randint, quniform) "
                                  "an exploiting trial resamples or perturbs the donor's value from")
    time_attr: TimeAttr = "training_iteration"
    quantile_fraction: float = spec(0.25, gt=0, le=0.5, doc="share of the population that exploits, and that is "
                                                            "cloned")
    resample_probability: float = spec(0.25, ge=0, le=1, doc="chance a mutated value is drawn anew instead of "
                                                             "perturbed (x0.8 or x1.2; a choice moves one step)")
    burn_in_period: float = spec(0, ge=0, doc="time_attr before the first exploit")
    synch: bool = spec(True, doc="true: trials wait for each other at each perturbation, so a trial only ever "
                                 "clones a checkpoint of the same age; false: Tune's asynchronous PBT")

    def __post_init__(self) -> None:
        if not self.hyperparam_mutations:
            raise ValueError("hyperparam_mutations: name at least one key to mutate, e.g. controller.rllib.lr: "
                             "{loguniform: [0.0001, 0.01]}")
        self.hyperparam_mutations = {key: _sweep(f"hyperparam_mutations.{key}", value)
                                     for key, value in self.hyperparam_mutations.items()}
        for key, sweep in self.hyperparam_mutations.items():
            if sweep.kind == "grid":
                raise ValueError(f"hyperparam_mutations.{key}: grid has nothing to perturb; use choice")


Scheduler = FifoScheduler | AshaScheduler | HyperBandScheduler | PbtScheduler


@dataclasses.dataclass
class TrialResources:
    """The trial driver's own bundle; the scoring actors' bundles come from the trial's ``scoring`` section."""

    driver_cpus: float = spec(1.0, gt=0, doc="CPUs of the trial's search driver (it scores when num_actors is 0)")
    driver_gpus: float = spec(0.0, ge=0, doc="GPU share of the driver (only the serial path computes there)")


@dataclasses.dataclass
class TuneSettings:
    """A config's ``tune:`` block: what `rayneas tune` sweeps, how, where trials store, what each may use."""

    name: str | None = spec(None, doc="experiment folder under storage_path; null = <run name>_tune")
    storage_path: str = spec("runs/tune", doc="local folder (relative to where rayneas runs) or a URI Tune "
                                              "accepts (s3://..., gs://..., file://...)")
    num_samples: int = spec(1, ge=1, doc="times the grid is run; other domains are drawn again each time")
    max_concurrent_trials: int | None = spec(None, ge=1, doc="null = as many as the cluster holds")
    max_failures: int = spec(1, ge=0, doc="restarts of a failed trial, each from its last round's checkpoint")
    resources: TrialResources = dataclasses.field(default_factory=TrialResources)
    params: dict[str, Any] = spec(default_factory=dict, doc="dotted config key -> {grid: [...]}, {choice: [...]}, "
                                  "{uniform: [low, high]}, {loguniform: [low, high]}, {randint: [low, high]} or "
                                  "{quniform: [low, high, q]}")
    metric: str | None = spec(None, doc="the reported metric schedulers and search algorithms rank trials by; "
                                        "null = the run kind's (docs/tune.md)")
    mode: Literal["max", "min"] | None = spec(None, doc="max or min of metric; null = the run kind's (with its "
                                                        "default metric only)")
    stop: dict[str, float] = spec(default_factory=dict, doc="reported metric (or training_iteration) -> value: a "
                                                            "trial stops once it reports metric >= value")
    scheduler: Scheduler = spec(default_factory=FifoScheduler, doc="kind fifo, asha, hyperband or pbt, with its "
                                                                   "settings")
    search: Literal["basic", "optuna", "hyperopt"] = spec("basic", doc="basic: grid and random draws; optuna or "
                                                          "hyperopt: their samplers (pip install "
                                                          "'rayneas[tune-search]')")
    seed: int = spec(0, ge=0, doc="seeds the search algorithm's draws, so the same seed samples the same trials")

    def __post_init__(self) -> None:
        bad = [key for key, value in self.stop.items() if not isinstance(value, (int, float)) or isinstance(value, bool)]
        if bad:
            raise ValueError(f"stop.{bad[0]}: {self.stop[bad[0]]!r} is not a number; a trial stops once it reports "
                             f"{bad[0]} >= this value")
        self.params = {key: value if isinstance(value, Sweep) else _sweep(f"params.{key}", value)
                       for key, value in self.params.items()}
        if self.name is not None and (not self.name or "/" in self.name):
            raise ValueError(f"name {self.name!r} must be a plain folder name")
        if self.search != "basic":
            grids = [key for key, sweep in self.params.items() if sweep.kind == "grid"]
            if grids:
                raise ValueError(f"params.{grids[0]}: search {self.search} draws values itself and takes no grid; "
                                 f"use choice: [...] (or search: basic)")
        if isinstance(self.scheduler, PbtScheduler) and self.search != "basic":
            raise ValueError(f"scheduler pbt mutates the configs itself; it runs with search: basic, not "
                             f"{self.search}")

    def swept(self) -> dict[str, Sweep]:
        """Every key a trial's config may take from Tune: the params, then PBT's mutations."""
        mutations = self.scheduler.hyperparam_mutations if isinstance(self.scheduler, PbtScheduler) else {}
        return {**self.params, **{k: v for k, v in mutations.items() if k not in self.params}}


def _sweep(where: str, value: Any) -> Sweep:
    try:
        return from_dict(Sweep, value, where)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
