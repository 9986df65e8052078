"""Does the `train` reward mean something? Random episodes of rayneas/EAS-v0 vs their start network.

For each config seed (data split, start net) and each fine-tune schedule
(epochs:lr), runs random valid episodes (`random_action`: the paper's 4 wider
steps widening each layer with probability 1/2, then 5 deeper steps at
uniformly random places and kernels) and reports the children's validation
accuracy after fine-tuning against the start network's, and the spread of
the rewards. The NetPool is kept in memory, so nothing is read from an
earlier run.

    .venv/bin/python scripts/eas_env_rewards.py --seeds 0 --episodes 0:20 --schedules 2:0.02 2:0.005 5:0.005
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rayneas.config import load_run
from rayneas.eas.random_policy import random_action
from rayneas_envs import EASEnv

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def run_episode(env: EASEnv, seed: int) -> tuple[float, dict]:
    """(return, final info) of one random valid episode; the seed fixes both the transforms and the choices."""
    obs, _ = env.reset(seed=seed)
    rng, total, done = np.random.default_rng(seed), 0.0, False
    while not done:
        obs, reward, done, _, info = env.step(random_action(obs, rng))
        total += reward
    return total, info


def summary(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} | {min(values):.3f} | {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="config seeds (split and start net)")
    parser.add_argument("--episodes", default="0:20", help="episode seeds FIRST:STOP")
    parser.add_argument("--schedules", nargs="+", default=["2:0.02", "2:0.005", "5:0.005", "20:0.02"],
                        help="fine-tune schedules EPOCHS:LR")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_run(args.config, args.set)[1]
    first, stop = (int(v) for v in args.episodes.split(":"))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"start network {base.space.start_net}, trained {base.start.epochs} epochs at lr {base.start.lr}; "
          f"episode seeds {first}..{stop - 1}\n")
    header = ["seed", "fine-tune", "start acc", "child acc mean ± std", "min", "max", "below start",
              "reward mean ± std", "min", "max", "s/child"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for seed in args.seeds:
        for schedule in args.schedules:
            epochs, lr = schedule.split(":")
            child = dataclasses.replace(base.child, finetune_epochs=int(epochs), finetune_lr=float(lr))
            env = EASEnv(dataclasses.replace(base, seed=seed, child=child, netpool=None))
            start = env.reset(seed=first)[1]["start_val_accuracy"]
            started = time.perf_counter()
            results = [run_episode(env, s) for s in range(first, stop)]
            seconds = (time.perf_counter() - started) / len(results)
            accs, rewards = [info["val_accuracy"] for _, info in results], [r for r, _ in results]
            below = sum(a < start for a in accs)
            print(f"| {seed} | {epochs} ep, lr {lr} | {start:.3f} | {summary(accs)} | {below}/{len(accs)} | "
                  f"{summary(rewards)} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
