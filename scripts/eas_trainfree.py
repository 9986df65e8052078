"""Training-free EAS rewards vs the paper's: the same search rewarded by training, indicators, or both.

Each (seed, mode) pair is one run of configs/eas_digits.yaml with ``reward.mode`` set (same seed,
budget and controller; `eas_search_quality.search`, so an interrupted measurement resumes). A
search's own best is not comparable across modes (indicators mode trains nothing, hybrid trains
only some children), so every run's finalists, its ``--finalists`` best-rewarded distinct
children, are then trained the same way whatever the mode: from a fresh init seeded by the run
seed, ``--final-epochs`` epochs at the config's ``child`` settings, scored on the validation
split; the best of them by validation accuracy is measured once on the test split. Prints a
Markdown table (mean ± std over seeds of that finalist's val and test accuracy, search wall time,
and its ratio to the train mode's) and writes it to ``OUT/trainfree.md``.

    python scripts/eas_trainfree.py --seeds 0 1 2 3 4 --budget 100 --out runs/trainfree
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from eas_search_quality import CONFIG, mean_std, search  # scripts/ is on sys.path when this file runs

from rayneas.config import load_run
from rayneas.eas.config import EASConfig
from rayneas.eas.data import load_child_data, load_test_data
from rayneas.eas.record import load_config, load_networks
from rayneas.eas.space import eas_space
from rayneas.eas.train import accuracy, train_child
from rayneas.scoring import ensure_ray


def finalists(run_dir: Path, count: int) -> list[str]:
    """The ``count`` distinct children of a run with the highest reward (ties: by architecture string)."""
    best: dict[str, float] = {}
    for row in load_networks(run_dir):
        best[row["arch"]] = max(best.get(row["arch"], row["reward"]), row["reward"])
    return sorted(best, key=lambda arch: (-best[arch], arch))[:count]


def train_finalist(cfg: EASConfig, arch: str, epochs: int) -> tuple[float, float]:
    """(val_acc, test_acc) of ``arch`` trained from a fresh init, the same recipe for every mode."""
    data, space = load_child_data(cfg.dataset, cfg.seed), eas_space(cfg.space)
    net = space.build(arch, data.in_channels, data.num_classes, seed=cfg.seed)
    result = train_child(net, data, dataclasses.replace(cfg.child.finetune(), epochs=epochs), seed=cfg.seed,
                         device=cfg.device, augment=data.augment)
    return result.val_accuracy, accuracy(net, *load_test_data(cfg.dataset, cfg.seed))


def measure_run(run_dir: Path, count: int, epochs: int) -> dict[str, Any]:
    cfg = load_config(run_dir)
    trained = {arch: train_finalist(cfg, arch, epochs) for arch in finalists(run_dir, count)}
    arch = max(trained, key=lambda a: (trained[a][0], a))
    return {"arch": arch, "val_acc": trained[arch][0], "test_acc": trained[arch][1]}


def table(rows: dict[str, list[dict[str, Any]]]) -> str:
    train_time = statistics.mean(r["wall_time_s"] for r in rows["train"]) if rows.get("train") else None
    lines = ["| reward mode | seeds | best finalist val_acc | its test_acc | search wall time (s) | time vs train |",
             "|---|---|---|---|---|---|"]
    for mode, runs in rows.items():
        seconds = [r["wall_time_s"] for r in runs]
        ratio = f"{statistics.mean(seconds) / train_time:.2f}x" if train_time else "n/a"
        lines.append(f"| {mode} | {len(runs)} | {mean_std([r['val_acc'] for r in runs])} "
                     f"| {mean_std([r['test_acc'] for r in runs])} | {mean_std(seconds, 0)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--modes", nargs="+", default=["train", "indicators", "hybrid"],
                        choices=["train", "indicators", "hybrid"])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--finalists", type=int, default=3, help="best-rewarded children trained per run")
    parser.add_argument("--final-epochs", type=int, default=20, help="epochs each finalist is trained")
    parser.add_argument("--out", type=Path, default=Path("runs/trainfree"))
    parser.add_argument("--set", action="append", default=[], help="extra config overrides for every run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of this process (finalists, "
                        "and the search itself with --runners 0): two on a busy 2-core machine ran 50x slower")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_run(CONFIG, args.set)  # a bad --set fails now, not after the first search
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch thread(s); command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    ensure_ray()
    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    for seed in args.seeds:
        for mode in args.modes:  # modes alternate seed by seed, so machine load falls on all alike
            result, run_dir = search(seed, f"{mode}_seed{seed}", [f"reward.mode={mode}"], args.budget, args.runners,
                                     args.out, args.set)
            final = measure_run(run_dir, args.finalists, args.final_epochs)
            rows[mode].append({**final, "wall_time_s": result["wall_time_s"]})
            print(f"{mode} seed {seed}: search {result['wall_time_s']:.0f} s, best finalist {final['arch']} "
                  f"val_acc {final['val_acc']:.4f} test_acc {final['test_acc']:.4f}", flush=True)
    text = table(rows)
    print(f"\n{text}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trainfree.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
