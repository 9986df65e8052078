"""Search quality on digits: the REINFORCE controller vs random search, same budget, several seeds.

Each (seed, method) pair is one `rayneas run configs/eas_digits.yaml` with
its own run folder and NetPool, run in this process on one Ray; the methods
alternate seed by seed so machine load falls on both alike. Prints a Markdown
table (mean ± std of best val_acc, test_acc of that network, first- and
last-iteration mean reward, NetPool hit rate, wall time) and draws the mean
reward per iteration of each method into ``--figure``.

    python scripts/eas_search_quality.py --seeds 0 1 2 3 4 --budget 100 --out runs/quality \
        --methods reinforce random "reinforce_lr0.02:controller.algorithm=reinforce;controller.rllib={lr: 0.02}"

A method is an algorithm name, or ``LABEL:OVERRIDE;OVERRIDE...`` for a variant.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

from matplotlib.figure import Figure

from rayneas.config import load_run
from rayneas.eas.record import load_networks
from rayneas.eas.search import run_eas
from rayneas.scoring import ensure_ray

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def mean_std(values: list[float], digits: int = 4) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def iteration_means(rows: list[dict]) -> list[float]:
    last = max(r["iteration"] for r in rows)
    return [statistics.mean(r["reward"] for r in rows if r["iteration"] == i) for i in range(1, last + 1)]


def search(seed: int, name: str, changes: list[str], budget: int, runners: int, out: Path,
           extra: list[str]) -> tuple[dict, Path]:
    """One run of `CONFIG` with these overrides in ``out/<name>``: (its result, its folder); a folder that
    holds a checkpoint is resumed, so an interrupted measurement continues where it stopped."""
    overrides = [f"seed={seed}", f"budget.networks={budget}", f"controller.num_env_runners={runners}",
                 f"name={name}", *changes, *extra]
    cfg = load_run(CONFIG, overrides)[1]
    run_dir = out / cfg.name
    return run_eas(cfg, run_dir, resume=(run_dir / "checkpoint").exists()), run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=["reinforce", "random"])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/eas_quality_reward.png"))
    parser.add_argument("--set", action="append", default=[], help="extra config overrides for every run")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; command: "
          f"{' '.join([Path(sys.executable).name, *sys.argv])}")
    ensure_ray()
    labels = [m.partition(":")[0] for m in args.methods]
    results: dict[str, list[dict]] = {label: [] for label in labels}
    curves: dict[str, list[list[float]]] = {label: [] for label in labels}
    for seed in args.seeds:
        for method in args.methods:
            label, _, variant = method.partition(":")
            changes = variant.split(";") if variant else [f"controller.algorithm={label}"]
            result, run_dir = search(seed, f"{label}_seed{seed}", changes, args.budget, args.runners, args.out,
                                     args.set)
            curve = iteration_means(load_networks(run_dir))
            results[label].append(result)
            curves[label].append(curve)
            print(f"{label} seed {seed}: best val_acc {result['best']['val_acc']:.4f} test_acc "
                  f"{result['best']['test_acc']:.4f} reward first {curve[0]:.3f} last {curve[-1]:.3f} "
                  f"hit rate {result['netpool_hit_rate']:.2f} {result['wall_time_s']:.0f} s", flush=True)
    print(f"\n| method | seeds | best val_acc | its test_acc | reward, iteration 1 | reward, last iteration "
          f"| NetPool hit rate | wall time (s) |\n|---|---|---|---|---|---|---|---|")
    for method, runs in results.items():
        print(f"| {method} | {len(runs)} | {mean_std([r['best']['val_acc'] for r in runs])} "
              f"| {mean_std([r['best']['test_acc'] for r in runs])} "
              f"| {mean_std([c[0] for c in curves[method]], 3)} | {mean_std([c[-1] for c in curves[method]], 3)} "
              f"| {mean_std([r['netpool_hit_rate'] for r in runs], 3)} "
              f"| {mean_std([r['wall_time_s'] for r in runs], 0)} |")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for method, runs in curves.items():
        n = min(len(c) for c in runs)
        ax.plot(range(1, n + 1), [statistics.mean(c[i] for c in runs) for i in range(n)], "o-",
                label=f"{method} (mean of {len(runs)} seeds)")
    ax.set_xlabel("iteration (10 children each)")
    ax.set_ylabel("mean reward tan(val_acc·π/2)")
    ax.grid(alpha=0.3)
    ax.legend()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
