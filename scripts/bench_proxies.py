"""Cost per cell of each registered indicator, as the searches compute it (NAS-Bench-201, CPU).

Each indicator set is scored on the same ``--cells`` cells of a zero-cost
sample by the search's own scorer (`TenasScorer` through a serial
`ScorerPool`: network masked to the cell, init, inputs, the indicator), one
torch thread, one repeat, so the times are what a `kind: zero_cost` run or a
pruning candidate pays per cell and indicator. AZ-NAS's three proxies are
timed alone (a pass each) and together (one joint pass), side by side.

    python scripts/bench_proxies.py --cells 20
"""
from __future__ import annotations

import argparse
import functools
import time

import torch

from rayneas.config import from_dict
from rayneas.indicators import available_indicators
from rayneas.scoring import ScorerPool
from rayneas.scoring.supernet import TenasScorer, shared_inputs
from rayneas.spaces.prunable import make_space
from rayneas.zero_cost.config import ZeroCostConfig
from rayneas.zero_cost.search import cell_tasks, sample_cells

AZ = ("az_expressivity", "az_progressivity", "az_trainability")


def seconds_per_cell(indicators: tuple[str, ...], cells: int, seed: int) -> float:
    cfg = from_dict(ZeroCostConfig, {"seed": seed, "space": "nb201", "indicators": list(indicators),
                                     "sample": {"cells": cells}, "scoring": {"num_actors": 0}})
    tasks = cell_tasks(cfg, sample_cells(cfg))
    factory = functools.partial(TenasScorer, make_space(cfg), cfg.mode, indicators)
    with ScorerPool(factory, num_actors=0, threads_per_actor=1, shared=shared_inputs(cfg, indicators)) as pool:
        pool.score(tasks[:1])  # warm-up: builds the worker's networks once, as an actor does
        start = time.perf_counter()
        pool.score(tasks)
    return (time.perf_counter() - start) / cells


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sets = [(name,) for name in available_indicators()] + [AZ]
    times = {"+".join(s): seconds_per_cell(s, args.cells, args.seed) for s in sets}
    print(f"NAS-Bench-201, {args.cells} cells (seed {args.seed}), 1 torch thread, 1 repeat: seconds per cell")
    for name, value in times.items():
        print(f"  {name:55s} {value:8.3f}")
    separate = sum(times[name] for name in AZ)
    print(f"AZ-NAS's three: {separate:.3f} s as separate passes, {times['+'.join(AZ)]:.3f} s joint "
          f"({separate / times['+'.join(AZ)]:.2f}x)")
    return times


if __name__ == "__main__":
    main()
