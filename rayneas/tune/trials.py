"""What a Tune trial runs for each run kind: one registered function per kind.

A trial function runs (or, with ``resume``, continues) the kind's search in
``run_dir`` and calls ``report(metrics, files)`` once per step of the search
(a TE-NAS pruning round): the metrics go to Tune and the named files of
``run_dir`` become that step's checkpoint. A restored or restarted trial gets
those files back in a fresh ``run_dir`` and ``resume=True``, so the kind's own
resume logic continues it. ``bundles(cfg)`` lists the placement-group bundles
the search's workers need besides the trial driver; ``columns`` are the
metrics of a trial's last report that the summary table shows.

Adding a kind (e.g. the EAS RLlib search) to ``rayneas tune`` is one function::

    @register_trial("eas", bundles=lambda cfg: [...], columns=("episode_return_mean",))
    def eas_trial(cfg, run_dir, resume, report):
        ...  # report(metrics, ["<state file>"]) after each iteration
        return summary
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from rayneas.config import ConfigError

Report = Callable[[Mapping[str, Any], Sequence[str]], None]
Bundle = dict[str, float]


class TrialFunction(Protocol):
    def __call__(self, cfg: Any, run_dir: Path, resume: bool, report: Report) -> dict: ...


@dataclasses.dataclass(frozen=True)
class Trial:
    run: TrialFunction
    bundles: Callable[[Any], list[Bundle]]
    columns: tuple[str, ...]


_TRIALS: dict[str, Trial] = {}


def register_trial(kind: str, bundles: Callable[[Any], list[Bundle]],
                   columns: Sequence[str]) -> Callable[[TrialFunction], TrialFunction]:
    """Register ``function`` as what a Tune trial of run kind ``kind`` runs."""
    def register(function: TrialFunction) -> TrialFunction:
        _TRIALS[kind] = Trial(function, bundles, tuple(columns))
        return function
    return register


def trial_for(kind: str) -> Trial:
    if kind not in _TRIALS:
        raise ConfigError(f"kind: {kind!r} has no Tune trial; rayneas tune runs {', '.join(sorted(_TRIALS))} "
                          f"(rayneas.tune.trials.register_trial adds one)")
    return _TRIALS[kind]


def _tenas_bundles(cfg: Any) -> list[Bundle]:
    sc = cfg.scoring
    bundle = {"CPU": sc.num_cpus_per_actor, **({"GPU": sc.num_gpus_per_actor} if sc.num_gpus_per_actor else {})}
    return [dict(bundle) for _ in range(sc.num_actors)]


@register_trial("tenas", bundles=_tenas_bundles, columns=("round", "log10_kappa", "regions", "genotype"))
def tenas_trial(cfg: Any, run_dir: Path, resume: bool, report: Report) -> dict:
    """One Tune report per round (pruning rounds and the final cell's), checkpointing ``state.json``."""
    from rayneas.tenas.record import STATE
    from rayneas.tenas.report import RoundReport
    from rayneas.tenas.search import run_tenas

    def on_round(round_report: RoundReport) -> None:
        report(round_report.metrics(), [STATE])

    return run_tenas(cfg, run_dir, resume, callbacks=[on_round])
