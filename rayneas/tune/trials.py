"""What a Tune trial runs for each run kind: one registered function per kind.

A trial function runs (or, with ``resume``, continues) the kind's search in
``run_dir`` and calls ``report(metrics, files)`` once per step of the search
(a TE-NAS pruning round, an EAS iteration): the metrics go to Tune and the
named files and folders of ``run_dir`` become that step's checkpoint. A restored or restarted trial gets
those files back in a fresh ``run_dir`` and ``resume=True``, so the kind's own
resume logic continues it; ``mutable`` names the config keys whose value may
differ from the checkpoint's (a PBT exploit continues a donor's checkpoint
with mutated values), which the kind's resume must accept. ``bundles(cfg)`` lists the placement-group bundles
the search's workers need besides the trial driver (scoring actors, env
runners, learners: Tune's placement group captures the actors a trial starts,
so they land in these bundles), ``driver(cfg)`` what the kind needs in the
trial's own bundle at least (e.g. a GPU for a learner that runs in the
driver); ``columns`` are the metrics of a trial's last report that the
summary table shows; ``objective`` is the (metric, mode) schedulers and search
algorithms rank trials by unless the ``tune:`` block names one, ``metrics``
the numeric metrics every report carries (what ``metric`` and ``stop`` may
name), and ``mutable`` the config sections a PBT exploit may mutate;
``prepare``, if given, runs once in the experiment's driver before any trial,
sets up what the trials share and returns the config document they get.
Adding a kind to ``rayneas tune`` is one registered function.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

from rayneas.config import ConfigError

Report = Callable[[Mapping[str, Any], Sequence[str]], None]
Bundle = dict[str, float]
Prepare = Callable[[dict, str], dict]  # (config document, experiment path) -> the trials' document


#: What Tune adds to every report, so ``metric`` and ``stop`` may name them for every kind.
TUNE_METRICS = ("training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore",
                "iterations_since_restore")


class TrialFunction(Protocol):
    def __call__(self, cfg: Any, run_dir: Path, resume: bool, report: Report, mutable: Sequence[str]) -> dict: ...


def _no_driver_needs(cfg: Any) -> Bundle:
    return {}


@dataclasses.dataclass(frozen=True)
class Trial:
    run: TrialFunction
    bundles: Callable[[Any], list[Bundle]]
    columns: tuple[str, ...]
    objective: Callable[[Any], tuple[str, Literal["max", "min"]]]  # the config's default (metric, mode)
    metrics: tuple[str, ...]
    metric_prefixes: tuple[str, ...] = ()  # families of metrics whose names depend on the config
    mutable: tuple[str, ...] = ()
    driver: Callable[[Any], Bundle] = _no_driver_needs
    prepare: Prepare | None = None

    def reports(self, metric: str) -> bool:
        """Whether every report of this kind carries the numeric ``metric``."""
        return metric in self.metrics or metric in TUNE_METRICS or metric.startswith(self.metric_prefixes)

    def may_mutate(self, key: str) -> bool:
        return any(key == section or key.startswith(f"{section}.") for section in self.mutable)


_TRIALS: dict[str, Trial] = {}


def register_trial(kind: str, bundles: Callable[[Any], list[Bundle]], columns: Sequence[str],
                   objective: Callable[[Any], tuple[str, Literal["max", "min"]]], metrics: Sequence[str],
                   metric_prefixes: Sequence[str] = (), mutable: Sequence[str] = (),
                   driver: Callable[[Any], Bundle] = _no_driver_needs,
                   prepare: Prepare | None = None) -> Callable[[TrialFunction], TrialFunction]:
    """Register ``function`` as what a Tune trial of run kind ``kind`` runs."""
    def register(function: TrialFunction) -> TrialFunction:
        _TRIALS[kind] = Trial(function, bundles, tuple(columns), objective, tuple(metrics), tuple(metric_prefixes),
                              tuple(mutable), driver, prepare)
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


# TE-NAS's objective: the NTK condition number of the supernet after each round (the final cell's at the last
# report), the trainability half of its ranking; lower trains faster.
@register_trial("tenas", bundles=_tenas_bundles, columns=("round", "log10_kappa", "regions", "genotype"),
                objective=lambda cfg: ("log10_kappa", "min"),
                metrics=("round", "log10_kappa", "regions", "live_ops", "candidates", "round_seconds"))
def tenas_trial(cfg: Any, run_dir: Path, resume: bool, report: Report, mutable: Sequence[str]) -> dict:
    """One Tune report per round (pruning rounds and the final cell's), checkpointing ``state.json``; no key is
    mutable (a pruning round's candidates follow from every setting)."""
    from rayneas.tenas.record import STATE
    from rayneas.tenas.report import RoundReport
    from rayneas.tenas.search import run_tenas

    def on_round(round_report: RoundReport) -> None:
        report(round_report.metrics(), [STATE])

    return run_tenas(cfg, run_dir, resume, callbacks=[on_round])


def _eas_request(cfg: Any) -> tuple[Bundle, list[Bundle]]:
    """RLlib's own request for the trial's controller: the driver's needs, then one bundle per env runner (in
    runner order, as RLlib indexes them in the group), evaluation runner and remote learner."""
    from rayneas.eas.search import rllib_config
    from rayneas.rl.resources import controller_bundles

    return controller_bundles(rllib_config(cfg, Path(".")))


def _eas_shared_pool(document: dict, experiment_path: str) -> dict:
    """One NetPool for the whole experiment (the config's ``netpool``, else ``netpool.parquet`` in the
    experiment's storage), its actor owned by the experiment's driver so that it outlives every trial.

    Its files are written once, as each child is trained, straight to that storage, so no checkpoint
    carries (or uploads again) the pool's ever-growing weights; a restored trial, or one that PBT restarts
    from another trial's checkpoint, finds every child already trained (records are keyed by setting, so
    trials with other child settings never share one).
    """
    from rayneas.eas.netpool import netpool_actor
    from rayneas.eas.search import NETPOOL
    from rayneas.scoring import ensure_ray
    from rayneas.storage import resolve

    location = resolve(document.get("netpool") or f"{experiment_path}/{NETPOOL}")
    ensure_ray()
    # Held for the driver's lifetime: Ray ends a named actor once its owner drops every handle, and a trial
    # would then create the pool anew and take it down when Tune stops that trial (a PBT or HyperBand pause).
    _SHARED_POOLS[location] = netpool_actor(location)
    return {**document, "netpool": location}


_SHARED_POOLS: dict[str, Any] = {}


def _eas_objective(cfg: Any) -> tuple[str, Literal["max", "min"]]:
    """The best validation accuracy so far; the best reward where no child is trained (reward.mode indicators)."""
    from rayneas.eas.record import best_key

    return ("best_reward" if best_key(cfg) == "reward" else "best_val_acc"), "max"


# The controller's learning settings are what PBT mutates: the search state (network table, RLlib weights and
# optimizer) carries on unchanged under them, and the experiment's shared NetPool already holds every child.
@register_trial("eas", bundles=lambda cfg: _eas_request(cfg)[1], driver=lambda cfg: _eas_request(cfg)[0],
                prepare=_eas_shared_pool,
                columns=("iteration", "networks_evaluated", "reward_mean", "best_reward", "best_val_acc", "best_arch"),
                objective=lambda cfg: _eas_objective(cfg),
                metrics=("iteration", "networks_evaluated", "reward_mean", "val_acc_mean", "best_val_acc",
                         "best_reward", "netpool_hit_rate", "iteration_seconds"),
                metric_prefixes=("controller/",), mutable=("controller.rllib",))
def eas_trial(cfg: Any, run_dir: Path, resume: bool, report: Report, mutable: Sequence[str]) -> dict:
    """One Tune report per RLlib iteration, checkpointing the run's checkpoint folder and config (the NetPool
    lives in the experiment's storage, `_eas_shared_pool`).

    Before each report, ``result.json`` says what the search has reached (``finished: false``), so a trial a
    scheduler stops (ASHA, HyperBand) leaves a readable run folder: Tune ends its process inside that report.
    """
    from rayneas.eas.record import CHECKPOINT, CONFIG
    from rayneas.eas.report import IterationReport
    from rayneas.eas.search import run_eas, write_progress

    def on_iteration(iteration: IterationReport) -> None:
        write_progress(cfg, run_dir)
        report(iteration.metrics(), [CHECKPOINT, CONFIG])

    return run_eas(cfg, run_dir, resume, callbacks=[on_iteration], may_change=mutable)

