"""Tune's own objects for a ``tune:`` block: sample domains, the trial scheduler and the search algorithm.

The block (`rayneas.tune.config`) is plain validated data; this module turns
it into ``tune.choice``/``tune.loguniform``/..., an ``ASHAScheduler``,
``HyperBandScheduler`` or ``PopulationBasedTraining``, and a
``BasicVariantGenerator``, ``OptunaSearch`` or ``HyperOptSearch``. Every
trial's config is ``{"params": {dotted key: value}}``, so PBT's mutations
are given under ``params`` as well.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from ray import tune
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    PopulationBasedTraining,
    TrialScheduler,
)
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm, Searcher

from rayneas.config import ConfigError
from rayneas.tune.config import AshaScheduler, PbtScheduler, Sweep, TuneSettings
from rayneas.tune.config import HyperBandScheduler as HyperBandSettings

EXTRA = "tune-search"
#: The package each search algorithm imports (installed by ``pip install 'rayneas[tune-search]'``).
SEARCH_PACKAGES = {"optuna": "optuna", "hyperopt": "hyperopt"}


def domain(sweep: Sweep) -> Any:
    """The Tune sample object of a swept key."""
    args = sweep.args
    if sweep.kind == "grid":
        return tune.grid_search(args)
    if sweep.kind == "choice":
        return tune.choice(args)
    return getattr(tune, sweep.kind)(*args)


def mutation(sweep: Sweep) -> Any:
    """What PBT perturbs a key by: a choice as a plain list (a perturbation moves one step along it; PBT would
    multiply a ``tune.choice``'s value like a number's), other domains as themselves (resampled, or the value
    multiplied by 0.8 or 1.2, which may leave the range)."""
    return sweep.args if sweep.kind == "choice" else domain(sweep)


def check_search_library(settings: TuneSettings) -> None:
    """A one-line error naming the extra when the search algorithm's library is not installed."""
    package = SEARCH_PACKAGES.get(settings.search)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigError(f"tune.search: {settings.search} needs the {package} package, which is not installed; "
                          f"pip install 'rayneas[{EXTRA}]' (or -e '.[{EXTRA}]' in a checkout)")


def scheduler(settings: TuneSettings) -> TrialScheduler:
    """The trial scheduler; metric and mode are given to the TuneConfig, which hands them on."""
    s = settings.scheduler
    if isinstance(s, AshaScheduler):
        return ASHAScheduler(time_attr=s.time_attr, max_t=s.max_t, grace_period=s.grace_period,
                             reduction_factor=s.reduction_factor, brackets=s.brackets)
    if isinstance(s, HyperBandSettings):
        return HyperBandScheduler(time_attr=s.time_attr, max_t=s.max_t, reduction_factor=s.reduction_factor)
    if isinstance(s, PbtScheduler):
        return PopulationBasedTraining(
            time_attr=s.time_attr, perturbation_interval=s.perturbation_interval, burn_in_period=s.burn_in_period,
            hyperparam_mutations={"params": {key: mutation(sweep) for key, sweep in s.hyperparam_mutations.items()}},
            quantile_fraction=s.quantile_fraction, resample_probability=s.resample_probability, synch=s.synch)
    return FIFOScheduler()


def search_algorithm(settings: TuneSettings) -> SearchAlgorithm | Searcher:
    """The search algorithm, seeded by ``tune.seed`` and holding at most ``max_concurrent_trials`` trials at
    once (Tune applies that setting only to a search algorithm it makes itself); the param space comes from
    the Tuner."""
    check_search_library(settings)
    limit = settings.max_concurrent_trials
    if settings.search == "basic":
        return BasicVariantGenerator(random_state=settings.seed, max_concurrent=limit or 0)
    if settings.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher: Searcher = OptunaSearch(seed=settings.seed)
    else:
        from ray.tune.search.hyperopt import HyperOptSearch

        searcher = HyperOptSearch(random_state_seed=settings.seed)
    return ConcurrencyLimiter(searcher, max_concurrent=limit) if limit else searcher
