"""One NAS-Bench-201 search config over several seeds: the searched cells' looked-up accuracies and wall times.

Each seed is a separate ``rayneas run CONFIG --set seed=S --set name=NAME_seedS
[--set ...]`` process (a TE-NAS pruning or a zero-cost sampling search, its own
Ray), exactly what a user runs; the accuracies come from each run's
``result.json``, which looks them up only after the search. Prints a Markdown
table (per seed and mean ± std) and writes it to ``OUT/NAME.md``.

    python scripts/nb201_seeds.py configs/tenas_nb201.yaml --seeds 0 1 2 3 4 \\
        --set 'prune.indicators=[az_expressivity, az_progressivity, az_trainability, flops]' \\
        --set prune.aggregate=log_rank --name prune_az
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

DATASETS = ("cifar10", "cifar100", "imagenet16")


def run_seed(config: str, seed: int, name: str, overrides: list[str], runs_dir: Path) -> dict:
    run_name = f"{name}_seed{seed}"
    command = [sys.executable, "-m", "rayneas", "run", config, "--runs-dir", str(runs_dir),
               "--set", f"seed={seed}", "--set", f"name={run_name}"]
    for override in overrides:
        command += ["--set", override]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return json.loads((runs_dir / run_name / "result.json").read_text())


def table(name: str, results: dict[int, dict]) -> str:
    lines = [f"| {name}: seed | CIFAR-10 | CIFAR-100 | ImageNet16-120 | wall time (s) | genotype |",
             "| --- | --- | --- | --- | --- | --- |"]
    for seed, result in results.items():
        acc = result["lookup"]
        lines.append(f"| {seed} | " + " | ".join(f"{acc[d]:.2f}" for d in DATASETS)
                     + f" | {result['wall_time_s']:.0f} | `{result['genotype']}` |")
    columns = {d: np.array([r["lookup"][d] for r in results.values()]) for d in DATASETS}
    wall = np.array([r["wall_time_s"] for r in results.values()])
    lines.append("| **mean ± std** | " + " | ".join(f"**{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}**"
                                                   for v in columns.values())
                 + f" | {wall.mean():.0f} ± {wall.std(ddof=1) if len(wall) > 1 else 0:.0f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every seed (as rayneas run --set)")
    parser.add_argument("--name", required=True, help="runs are NAME_seedS; the table is OUT/NAME.md")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/nb201_seeds"))
    args = parser.parse_args(argv)
    results = {seed: run_seed(args.config, seed, args.name, args.overrides, args.runs_dir) for seed in args.seeds}
    text = table(args.name, results)
    (args.runs_dir / f"{args.name}.md").write_text(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
