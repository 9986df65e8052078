"""A run config's ``tune:`` sweep as a Ray Tune experiment: build it, run or restore it, summarise it.

Every trial is the config with the swept keys set (``seed``,
``scoring.num_actors``, any key), validated up front for every value (a
range's ends) so a typo fails before Ray starts. A trial runs in a placement
group of one bundle for its driver plus the bundles its search's workers need
(`rayneas.tune.trials`), and `ScorerPool` places its actors inside that group.
Each trial writes its run folder (``run/``: state, candidates, TensorBoard
events) in its Tune trial directory (``tune.get_context().get_trial_dir()``,
never the process's working directory, which trials on one node may share);
every report's checkpoint carries what a restored trial needs, so a URI
storage path works as well as a local folder.
"""
from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from ray import tune
from ray.tune import Checkpoint, CheckpointConfig, FailureConfig, ResultGrid, RunConfig, TuneConfig, Tuner
from ray.tune.execution.placement_groups import PlacementGroupFactory

from rayneas.config import ConfigError, from_dict, load_document, parse_run, with_key
from rayneas.quiet import is_quiet
from rayneas.runs.report import TENSORBOARD_DIR
from rayneas.tune.config import PbtScheduler, TuneSettings
from rayneas.tune.schedule import check_search_library, domain, scheduler, search_algorithm
from rayneas.tune.trials import Trial, trial_for

RUN_FOLDER = "run"  # the trial's run folder, inside its working directory


@dataclasses.dataclass(frozen=True)
class Experiment:
    document: dict  # the run config without its tune block
    settings: TuneSettings
    kind: str
    name: str
    metric: str  # what schedulers and search algorithms rank trials by (the kind's unless tune.metric says)
    mode: str

    @property
    def path(self) -> str:
        """Where Tune keeps the experiment: a local folder or a URI."""
        return f"{_storage(self.settings.storage_path)}/{self.name}"

    @property
    def mutable(self) -> tuple[str, ...]:
        """The keys a trial's config may change against its checkpoint's: PBT's mutations."""
        s = self.settings.scheduler
        return tuple(s.hyperparam_mutations) if isinstance(s, PbtScheduler) else ()


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read and validate a run config with a ``tune:`` block, every swept value included."""
    data = load_document(path, overrides)
    if "tune" not in data:
        raise ConfigError(f"{path}: no tune: block, so there is nothing to sweep; add one "
                          f"(configs/tune_tenas_nb201.yaml shows its keys) or use rayneas run")
    settings = from_dict(TuneSettings, data.pop("tune"), "tune")
    kind, cfg = parse_run(data, str(path))
    trial = trial_for(kind.name)
    metric, mode = objective(settings, trial, kind.name, cfg)
    check_search_library(settings)
    if isinstance(settings.scheduler, PbtScheduler):
        frozen = [key for key in settings.scheduler.hyperparam_mutations if not trial.may_mutate(key)]
        if frozen:
            raise ConfigError(f"tune.scheduler.hyperparam_mutations.{frozen[0]}: a {kind.name} trial continued from "
                              f"another's checkpoint may change only keys under {', '.join(trial.mutable) or '(none)'}"
                              f"; mutate those (e.g. controller.rllib.lr) or use another scheduler")
    for key, sweep in settings.swept().items():
        for value in sweep.edges():
            try:
                parse_run(with_key(data, key, value, f"tune.params.{key}"), str(path))
            except ConfigError as exc:
                raise ConfigError(f"tune.params.{key} = {value!r}: {exc}") from exc
    return Experiment(data, settings, kind.name, settings.name or f"{cfg.name}_tune", metric, mode)


def objective(settings: TuneSettings, trial: Trial, kind: str, cfg: Any) -> tuple[str, str]:
    """(metric, mode): the block's, else the kind's for ``cfg``; ``metric`` and ``stop`` must be reported."""
    default_metric, default_mode = trial.objective(cfg)
    metric = settings.metric or default_metric
    for where, name in [("tune.metric", metric), *((f"tune.stop.{key}", key) for key in settings.stop)]:
        if not trial.reports(name):
            raise ConfigError(f"{where}: a {kind} trial does not report {name!r}; it reports "
                              f"{', '.join(trial.metrics + trial.metric_prefixes)} and Tune's training_iteration, "
                              f"time_total_s")
    if settings.mode is None and metric != default_metric:
        raise ConfigError(f"tune.mode: say max or min for metric {metric!r} (only {kind}'s default metric "
                          f"{default_metric!r} comes with a mode)")
    return metric, settings.mode or default_mode


def trial_run(document: Mapping, params: Mapping[str, Any]) -> tuple[Any, Any]:
    """(run kind, config) of the trial whose swept keys take ``params``."""
    data = dict(document)
    for key, value in params.items():
        data = with_key(data, key, value, f"tune.params.{key}")
    return parse_run(data, "<tune trial>")


def search(config: dict, document: dict, mutable: Sequence[str]) -> None:
    """The Tune function trainable: one search, continued from the trial's checkpoint when there is one (its own,
    or under PBT another trial's, with ``mutable`` keys changed)."""
    kind, cfg = trial_run(document, config["params"])
    run_dir = Path(tune.get_context().get_trial_dir()) / RUN_FOLDER
    checkpoint = tune.get_checkpoint()
    _clear(run_dir)  # a restart before any checkpoint starts afresh; a restored one is the checkpoint's
    if checkpoint is not None:
        with checkpoint.as_directory() as saved:
            shutil.copytree(saved, run_dir, dirs_exist_ok=True)

    def report(metrics: Mapping[str, Any], files: Sequence[str]) -> None:
        # A copy, taken now: the search goes on writing run_dir while Tune persists the checkpoint.
        with tempfile.TemporaryDirectory(prefix="rayneas-checkpoint-") as folder:
            for name in files:
                if (run_dir / name).is_dir():
                    shutil.copytree(run_dir / name, Path(folder) / name)
                else:
                    shutil.copy2(run_dir / name, Path(folder) / name)
            tune.report(dict(metrics), checkpoint=Checkpoint.from_directory(folder))

    trial_for(kind.name).run(cfg, run_dir, checkpoint is not None, report, mutable)


def _clear(run_dir: Path) -> None:
    """Empty ``run_dir`` but for its TensorBoard events, which a restored trial appends to."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for entry in run_dir.iterdir():
        if entry.name == TENSORBOARD_DIR:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _resources(experiment: Experiment, config: dict) -> PlacementGroupFactory:
    """One bundle for the trial driver (``tune.resources``, raised to what the kind needs there), then one per
    worker of its search (the trial's own settings)."""
    res = experiment.settings.resources
    kind, cfg = trial_run(experiment.document, config["params"])
    trial = trial_for(kind.name)
    driver = {"CPU": res.driver_cpus, **({"GPU": res.driver_gpus} if res.driver_gpus else {})}
    for key, amount in trial.driver(cfg).items():
        driver[key] = max(driver.get(key, 0.0), amount)
    return PlacementGroupFactory([driver, *trial.bundles(cfg)])


def trainable(experiment: Experiment) -> Any:
    """The trainable, with its resources; `Tuner.restore` needs it again."""
    run = tune.with_parameters(search, document=experiment.document, mutable=experiment.mutable)
    return tune.with_resources(run, functools.partial(_resources, experiment))


def _storage(path: str) -> str:
    return path if "://" in path else str(Path(path).resolve())


def build_tuner(experiment: Experiment) -> Tuner:
    s = experiment.settings
    # PBT clones a donor's checkpoint from its last perturbation, which Tune does not pin: keep them all.
    keep = None if isinstance(s.scheduler, PbtScheduler) else 2
    return Tuner(
        trainable(experiment),
        param_space={"params": {key: domain(sweep) for key, sweep in s.params.items()}},
        tune_config=TuneConfig(metric=experiment.metric, mode=experiment.mode, scheduler=scheduler(s),
                               search_alg=search_algorithm(s), num_samples=s.num_samples),
        run_config=RunConfig(
            name=experiment.name, storage_path=_storage(s.storage_path), stop=dict(s.stop) or None,
            failure_config=FailureConfig(max_failures=s.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=keep),
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=0 if is_quiet() else None,  # no status tables (rayneas.quiet); rayneas prints its summary
        ),
    )


def run_experiment(experiment: Experiment, resume: bool = False) -> ResultGrid:
    """Run the sweep, or (``resume``) restore the interrupted experiment and finish it."""
    prepare = trial_for(experiment.kind).prepare
    if prepare is not None:
        experiment = dataclasses.replace(experiment, document=prepare(experiment.document, experiment.path))
    exists = Tuner.can_restore(experiment.path)
    if resume and not exists:
        raise ConfigError(f"cannot resume: no Tune experiment at {experiment.path}; run without --resume to start")
    if exists and not resume:
        raise ConfigError(f"{experiment.path} already holds a Tune experiment; continue it with --resume, or set "
                          f"tune.name to start another")
    if resume:
        tuner = Tuner.restore(experiment.path, trainable(experiment), resume_errored=True)
    else:
        tuner = build_tuner(experiment)
    return tuner.fit()
