"""How far did an EAS search's controller move? Its policy on the start net, before and after the search.

Rebuilds the run's untrained controller (same config and seed, so the same initial weights), loads
the trained one from ``checkpoint/``, and prints, on the start net's first wider observation, the
probability of widening each layer and the deeper actor's block distribution for both, plus the
mean number of widened layers and mean parameters per iteration from ``networks.parquet``.

    python scripts/eas_policy_drift.py runs/quality/reinforce_seed0 [more run folders]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core import Columns

import rayneas_envs
from rayneas.eas.record import load_config, load_networks
from rayneas.eas.search import rllib_config
from rayneas.scoring import ensure_ray


def policy(module, obs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(P(widen) of each real layer, P(block)) of ``module`` on one observation."""
    batch = {Columns.OBS: {k: torch.as_tensor(np.asarray(v))[None] for k, v in obs.items()}}
    with torch.no_grad():
        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
    sizes = {"wider": 2 * obs["arch"].shape[0],
             "deeper": module.num_blocks + module.num_positions + module.num_kernels}
    parts, offset = {}, 0
    for key in module.action_keys:  # the Catalog's flattening order of the Dict action
        parts[key], offset = logits[offset:offset + sizes[key]], offset + sizes[key]
    wider = torch.softmax(parts["wider"].view(-1, 2), -1)[: int(obs["length"]), 1]
    blocks = torch.softmax(parts["deeper"][: module.num_blocks], -1)
    return wider.numpy(), blocks.numpy()

def fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    ensure_ray()
    for run in args.runs:
        cfg = load_config(run)
        rllib = rllib_config(cfg, run).env_runners(num_env_runners=0)
        algo = rllib.build_algo()
        env = rayneas_envs.EASEnv(config=cfg)
        obs, _ = env.reset(seed=0)
        obs_deeper = dict(obs, phase=np.int64(1))
        before = policy(algo.get_module(), obs), policy(algo.get_module(), obs_deeper)[1]
        algo.restore_from_path(str((run / "checkpoint").resolve()))
        after = policy(algo.get_module(), obs), policy(algo.get_module(), obs_deeper)[1]
        algo.stop()
        rows = load_networks(run)
        iterations = sorted({r["iteration"] for r in rows})
        params = [statistics.mean(r["params"] for r in rows if r["iteration"] == i) for i in iterations]
        print(f"{run.name}: lr {rllib.lr}, {len(iterations)} updates")
        print(f"  P(widen) per start-net layer: before {fmt(before[0][0])}  "
              f"after {fmt(after[0][0])}")
        print(f"  P(block) of a deeper step:    before {fmt(before[1])}  "
              f"after {fmt(after[1])}")
        print(f"  mean child parameters per iteration: {[round(p) for p in params]}")


if __name__ == "__main__":
    main()
