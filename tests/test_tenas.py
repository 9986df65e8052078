"""TE-NAS pruning search: ranking rules on known numbers, round plans, configs, and whole searches."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray
import torch
import yaml

from rayneas.config import ConfigError, from_dict, load_run
from rayneas.indicators import dense_ranks
from rayneas.lookup import lookup
from rayneas.runs.export import load_exported
from rayneas.scoring.supernet import Score
from rayneas.spaces import darts, nb201
from rayneas.spaces.common import count_parameters
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import DartsPrunable, NB201Prunable
from rayneas.tenas.config import TenasConfig
from rayneas.tenas.export import export_run
from rayneas.tenas.rank import Ranking, choose_prunes, kappa_delta, rank_candidates, regions_delta, relative_drop
from rayneas.tenas.record import SearchState
from rayneas.tenas.search import RoundScores, prune_round, run_tenas

from helpers import tiny

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# --- ranking rules -------------------------------------------------------------


def test_dense_ranks_share_ties_without_gaps():
    assert dense_ranks([0.5, 0.2, 0.5, -math.inf, 0.1], descending=True) == [0, 1, 0, 3, 2]
    assert dense_ranks([3.0, 1.0, 3.0, 0.0], descending=False) == [2, 1, 2, 0]
    with pytest.raises(ValueError, match="cannot rank NaN"):
        dense_ranks([1.0, math.nan], descending=True)


def test_relative_drop_handles_infinite_kappa():
    assert relative_drop(100.0, 80.0) == pytest.approx(0.2)
    assert relative_drop(100.0, math.inf) == -math.inf  # pruned net degenerate: worst
    assert relative_drop(math.inf, 50.0) == 1.0  # supernet degenerate, candidate not: the limit
    assert relative_drop(math.inf, math.inf) == 0.0


def test_kappa_delta_rounds_each_repeat_then_aggregates():
    full, cand = [100.0, 200.0, 300.0], [90.04, 250.0, 300.0]
    # per repeat: 0.0996 -> 0.1, -0.25, 0.0
    assert kappa_delta(full, cand, precision=3) == pytest.approx((0.1 - 0.25) / 3)
    assert kappa_delta(full, cand, 3, "median") == 0.0
    geo = 1 - (0.9004 * 1.25 * 1.0) ** (1 / 3)
    assert kappa_delta(full, cand, 3, "geomean") == round(geo, 3)
    assert kappa_delta(full, [math.inf, 100.0, 300.0], 3) == -math.inf
    assert kappa_delta(full, [math.inf, 100.0, 300.0], 3, "geomean") == -math.inf
    # one near-singular supernet repeat decides the mean, not the median
    spiky_full, spiky_cand = [100.0, 100.0, 100.0], [90.0, 90.0, 1e14]
    assert kappa_delta(spiky_full, spiky_cand, 3) < -1e11
    assert kappa_delta(spiky_full, spiky_cand, 3, "median") == 0.1
    with pytest.raises(ValueError, match="one supernet and one candidate score per repeat"):
        kappa_delta(full, cand[:1], 3)


def test_regions_delta_absolute_in_paper_mode_relative_and_rounded_in_reference_mode():
    assert regions_delta([10, 20], [8, 21], None) == 0.5  # paper: mean of R_full - R_pruned
    # reference: (R_full - R_pruned) / R_full rounded to 3 decimals per repeat; 0.0004 ties with no change
    assert regions_delta([1000, 2000], [999, 1500], 3) == pytest.approx((0.001 + 0.25) / 2)
    assert regions_delta([2500, 2500], [2499, 2500], 3) == 0.0


def test_rank_candidates_kappa_descending_regions_ascending():
    rankings = rank_candidates([0.3, -math.inf, 0.3, 0.1], [5.0, 0.0, 2.0, 2.0])
    assert rankings == [Ranking(0, 2), Ranking(2, 0), Ranking(0, 1), Ranking(1, 1)]
    assert [r.rank_sum for r in rankings] == [2, 2, 1, 2]


def test_choose_prunes_best_rank_sum_per_group_ties_to_better_kappa():
    # edge 0: candidates 0, 1, 2; edge 1: candidates 3, 4
    rankings = [Ranking(2, 0), Ranking(1, 1), Ranking(0, 3), Ranking(3, 0), Ranking(0, 3)]
    groups = [0, 0, 0, 1, 1]
    # edge 0: sums 2, 2, 3 -> tie between 0 and 1, candidate 1 has the better κ rank
    # edge 1: sums 3, 3 -> tie, candidate 4 has the better κ rank
    assert choose_prunes(rankings, groups, {0: 1, 1: 1}) == [1, 4]
    # equal sums and κ ranks: the earlier candidate
    assert choose_prunes([Ranking(1, 1), Ranking(1, 1)], [0, 0], {0: 1}) == [0]
    # quotas: two from edge 0, none from edge 1
    assert choose_prunes(rankings, groups, {0: 2, 1: 0}) == [0, 1]
    with pytest.raises(ValueError, match="no prune quota for group"):
        choose_prunes(rankings, groups, {0: 1})


# --- round plans ------------------------------------------------------------------


def test_nb201_rounds_prune_one_op_per_edge_until_single_path():
    space = NB201Prunable()
    mask = space.initial_mask()
    assert mask["cell"][0] == ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    sizes = []
    while (plan := space.next_round(mask, prune_number=1, edges_per_node=2)) is not None:
        sizes.append(len(plan.candidates))
        assert plan.phase == "ops" and set(plan.quotas.values()) == {1}
        for edge in range(nb201.NUM_EDGES):  # prune the last live op of every edge
            mask = mask.without("cell", edge, mask["cell"][edge][-1])
    assert sizes == [24, 18, 12]
    assert space.genotype_text(space.genotype(mask)) == "|skip_connect~0|+|skip_connect~0|skip_connect~1|+" \
                                                        "|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_darts_op_rounds_then_one_edge_round_per_crowded_node():
    space = DartsPrunable()
    mask = space.initial_mask()
    plan = space.next_round(mask, prune_number=3, edges_per_node=2)
    assert plan.phase == "ops" and len(plan.candidates) == 2 * 14 * 7 and set(plan.quotas.values()) == {3}
    assert "none" not in {c.op for c in plan.candidates}
    # one op left per edge: the edge rounds, normal cell first, node 0 (two inputs) needs none
    mask = Mask.from_json({cell: [[ops[0]] for ops in edges] for cell, edges in mask.items()})
    seen = []
    while (plan := space.next_round(mask, prune_number=3, edges_per_node=2)) is not None:
        assert plan.phase == "edges"
        ((group, quota),) = plan.quotas.items()
        seen.append((group, len(plan.candidates), quota))
        for c in plan.candidates[:quota]:
            mask = mask.without(*c)
    assert seen == [(("normal", 1), 3, 1), (("normal", 2), 4, 2), (("normal", 3), 5, 3),
                    (("reduce", 1), 3, 1), (("reduce", 2), 4, 2), (("reduce", 3), 5, 3)]
    genotype = space.genotype(mask)
    assert isinstance(genotype, darts.Genotype) and len(genotype.normal) == 8
    assert mask.live_op_count() == 16 and mask.is_final()
    assert space.genotype(mask) == darts.genotype_from_mask(mask)  # read from the mask, no supernet built


# --- configs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tenas_nb201.yaml", "tenas_darts_cifar10.yaml", "tenas_darts_imagenet.yaml"])
def test_shipped_configs_validate(name):
    kind, cfg = load_run(CONFIGS / name)
    assert kind.name == "tenas" and isinstance(cfg, TenasConfig)
    data = yaml.safe_load((CONFIGS / name).read_text())
    assert cfg.prune.prune_number == data["prune"]["prune_number"]
    assert cfg.inputs.batch_size == {"nb201": 72, "darts": 14 if cfg.dataset == "cifar10" else 24}[cfg.space]


@pytest.mark.parametrize("data, message", [
    ({"inputs": {"source": "cifar10"}}, "inputs.source is 'cifar10', which is read from disk: set inputs.root"),
    ({"inputs": {"source": "cifar100", "root": "/data"}}, "inputs.source 'cifar100' differs from dataset 'cifar10'"),
    ({"name": "a/b"}, "must be a plain folder name"),
    ({"space": "nb201", "dataset": "imagenet"}, "dataset 'imagenet' is not in NAS-Bench-201"),
    ({"prune": {"repeats": 0}}, "prune.repeats: 0 is out of range; it must be >= 1"),
    ({"prune": {"mode": "xavier"}}, "prune.mode: 'xavier' is not allowed"),
    ({"prune": {"kappa_aggregate": "max"}}, "prune.kappa_aggregate: 'max' is not allowed"),
    ({"scoring": {"num_actor": 2}}, "scoring: unknown key 'num_actor'"),
    ({"supernet": {"ops": ["none", "skip_connect"]}}, "supernet.ops ['none', 'skip_connect'] must list distinct ops"),
    ({"space": "darts", "supernet": {"ops": ["nor_conv_3x3"]}}, "distinct ops of the darts space"),
])
def test_bad_config_names_the_problem(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(TenasConfig, data)


# --- whole searches (tiny settings) -----------------------------------------------------

def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> tuple[dict, Path]:
    run_dir = tmp_path_factory.mktemp("serial")
    return run_tenas(tiny(), run_dir), run_dir


def test_search_writes_genotype_lookup_table_plot_and_tensorboard(serial_run):
    summary, run_dir = serial_run
    result = json.loads((run_dir / "result.json").read_text())
    genotype = nb201.parse(result["genotype"])
    assert summary["finished"] and summary["rounds"] == 3 and summary["genotype"] == result["genotype"]
    acc = lookup(genotype)
    assert result["lookup"] == {"cifar10": acc.cifar10, "cifar100": acc.cifar100, "imagenet16": acc.imagenet16}
    table = pq.read_table(run_dir / "candidates.parquet").to_pylist()
    assert [sum(r["round"] == k for r in table) for k in range(3)] == [24, 18, 12]
    for k in range(3):  # exactly one op pruned per edge per round, the best rank sum of its edge
        for edge in range(nb201.NUM_EDGES):
            rows = [r for r in table if r["round"] == k and r["edge"] == edge]
            (pruned,) = [r for r in rows if r["pruned"]]
            assert pruned["rank_sum"] == min(r["rank_sum"] for r in rows)
            assert all(len(r["kappa"]) == 1 for r in rows)
    assert [p["live_ops"] for p in result["trajectory"]] == [24, 18, 12, 6]
    assert (run_dir / "trajectory.png").stat().st_size > 0
    assert any((run_dir / "tb").glob("events.out.tfevents.*"))


def test_two_actors_give_the_serial_genotype_and_identical_tables(serial_run, local_ray, tmp_path):
    summary, run_dir = serial_run
    parallel = run_tenas(tiny(scoring={"num_actors": 2}), tmp_path)
    assert parallel["genotype"] == summary["genotype"]
    assert state(tmp_path)["candidates"] == state(run_dir)["candidates"]
    assert state(tmp_path)["trajectory"] == state(run_dir)["trajectory"]
    assert pq.read_table(tmp_path / "candidates.parquet").equals(pq.read_table(run_dir / "candidates.parquet"))


def test_resume_after_round_one_reaches_the_uninterrupted_result(serial_run, tmp_path):
    summary, run_dir = serial_run
    stopped = run_tenas(tiny(prune={"max_rounds": 1}), tmp_path)
    assert not stopped["finished"] and stopped["rounds"] == 1 and not (tmp_path / "result.json").exists()
    assert len(pq.read_table(tmp_path / "candidates.parquet")) == 24
    saved = state(tmp_path)["mask"]  # the plain form older state.json files hold, so they resume too
    assert list(saved) == ["cell"] and [len(ops) for ops in saved["cell"]] == [3] * nb201.NUM_EDGES
    resumed = run_tenas(tiny(), tmp_path, resume=True)
    assert resumed["genotype"] == summary["genotype"]
    assert state(tmp_path)["candidates"] == state(run_dir)["candidates"]
    assert state(tmp_path)["trajectory"] == state(run_dir)["trajectory"]


def test_run_folder_mistakes_are_explained(serial_run, tmp_path):
    _, run_dir = serial_run
    with pytest.raises(ConfigError, match="already holds a TE-NAS run .* continue it with --resume"):
        run_tenas(tiny(), run_dir)
    with pytest.raises(ConfigError, match=r"config differs from the saved run in prune.repeats \(1 -> 3\)"):
        run_tenas(tiny(prune={"repeats": 3}), run_dir, resume=True)
    with pytest.raises(ConfigError, match="cannot resume: .* does not exist; run without --resume"):
        run_tenas(tiny(), tmp_path / "nothing", resume=True)


def test_export_writes_a_loadable_benchmark_network(serial_run, tmp_path):
    summary, run_dir = serial_run
    out = export_run(run_dir, tmp_path)
    info = json.loads((out / "genotype.json").read_text())
    assert info["genotype"] == summary["genotype"] and info["kwargs"] == {"C": 16, "N": 5, "num_classes": 10}
    net = load_exported(out)
    whole = torch.load(out / "model.pt", weights_only=False)
    expected = nb201.build(summary["genotype"])
    assert count_parameters(net) == info["parameters"] == count_parameters(expected)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), whole.eval()(x))
        assert net(x).shape == (2, 10)


def test_darts_search_completes_and_its_cell_builds_the_20_cell_network(tmp_path):
    # one candidate op keeps it quick: no op round (planned in the test above), the six edge rounds
    cfg = tiny(space="darts", supernet={"C": 1, "ops": ["sep_conv_3x3"]}, inputs={"batch_size": 2})
    summary = run_tenas(cfg, tmp_path)
    genotype = darts.parse_genotype(summary["genotype"])
    assert summary["rounds"] == 6
    assert [r["phase"] for r in state(tmp_path)["rounds"]] == ["edges"] * 6 + ["final"]
    assert {op for op, _ in genotype.normal + genotype.reduce} == {"sep_conv_3x3"}
    info = json.loads((export_run(tmp_path) / "genotype.json").read_text())
    assert info["kwargs"] == {"C": 36, "num_classes": 10, "layers": 20, "auxiliary": False}
    net = darts.DartsNetworkCIFAR(36, 10, 20, genotype)
    assert len(net.cells) == 20 and info["parameters"] == count_parameters(net)


def test_infinite_kappa_candidate_ranks_last_and_is_kept():
    space = NB201Prunable()
    state = SearchState(settings={}, mask=space.initial_mask())
    plan = space.next_round(state.mask, prune_number=1, edges_per_node=2)
    cand = [[Score(math.inf if i == 0 else 100.0, 50)] for i in range(len(plan.candidates))]
    pruned = prune_round(space, 0, plan, RoundScores([Score(100.0, 50)], cand, 0.0, []), TenasConfig(), state)
    first = state.candidates[0]
    assert (first["dkappa"], first["kappa_rank"], first["pruned"]) == (-math.inf, 1, False)
    # every other candidate ties (Δκ = 0, ΔR = 0): each edge prunes its first, edge 0 its second
    assert pruned[0] == plan.candidates[1] and len(pruned) == nb201.NUM_EDGES
    assert state.mask["cell"][0] == ("skip_connect", "nor_conv_3x3", "avg_pool_3x3")


def test_missing_dataset_fails_before_ray_starts(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    cfg = tiny(inputs={"source": "cifar10", "root": str(tmp_path / "no-data")}, scoring={"num_actors": 2})
    with pytest.raises(FileNotFoundError, match="no-data does not exist. Download the CIFAR-10 python version"):
        run_tenas(cfg, tmp_path / "run")
    assert not ray.is_initialized()


def test_demo_prints_the_found_cell_and_its_looked_up_accuracies(tmp_path, capsys):
    from rayneas.demo import demo_tenas

    cfg = dataclasses.replace(tiny(), name="demo_tenas_nb201")
    summary = demo_tenas(tmp_path, cfg)
    out = capsys.readouterr().out
    acc = lookup(summary["genotype"])
    assert f"found genotype {summary['genotype']}  (NAS-Bench-201 index {acc.index})" in out
    assert f"CIFAR-10 {acc.cifar10:.2f}  CIFAR-100 {acc.cifar100:.2f}  ImageNet16-120 {acc.imagenet16:.2f}" in out
    assert ("best in NAS-Bench-201, one dataset at a time (three different cells): CIFAR-10 94.37 (index 6111)  "
            "CIFAR-100 73.51 (index 9930)  ImageNet16-120 47.31 (index 857)") in out
    assert (tmp_path / "demo_tenas_nb201" / "result.json").is_file()
    demo_tenas(tmp_path, cfg)  # a second `make demo` re-reads the finished run instead of failing on its folder
    assert "continuing the earlier demo run" in capsys.readouterr().out
