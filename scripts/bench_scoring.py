"""Time one real TE-NAS round on 1 Ray actor against 2 actors (and, with ``--device``, serially on a device).

The work is round 1 of the default NAS-Bench-201 search, exactly as the search
schedules it (`rayneas.tenas.tasks.round_tasks`): the supernet and its 24
candidates, each for ``--repeats`` repeats (75 tasks at the default 3), each
task κ of the C=3, N=1 supernet at batch ``--batch`` plus R of the thin network,
scored by the search's own `TenasScorer` on the search's own inputs. Each
pool's actors are started and waited for before its clock starts (a search
pays that once, not per round). Both pools give each actor ``--threads`` torch
threads, so their scores must agree bit for bit; the script checks that.
``--trials`` alternates the pools, so load from other processes hits both
alike; it reports best against best and the median of the trials' ratios. The
CPU seconds the actors used, over the wall time, show how many cores they got.

``--device cuda`` instead scores the same round twice in this process on that
device (no Ray needed), serially, for a GPU figure to set beside the CPU ones,
and checks the two runs agree (``--nondeterministic`` keeps PyTorch's default
CUDA kernels, to measure what the scorer's deterministic ones cost).

    python scripts/bench_scoring.py                     # 75 tasks, batch 72, 1 vs 2 actors
    python scripts/bench_scoring.py --repeats 1 --batch 32
    python scripts/bench_scoring.py --device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import statistics
import time
from typing import Any, Mapping

import torch

from rayneas.config import from_dict
from rayneas.scoring.host import ScorerHost
from rayneas.scoring.supernet import Score, ScoreTask, TenasScorer, shared_inputs
from rayneas.spaces.prunable import PrunableSpace, make_space
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.tasks import round_tasks


class TimedScorer:
    """The search's scorer, also reporting the CPU seconds its process spent on each task."""

    def __init__(self, space: PrunableSpace, mode: str) -> None:
        self.scorer = TenasScorer(space, mode)

    def __call__(self, task: ScoreTask, shared: Mapping[str, Any]) -> tuple[Score, float]:
        cpu = time.process_time()
        score = self.scorer(task, shared)
        return score, time.process_time() - cpu


@dataclasses.dataclass
class Timing:
    startup: float  # pool built until every actor is up
    wall: float  # scoring, wall clock
    cpu: float  # scoring, CPU seconds summed over workers
    scores: list[Score]


def timed_round(actors: int, cfg: TenasConfig, tasks: list[ScoreTask], shared: dict, threads: int) -> Timing:
    from rayneas.scoring import ScorerPool

    factory = functools.partial(TimedScorer, make_space(cfg), cfg.prune.mode)
    started = time.perf_counter()
    with ScorerPool(factory, num_actors=actors, threads_per_actor=threads, shared=shared) as pool:
        pool.placements()
        ready = time.perf_counter()
        results = pool.score(tasks)
        wall = time.perf_counter() - ready
    return Timing(ready - started, wall, sum(cpu for _, cpu in results), [score for score, _ in results])


def on_device(device: str, cfg: TenasConfig, tasks: list[ScoreTask], shared: dict, deterministic: bool) -> list[Timing]:
    """The round twice in this process, so the two can be compared for equal scores."""
    host = ScorerHost(functools.partial(TimedScorer, make_space(cfg), cfg.prune.mode), shared, torch.device(device),
                      deterministic=deterministic)
    host(tasks[0])  # builds the networks and warms the kernels, as an actor's first task does
    timings = []
    for _ in range(2):
        if host.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        results = [host(task) for task in tasks]
        wall = time.perf_counter() - started
        timings.append(Timing(0.0, wall, sum(cpu for _, cpu in results), [score for score, _ in results]))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=72, help="images per κ (reference code: 72)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the round (search default: 3)")
    parser.add_argument("--mode", choices=("paper", "reference"), default="paper")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor")
    parser.add_argument("--trials", type=int, default=1, help="alternating runs of each pool; the best time counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="score serially on this torch device instead (e.g. cuda)")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="with --device cuda: keep PyTorch's default kernels (to measure what determinism costs)")
    args = parser.parse_args()

    cfg = from_dict(TenasConfig, {"seed": args.seed, "inputs": {"batch_size": args.batch},
                                  "prune": {"repeats": args.repeats, "mode": args.mode}})
    space = make_space(cfg)
    mask = space.initial_mask()
    tasks = round_tasks(cfg, space, mask, 0, space.next_round(mask, 1, 2).candidates)
    shared = shared_inputs(cfg)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}; "
          f"round 1: {len(tasks)} tasks (κ batch {args.batch} + R), {args.repeats} repeat(s), {args.mode} mode",
          flush=True)
    if args.device:
        first, second = on_device(args.device, cfg, tasks, shared, not args.nondeterministic)
        kernels = "default (nondeterministic) kernels" if args.nondeterministic else "deterministic kernels"
        for t in (first, second):
            print(f"{args.device}, serial, {kernels}: {t.wall:.2f} s ({t.wall / len(tasks):.3f} s per task)")
        print(f"scores identical in both runs: {first.scores == second.scores}")
        return

    from rayneas.scoring import ensure_ray

    ensure_ray(num_cpus=2 * args.threads)
    walls: dict[int, list[float]] = {1: [], 2: []}
    scores: dict[int, list[Score]] = {}
    for trial in range(args.trials):
        for actors in (1, 2):
            t = timed_round(actors, cfg, tasks, shared, args.threads)
            walls[actors].append(t.wall)
            scores[actors] = t.scores
            print(f"trial {trial + 1}, {actors} actor(s): start-up {t.startup:6.2f} s, scoring {t.wall:7.2f} s "
                  f"({t.wall / len(tasks):.2f} s per task; {t.cpu:.1f} CPU s = {t.cpu / t.wall:.2f} cores busy)",
                  flush=True)
    paired = [one / two for one, two in zip(walls[1], walls[2])]
    print(f"best: 1 actor {min(walls[1]):.2f} s, 2 actors {min(walls[2]):.2f} s; "
          f"speed-up {min(walls[1]) / min(walls[2]):.2f}x (best vs best), "
          f"{statistics.median(paired):.2f}x (median of the trials' ratios: {', '.join(f'{r:.2f}' for r in paired)})")
    differ = [(task.label, one, two) for task, one, two in zip(tasks, scores[1], scores[2]) if one != two]
    print(f"scores identical for 1 and 2 actors: {not differ}")
    for label, one, two in differ:
        print(f"  {label}: {one!r} vs {two!r}")


if __name__ == "__main__":
    main()
