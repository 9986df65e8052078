"""`make demo`: both searches on embedded defaults, sized to finish in a few minutes on 2 cores.

1. TE-NAS on NAS-Bench-201: `TenasConfig`'s defaults (configs/tenas_nb201.yaml)
   but with a κ batch of 32 images instead of the reference code's 72, which
   cuts the NTK cost by about 4x (docs/benchmarks.md); 2 Ray actors.
2. EAS on digits: configs/eas_digits.yaml (the REINFORCE Bi-LSTM controller,
   children fine-tuned 20 epochs) with a budget of 40 networks instead of 100
   and a start net trained 20 epochs instead of converged (200: 25 s more).

A second `make demo` continues (or re-reads) the runs in runs/demo_*/.
"""
from __future__ import annotations

from pathlib import Path

from rayneas.eas.config import BudgetConfig, EASConfig, TrainConfig
from rayneas.eas.record import CHECKPOINT
from rayneas.eas.search import run_eas
from rayneas.lookup import best_accuracies, lookup
from rayneas.scoring.config import InputsConfig
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.record import STATE
from rayneas.tenas.search import run_tenas

DEMO_TENAS = TenasConfig(name="demo_tenas_nb201", inputs=InputsConfig(batch_size=32))
DEMO_EAS = EASConfig(name="demo_eas_digits", start=TrainConfig(epochs=20), budget=BudgetConfig(networks=40))


def demo_tenas(runs_dir: Path, cfg: TenasConfig = DEMO_TENAS) -> dict:
    run_dir = runs_dir / cfg.name
    resume = (run_dir / STATE).is_file()
    print(f"[1/2] TE-NAS on the NAS-Bench-201 supernet: κ batch {cfg.inputs.batch_size} of {cfg.inputs.source} "
          f"crops, {cfg.prune.repeats} repeats, {cfg.scoring.num_actors} Ray actors -> {run_dir}"
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


def demo_eas(runs_dir: Path, cfg: EASConfig = DEMO_EAS) -> dict:
    run_dir = runs_dir / cfg.name
    resume = (run_dir / CHECKPOINT).is_dir()
    c = cfg.controller
    print(f"[2/2] EAS on digits: {c.algorithm} controller ({c.module}), {c.networks_per_iteration} children per "
          f"iteration on {c.num_env_runners} env runners, budget {cfg.budget.networks} networks -> {run_dir}"
          + (" (continuing the earlier demo run)" if resume else ""))
    summary = run_eas(cfg, run_dir, resume=resume)
    best = summary["best"]
    print(f"start net {summary['start_net']}: val_acc {summary['start_val_acc']:.4f}")
    print(f"best child {best['arch']}: val_acc {best['val_acc']:.4f}, test_acc {best['test_acc']:.4f}, "
          f"{best['params']} parameters (iteration {best['iteration']})")
    print(f"{summary['networks_evaluated']} networks in {summary['wall_time_s']:.0f} s; reward curve, TensorBoard "
          f"logs, checkpoint: {run_dir}  (rayneas export {run_dir})")
    return summary


def demo(runs_dir: Path, tenas: TenasConfig = DEMO_TENAS, eas: EASConfig = DEMO_EAS) -> tuple[dict, dict]:
    """``tenas``/``eas`` are for tests (tiny searches through the same code); `make demo` keeps the defaults."""
    return demo_tenas(runs_dir, tenas), demo_eas(runs_dir, eas)
