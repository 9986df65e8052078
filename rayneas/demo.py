"""`make demo`: the main job, a TE-NAS search on NAS-Bench-201, on embedded defaults.

The config is `TenasConfig`'s defaults (the same as configs/tenas_nb201.yaml):
real photo crops bundled with scikit-learn as inputs, 2 Ray actors. A second
`make demo` continues (or re-reads) the run in runs/demo_tenas_nb201/.
"""
from __future__ import annotations

from pathlib import Path

from rayneas.lookup import best_accuracies, lookup
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.record import STATE
from rayneas.tenas.search import run_tenas


def demo(runs_dir: Path, cfg: TenasConfig | None = None) -> dict:
    """``cfg`` is for tests (a tiny search through the same code path); `make demo` leaves it at the defaults."""
    cfg = cfg or TenasConfig(name="demo_tenas_nb201")
    run_dir = runs_dir / cfg.name
    resume = (run_dir / STATE).is_file()
    print(f"TE-NAS on the NAS-Bench-201 supernet: κ batch {cfg.inputs.batch_size} of {cfg.inputs.source} crops, "
          f"{cfg.prune.repeats} repeats, {cfg.scoring.num_actors} Ray actors -> {run_dir}"
          + (" (continuing the earlier demo run)" if resume else ""))
    summary = run_tenas(cfg, run_dir, resume=resume)
    acc = lookup(summary["genotype"])
    print(f"found genotype {summary['genotype']}  (NAS-Bench-201 index {acc.index})")
    print(f"search time {summary['wall_time_s']:.0f} s")
    best = best_accuracies()
    print(f"looked-up test accuracy: CIFAR-10 {acc.cifar10:.2f}  CIFAR-100 {acc.cifar100:.2f}  "
          f"ImageNet16-120 {acc.imagenet16:.2f}")
    print("best in NAS-Bench-201, one dataset at a time (three different cells): "
          + "  ".join(f"{name} {value:.2f} (index {index})" for name, (value, index) in best.items()))
    print(f"plots, tables, TensorBoard logs: {run_dir}  (rayneas export {run_dir})")
    return summary
