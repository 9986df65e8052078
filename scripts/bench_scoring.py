"""Time scoring on 1 and 2 Ray actors, one task in flight per actor against two, side by side.

Two rounds, each scored by the searches' own `TenasScorer` on their own inputs:

- ``tenas``: round 1 of the default NAS-Bench-201 search, exactly as the search
  schedules it (`rayneas.tenas.scorer.round_tasks`): the supernet and its 24
  candidates, each for ``--repeats`` repeats (75 tasks at the default 3), each
  task κ of the C=3, N=1 supernet at batch ``--batch`` plus R of the thin network.
- ``cheap``: ``--cells`` cells of a zero-cost sample (`rayneas.zero_cost`),
  scored by ``--cheap-indicators`` (default ``flops``, about 0.2 s per cell),
  where the driver's round trip between tasks is a visible share of the work.

Per round, one pool of 1 actor and one of 2 are started and warmed (each actor
builds its networks on a first task) before any clock starts; each pool then
scores the round once per ``in_flight_per_actor`` (1, then 2, the order swapped
in every other ``--trials`` trial, so load from other processes hits both
alike). Every task reports, from inside its actor, when it ran and the CPU
seconds it used. The table gives, per setting:

- wall: the round's scoring time (best of the trials);
- overhead per task: actor time not spent in a task, (wall × actors − Σ task
  time) / tasks, which holds the driver round trip and the idle tail;
- gap: the mean time an actor sat between the end of one task and the start of
  its next (the round trip that a queued task hides);
- cores busy: CPU seconds over wall;
- speed-up 1→2: 1-actor wall over 2-actor wall, best against best; below the
  table, the median of the ratios within each trial, for actors and in flight.

All four settings must give bit-identical scores: the script says so, and
exits with status 1 if they do not. Torch threads per actor: ``--threads``.

``--device cuda`` instead scores the TE-NAS round twice in this process on that
device (no Ray needed), serially, for a GPU figure to set beside the CPU ones,
and checks the two runs agree (``--nondeterministic`` keeps PyTorch's default
CUDA kernels, to measure what the scorer's deterministic ones cost).

    python scripts/bench_scoring.py                          # both rounds, 1/2 actors x 1/2 in flight
    python scripts/bench_scoring.py --rounds cheap --cells 200 --trials 3
    python scripts/bench_scoring.py --device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pickle
import platform
import statistics
import sys
import time
from typing import Any, Mapping, Sequence

import torch

from rayneas.config import from_dict
from rayneas.scoring.host import ScorerHost
from rayneas.scoring.supernet import Score, ScoreTask, TenasScorer, shared_inputs
from rayneas.spaces.prunable import PrunableSpace, make_space
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.tasks import round_tasks
from rayneas.zero_cost.config import ZeroCostConfig
from rayneas.zero_cost.search import cell_tasks, sample_cells

ACTORS = (1, 2)
IN_FLIGHT = (1, 2)


@dataclasses.dataclass(frozen=True)
class Ran:
    """One task's score, and when and at what CPU cost it ran inside its worker."""

    score: Score
    pid: int
    start: float  # wall clock (time.time, one clock for every process on the machine)
    end: float
    cpu: float


class TimedScorer:
    """The searches' scorer, also reporting when its process ran each task and the CPU seconds it spent."""

    def __init__(self, space: PrunableSpace, mode: str, indicators: Sequence[str]) -> None:
        self.scorer = TenasScorer(space, mode, indicators)

    def __call__(self, task: ScoreTask, shared: Mapping[str, Any]) -> Ran:
        start, cpu = time.time(), time.process_time()
        score = self.scorer(task, shared)
        return Ran(score, os.getpid(), start, time.time(), time.process_time() - cpu)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    what: str
    factory: functools.partial
    tasks: list[ScoreTask]
    shared: dict


@dataclasses.dataclass(frozen=True)
class Timing:
    wall: float
    busy: float  # Σ task time inside the actors
    gap: float  # mean wait of an actor between two of its tasks
    cpu: float
    scores: list[Score]


def tenas_round(args: argparse.Namespace) -> Workload:
    cfg = from_dict(TenasConfig, {"seed": args.seed, "inputs": {"batch_size": args.batch},
                                  "prune": {"repeats": args.repeats, "mode": args.mode}})
    space = make_space(cfg)
    mask = space.initial_mask()
    tasks = round_tasks(cfg, space, mask, 0, space.next_round(mask, 1, 2).candidates)
    indicators = tuple(cfg.prune.indicators)
    return Workload("tenas", f"TE-NAS round 1: {len(tasks)} tasks (κ batch {args.batch} + R, {args.repeats} "
                             f"repeat(s), {args.mode} mode)",
                    functools.partial(TimedScorer, space, cfg.prune.mode, indicators), tasks,
                    shared_inputs(cfg, indicators))


def cheap_round(args: argparse.Namespace) -> Workload:
    indicators = args.cheap_indicators.split(",")
    cfg = from_dict(ZeroCostConfig, {"seed": args.seed, "space": "nb201", "indicators": indicators,
                                     "sample": {"cells": args.cells}, "scoring": {"num_actors": 0}})
    tasks = cell_tasks(cfg, sample_cells(cfg))
    return Workload("cheap", f"zero-cost round: {len(tasks)} NB201 cells by {'+'.join(indicators)}",
                    functools.partial(TimedScorer, make_space(cfg), cfg.mode, tuple(indicators)), tasks,
                    shared_inputs(cfg, indicators))


def timed(pool: Any, tasks: list[ScoreTask], in_flight: int) -> Timing:
    pool.in_flight = in_flight
    started = time.perf_counter()
    ran: list[Ran] = pool.score(tasks)
    wall = time.perf_counter() - started
    gaps = []
    for pid in {r.pid for r in ran}:
        spans = sorted((r.start, r.end) for r in ran if r.pid == pid)
        gaps += [nxt[0] - prev[1] for prev, nxt in zip(spans, spans[1:])]
    return Timing(wall, sum(r.end - r.start for r in ran), statistics.fmean(gaps) if gaps else 0.0,
                  sum(r.cpu for r in ran), [r.score for r in ran])


def bench(work: Workload, threads: int, trials: int) -> dict[tuple[int, int], list[Timing]]:
    from rayneas.scoring import ScorerPool

    timings: dict[tuple[int, int], list[Timing]] = {(a, f): [] for a in ACTORS for f in IN_FLIGHT}
    pools = {a: ScorerPool(work.factory, num_actors=a, threads_per_actor=threads, shared=work.shared)
             for a in ACTORS}
    try:
        for actors, pool in pools.items():
            pool.score(work.tasks[:actors])  # one task per actor: its networks are built before any clock
        for trial in range(trials):
            for actors, pool in pools.items():
                for in_flight in IN_FLIGHT if trial % 2 == 0 else IN_FLIGHT[::-1]:
                    t = timed(pool, work.tasks, in_flight)
                    timings[actors, in_flight].append(t)
                    print(f"  trial {trial + 1}, {actors} actor(s), {in_flight} in flight: {t.wall:8.2f} s",
                          flush=True)
    finally:
        for pool in pools.values():
            pool.shutdown()
    return timings


def report(work: Workload, timings: dict[tuple[int, int], list[Timing]]) -> bool:
    """Prints the round's table; True when every setting gave the same scores."""
    n = len(work.tasks)
    best = {key: min(runs, key=lambda t: t.wall) for key, runs in timings.items()}
    print(f"\n{work.what}; best of {len(next(iter(timings.values())))} trial(s)")
    print("| in flight | actors | wall | overhead per task | gap between tasks | cores busy | speed-up 1→2 |")
    print("|---|---|---|---|---|---|---|")
    for in_flight in IN_FLIGHT:
        for actors in ACTORS:
            t = best[actors, in_flight]
            speedup = best[1, in_flight].wall / t.wall
            print(f"| {in_flight} | {actors} | {t.wall:.2f} s | {1000 * (t.wall * actors - t.busy) / n:.1f} ms | "
                  f"{1000 * t.gap:.1f} ms | {t.cpu / t.wall:.2f} | {'' if actors == 1 else f'{speedup:.2f}×'} |")
    for in_flight in IN_FLIGHT:
        _paired(f"{in_flight} in flight: speed-up of 2 actors over 1", timings[1, in_flight], timings[2, in_flight])
    for actors in ACTORS:
        _paired(f"{actors} actor(s): speed-up of 2 in flight over 1", timings[actors, 1], timings[actors, 2])
    reference = pickle.dumps(timings[1, 1][0].scores)  # bytes: every float bit, NaN and inf included
    same = all(pickle.dumps(t.scores) == reference for runs in timings.values() for t in runs)
    print(f"scores bit-identical over 1/2 actors x 1/2 in flight (every trial): {same}")
    return same


def _paired(what: str, before: list[Timing], after: list[Timing]) -> None:
    """Ratios of runs made side by side in the same trial: what load from other processes disturbs least."""
    ratios = [one.wall / two.wall for one, two in zip(before, after)]
    print(f"{what}: median {statistics.median(ratios):.3f} (per trial: {', '.join(f'{r:.3f}' for r in ratios)})")


def on_device(device: str, work: Workload, deterministic: bool) -> list[Timing]:
    """The round twice in this process, so the two can be compared for equal scores."""
    host = ScorerHost(work.factory, work.shared, torch.device(device), deterministic=deterministic)
    host(work.tasks[0])  # builds the networks and warms the kernels, as an actor's first task does
    timings = []
    for _ in range(2):
        if host.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        ran = [host(task) for task in work.tasks]
        wall = time.perf_counter() - started
        timings.append(Timing(wall, wall, 0.0, sum(r.cpu for r in ran), [r.score for r in ran]))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", default="tenas,cheap", help="comma-separated: tenas, cheap")
    parser.add_argument("--batch", type=int, default=72, help="TE-NAS round: images per κ (reference code: 72)")
    parser.add_argument("--repeats", type=int, default=3, help="TE-NAS round: repeats (search default: 3)")
    parser.add_argument("--mode", choices=("paper", "reference"), default="paper")
    parser.add_argument("--cells", type=int, default=100, help="cheap round: zero-cost cells")
    parser.add_argument("--cheap-indicators", default="flops", help="cheap round: comma-separated indicators")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor")
    parser.add_argument("--trials", type=int, default=1, help="runs of each setting; the best time counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="score the TE-NAS round serially on this torch device "
                                                       "instead (e.g. cuda)")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="with --device cuda: keep PyTorch's default kernels (to measure what determinism costs)")
    args = parser.parse_args()
    builders = {"tenas": tenas_round, "cheap": cheap_round}
    names = args.rounds.split(",")
    if unknown := [n for n in names if n not in builders]:
        parser.error(f"--rounds: unknown {', '.join(unknown)}; choose from {', '.join(builders)}")

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, "
          f"{args.threads} torch thread(s) per worker", flush=True)
    if args.device:
        work = tenas_round(args)
        first, second = on_device(args.device, work, not args.nondeterministic)
        kernels = "default (nondeterministic) kernels" if args.nondeterministic else "deterministic kernels"
        for t in (first, second):
            print(f"{work.what}; {args.device}, serial, {kernels}: {t.wall:.2f} s "
                  f"({t.wall / len(work.tasks):.3f} s per task)")
        print(f"scores identical in both runs: {pickle.dumps(first.scores) == pickle.dumps(second.scores)}")
        return

    from rayneas.scoring import ensure_ray

    ensure_ray(num_cpus=sum(ACTORS) * args.threads)  # both pools' actors exist at once; one pool scores at a time
    same = True
    for name in names:
        work = builders[name](args)
        print(f"{work.what}:", flush=True)
        same &= report(work, bench(work, args.threads, args.trials))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
