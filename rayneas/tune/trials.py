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
runners: Tune's placement group captures the actors a trial starts, so they
land in these bundles); ``columns`` are the metrics of a trial's last report
that the summary table shows; ``objective`` is the (metric, mode) schedulers
and search algorithms rank trials by unless the ``tune:`` block names one,
``metrics`` the numeric metrics every report carries (what ``metric`` and
``stop`` may name), and ``mutable`` the config sections a PBT exploit may
mutate. Adding a kind to ``rayneas tune`` is one registered function.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

from rayneas.config import ConfigError

Report = Callable[[Mapping[str, Any], Sequence[str]], None]
Bundle = dict[str, float]


#: What Tune adds to every report, so ``metric`` and ``stop`` may name them for every kind.
TUNE_METRICS = ("training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore",
                "iterations_since_restore")


class TrialFunction(Protocol):
    def __call__(self, cfg: Any, run_dir: Path, resume: bool, report: Report, mutable: Sequence[str]) -> dict: ...


@dataclasses.dataclass(frozen=True)
class Trial:
    run: TrialFunction
    bundles: Callable[[Any], list[Bundle]]
    columns: tuple[str, ...]
    objective: Callable[[Any], tuple[str, Literal["max", "min"]]]  # the config's default (metric, mode)
    metrics: tuple[str, ...]
    metric_prefixes: tuple[str, ...] = ()  # families of metrics whose names depend on the config
    mutable: tuple[str, ...] = ()

    def reports(self, metric: str) -> bool:
        """Whether every report of this kind carries the numeric ``metric``."""
        return metric in self.metrics or metric in TUNE_METRICS or metric.startswith(self.metric_prefixes)

    def may_mutate(self, key: str) -> bool:
        return any(key == section or key.startswith(f"{section}.") for section in self.mutable)


_TRIALS: dict[str, Trial] = {}


def register_trial(kind: str, bundles: Callable[[Any], list[Bundle]], columns: Sequence[str],
                   objective: Callable[[Any], tuple[str, Literal["max", "min"]]], metrics: Sequence[str],
                   metric_prefixes: Sequence[str] = (),
                   mutable: Sequence[str] = ()) -> Callable[[TrialFunction], TrialFunction]:
    """Register ``function`` as what a Tune trial of run kind ``kind`` runs."""
    def register(function: TrialFunction) -> TrialFunction:
        _TRIALS[kind] = Trial(function, bundles, tuple(columns), objective, tuple(metrics), tuple(metric_prefixes),
                              tuple(mutable))
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


def _eas_bundles(cfg: Any) -> list[Bundle]:
    """One bundle per env runner, sized by the RLlib keys that size a runner (default 1 CPU, no GPU)."""
    rllib = cfg.controller.rllib
    bundle = {"CPU": float(rllib.get("num_cpus_per_env_runner", 1))}
    if rllib.get("num_gpus_per_env_runner"):
        bundle["GPU"] = float(rllib["num_gpus_per_env_runner"])
    return [dict(bundle) for _ in range(cfg.controller.num_env_runners)]


def _eas_objective(cfg: Any) -> tuple[str, Literal["max", "min"]]:
    """The best validation accuracy so far; the best reward where no child is trained (reward.mode indicators)."""
    from rayneas.eas.record import best_key

    return ("best_reward" if best_key(cfg) == "reward" else "best_val_acc"), "max"


# The controller's learning settings are what PBT mutates: the search state (network table, NetPool, RLlib
# weights and optimizer) carries on unchanged under them.
@register_trial("eas", bundles=_eas_bundles,
                columns=("iteration", "networks_evaluated", "reward_mean", "best_reward", "best_val_acc", "best_arch"),
                objective=lambda cfg: _eas_objective(cfg),
                metrics=("iteration", "networks_evaluated", "reward_mean", "val_acc_mean", "best_val_acc",
                         "best_reward", "netpool_hit_rate", "iteration_seconds"),
                metric_prefixes=("controller/",), mutable=("controller.rllib",))
def eas_trial(cfg: Any, run_dir: Path, resume: bool, report: Report, mutable: Sequence[str]) -> dict:
    """One Tune report per RLlib iteration, checkpointing the run's checkpoint folder, config and NetPool.

    Before each report, ``result.json`` says what the search has reached (``finished: false``), so a trial a
    scheduler stops (ASHA, HyperBand) leaves a readable run folder: Tune ends its process inside that report.
    """
    from rayneas.eas.record import CHECKPOINT, CONFIG
    from rayneas.eas.report import IterationReport
    from rayneas.eas.search import netpool_path, run_eas, write_progress

    pool = netpool_path(cfg, run_dir)
    own_pool = pool.parent == run_dir
    # The NetPool travels with the checkpoint when it lives in the run folder: a restored trial then
    # neither retrains its children nor loses the weights of the best one. (A pool file the config names
    # is shared with other trials and stays where it is.)
    kept = [CHECKPOINT, CONFIG] + ([pool.name, f"{pool.stem}.weights"] if own_pool else [])
    if resume and own_pool:
        _drop_pool_actor(pool)

    def on_iteration(iteration: IterationReport) -> None:
        write_progress(cfg, run_dir)
        report(iteration.metrics(), [name for name in kept if (run_dir / name).exists()])

    return run_eas(cfg, run_dir, resume, callbacks=[on_iteration], may_change=mutable)


def _drop_pool_actor(path: Path, timeout_s: float = 60) -> None:
    """End the NetPool actor of ``path`` left by an earlier session of this trial, so the restored pool file is
    read afresh: the actor is named after the path, and the process that owned it may not have taken it down
    yet; a PBT exploit replaces the file with the donor's."""
    import ray

    from rayneas.eas.netpool import netpool_name

    name = netpool_name(path)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            actor = ray.get_actor(name)
        except ValueError:
            return
        ray.kill(actor, no_restart=True)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the NetPool actor {name!r} of {path} outlived ray.kill for {timeout_s} s")
        time.sleep(0.1)
