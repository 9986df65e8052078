"""Time one TE-NAS round's scoring on 1 Ray actor against 2 actors, side by side in one run.

The work is round 1 of the NB201 search: for each of the 24 candidates (6
edges × 4 live ops) the supernet (C=3, N=1) with that op removed, Kaiming
weights redrawn from the candidate's seed, and κ by
``rayneas.indicators.ntk_condition_number`` on one batch of sample-image
crops, shared through the object store. Each pool's actors are started and
waited for before its clock starts (a search pays that once, not per round).
Both pools give each actor ``--threads`` torch threads, so their κ values
must agree bit for bit; the script checks that. ``--trials`` alternates the
two pools that many times, so load from other processes hits both alike, and
reports best against best and the median of each trial's ratio; the CPU seconds the actors used, over the wall
time, show how many cores they actually got (on a busy machine, fewer than
the actors).

    python scripts/bench_scoring.py                        # 24 candidates, batch 72
    python scripts/bench_scoring.py --candidates 8 --batch 32
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from typing import Any, Mapping

import torch

from rayneas.indicators import init_weights, ntk_batch, ntk_condition_number
from rayneas.scoring import DEVICE_KEY, ScorerPool, ensure_ray
from rayneas.spaces import nb201

Candidate = tuple[int, str, int]  # (edge, op removed, init seed)


def round_one(count: int, seed: int) -> list[Candidate]:
    """The first ``count`` candidates of round 1, in the search's order (edge-major)."""
    every = [(edge, op) for edge in range(nb201.NUM_EDGES) for op in nb201.SEARCH_OPS]
    if not 1 <= count <= len(every):
        raise SystemExit(f"--candidates must be between 1 and {len(every)} (round 1 has {len(every)}), got {count}")
    return [(edge, op, seed + i) for i, (edge, op) in enumerate(every[:count])]


@dataclasses.dataclass(frozen=True)
class KappaScorer:
    """κ of the supernet without one op: what a TE-NAS candidate costs, ~98% of a search's time."""

    C: int = 3
    N: int = 1

    def __call__(self, task: Candidate, shared: Mapping[str, Any]) -> tuple[float, float]:
        """(κ, CPU seconds this process spent on it)."""
        cpu = time.process_time()
        edge, op, seed = task
        net = nb201.supernet(C=self.C, N=self.N, mask=nb201.search_mask().without("cell", edge, op))
        init_weights(net, "paper", seed, fan="out")
        kappa = ntk_condition_number(net.to(shared[DEVICE_KEY]), shared["images"])
        return kappa, time.process_time() - cpu


@dataclasses.dataclass
class Timing:
    startup: float  # pool built until every actor is up
    wall: float  # scoring, wall clock
    cpu: float  # scoring, CPU seconds summed over actors
    kappas: list[float]


def timed_round(actors: int, tasks: list[Candidate], images: torch.Tensor, threads: int) -> Timing:
    started = time.perf_counter()
    with ScorerPool(KappaScorer, num_actors=actors, threads_per_actor=threads, shared={"images": images}) as pool:
        pool.placements()
        ready = time.perf_counter()
        results = pool.score(tasks)
        wall = time.perf_counter() - ready
    return Timing(ready - started, wall, sum(cpu for _, cpu in results), [kappa for kappa, _ in results])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=24, help="how many of round 1's 24 candidates to score")
    parser.add_argument("--batch", type=int, default=72, help="images per κ (reference code: 72)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor")
    parser.add_argument("--trials", type=int, default=1, help="alternating runs of each pool; the best time counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ensure_ray(num_cpus=2 * args.threads)
    tasks = round_one(args.candidates, args.seed)
    images = ntk_batch(args.batch, args.seed)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{len(tasks)} candidates, batch {args.batch}, {args.threads} thread(s) per actor, {args.trials} trial(s)",
          flush=True)
    walls: dict[int, list[float]] = {1: [], 2: []}
    kappas: dict[int, list[float]] = {}
    for trial in range(args.trials):
        for actors in (1, 2):
            t = timed_round(actors, tasks, images, args.threads)
            walls[actors].append(t.wall)
            kappas[actors] = t.kappas
            # CPU / wall: the cores the actors actually got; below `actors` means other processes took the rest.
            print(f"trial {trial + 1}, {actors} actor(s): start-up {t.startup:6.2f} s, scoring {t.wall:7.2f} s "
                  f"({t.wall / len(tasks):.2f} s per candidate; {t.cpu:.1f} CPU s = {t.cpu / t.wall:.2f} cores busy)",
                  flush=True)
    paired = [one / two for one, two in zip(walls[1], walls[2])]
    print(f"best: 1 actor {min(walls[1]):.2f} s, 2 actors {min(walls[2]):.2f} s; "
          f"speed-up {min(walls[1]) / min(walls[2]):.2f}x (best vs best), "
          f"{statistics.median(paired):.2f}x (median of the trials' ratios: {', '.join(f'{r:.2f}' for r in paired)})")
    differ = [(task, one, two) for task, one, two in zip(tasks, kappas[1], kappas[2]) if one != two]
    print(f"κ identical for 1 and 2 actors: {not differ}")
    for task, one, two in differ:
        print(f"  candidate {task}: {one!r} vs {two!r}")


if __name__ == "__main__":
    main()
