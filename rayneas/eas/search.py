"""``kind: eas``: the EAS search, an RLlib controller (or random search) sampling children of `rayneas/EAS-v0`.

One iteration is one ``Algorithm.train()``: the env runners sample whole
episodes (each a child network, fine-tuned from the start net's weights and
scored through the shared NetPool), and the controller is updated. The
children come back to the driver through the NetPool's episode log, which
every algorithm fills the same way, so the network table, TensorBoard, Tune
and the progress bar see the same children whatever RLlib algorithm runs.
After the budget, the best child (by validation accuracy; by reward in
``reward.mode: indicators``, which trains nothing) is measured once on the
test split, which the search never reads, if it has weights.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from rayneas.config import RunKind, from_dict
from rayneas.eas.config import EASConfig, EASEnvConfig
from rayneas.eas.data import check_dataset, load_test_data
from rayneas.eas.evaluator import ChildEvaluator, load_state
from rayneas.eas.netpool import call, connect
from rayneas.eas.record import EASRunStore, EASState, best_key
from rayneas.eas.report import Board, IterationCallback, IterationReport, Progress, controller_scalars, plot_rewards
from rayneas.eas.train import accuracy

NETPOOL = "netpool.parquet"


def netpool_path(cfg: EASConfig, run_dir: Path) -> Path:
    """The config's NetPool file, else one inside the run folder (so --resume and export find the weights)."""
    return Path(cfg.netpool) if cfg.netpool is not None else Path(run_dir) / NETPOOL


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
               by: str) -> IterationReport:
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
        controller=controller_scalars(result))


def rllib_config(cfg: EASConfig, run_dir: Path) -> Any:
    """The controller's RLlib config; built before anything runs, so a bad algorithm, module or key fails first."""
    from rayneas.rl.controller import controller_config

    c = cfg.controller
    return controller_config(
        algorithm=c.algorithm, module=c.module, env_config=cfg.env_config(netpool_path(cfg, run_dir)),
        episode_steps=cfg.episode.wider_steps + cfg.episode.deeper_steps,
        networks_per_iteration=c.networks_per_iteration, num_env_runners=c.num_env_runners, seed=cfg.seed,
        rllib=c.rllib)


def _search(cfg: EASConfig, rllib: Any, store: EASRunStore, state: EASState, pool: Any,
            watchers: Sequence[IterationCallback], clock: Any) -> None:
    algo = rllib.build_algo()
    try:
        if state.iterations:
            # The checkpoint's controller (weights, optimizer, REINFORCE baseline, iteration count) in an
            # algorithm built from this config, so a moved run folder uses its NetPool where it is now.
            algo.restore_from_path(str(store.checkpoint.resolve()))
        while len(state.networks) < cfg.budget.networks:
            began = time.perf_counter()
            result = algo.train()
            report = _iteration(state, call(pool, "drain_episodes"), result, time.perf_counter() - began,
                                best_key(cfg))
            state.elapsed_s = clock()
            store.save(algo, state)
            for watch in watchers:
                watch(report)
    finally:
        algo.stop()


def _result(cfg: EASConfig, run_dir: Path, state: EASState) -> dict[str, Any]:
    best = state.best(best_key(cfg))
    if best is None:
        raise RuntimeError("the search evaluated no network; raise budget.networks")
    summary = {"kind": "eas", "space": cfg.space.kind, "algorithm": cfg.controller.algorithm,
               "module": cfg.controller.module, "seed": cfg.seed, "dataset": cfg.dataset.name,
               "reward_mode": cfg.reward.mode,
               "networks_evaluated": len(state.networks),
               "unique_networks": len({r["arch"] for r in state.networks}),
               "netpool_hit_rate": sum(r["netpool_hit"] for r in state.networks) / len(state.networks),
               "iterations": state.iterations, "wall_time_s": state.elapsed_s, "start_net": cfg.space.start_net}
    entry = {"arch": best["arch"], "val_acc": None if math.isnan(best["val_acc"]) else best["val_acc"],  # JSON
             "reward": best["reward"], "params": best["params"],
             "iteration": best["iteration"], "test_acc": None}
    if cfg.reward.mode in ("train", "hybrid"):  # the modes that keep every child's weights
        net, evaluator = trained_network(cfg, run_dir, best["arch"])
        x, y = load_test_data(cfg.dataset, cfg.seed)
        entry["test_acc"] = accuracy(net, x, y)
        space = evaluator.space
        start = call(evaluator.pool, "get", space.to_string(space.start()), evaluator.setting("start"))
        summary["start_val_acc"] = None if start is None else start.accuracy
    return {**summary, "best": entry}


def run_eas(cfg: EASConfig, run_dir: Path, resume: bool = False,
            callbacks: Sequence[IterationCallback] = ()) -> dict:
    """Run (or, with ``resume``, continue from the last checkpointed iteration) an EAS search in ``run_dir``.

    After every iteration the checkpoint is saved, then the progress bar,
    TensorBoard (`Board`) and each of ``callbacks`` (e.g. the Tune reporter)
    get the same `IterationReport`. Returns the summary also in result.json.
    """
    from rayneas.scoring import ensure_ray

    session_start = time.perf_counter()
    check_dataset(cfg.dataset, cfg.seed)  # a missing file fails here, not in every env runner
    run_dir = Path(run_dir)
    rllib = rllib_config(cfg, run_dir)
    store = EASRunStore(run_dir)
    state = store.start(cfg, resume)
    elapsed_before = state.elapsed_s
    if len(state.networks) < cfg.budget.networks:
        ensure_ray()
        pool = connect(netpool_path(cfg, run_dir))
        call(pool, "drain_episodes")  # left by an earlier search in this Ray session
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
