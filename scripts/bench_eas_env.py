"""Speed of rayneas/EAS-v0 on digits: seconds per wider step, deeper step and `train` reward; NetPool hit rate.

Timing: ``--episodes`` random valid episodes (`random_action`) of the config's
env (the train reward, the config's fine-tune schedule), each step timed; the
last step is a deeper step plus the reward, whose training time the env
reports (``train_seconds``). The start network is trained once, before the
clock starts, as a run pays it once. Hit rate: ``--hit-episodes`` random
episodes with the surrogate reward. The architectures an episode reaches
depend only on its actions, never on the reward mode, so this is the hit rate
the train reward would see on the same episodes, without training hundreds of
children. The NetPool is kept in memory.

    .venv/bin/python scripts/bench_eas_env.py --episodes 10 --hit-episodes 100
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
from rayneas.eas.config import RewardConfig
from rayneas.eas.random_policy import random_action
from rayneas_envs import EASEnv

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


def timed_episode(env: EASEnv, seed: int) -> tuple[list[tuple[str, float]], dict]:
    """[(phase, seconds) per step], final info."""
    obs, _ = env.reset(seed=seed)
    rng, times, done = np.random.default_rng(seed), [], False
    while not done:
        phase = "wider" if obs["phase"] == 0 else "deeper"
        started = time.perf_counter()
        obs, _, done, _, info = env.step(random_action(obs, rng))
        times.append((phase, time.perf_counter() - started))
    return times, info


def stats(values: list[float]) -> str:
    if not values:
        return "none timed"
    return f"{statistics.mean(values) * 1e3:.1f} ms (median {statistics.median(values) * 1e3:.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--hit-episodes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dataclasses.replace(
        load_run(args.config, args.set)[1], netpool=None)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"fine-tune {cfg.child.finetune_epochs} epochs at lr {cfg.child.finetune_lr}\n")

    env = EASEnv(cfg)
    started = time.perf_counter()
    env.reset(seed=0)
    print(f"start network trained once: {time.perf_counter() - started:.2f} s")
    wider, deeper, last, train = [], [], [], []
    for seed in range(args.episodes):
        times, info = timed_episode(env, seed)
        wider += [t for phase, t in times if phase == "wider"]
        deeper += [t for phase, t in times[:-1] if phase == "deeper"]
        last.append(times[-1][1])
        if not info["netpool_hit"]:
            train.append(info["train_seconds"])
    print(f"wider step: {stats(wider)}")
    print(f"deeper step: {stats(deeper)}")
    print(f"last step (deeper + train reward): {stats(last)}")
    print(f"train reward (fine-tuning + scoring alone): {stats(train)}")

    surrogate = EASEnv(dataclasses.replace(cfg, reward=RewardConfig(mode="surrogate")))
    hits = [timed_episode(surrogate, 10_000 + seed)[1]["netpool_hit"] for seed in range(args.hit_episodes)]
    print(f"NetPool hit rate over {len(hits)} random episodes: {sum(hits)}/{len(hits)} = {sum(hits) / len(hits):.2f}")


if __name__ == "__main__":
    main()
