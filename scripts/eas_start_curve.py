"""The start net's validation accuracy against its training epochs: where it plateaus is ``start.epochs``.

EAS searches from a converged start net (the EAS code ships start nets trained
for hundreds of epochs), so that a child's reward measures its architecture,
not the extra training it gets on top of an unfinished parent. Each (seed, lr,
epochs) is a separate run from the seeded init with its own cosine schedule
over that many epochs, exactly as the search trains its start net
(`train_child` with the config's ``start`` section), on the config's data:

    python scripts/eas_start_curve.py --config configs/eas_digits.yaml --seeds 0 --epochs 20 50 100 200 400

Prints a Markdown table: validation accuracy, final training loss, seconds.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
from pathlib import Path

import torch

from rayneas.config import load_run
from rayneas.eas.data import load_child_data
from rayneas.eas.space import eas_space
from rayneas.eas.train import train_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/eas_digits.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 50, 100, 200, 400])
    parser.add_argument("--lrs", type=float, nargs="+", default=None, help="default: the config's start.lr")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="config overrides, e.g. dataset.image_size=14")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} torch "
          f"thread(s); command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print("\n| seed | lr | epochs | val_acc | last-epoch train loss | seconds |\n|---|---|---|---|---|---|")
    for seed in args.seeds:
        cfg = load_run(args.config, [*args.set, f"seed={seed}"])[1]
        data = load_child_data(cfg.dataset, cfg.seed)
        space = eas_space(cfg.space)
        for lr in args.lrs or [cfg.start.lr]:
            for epochs in args.epochs:
                net = space.build(space.start(), data.in_channels, data.num_classes, seed=cfg.seed)
                result = train_child(net, data, dataclasses.replace(cfg.start, epochs=epochs, lr=lr), seed=cfg.seed,
                                     device=cfg.device, augment=data.augment)
                print(f"| {seed} | {lr:g} | {epochs} | {result.val_accuracy:.4f} | {result.train_loss:.4f} "
                      f"| {result.seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
