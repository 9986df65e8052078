"""What a child costs to fine-tune under two (or more) configs, measured side by side in one process.

On a machine shared with other jobs an absolute time says how busy it was; a
ratio measured by alternating the configs episode by episode does not. Each
config's env runs the same episode seeds with two policies: ``random``
(uniformly random valid transforms, `random_action`) and ``grow`` (widen every
layer at every wider step, 3x3 identities where a kernel counts), the two
extremes a search's children fall between. The start net is trained 1 epoch
(its weights do not change what a child costs).

    python scripts/eas_child_cost.py --configs configs/eas_fashion.yaml configs/eas_digits.yaml --episodes 3

Prints each config's mean fine-tune seconds per child and their ratio to the last config's.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rayneas.config import load_run
from rayneas.eas.random_policy import random_action
from rayneas_envs import EASEnv

Policy = Callable[[dict, np.random.Generator], dict]


def grow(obs: dict, rng: np.random.Generator) -> dict:
    """Widen everything that can grow; insert a 3x3 identity at a random valid place (kernel index 1)."""
    action = random_action(obs, rng)
    action["wider"] = obs["wider_mask"].astype(np.int64)
    block, position = action["deeper"][:2]
    if obs["deeper_kernel_mask"][block, position, 1]:
        action["deeper"][2] = 1
    return action


def child_seconds(env: EASEnv, seed: int, policy: Policy) -> tuple[float, int]:
    """(fine-tune seconds, parameters) of one episode's child."""
    obs, _ = env.reset(seed=seed)
    rng, done, info = np.random.default_rng(seed), False, {}
    while not done:
        obs, _, done, _, info = env.step(policy(obs, rng))
    return info["train_seconds"], info["params"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=Path, nargs="+", required=True)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    envs = {path.name: EASEnv(dataclasses.replace(load_run(path, ["start.epochs=1"])[1], netpool=None))
            for path in args.configs}
    policies: dict[str, Policy] = {"random": random_action, "grow": grow}
    seconds: dict[tuple[str, str], list[float]] = {(c, p): [] for c in envs for p in policies}
    for seed in range(args.episodes):
        for name, env in envs.items():
            for label, policy in policies.items():
                spent, params = child_seconds(env, 100 + seed, policy)
                seconds[(name, label)].append(spent)
                print(f"{name} {label} episode {seed}: {spent:.2f} s, {params} parameters", flush=True)
    reference = args.configs[-1].name
    print(f"\n| config | policy | s/child (mean of {args.episodes}) | ratio to {reference} |\n|---|---|---|---|")
    for (name, label), values in seconds.items():
        ratio = statistics.mean(values) / statistics.mean(seconds[(reference, label)])
        print(f"| {name} | {label} | {statistics.mean(values):.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
