"""The TE-NAS pruning search (Chen et al., ICLR 2021), scored in parallel by a `ScorerPool`.

Each round scores, for every repeat, the current supernet once and every
candidate (the supernet with one live op removed) once, all as independent
tasks; then Δκ and ΔR are ranked and every edge (or, in DARTS's edge rounds,
every node) prunes its best candidates. The state is saved after every round,
so ``resume=True`` continues from the last finished round and reaches the same
cell as an uninterrupted run: seeds depend only on (seed, round, repeat).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from rayneas.config import RunKind
from rayneas.indicators import dense_ranks, indicator_info
from rayneas.indicators.aggregate import get_aggregation
from rayneas.runs.settings import inputs_digest
from rayneas.scoring import ScorerPool, ensure_ray
from rayneas.scoring.supernet import TENAS_INDICATORS, Score, TenasScorer, mean_over_repeats, shared_inputs
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import Candidate, PrunableSpace, RoundPlan, make_space
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.rank import choose_in_order, kappa_delta, regions_delta, value_delta
from rayneas.tenas.record import RunStore, SearchState
from rayneas.tenas.report import Board, RoundCallback, RoundProgress, RoundReport, plot_run
from rayneas.tenas.tasks import candidate_name, round_tasks


@dataclasses.dataclass(frozen=True)
class RoundScores:
    full: list[Score]  # the current supernet, one per repeat
    candidates: list[list[Score]]  # per candidate, one per repeat
    seconds: float
    notes: list[str]  # networks with a degenerate NTK


def _score_round(pool: ScorerPool, cfg: TenasConfig, space: PrunableSpace, mask: Mask, index: int,
                 candidates: tuple[Candidate, ...]) -> RoundScores:
    repeats = cfg.prune.repeats
    tasks = round_tasks(cfg, space, mask, index, candidates)
    started = time.perf_counter()
    results = pool.score(tasks)
    seconds = time.perf_counter() - started
    per_net = [results[i:i + repeats] for i in range(0, len(results), repeats)]
    notes = [f"{task.label}: κ = inf (degenerate NTK), ranked last on κ"
             for task, score in zip(tasks, results) if math.isinf(score.kappa)]
    return RoundScores(per_net[0], per_net[1:], seconds, notes)


def _deltas(full: list[Score], cand: list[Score], cfg: TenasConfig) -> dict[str, float]:
    """Indicator → its change when the op is removed: Δκ and ΔR as TE-NAS defines them, `value_delta` for the rest.

    Reference mode compares R with the candidate's own unpruned thin net.
    """
    prune = cfg.prune
    deltas = {}
    for name in prune.indicators:
        if name == "ntk":
            deltas[name] = kappa_delta([s.kappa for s in full], [s.kappa for s in cand], prune.precision,
                                       prune.kappa_aggregate)
        elif name == "linear_regions" and prune.mode == "reference":
            deltas[name] = regions_delta([s.regions_baseline for s in cand], [s.regions for s in cand],
                                         prune.precision)
        elif name == "linear_regions":
            deltas[name] = regions_delta([s.regions for s in full], [s.regions for s in cand], None)
        else:
            deltas[name] = value_delta([s.value(name) for s in full], [s.value(name) for s in cand],
                                       indicator_info(name).higher_is_better)
    return deltas


def rank_round(deltas: list[dict[str, float]], indicators: list[str], method: str) -> tuple[dict[str, list[int]],
                                                                                          list[float], list[int]]:
    """Per indicator dense ranks (0 = best to prune), the aggregate per candidate, and the candidates best first.

    Δκ is best high and ΔR best low (TE-NAS's rules); any other indicator's
    delta is oriented already (high: removing the op helps). Ties of the
    aggregate go to the first indicator's rank, then to the earlier candidate,
    which for κ and R with rank_sum is exactly `rank_candidates` + `choose_prunes`.
    """
    columns = [[d[name] if name != "linear_regions" else -d[name] for d in deltas] for name in indicators]
    ranks = {name: dense_ranks(column, descending=True) for name, column in zip(indicators, columns)}
    values = get_aggregation(method).fn(columns)
    sign = 1.0 if get_aggregation(method).direction == "lower" else -1.0
    first = ranks[indicators[0]]
    order = sorted(range(len(deltas)), key=lambda i: (sign * values[i], first[i], i))
    return ranks, values, order


def prune_round(space: PrunableSpace, index: int, plan: RoundPlan, scores: RoundScores, cfg: TenasConfig,
                state: SearchState) -> list[Candidate]:
    """Rank the round, add its rows to the table, remove the chosen ops from the mask; returns them."""
    indicators = cfg.prune.indicators
    deltas = [_deltas(scores.full, cand, cfg) for cand in scores.candidates]
    ranks, values, order = rank_round(deltas, indicators, cfg.prune.aggregate)
    chosen = choose_in_order(order, plan.groups, plan.quotas)
    reference = cfg.prune.mode == "reference"
    for i, (c, d, cand) in enumerate(zip(plan.candidates, deltas, scores.candidates)):
        row = {"round": index, "phase": plan.phase, "cell": c.cell, "edge": c.edge,
               "edge_label": space.edge_label(c.edge), "node": space.node_of(c.edge), "op": c.op,
               "dkappa": d.get("ntk"), "dregions": d.get("linear_regions"),
               "kappa_rank": ranks["ntk"][i] if "ntk" in ranks else None,
               "regions_rank": ranks["linear_regions"][i] if "linear_regions" in ranks else None,
               "rank_sum": sum(r[i] for r in ranks.values()), "pruned": i in chosen,
               "kappa": [s.kappa for s in cand] if "ntk" in d else None,
               "regions": [s.regions for s in cand] if "linear_regions" in d else None,
               "regions_baseline": [s.regions_baseline for s in cand] if reference else None,
               "aggregate": values[i]}
        for name in indicators:
            if name not in TENAS_INDICATORS:
                row.update({f"delta_{name}": d[name], f"rank_{name}": ranks[name][i],
                            name: [s.value(name) for s in cand]})
        state.candidates.append(row)
    pruned = [plan.candidates[i] for i in chosen]
    for c in pruned:
        state.mask = state.mask.without(*c)
    return pruned


def _full_means(scores: RoundScores, indicators: list[str]) -> dict[str, float]:
    """The supernet's value of every indicator, mean over repeats (κ and R as ``kappa``, ``regions``; NaN if unused)."""
    means = {"kappa": mean_over_repeats([s.kappa for s in scores.full]), "regions": mean_over_repeats([s.regions for s in scores.full])}
    means.update({name: mean_over_repeats([s.value(name) for s in scores.full]) for name in indicators
                  if name not in TENAS_INDICATORS})
    return means


def _describe(means: dict[str, float]) -> str:
    """``κ=…, R=…`` and every other indicator searched by; κ or R left out when not searched by."""
    texts = [f"κ={means['kappa']:.4g}", f"R={means['regions']:.1f}"]
    texts += [f"{name}={value:.4g}" for name, value in means.items() if name not in ("kappa", "regions")]
    return ", ".join(text for text, value in zip(texts, means.values()) if not math.isnan(value))


def _run_rounds(cfg: TenasConfig, space: PrunableSpace, store: RunStore, state: SearchState,
                callbacks: Sequence[RoundCallback], pool: ScorerPool, clock: Callable[[], float]) -> None:
    """Rounds until the cell is final (then one last scoring, for the trajectory) or ``max_rounds`` is reached."""
    while not state.finished:
        index = len(state.rounds)
        if cfg.prune.max_rounds is not None and index >= cfg.prune.max_rounds:
            return
        plan = space.next_round(state.mask, cfg.prune.prune_number, cfg.prune.edges_per_node)
        candidates = plan.candidates if plan else ()
        phase = plan.phase if plan else "final"
        tasks = (len(candidates) + 1) * cfg.prune.repeats
        pool.progress = progress = RoundProgress(index, phase, len(candidates), tasks)
        scores = _score_round(pool, cfg, space, state.mask, index, candidates)
        means = _full_means(scores, cfg.prune.indicators)
        kappa, regions = means["kappa"], means["regions"]
        live = state.mask.live_op_count()
        state.trajectory.append({"round": index, **means, "live_ops": live})
        if plan is None:
            pruned: list[Candidate] = []
            state.finished = True
            state.genotype = space.genotype_text(space.genotype(state.mask))
            summary = f"final cell: {_describe(means)}: {state.genotype}"
        else:
            pruned = prune_round(space, index, plan, scores, cfg, state)
            summary = (f"round {index + 1} ({phase}): supernet {_describe(means)}; {len(candidates)} "
                       f"candidates in {scores.seconds:.1f} s; pruned {', '.join(candidate_name(space, c) for c in pruned)}")
        state.rounds.append({"round": index, "phase": phase, "candidates": len(candidates), "seconds": scores.seconds,
                             "kappa_full": [s.kappa for s in scores.full],
                             "regions_full": [s.regions for s in scores.full],
                             **{f"{name}_full": [s.value(name) for s in scores.full] for name in cfg.prune.indicators
                                if name not in TENAS_INDICATORS},
                             "pruned": [list(c) for c in pruned], "notes": scores.notes})
        state.elapsed_s = clock()
        store.save(state)
        progress.close("\n".join([summary, *scores.notes]))
        report = RoundReport(index, phase, kappa, regions, live, len(candidates), scores.seconds, state.genotype)
        for callback in callbacks:
            callback(report)


def _result(cfg: TenasConfig, space: PrunableSpace, state: SearchState) -> dict:
    """``result.json``; the NAS-Bench-201 accuracies are looked up here, after the search, never during it."""
    result = {
        "space": cfg.space, "dataset": cfg.dataset, "seed": cfg.seed, "genotype": state.genotype,
        "candidates_scored": len(state.candidates), "wall_time_s": state.elapsed_s,
        "trajectory": state.trajectory,
    }
    if cfg.space == "nb201":
        from rayneas.lookup import lookup

        acc = lookup(state.genotype)
        result["nb201_index"] = acc.index
        result["lookup"] = {"cifar10": acc.cifar10, "cifar100": acc.cifar100, "imagenet16": acc.imagenet16}
    else:
        result["genotype_dict"] = space.parse_genotype(state.genotype).to_dict()
    return result


def run_tenas(cfg: TenasConfig, run_dir: Path, resume: bool = False,
              callbacks: Sequence[RoundCallback] = ()) -> dict:
    """Run (or, with ``resume``, continue) a search in ``run_dir``; returns the summary also in result.json.

    After every round the state is saved, then TensorBoard (`Board`) and each
    of ``callbacks`` (e.g. the Tune reporter) get the same `RoundReport`.
    An unfinished run (``prune.max_rounds``) returns ``{"finished": False, ...}``
    and no result.json.
    """
    session_start = time.perf_counter()
    space = make_space(cfg)
    # Read the data first: a missing dataset fails before Ray starts, and resume compares its digest.
    shared = shared_inputs(cfg, cfg.prune.indicators)
    store = RunStore(run_dir)
    state = store.start(cfg, space.initial_mask(), resume, inputs_digest(shared))
    elapsed_before = state.elapsed_s
    if not state.finished:
        sc = cfg.scoring
        if sc.num_actors:
            ensure_ray()
        factory = functools.partial(TenasScorer, space, cfg.prune.mode, tuple(cfg.prune.indicators))
        with ScorerPool(factory, shared=shared, **dataclasses.asdict(sc)) as pool, \
                Board(run_dir) as board:
            _run_rounds(cfg, space, store, state, [board, *callbacks], pool,
                        clock=lambda: elapsed_before + time.perf_counter() - session_start)
    plot_run(run_dir)
    pruning_rounds = sum(1 for r in state.rounds if r["phase"] != "final")
    summary = {"run_dir": str(run_dir), "finished": state.finished, "rounds": pruning_rounds,
               "wall_time_s": state.elapsed_s}
    if state.finished:
        result = _result(cfg, space, state)
        store.write_result(result)
        summary.update(result)
        summary.pop("trajectory")
    return summary


RUN_KIND = RunKind("tenas", TenasConfig, run_tenas)
