"""Reference vs paper mode schedules, the accuracy table kept out of searches, and a real DARTS op round."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
import torch

import rayneas.tenas.search as search
from rayneas.config import from_dict
from rayneas.indicators import init_weights
from rayneas.spaces import darts
from rayneas.tenas.config import TenasConfig
from rayneas.scoring.supernet import TenasScorer, shared_inputs
from rayneas.spaces.prunable import NB201Prunable, make_space
from rayneas.tenas.tasks import round_tasks
from rayneas.tenas.search import run_tenas
from rayneas.scoring.host import DEVICE_KEY

from helpers import TINY, lock_table, tiny

def scheduled(mode: str, round_index: int) -> list:
    cfg = tiny(prune={"repeats": 3, "mode": mode})
    space = make_space(cfg)
    mask = space.initial_mask()
    return round_tasks(cfg, space, mask, round_index, space.next_round(mask, 1, 2).candidates)


def test_reference_mode_one_kappa_net_per_round_and_one_thin_net_per_candidate():
    tasks = scheduled("reference", 0)
    assert len(tasks) == 25 * 3
    assert len({t.kappa_seed for t in tasks}) == 1  # every candidate and repeat of the round
    assert scheduled("reference", 1)[0].kappa_seed != tasks[0].kappa_seed  # a new supernet next round
    supernet, candidates = tasks[:3], tasks[3:]
    per_candidate = [candidates[i:i + 3] for i in range(0, len(candidates), 3)]
    assert all(len({t.regions_seed for t in c}) == 1 for c in per_candidate)  # shared by its repeats
    assert len({c[0].regions_seed for c in per_candidate} | {supernet[0].regions_seed}) == 25  # fresh per candidate
    assert all(t.regions_baseline == supernet[0].mask for t in candidates)
    assert all(t.regions_baseline is None for t in supernet)
    assert [t.repeat for t in per_candidate[0]] == [0, 1, 2]  # repeats differ by their input batches


def test_paper_mode_redraws_per_repeat_shared_by_the_supernet_and_every_candidate():
    tasks = scheduled("paper", 0)
    for r in range(3):
        of_repeat = [t for t in tasks if t.repeat == r]
        assert len({t.kappa_seed for t in of_repeat}) == 1
        assert all(t.regions_seed == t.kappa_seed and t.regions_baseline is None for t in of_repeat)
    assert len({t.kappa_seed for t in tasks}) == 3


def test_reference_mode_networks_share_weights_as_the_reference_copies_them():
    space = NB201Prunable()
    tasks = scheduled("reference", 0)
    full, cand = tasks[0], tasks[3]
    nets = [init_weights(space.kappa_net(t.mask), "reference", t.kappa_seed, fan="out") for t in (full, cand)]
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        assert torch.equal(a, b)
    thin_full = init_weights(space.regions_net(cand.regions_baseline), "reference", cand.regions_seed)
    thin_cand = init_weights(space.regions_net(cand.mask), "reference", cand.regions_seed)
    for a, b in zip(thin_full.state_dict().values(), thin_cand.state_dict().values()):
        assert torch.equal(a, b)
    assert full.mask.without(*space.next_round(full.mask, 1, 2).candidates[0]) == cand.mask


def test_reference_mode_search_records_relative_region_changes(tmp_path):
    summary = run_tenas(tiny(prune={"mode": "reference", "repeats": 2}), tmp_path)
    assert summary["finished"]
    table = json.loads((tmp_path / "state.json").read_text())["candidates"]
    for row in table:
        expected = sum(round((f - p) / f, 3) for f, p in zip(row["regions_baseline"], row["regions"])) / 2
        assert row["dregions"] == pytest.approx(expected)
        assert -1.0 <= row["dregions"] <= 1.0


@pytest.fixture
def table_locked(monkeypatch):
    """The accuracy table raises while the pruning rounds run, and counts the reads after them."""
    return lock_table(monkeypatch, search, "_run_rounds")


def test_nb201_search_never_reads_the_accuracy_table_before_its_result(tmp_path, table_locked):
    summary = run_tenas(tiny(prune={"repeats": 1}), tmp_path)
    assert table_locked == {"during": 0, "after": 1} and "lookup" in summary


def test_darts_search_never_reads_the_accuracy_table(tmp_path, table_locked):
    cfg = tiny(space="darts", supernet={"C": 1, "ops": ["sep_conv_3x3"]}, inputs={"batch_size": 2},
               prune={"repeats": 1})
    run_tenas(cfg, tmp_path)
    assert table_locked == {"during": 0, "after": 0}


@pytest.fixture
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def test_darts_real_op_round_and_edge_round_through_run_tenas(tmp_path, local_ray):
    """All 7 ops on every edge, 3 pruned per edge per round (the CIFAR-10 quota): 7 -> 4 -> 1, then edges.

    On 2 Ray actors: the 308 op-round tasks are what a CI machine can afford only in parallel.
    """
    cfg = tiny(space="darts", supernet={"C": 1}, inputs={"batch_size": 2, "image_size": 8, "region_samples": 20},
               prune={"repeats": 1, "prune_number": 3, "max_rounds": 3}, scoring={"num_actors": 2})
    summary = run_tenas(cfg, tmp_path)
    assert not summary["finished"] and summary["rounds"] == 3
    saved = json.loads((tmp_path / "state.json").read_text())
    rounds, rows = saved["rounds"], saved["candidates"]
    assert [r["phase"] for r in rounds] == ["ops", "ops", "edges"]
    assert [r["candidates"] for r in rounds[:2]] == [2 * 14 * 7, 2 * 14 * 4]
    for k, left in ((0, 4), (1, 1)):
        for cell in darts.CELL_TYPES:
            for edge in range(14):
                on_edge = [r for r in rows if r["round"] == k and r["cell"] == cell and r["edge"] == edge]
                assert sum(r["pruned"] for r in on_edge) == 3
    assert all(len(ops) == 1 for edges in saved["mask"].values() for ops in edges if ops)
    # the edge round ranks the 2 inputs of node 1 (first node with more than 2 in the normal cell) ... cuts 1
    edge_rows = [r for r in rows if r["round"] == 2]
    assert len(edge_rows) == 3 and {r["node"] for r in edge_rows} == {3} and sum(r["pruned"] for r in edge_rows) == 1
    resumed = run_tenas(from_dict(TenasConfig, {**json.loads(json.dumps(TINY)), "space": "darts",
                                                "supernet": {"C": 1},
                                                "inputs": {**TINY["inputs"], "batch_size": 2, "region_samples": 20},
                                                "prune": {"repeats": 1, "prune_number": 3}, "scoring": {"num_actors": 2}}),
                        tmp_path, resume=True)
    genotype = darts.parse_genotype(resumed["genotype"])
    assert len(genotype.normal) == len(genotype.reduce) == 8
    assert Path(tmp_path / "result.json").is_file()


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_a_worker_reusing_its_networks_scores_like_fresh_networks(space_name, mode):
    cfg = tiny(space=space_name, prune={"repeats": 2, "mode": mode},
               inputs={"batch_size": 2, "region_samples": 30},
               supernet={"C": 1, "ops": ["skip_connect", "sep_conv_3x3", "max_pool_3x3"]} if space_name == "darts"
               else {})
    space = make_space(cfg)
    mask = space.initial_mask()
    tasks = round_tasks(cfg, space, mask, 0, space.next_round(mask, 1, 2).candidates[:3])
    shared = {**shared_inputs(cfg), DEVICE_KEY: torch.device("cpu")}
    reused = TenasScorer(space, mode)
    for task in tasks:
        assert reused(task, shared) == TenasScorer(space, mode)(task, shared)
