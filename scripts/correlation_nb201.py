"""How well do TE-NAS's indicators rank NAS-Bench-201 cells? Kendall τ against the benchmark's accuracies.

Samples ``--num-archs`` distinct cells (``--seed``), computes for each the NTK
condition number κ (C=3, N=1 network, ``--batch-size`` images) and the linear
region count R (thin C=1 first-cell network, ``--region-batches`` ×
``--region-samples`` 3×3 crops), both averaged over ``--repeats`` fresh inits
and input batches, and their rank sum (rank of κ ascending + rank of R
descending: low is good). Prints Kendall τ of each against the CIFAR-10,
CIFAR-100 and ImageNet16-120 test accuracies, writes per-cell scores and the
τ table (CSV and Parquet) and scatter plots (PNG) to ``--out``.

Every other registered indicator (``--proxies``, default all: NASWOT, JacoV,
AZ-NAS's three, FLOPs, params) is computed on the network its registration
names (the cell's evaluation network, ``--proxy-C`` × ``--proxy-N``, default
NAS-Bench-201's 16 × 5) with its declared batch (``--proxy-batch`` caps it)
and image source, averaged over the same ``--repeats`` (fresh init and batch
each; ``--mode paper``: Kaiming fan_in, as AZ-NAS), and gets its own τ row,
plus ``az_nas``: AZ-NAS's log-rank aggregate of its three proxies and FLOPs.
``--combos`` (default ``ntk+linear_regions`` and AZ-NAS's four) adds, for each
``+``-joined set of indicators, a τ row per aggregation: ``rank_sum:<combo>``
(TE-NAS, lower is better) and ``log_rank:<combo>`` (AZ-NAS, higher is
better), the rankings ``prune.aggregate`` and a ``zero_cost`` run use; the
evaluation-network proxies a combo names are scored even when ``--proxies``
leaves them out.
A cell with no path from input to output gets its proxies' worst value
(−inf for higher-is-better) and ranks last, like κ = inf.

Defaults follow the paper's text (κ batch 32; the reference code's search uses
72, ``--batch-size 72``). Cells with no path from input to output get κ = inf
and R = 1: they rank last. κ is averaged over repeats by its mean (the
primary rows); the median and geometric mean are reported alongside, since
one near-singular repeat (κ ~ 1e14) dominates a mean. ``--num-actors K`` scores on K Ray actors
(each with ``--threads`` torch threads; the serial path uses the same count,
so both give identical numbers).

``--best-of N`` reads off the same scores what a sampling search of N cells
would pick by each ``--combos`` aggregate (its accuracy over random N-cell
pools of the sample, beside the pool's best and mean), since τ says little
about the top of a ranking, the only part a search keeps.

    python scripts/correlation_nb201.py --num-archs 500 --num-actors 2
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch
from scipy.stats import kendalltau, rankdata

from rayneas.config import from_dict
from rayneas.data import image_batch
from rayneas.indicators import (
    AGGREGATIONS,
    aggregate,
    available_indicators,
    best_first,
    indicator_info,
    init_weights,
    measure,
    measure_indicators,
)
from rayneas.indicators.registry import InputSpec
from rayneas.lookup import load_table
from rayneas.scoring import ScorerPool, ensure_ray
from rayneas.scoring.host import DEVICE_KEY
from rayneas.scoring.supernet import ScoreTask, TenasScorer, init_seeds, shared_inputs
from rayneas.seeding import derive_seed
from rayneas.spaces import nb201
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import make_space
from rayneas.tenas.config import TenasConfig

DATASETS = {"cifar10": "cifar10_test", "cifar100": "cifar100_test", "imagenet16": "imagenet16_test"}
PAPER_TAU = {"kappa": -0.42, "regions": 0.50, "rank_sum": -0.64}  # TE-NAS paper, NAS-Bench-201
TENAS_INDICATORS = ("ntk", "linear_regions")  # scored by TenasScorer above, as the search scores them
AZ_NAS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")  # AZ-NAS's four proxies
COLUMN = {"ntk": "kappa", "linear_regions": "regions"}  # where summarize keeps the mean κ and R
DEFAULT_COMBOS = ("ntk+linear_regions", "+".join(AZ_NAS))
TENAS_ROWS = {"kappa": "lower", "regions": "higher", "rank_sum": "lower", "kappa_median": "lower",
              "rank_sum_median": "lower", "kappa_geomean": "lower", "rank_sum_geomean": "lower"}


def search_config(args: argparse.Namespace) -> TenasConfig:
    """The TE-NAS settings these scores use, so cells are scored by the search's own `TenasScorer`."""
    return from_dict(TenasConfig, {
        "seed": args.seed, "dataset": "cifar10",
        "inputs": {"source": args.source, "root": args.root, "batch_size": args.batch_size,
                   "region_samples": args.region_samples, "region_batches": args.region_batches},
        "prune": {"repeats": args.repeats, "mode": args.mode}, "supernet": {"C": args.C, "N": args.N}})


def cell_tasks(indices: list[int], cfg: TenasConfig) -> list[ScoreTask]:
    """One task per (cell, repeat): the supernet masked to the cell (a `none` edge is a cut edge).

    Every cell sees the same input batches in repeat r, and its own inits, so
    cells differ only by architecture and weights.
    """
    tasks = []
    for index in indices:
        genotype = nb201.from_index(index)
        mask = Mask.from_json({"cell": [[] if op == "none" else [op] for op in genotype.ops]})
        for r in range(cfg.prune.repeats):
            seeds = init_seeds(cfg.prune.mode, cfg.seed, index, r, candidate=None)
            tasks.append(ScoreTask(mask, r, seeds.kappa, seeds.regions, f"cell {index} {genotype}, repeat {r}"))
    return tasks


def score_cells(args: argparse.Namespace, indices: list[int]) -> list[dict[str, list[float]]]:
    cfg = search_config(args)
    tasks = cell_tasks(indices, cfg)
    if args.num_actors > 0:
        ensure_ray(num_cpus=max(args.num_actors * args.threads, 1))
    factory = functools.partial(TenasScorer, make_space(cfg), cfg.prune.mode)
    with ScorerPool(factory, num_actors=args.num_actors, threads_per_actor=args.threads,
                    shared=shared_inputs(cfg), progress=progress_printer("κ and R")) as pool:
        scores = pool.score(tasks)
    repeats = cfg.prune.repeats
    return [{"kappa": [s.kappa for s in scores[i:i + repeats]], "regions": [s.regions for s in scores[i:i + repeats]]}
            for i in range(0, len(scores), repeats)]


def progress_printer(what: str):
    """A `ScorerPool` progress callback printing every 5% of the tasks, with an estimate of the time left."""
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % max(total // 20, 1) == 0 or done == total:
            elapsed = time.perf_counter() - start
            print(f"  {what}: {done}/{total} tasks, {elapsed:.0f} s, eta {elapsed / done * (total - done):.0f} s",
                  file=sys.stderr, flush=True)

    return progress


@dataclasses.dataclass(frozen=True)
class ProxyTask:
    index: int  # NAS-Bench-201 index of the cell
    repeat: int
    seed: int
    label: str


class ProxyScorer:
    """Every proxy of ``names`` on one cell's network under one repeat's init and batches → {name: value}."""

    def __init__(self, names: tuple[str, ...], C: int, N: int, mode: str) -> None:
        self.names, self.C, self.N, self.mode = names, C, N, mode

    def __call__(self, task: ProxyTask, shared: dict[str, Any]) -> dict[str, float]:
        net = nb201.build(task.index, C=self.C, N=self.N).to(shared[DEVICE_KEY])
        net = init_weights(net, self.mode, task.seed, fan="in")
        return measure_indicators(self.names, net, lambda name: shared[input_key(name)][task.repeat],
                                  functools.partial(measure, label=task.label))


def proxy_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The eval-network proxies to score: ``--proxies`` and every one a ``--combos`` set names."""
    in_combos = [n for combo in args.combos for n in combo if n not in TENAS_INDICATORS]
    if args.proxies == "all":
        return tuple(n for n in available_indicators() if n not in TENAS_INDICATORS)
    names = () if args.proxies == "none" else tuple(n.strip() for n in args.proxies.split(",") if n.strip())
    names += tuple(n for n in dict.fromkeys(in_combos) if n not in names)
    for name in names:
        info = indicator_info(name)  # unknown names raise, listing the registered ones
        if name in TENAS_INDICATORS or info.network != "eval":
            raise SystemExit(f"--proxies: {name!r} is computed on the {info.network} network; this script scores "
                             "κ and R with the search's scorer and only evaluation-network proxies with --proxies")
    return names


def proxy_spec(spec: InputSpec, args: argparse.Namespace) -> tuple[str, int, int, int]:
    """(source, batch, channels, size) of the batches a proxy gets: its declaration, batch capped by --proxy-batch."""
    batch = spec.batch_size or args.batch_size
    if args.proxy_batch is not None:
        batch = min(batch, args.proxy_batch)
    return spec.source or args.source, batch, spec.channels, spec.size or 32


def input_key(name: str) -> str:
    return f"inputs_{name}"


def score_proxies(args: argparse.Namespace, indices: list[int]) -> list[dict[str, list[float]]]:
    """Per cell, {proxy: [value per repeat]}; every cell sees the same batches in repeat r, its own inits."""
    names = proxy_names(args)
    if not names:
        return [{} for _ in indices]
    shared: dict[str, Any] = {}
    batches: dict[tuple[str, int, int, int], Any] = {}
    for name in names:
        spec = indicator_info(name).inputs
        key = proxy_spec(spec, args)
        if key not in batches:
            source, n, channels, size = key
            batches[key] = torch.stack([image_batch(source, n, derive_seed(args.seed, 5, r), size, args.root,
                                                    channels=channels).contiguous()
                                        for r in range(args.proxy_repeats)])
        shared[input_key(name)] = batches[key]  # proxies with the same declared inputs share one tensor
    tasks = [ProxyTask(index, r, derive_seed(args.seed, 4, index, r), f"cell {index}, repeat {r}")
             for index in indices for r in range(args.proxy_repeats)]
    factory = functools.partial(ProxyScorer, names, args.proxy_C, args.proxy_N, args.mode)
    with ScorerPool(factory, num_actors=args.num_actors, threads_per_actor=args.threads, shared=shared,
                    progress=progress_printer("proxies")) as pool:
        scores = pool.score(tasks)
    repeats = args.proxy_repeats
    return [{name: [s[name] for s in scores[i:i + repeats]] for name in names}
            for i in range(0, len(scores), repeats)]


def summarize(indices: list[int], results: list[dict[str, list[float]]], table: pa.Table,
              proxies: list[dict[str, list[float]]] | None = None,
              combos: list[tuple[str, ...]] = ()) -> pa.Table:
    kappa_runs = np.array([r["kappa"] for r in results], dtype=np.float64)
    region_runs = np.array([r["regions"] for r in results], dtype=np.float64)
    regions = region_runs.mean(axis=1)
    columns: dict[str, Any] = {
        "nb201_index": indices,
        "arch": [str(nb201.from_index(i)) for i in indices],
        "connected": [nb201.from_index(i).is_connected() for i in indices],
        "regions": regions,
    }
    # One infinite repeat makes every aggregate infinite: such a cell ranks last.
    for suffix, kappa in (("", kappa_runs.mean(axis=1)), ("_median", np.median(kappa_runs, axis=1)),
                          ("_geomean", np.exp(np.log(kappa_runs).mean(axis=1)))):
        columns[f"kappa{suffix}"] = kappa
        columns[f"rank_sum{suffix}"] = rankdata(kappa) + rankdata(-regions)
    for r in range(kappa_runs.shape[1]):
        columns[f"kappa_{r}"] = kappa_runs[:, r]
        columns[f"regions_{r}"] = region_runs[:, r]
    names = list(proxies[0]) if proxies else []
    for name in names:
        runs = np.array([p[name] for p in proxies], dtype=np.float64)
        columns[name] = runs.mean(axis=1)  # one degenerate repeat (−inf) ranks the cell last
        for r in range(runs.shape[1]):
            columns[f"{name}_{r}"] = runs[:, r]
    if all(name in names for name in AZ_NAS):
        columns["az_nas"] = aggregate("log_rank", {name: columns[name] for name in AZ_NAS},
                                      candidates=[f"cell {i}" for i in indices], nonfinite="worst")
    labels = [f"cell {i}" for i in indices]
    for combo in combos:
        scores = {name: columns[COLUMN.get(name, name)] for name in combo}
        for method in AGGREGATIONS:
            columns[combo_column(method, combo)] = aggregate(method, scores, candidates=labels, nonfinite="worst")
    for name, column in DATASETS.items():
        columns[name] = table.column(column).to_numpy()[indices]
    return pa.table(columns)


def combo_column(method: str, combo: tuple[str, ...]) -> str:
    return f"{method}:{'+'.join(combo)}"


def parse_combo(text: str) -> tuple[str, ...]:
    """``a+b+c`` → ("a", "b", "c"), each a registered indicator (the error lists them)."""
    names = tuple(n.strip() for n in text.split("+") if n.strip())
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: name distinct indicators joined by '+', e.g. ntk+linear_regions")
    for name in names:
        try:
            indicator_info(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def tau_table(scores: pa.Table) -> pa.Table:
    better = dict(TENAS_ROWS)
    better.update({name: indicator_info(name).direction for name in scores.column_names
                   if name in available_indicators()})
    if "az_nas" in scores.column_names:
        better["az_nas"] = "higher"
    for method, aggregation in AGGREGATIONS.items():
        better.update({name: aggregation.direction for name in scores.column_names if name.startswith(f"{method}:")})
    names = list(better)
    rows: dict[str, list[Any]] = {"indicator": names, "better": [better[name] for name in names]}
    for dataset in DATASETS:
        accuracy = scores.column(dataset).to_numpy()
        rows[dataset] = [float(kendalltau(rankdata(scores.column(name).to_numpy()), accuracy).statistic)
                         for name in names]
    rows["paper"] = [PAPER_TAU.get(name) for name in names]
    return pa.table(rows)


def repeat_agreement(scores: pa.Table, name: str) -> float:
    """Kendall τ between the first two repeats: how much one init and batch decide on their own."""
    if f"{name}_1" not in scores.column_names:
        return math.nan
    first, second = (rankdata(scores.column(f"{name}_{r}").to_numpy()) for r in (0, 1))
    return float(kendalltau(first, second).statistic)


def plot(scores: pa.Table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kappa = scores.column("kappa").to_numpy()
    finite = np.isfinite(kappa)
    paths = []
    for dataset in DATASETS:
        accuracy = scores.column(dataset).to_numpy()
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
        panels = (("kappa", kappa[finite], accuracy[finite], "κ (NTK condition number, log)"),
                  ("regions", scores.column("regions").to_numpy(), accuracy, "R (linear regions)"),
                  ("rank_sum", scores.column("rank_sum").to_numpy(), accuracy, "rank(κ) + rank(R)"))
        for ax, (name, x, y, label) in zip(axes, panels):
            tau = kendalltau(rankdata(scores.column(name).to_numpy()), accuracy).statistic
            ax.scatter(x, y, s=6, alpha=0.6)
            ax.set(xlabel=label, ylabel=f"{dataset} test accuracy (%)", title=f"Kendall τ = {tau:.3f}")
            if name == "kappa":
                ax.set_xscale("log")
        fig.suptitle(f"NAS-Bench-201, {scores.num_rows} cells ({int((~finite).sum())} with κ = inf not shown)")
        path = out / f"scatter_{dataset}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-archs", type=int, default=500, help="distinct cells sampled uniformly")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32, help="images per κ batch")
    parser.add_argument("--repeats", type=int, default=3, help="inits and input batches averaged per cell")
    parser.add_argument("--mode", choices=("paper", "reference"), default="paper",
                        help="init schedule: paper (Kaiming per cell and repeat) or reference (PyTorch default)")
    parser.add_argument("--source", default="sample_images",
                        help="sample_images, gaussian, or cifar10/cifar100/imagenet16 (train split, needs --root)")
    parser.add_argument("--root", default=None, help="folder holding the dataset named by --source")
    parser.add_argument("--region-samples", type=int, default=1000)
    parser.add_argument("--region-batches", type=int, default=3)
    parser.add_argument("--C", type=int, default=3, help="channels of the κ network")
    parser.add_argument("--N", type=int, default=1, help="cells per stage of the κ network")
    parser.add_argument("--num-actors", type=int, default=0, help="Ray actors; 0 scores in this process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor (and on the serial path)")
    parser.add_argument("--proxies", default="all",
                        help="comma-separated evaluation-network indicators to score too, 'all' (default) or 'none'")
    parser.add_argument("--combos", nargs="*", type=parse_combo, default=[parse_combo(c) for c in DEFAULT_COMBOS],
                        metavar="A+B", help="indicator sets to aggregate, each by rank_sum and log_rank (default: "
                                            + " ".join(DEFAULT_COMBOS) + ")")
    parser.add_argument("--proxy-C", type=int, default=16, help="channels of the proxies' evaluation network")
    parser.add_argument("--proxy-N", type=int, default=5, help="cells per stage of the proxies' evaluation network")
    parser.add_argument("--proxy-batch", type=int, default=None,
                        help="cap on the proxies' batch sizes (default: each proxy's declared batch)")
    parser.add_argument("--proxy-repeats", type=int, default=None,
                        help="inits and batches averaged per cell for the proxies (default: --repeats)")
    parser.add_argument("--exclude", nargs="*", type=parse_sample, default=[], metavar="SEED:N",
                        help="leave out the cells of earlier samples (--seed SEED --num-archs N), so this sample "
                             "is disjoint from the ones anything was chosen on")
    parser.add_argument("--from-scores", type=Path, default=None,
                        help="a scores.parquet of an earlier run: recompute combos and τ from it, score nothing")
    parser.add_argument("--best-subsets", type=int, default=0, metavar="K",
                        help="also rank every subset (2+ indicators) of the scored ones under both aggregations "
                             "by CIFAR-10 τ and print the best K (subsets.csv has all)")
    parser.add_argument("--best-of", type=int, nargs="*", default=[], metavar="N",
                        help="also report the accuracy of the cell each --combos aggregate picks from random "
                             "N-cell subsets of the sample, as a sampling search of N cells would (best_of.csv)")
    parser.add_argument("--best-of-draws", type=int, default=200, help="random subsets per --best-of N")
    parser.add_argument("--csv", default=None, help="accuracy CSV (default: $RAYNEAS_NB201_CSV or the bundled copy)")
    parser.add_argument("--out", type=Path, default=Path("runs/correlation_nb201"))
    args = parser.parse_args(argv)
    if args.proxy_repeats is None:
        args.proxy_repeats = args.repeats
    for name in ("num_archs", "batch_size", "repeats", "best_of_draws", "region_samples", "region_batches", "C",
                 "N", "threads", "proxy_C", "proxy_N", "proxy_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.proxy_batch is not None and args.proxy_batch < 2:
        parser.error(f"--proxy-batch must be at least 2 (NASWOT, JacoV and AZ-NAS compare samples), got "
                     f"{args.proxy_batch}")
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2: κ is the condition number of a batch × batch matrix")
    if not 0 <= args.num_actors:
        parser.error(f"--num-actors must be >= 0, got {args.num_actors}")
    if args.num_archs > nb201.NUM_ARCHS:
        parser.error(f"--num-archs can be at most {nb201.NUM_ARCHS}, the size of NAS-Bench-201")
    return args


def parse_sample(text: str) -> tuple[int, int]:
    """``SEED:N`` → (seed, n): the sample ``--seed SEED --num-archs N`` drew."""
    try:
        seed, n = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give an earlier sample as SEED:N, e.g. 0:500") from None
    if not 1 <= n <= nb201.NUM_ARCHS:
        raise argparse.ArgumentTypeError(f"{text!r}: N must be between 1 and {nb201.NUM_ARCHS}")
    return seed, n


def sample_cells(seed: int, n: int, exclude: list[tuple[int, int]] = ()) -> list[int]:
    """``n`` distinct cells drawn by ``seed`` from those no ``exclude`` sample holds (all: as before)."""
    rng = np.random.default_rng(seed)
    if not exclude:
        return sorted(int(i) for i in rng.choice(nb201.NUM_ARCHS, n, replace=False))
    taken = {i for s, m in exclude for i in sample_cells(s, m)}
    pool = np.array([i for i in range(nb201.NUM_ARCHS) if i not in taken])
    if n > len(pool):
        raise SystemExit(f"--num-archs {n}: only {len(pool)} cells are left after --exclude")
    return sorted(int(i) for i in rng.choice(pool, n, replace=False))


def subset_taus(scores: pa.Table) -> pa.Table:
    """CIFAR-10 τ of every subset (2+ members) of the scored indicators under each aggregation, best first.

    ``tau_good`` is τ oriented so that higher is better whatever the
    aggregation's direction; this is for choosing a set on one sample and
    reporting it on another, never for reporting on the sample it was chosen on.
    """
    names = [name for name in ("ntk", "linear_regions", *available_indicators())
             if COLUMN.get(name, name) in scores.column_names]
    names = list(dict.fromkeys(names))
    labels = [f"cell {i}" for i in scores.column("nb201_index").to_pylist()]
    accuracy = scores.column("cifar10").to_numpy()
    rows: dict[str, list[Any]] = {"combo": [], "method": [], "size": [], "tau_good": []}
    for size in range(2, len(names) + 1):
        for combo in itertools.combinations(names, size):
            columns = {name: scores.column(COLUMN.get(name, name)).to_numpy() for name in combo}
            for method, aggregation in AGGREGATIONS.items():
                values = aggregate(method, columns, candidates=labels, nonfinite="worst")
                tau = float(kendalltau(rankdata(values), accuracy).statistic)
                rows["combo"].append("+".join(combo))
                rows["method"].append(method)
                rows["size"].append(size)
                rows["tau_good"].append(tau if aggregation.direction == "higher" else -tau)
    table = pa.table(rows)
    return table.take(np.argsort(-np.array(rows["tau_good"]), kind="stable"))


def best_of(scores: pa.Table, combos: list[tuple[str, ...]], n: int, draws: int, seed: int = 0) -> pa.Table:
    """What a sampling search of ``n`` cells picks, judged on the sample: per combination and aggregation, the
    accuracies (mean, std over ``draws`` random ``n``-cell subsets of the sample) of the subset's best cell by
    that aggregate, computed within the subset as a search aggregates its pool. ``oracle`` (the subset's most
    accurate cell on CIFAR-10) and ``random`` (the subset's mean: a cell drawn blindly) bound them.

    The τ of a ranking says little about its top, which is all a search
    keeps; this reads the top off the same saved scores (n = the sample size:
    its one top cell).
    """
    m = scores.num_rows
    if not 1 <= n <= m:
        raise SystemExit(f"--best-of {n}: give a pool size between 1 and the sample's {m} cells")
    rng = np.random.default_rng(seed)
    subsets = [np.arange(m)] if n == m else [np.sort(rng.choice(m, n, replace=False)) for _ in range(draws)]
    accuracy = {dataset: scores.column(dataset).to_numpy() for dataset in DATASETS}
    labels = np.array([f"cell {i}" for i in scores.column("nb201_index").to_pylist()])
    picks: dict[str, list[int]] = {"oracle": [int(s[np.argmax(accuracy["cifar10"][s])]) for s in subsets]}
    for combo in combos:
        columns = {name: scores.column(COLUMN.get(name, name)).to_numpy() for name in combo}
        for method in AGGREGATIONS:
            picks[combo_column(method, combo)] = [
                int(s[best_first(method, aggregate(method, {k: v[s] for k, v in columns.items()},
                                                   candidates=list(labels[s]), nonfinite="worst"))[0]])
                for s in subsets]
    rows: dict[str, list[Any]] = {"pick": [*picks, "random"], "n": [n] * (len(picks) + 1),
                                  "draws": [len(subsets)] * (len(picks) + 1)}
    for dataset, values in accuracy.items():
        chosen = [values[p] for p in picks.values()] + [[values[s].mean() for s in subsets]]
        rows[f"{dataset}_mean"] = [float(np.mean(c)) for c in chosen]
        rows[f"{dataset}_std"] = [float(np.std(c)) for c in chosen]
    return pa.table(rows)


def main(argv: list[str] | None = None) -> pa.Table:
    args = parse_args(argv)
    table = load_table(args.csv)
    start = time.perf_counter()
    if args.from_scores is not None:
        scores = pq.read_table(args.from_scores)
        indices = scores.column("nb201_index").to_pylist()
        proxies = [{name: [row[f"{name}_{r}"] for r in range(args.proxy_repeats)] for name in proxy_names(args)
                    if name in scores.column_names} for row in scores.to_pylist()]
        results = [{"kappa": [row[f"kappa_{r}"] for r in range(args.repeats)],
                    "regions": [row[f"regions_{r}"] for r in range(args.repeats)]} for row in scores.to_pylist()]
    else:
        indices = sample_cells(args.seed, args.num_archs, args.exclude)
        results = score_cells(args, indices)
        proxies = score_proxies(args, indices)
    seconds = time.perf_counter() - start
    scores = summarize(indices, results, table, proxies, args.combos)
    taus = tau_table(scores)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in (("scores", scores), ("tau", taus)):
        pacsv.write_csv(data, args.out / f"{name}.csv")
        pq.write_table(data, args.out / f"{name}.parquet")
    plots = plot(scores, args.out)

    print(f"NAS-Bench-201, {len(indices)} cells (seed {args.seed}), κ batch {args.batch_size}, "
          f"{args.repeats} repeat(s) (proxies {args.proxy_repeats}), mode {args.mode}, inputs {args.source}; "
          f"{int((~np.isfinite(scores.column('kappa').to_numpy())).sum())} cells with κ = inf; "
          f"{seconds:.0f} s on {max(args.num_actors, 1)} worker(s) × {args.threads} thread(s)")
    width = max(18, *(len(name) + 2 for name in taus.column("indicator").to_pylist()))
    print(f"{'Kendall tau':{width}s}{'better':>8s}" + "".join(f"{d:>12s}" for d in DATASETS) + f"{'paper':>10s}")
    for row in taus.to_pylist():
        paper = "" if row["paper"] is None else f"{row['paper']:+10.2f}"
        print(f"{row['indicator']:{width}s}{row['better']:>8s}" + "".join(f"{row[d]:+12.3f}" for d in DATASETS)
              + paper)
    print(f"τ between repeats 0 and 1: κ {repeat_agreement(scores, 'kappa'):+.3f}, "
          f"R {repeat_agreement(scores, 'regions'):+.3f}")
    if args.best_subsets:
        subsets = subset_taus(scores)
        pacsv.write_csv(subsets, args.out / "subsets.csv")
        print(f"best {args.best_subsets} of {subsets.num_rows} (subset, aggregation) by CIFAR-10 τ "
              "(oriented: higher is better):")
        for row in subsets.slice(0, args.best_subsets).to_pylist():
            print(f"  {row['tau_good']:+.3f}  {row['method']:9s} {row['combo']}")
    if args.best_of:
        picked = pa.concat_tables([best_of(scores, args.combos, n, args.best_of_draws, args.seed)
                                   for n in args.best_of])
        pacsv.write_csv(picked, args.out / "best_of.csv")
        print("accuracy of the picked cell, mean ± std over random pools of N cells of this sample:")
        for row in picked.to_pylist():
            print(f"  N={row['n']:<5d} {row['pick']:{width}s}" + "".join(
                f"{row[f'{d}_mean']:9.2f} ± {row[f'{d}_std']:.2f}" for d in DATASETS))
    print(f"wrote {args.out}/scores.csv|parquet, tau.csv|parquet, " + ", ".join(p.name for p in plots))
    return taus


if __name__ == "__main__":
    main()
