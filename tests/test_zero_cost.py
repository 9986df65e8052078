"""Zero-cost sampling search: configs, a tiny NB201 and DARTS run, resume, serial vs 2 actors, the table guard."""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

import rayneas.lookup
import rayneas.zero_cost.search as zc
from rayneas.config import ConfigError, from_dict, load_run
from rayneas.indicators import aggregate, available_indicators
from rayneas.scoring import ScorerPool
from rayneas.spaces import darts, nb201
from rayneas.zero_cost.config import ZeroCostConfig
from rayneas.zero_cost.search import run_zero_cost, sample_cells

from helpers import configured, lock_table

# Ray workers cannot import this test module: ship its scorer class by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
INDICATORS = ["ntk", "linear_regions", "naswot", "flops"]  # one of each network: κ, thin, eval (twice)
TINY = {"indicators": INDICATORS, "aggregate": "log_rank", "sample": {"cells": 6, "save_every": 2},
        "inputs": {"batch_size": 4, "image_size": 8, "region_samples": 100, "region_batches": 1, "proxy_batch": 4},
        "proxy_net": {"C": 4, "layers": 1}, "scoring": {"num_actors": 0}}


def tiny(**sections) -> ZeroCostConfig:
    return configured(ZeroCostConfig, TINY, **sections)


# --- configs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["zero_cost_nb201.yaml", "zero_cost_darts.yaml"])
def test_shipped_configs_validate(name):
    kind, cfg = load_run(CONFIGS / name)
    assert kind.name == "zero_cost" and isinstance(cfg, ZeroCostConfig) and cfg.sample.cells == 1000


@pytest.mark.parametrize("data, message", [
    ({"indicators": ["ntk", "synflow"]}, "unknown: ['synflow']; allowed: " + ", ".join(available_indicators())),
    ({"indicators": []}, "at least one"),
    ({"indicators": ["ntk", "ntk"]}, "distinct registered indicators"),
    ({"aggregate": "mean"}, "aggregate: 'mean' is not allowed"),
    ({"supernet": {"ops": ["nor_conv_3x3"]}}, "supernet.ops must stay null"),
    ({"sample": {"cells": 20000}}, "exceeds the 15625 cells"),
    ({"space": "nb201", "dataset": "imagenet"}, "dataset 'imagenet' is not in NAS-Bench-201"),
])
def test_bad_config_names_the_problem(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(ZeroCostConfig, data)


def test_samples_are_seeded_distinct_and_a_prefix_of_larger_samples():
    cells = sample_cells(tiny(sample={"cells": 50}))
    assert len({c.nb201_index for c in cells}) == 50
    assert [c.genotype for c in sample_cells(tiny(sample={"cells": 5}))] == [c.genotype for c in cells[:5]]
    assert all(nb201.index_of(nb201.parse(c.genotype)) == c.nb201_index for c in cells)
    assert sample_cells(tiny(seed=1, sample={"cells": 5}))[0].genotype != cells[0].genotype
    darts_cells = sample_cells(tiny(space="darts", sample={"cells": 4}))
    for cell in darts_cells:
        genotype = darts.parse_genotype(cell.genotype)
        assert "none" not in {op for op, _ in genotype.normal + genotype.reduce}
        assert darts.mask_from_genotype(genotype) == cell.mask


# --- runs ---------------------------------------------------------------------------


@pytest.fixture
def table_locked(monkeypatch):
    """The accuracy table raises while cells are scored, and counts the reads after."""
    return lock_table(monkeypatch, zc, "_score_cells")


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> tuple[dict, Path]:
    run_dir = tmp_path_factory.mktemp("serial")
    return run_zero_cost(tiny(), run_dir), run_dir


def test_result_names_the_best_cell_by_aggregate_and_its_accuracies(serial_run):
    summary, run_dir = serial_run
    result = json.loads((run_dir / "result.json").read_text())
    rows = pq.read_table(run_dir / "cells.parquet").to_pylist()
    assert [r["position"] for r in rows] == list(range(6)) and result["cells_scored"] == 6
    expected = aggregate("log_rank", {name: [r[name] for r in rows] for name in INDICATORS}, nonfinite="worst")
    assert [r["aggregate"] for r in rows] == expected
    best = max(range(6), key=lambda i: (expected[i], -i))
    assert rows[best]["rank"] == 0 and sorted(r["rank"] for r in rows) == list(range(6))
    assert result["genotype"] == summary["genotype"] == rows[best]["genotype"]
    acc = rayneas.lookup.lookup(result["genotype"])
    assert result["nb201_index"] == rows[best]["nb201_index"] == acc.index
    assert result["lookup"] == {"cifar10": acc.cifar10, "cifar100": acc.cifar100, "imagenet16": acc.imagenet16}
    assert result["best"]["indicators"] == {name: rows[best][name] for name in INDICATORS}
    assert all(len(r[f"{name}_repeats"]) == 1 for r in rows for name in INDICATORS)


def test_the_accuracy_table_is_read_only_after_scoring(tmp_path, table_locked):
    summary = run_zero_cost(tiny(sample={"cells": 3}), tmp_path)
    assert table_locked == {"during": 0, "after": 1} and "lookup" in summary


def test_two_actors_give_the_serial_table(serial_run, ray_local, tmp_path):
    summary, run_dir = serial_run
    parallel = run_zero_cost(tiny(scoring={"num_actors": 2}), tmp_path)
    assert parallel["genotype"] == summary["genotype"]
    assert pq.read_table(tmp_path / "cells.parquet").equals(pq.read_table(run_dir / "cells.parquet"))


def test_pool_keeps_both_actors_busy_and_reports_every_result(ray_local):
    """One score() call over all tasks: each actor gets the next task as it returns one."""
    pool = ScorerPool(SleepScorer, num_actors=2)
    seen: dict[int, tuple] = {}
    try:
        results = pool.score(list(range(20)), on_result=lambda i, r: seen.setdefault(i, r))
    finally:
        pool.shutdown()
    assert seen == dict(enumerate(results)) and [r[0] for r in results] == list(range(20))
    by_actor: dict[int, list[tuple]] = {}
    for _, pid, start, end in results:
        by_actor.setdefault(pid, []).append((start, end))
    assert len(by_actor) == 2 and all(len(spans) >= 5 for spans in by_actor.values())


class SleepScorer:
    def __call__(self, task: int, shared) -> tuple[int, int, float, float]:
        start = time.time()
        time.sleep(0.05)
        return task, os.getpid(), start, time.time()


def test_resume_scores_only_the_missing_cells_and_ends_like_one_run(serial_run, tmp_path, monkeypatch):
    summary, run_dir = serial_run
    run_zero_cost(tiny(sample={"cells": 3}), tmp_path)
    scored: list[int] = []
    real = zc._score_cells

    def counting(pool, tasks, on_result):
        scored.extend(t.label for t in tasks)
        return real(pool, tasks, on_result)

    monkeypatch.setattr(zc, "_score_cells", counting)
    resumed = run_zero_cost(tiny(), tmp_path, resume=True)
    assert scored == [f"cell {k}, repeat 0" for k in range(3, 6)]
    assert resumed["genotype"] == summary["genotype"]
    assert pq.read_table(tmp_path / "cells.parquet").equals(pq.read_table(run_dir / "cells.parquet"))


def test_interrupted_run_resumes_from_the_saved_cells(serial_run, tmp_path, monkeypatch):
    summary, run_dir = serial_run

    def interrupted(pool, tasks, on_result):
        for i, score in enumerate(pool.score(tasks[:3])):
            on_result(i, score)
        raise KeyboardInterrupt

    monkeypatch.setattr(zc, "_score_cells", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_zero_cost(tiny(), tmp_path)
    assert pq.read_table(tmp_path / "cells.parquet").num_rows == 3 and not (tmp_path / "result.json").exists()
    monkeypatch.undo()
    resumed = run_zero_cost(tiny(), tmp_path, resume=True)
    assert resumed["genotype"] == summary["genotype"]
    assert pq.read_table(tmp_path / "cells.parquet").equals(pq.read_table(run_dir / "cells.parquet"))


def test_resume_refuses_other_indicators_or_aggregate(serial_run):
    _, run_dir = serial_run
    with pytest.raises(ConfigError, match=r"already holds a zero-cost run .* --resume"):
        run_zero_cost(tiny(), run_dir)
    with pytest.raises(ConfigError, match=re.escape("differs from the saved run in indicators")):
        run_zero_cost(tiny(indicators=["ntk", "linear_regions"]), run_dir, resume=True)
    with pytest.raises(ConfigError, match=re.escape("aggregate ('log_rank' -> 'rank_sum')")):
        run_zero_cost(tiny(aggregate="rank_sum"), run_dir, resume=True)


def test_darts_run_scores_sampled_cells_and_never_reads_the_table(tmp_path, table_locked):
    cfg = tiny(space="darts", indicators=["ntk", "linear_regions", "params"], aggregate="rank_sum",
               sample={"cells": 3}, supernet={"C": 1}, inputs={"batch_size": 2, "region_samples": 20},
               proxy_net={"C": 2, "layers": 3})
    summary = run_zero_cost(cfg, tmp_path)
    assert table_locked == {"during": 0, "after": 0} and "lookup" not in summary
    rows = pq.read_table(tmp_path / "cells.parquet").to_pylist()
    assert darts.parse_genotype(summary["genotype"]) == darts.parse_genotype(rows[summary["best"]["position"]]["genotype"])
    assert all(r["nb201_index"] is None and r["params"] > 0 for r in rows)


# --- the correlation script's aggregations -------------------------------------------------------


def test_correlation_script_reports_both_aggregations_of_chosen_combinations(tmp_path):
    import subprocess

    import pyarrow.csv as pacsv

    script = Path(__file__).resolve().parents[1] / "scripts" / "correlation_nb201.py"
    run = subprocess.run(
        [sys.executable, str(script), "--num-archs", "4", "--seed", "3", "--batch-size", "4", "--repeats", "1",
         "--region-samples", "40", "--region-batches", "1", "--proxy-C", "2", "--proxy-N", "1", "--proxy-batch", "4",
         "--proxies", "none", "--combos", "ntk+linear_regions", "naswot+flops", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    scores = pacsv.read_csv(tmp_path / "scores.csv")
    assert {"naswot", "flops"} <= set(scores.column_names) and "jacov" not in scores.column_names
    expected = aggregate("log_rank", {"naswot": scores.column("naswot").to_pylist(),
                                      "flops": scores.column("flops").to_pylist()}, nonfinite="worst")
    assert scores.column("log_rank:naswot+flops").to_pylist() == pytest.approx(expected)
    better = {row["indicator"]: row["better"] for row in pq.read_table(tmp_path / "tau.parquet").to_pylist()}
    assert {name: better[name] for name in better if ":" in name} == {
        "rank_sum:ntk+linear_regions": "lower", "log_rank:ntk+linear_regions": "higher",
        "rank_sum:naswot+flops": "lower", "log_rank:naswot+flops": "higher"}
    assert "log_rank:ntk+linear_regions" in run.stdout
    bad = subprocess.run([sys.executable, str(script), "--combos", "ntk+synflow"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown indicator 'synflow'" in bad.stderr


def _correlation_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "correlation_nb201.py"
    spec = importlib.util.spec_from_file_location("correlation_nb201", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return path, module


def test_a_held_out_sample_excludes_the_cells_of_earlier_samples():
    _, script = _correlation_script()
    earlier = set(script.sample_cells(3, 4000))
    held_out = script.sample_cells(5, 300, exclude=[(3, 4000)])
    assert len(set(held_out)) == 300 and not earlier & set(held_out)
    assert script.sample_cells(5, 300) == sorted(np.random.default_rng(5).choice(15625, 300, replace=False).tolist())
    with pytest.raises(SystemExit, match="only 625 cells are left"):
        script.sample_cells(1, 700, exclude=[(2, 15000)])


def test_subsets_are_chosen_on_saved_scores_that_reproduce_the_tau_table(tmp_path):
    import subprocess

    path, script = _correlation_script()
    small = ["--batch-size", "4", "--repeats", "1", "--region-samples", "40", "--region-batches", "1",
             "--proxy-C", "2", "--proxy-N", "1", "--proxy-batch", "4", "--proxies", "naswot", "--combos",
             "ntk+naswot", "--best-subsets", "2"]
    first = subprocess.run([sys.executable, str(path), "--num-archs", "5", "--seed", "4", *small,
                            "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([sys.executable, str(path), *small, "--from-scores", str(tmp_path / "a" / "scores.parquet"),
                            "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "a" / "tau.csv").read_text() == (tmp_path / "b" / "tau.csv").read_text()
    subsets = pq.read_table(tmp_path / "a" / "scores.parquet")
    ranked = script.subset_taus(subsets).to_pylist()
    # {ntk, linear_regions, naswot}: 3 pairs and the triple, each by both aggregations, best first
    assert len(ranked) == 8 and {r["combo"] for r in ranked} == {
        "ntk+linear_regions", "ntk+naswot", "linear_regions+naswot", "ntk+linear_regions+naswot"}
    assert [r["tau_good"] for r in ranked] == sorted((r["tau_good"] for r in ranked), reverse=True)
    assert f"{ranked[0]['tau_good']:+.3f}  {ranked[0]['method']:9s} {ranked[0]['combo']}" in first.stdout


def test_best_of_reads_the_pick_of_a_sampling_search_off_saved_scores():
    _, script = _correlation_script()
    # five cells: naswot and flops (higher is better) agree on cell 3, the most accurate is cell 1
    scores = pa.table({"nb201_index": [10, 11, 12, 13, 14], "naswot": [1.0, 2.0, 3.0, 5.0, 4.0],
                       "flops": [1.0, 3.0, 2.0, 5.0, 4.0], "cifar10": [80.0, 94.0, 90.0, 92.0, 85.0],
                       "cifar100": [50.0, 73.0, 66.0, 70.0, 60.0], "imagenet16": [30.0, 45.0, 40.0, 44.0, 35.0]})
    whole = {row["pick"]: row for row in script.best_of(scores, [("naswot", "flops")], 5, 200).to_pylist()}
    assert whole["log_rank:naswot+flops"]["cifar10_mean"] == 92.0 and whole["rank_sum:naswot+flops"]["cifar100_mean"] == 70.0
    assert whole["oracle"]["imagenet16_mean"] == 45.0 and whole["random"]["cifar10_mean"] == pytest.approx(88.2)
    assert {row["draws"] for row in whole.values()} == {1} and whole["oracle"]["cifar10_std"] == 0.0
    # pools of 2: the pair's higher-ranked cell, averaged over 200 seeded draws
    pairs = script.best_of(scores, [("naswot", "flops")], 2, 200, seed=1).to_pylist()
    assert pairs == script.best_of(scores, [("naswot", "flops")], 2, 200, seed=1).to_pylist()
    picked = {row["pick"]: row["cifar10_mean"] for row in pairs}
    assert picked["random"] < picked["log_rank:naswot+flops"] < picked["oracle"] < 94.0
    with pytest.raises(SystemExit, match="--best-of 6: give a pool size between 1 and the sample's 5 cells"):
        script.best_of(scores, [("naswot", "flops")], 6, 200)
