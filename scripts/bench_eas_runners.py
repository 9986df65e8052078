"""Wall time per EAS iteration with 1 vs 2 env runners, side by side in one process, and the NetPool hit rate.

Each setting is a fresh `kind: eas` run of configs/eas_digits.yaml (same seed, same budget, its own
NetPool, so both train every child they meet). Iteration 1 also trains the start net and starts the
runners, so it is reported apart; the ratio compares the mean of the later iterations.

    python scripts/bench_eas_runners.py --budget 40 --out /tmp/bench_runners
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

from rayneas.config import load_run
from rayneas.eas.record import load_networks
from rayneas.eas.search import run_eas
from rayneas.scoring import ensure_ray

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def iteration_seconds(run_dir: Path) -> list[float]:
    """Seconds per iteration, read back from TensorBoard's `search/iteration_seconds`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return [e.value for e in events.Scalars("search/iteration_seconds")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_runners"))
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    ensure_ray()
    rows = []
    for runners in args.runners:
        overrides = [f"seed={args.seed}", f"budget.networks={args.budget}",
                     f"controller.num_env_runners={runners}", f"name=runners{runners}"]
        result = run_eas(load_run(CONFIG, overrides)[1], args.out / f"runners{runners}")
        seconds = iteration_seconds(args.out / f"runners{runners}")
        networks = load_networks(args.out / f"runners{runners}")
        rows.append((runners, seconds, result, statistics.mean(r["train_seconds"] for r in networks
                                                                if not r["netpool_hit"])))
    base = statistics.mean(rows[0][1][1:])
    print("\n| env runners | iteration 1 (s) | later iterations, mean (s) | speed-up | children trained per "
          "iteration | mean child fine-tune (s) | NetPool hit rate | wall time (s) |\n|---|---|---|---|---|---|---|---|")
    for runners, seconds, result, child in rows:
        later = statistics.mean(seconds[1:])
        print(f"| {runners} | {seconds[0]:.1f} | {later:.1f} | {base / later:.2f}x | "
              f"{result['networks_evaluated'] / result['iterations']:.0f} | {child:.2f} | "
              f"{result['netpool_hit_rate']:.3f} | {result['wall_time_s']:.0f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
