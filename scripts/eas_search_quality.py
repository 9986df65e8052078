"""Search quality: the REINFORCE controller vs random search, same config, budget and seeds, judged on TEST images.

Each (seed, method) pair is one `rayneas run CONFIG` with its own run folder and
NetPool, run in this process on one Ray; the methods alternate seed by seed so
machine load falls on both alike. Each search's best child by validation
accuracy is measured once on the test split (which no search reads); the
methods are compared on that test accuracy, paired per seed. Prints per seed
each method's test and validation accuracy and parameters of that child, the
paired test difference to ``--baseline`` (mean ± std, and on how many seeds it
is positive), each method's mean reward in its first and last iteration, its
children's mean size in those iterations, how size relates to validation
accuracy among them, the spread of an iteration's validation accuracies and its
worst child, and draws the mean reward per iteration into ``--figure``.
``--out/summary.json`` keeps every number.

Choose settings (``--set``, variants) on some seeds, then report others, e.g.
on Fashion-MNIST (apt-get install dataset-fashion-mnist) and on digits:

    python scripts/eas_search_quality.py --config configs/eas_fashion.yaml --seeds 2 3 4 5 6 \\
        --out runs/quality_fashion --figure docs/figures/eas_quality_fashion.png
    python scripts/eas_search_quality.py --config configs/eas_digits.yaml --seeds 2 3 4 5 6 \\
        --out runs/quality_digits --figure docs/figures/eas_quality_digits.png

A method is an algorithm name, or ``LABEL:OVERRIDE;OVERRIDE...`` for a variant, e.g.
``"reinforce_lr0.02:controller.algorithm=reinforce;controller.rllib={lr: 0.02}"``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from matplotlib.figure import Figure
from scipy.stats import spearmanr

from rayneas.config import load_run
from rayneas.eas.record import load_networks
from rayneas.eas.search import run_eas
from rayneas.scoring import ensure_ray

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def mean_std(values: Sequence[float], digits: int = 4, sign: str = "") -> str:
    """``sign="+"`` for a difference, whose sign is the finding."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{sign}.{digits}f} ± {std:.{digits}f}"


def per_iteration(rows: list[dict], key: str, reduce: Callable[[list[float]], float]) -> list[float]:
    """``reduce`` of ``key`` over each iteration's children, iteration by iteration."""
    return [reduce([r[key] for r in rows if r["iteration"] == i]) for i in sorted({r["iteration"] for r in rows})]


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def search(config: Path, seed: int, name: str, changes: list[str], budget: int, runners: int, out: Path,
           extra: list[str]) -> dict[str, Any]:
    """One run of ``config`` with these overrides in ``out/<name>``: its result and reward curve; a folder that
    holds a checkpoint is resumed, so an interrupted study continues where it stopped."""
    overrides = [f"seed={seed}", f"budget.networks={budget}", f"controller.num_env_runners={runners}",
                 f"name={name}", *changes, *extra]
    cfg = load_run(config, overrides)[1]
    run_dir = out / cfg.name
    result = run_eas(cfg, run_dir, resume=(run_dir / "checkpoint").exists())
    rows = load_networks(run_dir)
    return {**result, "curve": per_iteration(rows, "reward", statistics.mean),
            "params_curve": per_iteration(rows, "params", statistics.mean),
            "size_val_spearman": float(spearmanr([r["params"] for r in rows], [r["val_acc"] for r in rows])[0]),
            "val_acc_spread": statistics.mean(per_iteration(rows, "val_acc", spread)),
            "worst_val_acc": statistics.mean(per_iteration(rows, "val_acc", min))}


def paired_table(results: dict[str, dict[int, dict]], baseline: str) -> list[str]:
    """Markdown: one row per seed (test / val / params of each method's best child), then the summary rows."""
    methods, seeds = list(results), sorted(next(iter(results.values())))
    lines = ["| seed | " + " | ".join(f"{m}: test / val / params" for m in methods)
             + "".join(f" | {m} − {baseline} (test)" for m in methods if m != baseline) + " |",
             "|---|" + "---|" * (len(methods) + len(methods) - 1)]

    def cell(best: dict) -> str:
        return f"{best['test_acc']:.4f} / {best['val_acc']:.4f} / {best['params']:,}"

    for seed in seeds:
        row = [cell(results[m][seed]["best"]) for m in methods]
        row += [f"{results[m][seed]['best']['test_acc'] - results[baseline][seed]['best']['test_acc']:+.4f}"
                for m in methods if m != baseline]
        lines.append(f"| {seed} | " + " | ".join(row) + " |")
    summary = [f"{mean_std([results[m][s]['best']['test_acc'] for s in seeds])} / "
               f"{mean_std([results[m][s]['best']['val_acc'] for s in seeds])}" for m in methods]
    for m in methods:
        if m != baseline:
            gaps = [results[m][s]["best"]["test_acc"] - results[baseline][s]["best"]["test_acc"] for s in seeds]
            summary.append(f"{mean_std(gaps, sign='+')} (> 0 on {sum(g > 0 for g in gaps)} of {len(gaps)} seeds)")
    lines.append("| mean ± std | " + " | ".join(summary) + " |")
    return lines


Column = tuple[str, Callable[[dict], float], int]  # title, value of one run, digits


def method_table(results: dict[str, dict[int, dict]], columns: Sequence[Column]) -> list[str]:
    """Markdown: one row per method, each column the mean ± std over its seeds."""
    lines = ["| method | " + " | ".join(title for title, _, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for method, runs in results.items():
        cells = [mean_std([value(run) for run in runs.values()], digits) for _, value, digits in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


CURVE: list[Column] = [("mean reward, iteration 1", lambda r: r["curve"][0], 3),
                       ("mean reward, last iteration", lambda r: r["curve"][-1], 3),
                       ("best val_acc", lambda r: r["best"]["val_acc"], 4),
                       ("NetPool hit rate", lambda r: r["netpool_hit_rate"], 3),
                       ("wall time (s)", lambda r: r["wall_time_s"], 0)]
# What a controller can learn here: how its children's size moves over the iterations, how much size pays
# (Spearman of parameters against validation accuracy over a search's children), the spread of validation
# accuracy among one update's children, against which any action's effect on the reward must stand out, and
# the worst child of an iteration (mean over iterations): children a policy can learn to avoid.
LEARNING: list[Column] = [("children's mean params, iteration 1", lambda r: r["params_curve"][0], 0),
                          ("last iteration", lambda r: r["params_curve"][-1], 0),
                          ("Spearman(params, val_acc)", lambda r: r["size_val_spearman"], 2),
                          ("std of val_acc within an iteration", lambda r: r["val_acc_spread"], 4),
                          ("worst val_acc of an iteration", lambda r: r["worst_val_acc"], 4)]


def plot(results: dict[str, dict[int, dict]], path: Path, title: str) -> None:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for method, runs in results.items():
        curves = [r["curve"] for r in runs.values()]
        n = min(len(c) for c in curves)
        ax.plot(range(1, n + 1), [statistics.mean(c[i] for c in curves) for i in range(n)], "o-",
                label=f"{method} (mean of {len(curves)} seeds)")
    ax.set_xlabel("iteration (one controller update)")
    ax.set_ylabel("mean reward tan(val_acc·π/2)")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[int, dict]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--methods", nargs="+", default=["reinforce", "random"])
    parser.add_argument("--baseline", default="random", help="the method the others are paired against")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--figure", type=Path, default=None, help="default: OUT/reward.png")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides for every run")
    args = parser.parse_args(argv)
    labels = [m.partition(":")[0] for m in args.methods]
    if args.baseline not in labels:
        parser.error(f"--baseline {args.baseline!r} is not one of the methods {labels}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; command: "
          f"{' '.join([Path(sys.executable).name, *(sys.argv if argv is None else ['eas_search_quality.py', *argv])])}")
    ensure_ray()
    results: dict[str, dict[int, dict]] = {label: {} for label in labels}
    for seed in args.seeds:
        for method in args.methods:
            label, _, variant = method.partition(":")
            changes = variant.split(";") if variant else [f"controller.algorithm={label}"]
            run = search(args.config, seed, f"{label}_seed{seed}", changes, args.budget, args.runners, args.out,
                         args.set)
            results[label][seed] = run
            best = run["best"]
            print(f"{label} seed {seed}: best child test_acc {best['test_acc']:.4f} val_acc {best['val_acc']:.4f} "
                  f"{best['params']} params; start net val_acc {run['start_val_acc']:.4f}; reward first "
                  f"{run['curve'][0]:.3f} last {run['curve'][-1]:.3f}; {run['wall_time_s']:.0f} s", flush=True)
    print("\n" + "\n".join(paired_table(results, args.baseline)) + "\n\n" + "\n".join(method_table(results, CURVE))
          + "\n\n" + "\n".join(method_table(results, LEARNING)))
    figure = args.figure or args.out / "reward.png"
    plot(results, figure, f"{args.config.name}, seeds {', '.join(map(str, args.seeds))}, {args.budget} children")
    (args.out / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"figure: {figure}; numbers: {args.out / 'summary.json'}")
    return results


if __name__ == "__main__":
    main()
