"""What running a TE-NAS search as a Ray Tune trial costs over `rayneas run`: the same config, side by side.

Both runs are the command line a user types, each in a fresh process that starts its own local Ray:
``rayneas run CONFIG`` and ``rayneas tune CONFIG`` with the sweep narrowed to the one seed, so both do
exactly the same search (the script checks they find the same cell). For each it reports the process's
wall time (Python and Ray start-up included) and the search's own wall time (``wall_time_s`` of
result.json: from the first round's start to the last round's end). ``--trials`` alternates the two,
so load from other processes hits both alike.

    python scripts/bench_tune_overhead.py                       # configs/tune_tenas_nb201.yaml, 3 trials
    python scripts/bench_tune_overhead.py --config CONFIG --trials 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rayneas", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "RAY_ADDRESS": ""})
    return time.perf_counter() - started


def run_plain(config: Path, folder: Path, trial: int, seed: int) -> tuple[float, dict]:
    name = f"plain{trial}"
    wall = _timed(["run", str(config), "--set", f"name={name}", "--set", f"seed={seed}", "--runs-dir", str(folder)])
    return wall, json.loads((folder / name / "result.json").read_text())


def run_tune(config: Path, folder: Path, trial: int, seed: int) -> tuple[float, dict]:
    name = f"tune{trial}"
    wall = _timed(["tune", str(config), "--set", f"tune.storage_path={folder}", "--set", f"tune.name={name}",
                   "--set", f"tune.params={{seed: {{grid: [{seed}]}}}}"])
    (result,) = (folder / name).glob("*/run/result.json")
    return wall, json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "tune_tenas_nb201.yaml")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"rayneas run": [], "rayneas tune (1 trial)": []}
    genotypes = set()
    with tempfile.TemporaryDirectory() as tmp:
        for trial in range(args.trials):
            folder = Path(tmp) / str(trial)
            for label, (wall, result) in [
                ("rayneas run", run_plain(args.config, folder, trial, args.seed)),
                ("rayneas tune (1 trial)", run_tune(args.config, folder, trial, args.seed)),
            ]:
                rows[label].append((wall, result["wall_time_s"]))
                genotypes.add(result["genotype"])
                print(f"trial {trial}: {label}: process {wall:.1f} s, search {result['wall_time_s']:.1f} s",
                      flush=True)
    assert len(genotypes) == 1, f"the two ways found different cells: {genotypes}"
    print(f"\n{platform.node()}, {os.cpu_count()} CPUs, config {args.config.name}, {args.trials} trials, "
          f"cell {genotypes.pop()}\n")
    print("| how | process wall s (median; min-max) | search wall s (median; min-max) |")
    print("|---|---|---|")
    for label, values in rows.items():
        cells = [f"{statistics.median(v):.1f}; {min(v):.1f}-{max(v):.1f}" for v in zip(*values)]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    plain, tuned = (statistics.median(w for w, _ in rows[k]) for k in rows)
    print(f"\nTune overhead per experiment (median process wall): {tuned - plain:+.1f} s ({tuned / plain:.2f}x)")


if __name__ == "__main__":
    main()
