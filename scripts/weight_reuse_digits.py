"""Does Net2Net weight reuse pay? A morphed child of a trained parent vs the same net from scratch.

For each seed: train the EAS demo start network on digits for --parent-epochs,
apply one EAS episode's worth of random transforms (4 wider steps, each
widening every layer with probability 1/2 to its next width, then 5 deeper
steps at random places with random kernels; the paper's noise), then train
the child --child-epochs more. The same child architecture is trained
--child-epochs from a fresh init ("scratch"), and, for context, for
parent + child epochs ("scratch, same total"). All accuracies are on the
validation split; the test split is not used.

    .venv/bin/python scripts/weight_reuse_digits.py --seeds 5
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import statistics
import sys
from pathlib import Path

import torch

from rayneas.config import load_run
from rayneas.data import digits_split
from rayneas.eas.train import accuracy, train_child
from rayneas.morph import deepen, widen
from rayneas.spaces.plain import PlainCNN, WidthSchedule

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def random_episode(net: PlainCNN, schedule: WidthSchedule, seed: int, batch: torch.Tensor, noise_wider: float,
                   noise_deeper: float, wider_steps: int = 4, deeper_steps: int = 5) -> None:
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    for _ in range(wider_steps):
        for index, layer in enumerate(net.arch):
            width = schedule.next_width(layer)
            if width is not None and rng.random() < 0.5:
                widen(net, index, width, rng=gen, noise=noise_wider)
    for _ in range(deeper_steps):
        index = rng.choice([i for i, layer in enumerate(net.arch) if layer.kind != "pool"])
        deepen(net, index, kernel=rng.choice((1, 3, 5)), batch=batch, rng=gen, noise=noise_deeper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--parent-epochs", type=int, default=20)
    parser.add_argument("--child-epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--child-lr", type=float, default=None,
                        help="initial lr of the reuse and scratch runs (default: the config's, 0.02)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = load_run(args.config)[1]
    schedule, start = cfg.space.schedule(), cfg.space.start_arch()
    train = cfg.child.finetune()  # the children's SGD at lr 0.02, the setting docs/weight_reuse.md measured
    parent_cfg = dataclasses.replace(train, epochs=args.parent_epochs)
    child_cfg = dataclasses.replace(train, epochs=args.child_epochs, lr=args.child_lr or train.lr)
    total_cfg = dataclasses.replace(train, epochs=args.parent_epochs + args.child_epochs)

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"start network: {cfg.space.start_net}; parent {args.parent_epochs} epochs at lr {train.lr}, "
          f"child {args.child_epochs} epochs at lr {child_cfg.lr}\n")
    header = ["seed", "child architecture", "parent", "morphed", f"reuse +{args.child_epochs}",
              f"scratch {args.child_epochs}", "gap", f"scratch {args.parent_epochs + args.child_epochs}"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    gaps, reuse_accs, scratch_accs, total_accs = [], [], [], []
    for seed in range(args.seeds):
        data = digits_split(seed)
        net = PlainCNN(start, seed=seed)
        parent = train_child(net, data, parent_cfg, seed=seed, device=args.device).val_accuracy
        random_episode(net, schedule, seed, data.x_train[:64], cfg.noise.wider, cfg.noise.deeper)
        morphed = accuracy(net, data.x_val, data.y_val)
        reuse = train_child(net, data, child_cfg, seed=seed, device=args.device).val_accuracy
        scratch = train_child(PlainCNN(net.arch, seed=seed + 1000), data, child_cfg, seed=seed,
                              device=args.device).val_accuracy
        total = train_child(PlainCNN(net.arch, seed=seed + 1000), data, total_cfg, seed=seed,
                            device=args.device).val_accuracy
        gaps.append(reuse - scratch)
        reuse_accs.append(reuse)
        scratch_accs.append(scratch)
        total_accs.append(total)
        print(f"| {seed} | `{net.arch_string}` | {parent:.3f} | {morphed:.3f} | {reuse:.3f} | {scratch:.3f} | "
              f"{reuse - scratch:+.3f} | {total:.3f} |")
    print(f"\nmean validation accuracy: reuse {statistics.mean(reuse_accs):.3f}, scratch "
          f"{statistics.mean(scratch_accs):.3f}, scratch with the same total epochs {statistics.mean(total_accs):.3f}")
    spread = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
    print(f"mean gap (reuse - scratch, {args.child_epochs} epochs each): {statistics.mean(gaps):+.3f} "
          f"(std {spread:.3f}, {sum(g > 0 for g in gaps)}/{len(gaps)} seeds positive)")


if __name__ == "__main__":
    main()
