"""The ``tune:`` block of a run config: what `rayneas tune CONFIG` sweeps, and where its trials run.

Validated like every other section (unknown keys, wrong types and bad
ranges fail with the key path) and kept free of Ray imports, so ``rayneas run``
can check the block of a config it runs without starting anything.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from rayneas.schema import ConfigError, from_dict, spec


@dataclasses.dataclass
class Sweep:
    """The values of one swept key: all of them (``grid``) or one drawn per sample (``choice``)."""

    grid: list[Any] | None = spec(None, doc="every value, in every sample (tune.grid_search)")
    choice: list[Any] | None = spec(None, doc="one value drawn at random per sample (tune.choice)")

    def __post_init__(self) -> None:
        given = [name for name in ("grid", "choice") if getattr(self, name) is not None]
        if len(given) != 1 or not self.values:
            raise ValueError("give exactly one non-empty list, as grid: [...] or choice: [...]")

    @property
    def values(self) -> list[Any]:
        return self.grid if self.grid is not None else (self.choice or [])


@dataclasses.dataclass
class TrialResources:
    """The trial driver's own bundle; the scoring actors' bundles come from the trial's ``scoring`` section."""

    driver_cpus: float = spec(1.0, gt=0, doc="CPUs of the trial's search driver (it scores when num_actors is 0)")
    driver_gpus: float = spec(0.0, ge=0, doc="GPU share of the driver (only the serial path computes there)")


@dataclasses.dataclass
class TuneSettings:
    """A config's ``tune:`` block: what `rayneas tune` sweeps, where trials store, what each may use."""

    name: str | None = spec(None, doc="experiment folder under storage_path; null = <run name>_tune")
    storage_path: str = spec("runs/tune", doc="local folder (relative to where rayneas runs) or a URI Tune "
                                              "accepts (s3://..., gs://..., file://...)")
    num_samples: int = spec(1, ge=1, doc="times the grid is run; choice values are drawn again each time")
    max_concurrent_trials: int | None = spec(None, ge=1, doc="null = as many as the cluster holds")
    max_failures: int = spec(1, ge=0, doc="restarts of a failed trial, each from its last round's checkpoint")
    resources: TrialResources = dataclasses.field(default_factory=TrialResources)
    params: dict[str, Any] = spec(default_factory=dict, doc="dotted config key -> {grid: [...]} or {choice: [...]}")

    def __post_init__(self) -> None:
        self.params = {key: value if isinstance(value, Sweep) else _sweep(key, value)
                       for key, value in self.params.items()}
        if self.name is not None and (not self.name or "/" in self.name):
            raise ValueError(f"name {self.name!r} must be a plain folder name")


def _sweep(key: str, value: Any) -> Sweep:
    try:
        return from_dict(Sweep, value, f"params.{key}")
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
