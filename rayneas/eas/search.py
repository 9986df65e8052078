"""``kind: eas``: the EAS search, an RLlib controller (or random search) sampling children of `rayneas/EAS-v0`.

One iteration is one ``Algorithm.train()``: the env runners sample whole
episodes (each a child network, fine-tuned from the start net's weights and
scored through the shared NetPool), and the controller is updated. The
children come back to the driver through the search's own episode log in the
NetPool, which every algorithm fills the same way, so the network table,
TensorBoard, Tune and the progress bar see the same children whatever RLlib
algorithm runs.
After the budget, the best child (by validation accuracy; by reward in
``reward.mode: indicators``, which trains nothing) is measured once on the
test split, which the search never reads, if it has weights.
"""
from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from rayneas.config import RunKind, from_dict
from rayneas.eas.config import EASConfig, EASEnvConfig
from rayneas.eas.data import check_dataset, load_test_data
from rayneas.eas.evaluator import ChildEvaluator, load_state
from rayneas.eas.netpool import call, connect
from rayneas.eas.record import EASRunStore, EASState, best_key
from rayneas.runs.folder import RESULT
from rayneas.eas.report import Board, IterationCallback, IterationReport, Progress, controller_scalars, plot_rewards
from rayneas.eas.train import accuracy
from rayneas.runs.staging import remote_of
from rayneas.storage import resolve
from rayneas.quiet import actor_restart_notice_spent

NETPOOL = "netpool.parquet"


def netpool_path(cfg: EASConfig, run_dir: Path) -> str:
    """The config's NetPool location, else one inside the run folder (so --resume and export find the weights):
    for a run folder at a URI, there directly (the pool only appends files, each written once)."""
    if cfg.netpool is not None:
        return resolve(cfg.netpool)
    remote = remote_of(run_dir)
    return f"{remote}/{NETPOOL}" if remote is not None else resolve(Path(run_dir) / NETPOOL)


def trained_network(cfg: EASConfig, run_dir: Path, arch: str) -> tuple[nn.Module, ChildEvaluator]:
    """A child as the search trained it: its weights from the NetPool (and the evaluator that knows its data).

    The evaluator is built from the env runners' own config (`EASConfig.env_config`, which resolves
    ``episode.order``), so its NetPool settings are theirs to the letter.
    """
    evaluator = ChildEvaluator(from_dict(EASEnvConfig, cfg.env_config(netpool_path(cfg, run_dir))))
    weights = call(evaluator.pool, "weights", arch, evaluator.setting("child"))
    if weights is None:
        raise FileNotFoundError(f"the NetPool {netpool_path(cfg, run_dir)} has no weights for {arch!r}; it was "
                                "scored without training (reward.mode: surrogate or indicators) or the pool file "
                                "was replaced")
    net = evaluator.space.build(arch, evaluator.data.in_channels, evaluator.data.num_classes)
    load_state(net, weights)
    return net.to(cfg.device), evaluator


def _iteration(state: EASState, entries: list[dict[str, Any]], result: dict[str, Any], seconds: float,
               by: str, budget: int) -> IterationReport:
    state.iterations += 1
    # Runners finish in any order: sorted, the table is the same on every run with this seed.
    rows = [{"iteration": state.iterations, **e} for e in sorted(entries, key=lambda e: (e["arch"], e["reward"]))]
    state.networks.extend(rows)
    best = state.best(by)
    n = len(rows)
    return IterationReport(
        iteration=state.iterations, networks_evaluated=len(state.networks),
        reward_mean=sum(r["reward"] for r in rows) / n if n else math.nan,
        val_acc_mean=sum(r["val_acc"] for r in rows) / n if n else math.nan,
        best_val_acc=best["val_acc"] if best else math.nan,
        best_reward=max((r["reward"] for r in state.networks), default=math.nan), best_arch=best["arch"] if best else "",
        netpool_hit_rate=sum(r["netpool_hit"] for r in rows) / n if n else math.nan, seconds=seconds,
        controller=controller_scalars(result), finished=len(state.networks) >= budget)


def restore_controller(algo: Any, checkpoint: Path) -> None:
    """Load a checkpoint's controller into ``algo``, keeping the learning rate of ``algo``'s config.

    torch's ``Optimizer.load_state_dict`` brings back the checkpoint's lr, and RLlib resets it to the config's
    only after the next update: without this, a trial continued with a mutated lr (PBT) would make its first
    update with the old one.
    """
    algo.restore_from_path(str(checkpoint))

    def config_lr(learner: Any) -> None:
        for optimizer, schedule in learner._optimizer_lr_schedules.items():
            learner._set_optimizer_lr(optimizer, schedule.get_current_value())

    if algo.learner_group is not None:
        algo.learner_group.foreach_learner(config_lr)


def rllib_config(cfg: EASConfig, run_dir: Path, episode_log: str | None = None) -> Any:
    """The controller's RLlib config; built before anything runs, so a bad algorithm, module or key fails first.
    Its env runners log every finished child in the NetPool's episode log ``episode_log``."""
    from rayneas.rl.controller import controller_config

    c = cfg.controller
    return controller_config(
        algorithm=c.algorithm, module=c.module, env_config=cfg.env_config(netpool_path(cfg, run_dir), episode_log),
        episode_steps=cfg.episode.wider_steps + cfg.episode.deeper_steps,
        networks_per_iteration=c.networks_per_iteration, num_env_runners=c.num_env_runners, seed=cfg.seed,
        rllib=c.rllib)


def _search(cfg: EASConfig, rllib: Any, store: EASRunStore, state: EASState, pool: Any,
            watchers: Sequence[IterationCallback], clock: Any) -> None:
    log = rllib.env_config["episode_log"]
    with actor_restart_notice_spent():  # RLlib creates its env runners here
        algo = rllib.build_algo()
    try:
        if state.iterations:
            # The checkpoint's controller (weights, optimizer, REINFORCE baseline, iteration count) in an
            # algorithm built from this config, so a moved run folder uses its NetPool where it is now, and a
            # PBT exploit learns with its mutated settings.
            restore_controller(algo, store.checkpoint.resolve())
        while len(state.networks) < cfg.budget.networks:
            began = time.perf_counter()
            result = algo.train()
            report = _iteration(state, call(pool, "drain_episodes", log), result, time.perf_counter() - began,
                                best_key(cfg), cfg.budget.networks)
            state.elapsed_s = clock()
            store.save(algo, state)
            for watch in watchers:
                watch(report)
    finally:
        algo.stop()


def _result(cfg: EASConfig, run_dir: Path, state: EASState, finished: bool = True) -> dict[str, Any]:
    """What result.json holds: the search's counts and its best child, measured on the test split once
    ``finished`` (an unfinished search's result says what it has reached so far)."""
    best = state.best(best_key(cfg))
    if best is None:
        raise RuntimeError("the search evaluated no network; raise budget.networks")
    summary = {"kind": "eas", "space": cfg.space.kind, "algorithm": cfg.controller.algorithm,
               "module": cfg.controller.module, "seed": cfg.seed, "dataset": cfg.dataset.name,
               "reward_mode": cfg.reward.mode,
               "networks_evaluated": len(state.networks),
               "unique_networks": len({r["arch"] for r in state.networks}),
               "netpool_hit_rate": sum(r["netpool_hit"] for r in state.networks) / len(state.networks),
               "iterations": state.iterations, "wall_time_s": state.elapsed_s, "start_net": cfg.space.start_net,
               "finished": finished}
    entry = {"arch": best["arch"], "val_acc": None if math.isnan(best["val_acc"]) else best["val_acc"],  # JSON
             "reward": best["reward"], "params": best["params"],
             "iteration": best["iteration"], "test_acc": None}
    if finished and cfg.reward.mode in ("train", "hybrid"):  # the modes that keep every child's weights
        net, evaluator = trained_network(cfg, run_dir, best["arch"])
        x, y = load_test_data(cfg.dataset, cfg.seed)
        entry["test_acc"] = accuracy(net, x, y)
        space = evaluator.space
        start = call(evaluator.pool, "get", space.to_string(space.start()), evaluator.setting("start"))
        summary["start_val_acc"] = None if start is None else start.accuracy
    return {**summary, "best": entry}


def write_progress(cfg: EASConfig, run_dir: Path) -> Path:
    """``result.json`` of the search's last checkpoint, unfinished (``finished: false``, no test accuracy): what
    a search stopped from outside (a Tune scheduler) has reached."""
    store = EASRunStore(run_dir)
    store.write_result(_result(cfg, run_dir, store.saved_state(), finished=False))
    return store.dir / RESULT


def run_eas(cfg: EASConfig, run_dir: Path, resume: bool = False,
            callbacks: Sequence[IterationCallback] = (), may_change: Sequence[str] = ()) -> dict:
    """Run (or, with ``resume``, continue from the last checkpointed iteration) an EAS search in ``run_dir``.

    After every iteration the checkpoint is saved, then the progress bar,
    TensorBoard (`Board`) and each of ``callbacks`` (e.g. the Tune reporter)
    get the same `IterationReport`. Returns the summary also in result.json.
    ``may_change``: dotted config keys a resume may find changed (PBT's mutations).
    """
    from rayneas.eas.nodes import check_dataset_on_nodes
    from rayneas.rl.resources import check_controller_fits, controller_bundles
    from rayneas.scoring import ensure_ray

    session_start = time.perf_counter()
    check_dataset(cfg.dataset, cfg.seed)  # a missing file fails here, not in every env runner
    run_dir = Path(run_dir)
    # A log of its own: other searches on the same pool (a Tune experiment's trials) log theirs beside it.
    rllib = rllib_config(cfg, run_dir, episode_log=uuid.uuid4().hex)
    store = EASRunStore(run_dir)
    state = store.start(cfg, resume, may_change)
    elapsed_before = state.elapsed_s
    if len(state.networks) < cfg.budget.networks:
        ensure_ray()
        check_controller_fits(rllib, autoscaling=cfg.controller.autoscaling)
        check_dataset_on_nodes(cfg.dataset, controller_bundles(rllib)[1][:cfg.controller.num_env_runners])
        pool = connect(netpool_path(cfg, run_dir))
        progress, board = Progress(cfg.budget.networks, len(state.networks), cfg.controller.algorithm), Board(run_dir)
        try:
            _search(cfg, rllib, store, state, pool, [progress, board, *callbacks],
                    clock=lambda: elapsed_before + time.perf_counter() - session_start)
        finally:
            progress.close()
            board.close()
    result = _result(cfg, run_dir, state)
    store.write_result(result)
    plot_rewards(run_dir, state.networks, f"EAS {cfg.controller.algorithm} on {cfg.dataset.name}, seed {cfg.seed}: "
                                          f"best {result['best']['arch']}", by=best_key(cfg))
    return {"run_dir": str(run_dir), **result}


RUN_KIND = RunKind("eas", EASConfig, run_eas)
