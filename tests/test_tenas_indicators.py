"""TE-NAS pruning driven by any registered indicators (prune.indicators) and either aggregation (prune.aggregate)."""
from __future__ import annotations

import json
import math
import random
import re

import pyarrow.parquet as pq
import pytest
import torch

from rayneas.config import ConfigError, from_dict
from rayneas.indicators import available_indicators
from rayneas.scoring.host import DEVICE_KEY
from rayneas.spaces import nb201
from rayneas.tenas.config import TenasConfig
from rayneas.scoring.supernet import TenasScorer, shared_inputs
from rayneas.spaces.prunable import make_space
from rayneas.tenas.rank import choose_in_order, choose_prunes, rank_candidates, value_delta
from rayneas.tenas.tasks import round_tasks
from rayneas.tenas.search import rank_round, run_tenas

from helpers import tiny

AZ = ["az_expressivity", "az_progressivity", "az_trainability", "flops"]
EVAL = {"inputs": {"proxy_batch": 4}, "proxy_net": {"C": 4, "layers": 1}}


def with_indicators(indicators: list[str], aggregate: str = "rank_sum", **sections) -> TenasConfig:
    return tiny(prune={"indicators": indicators, "aggregate": aggregate, **sections.pop("prune", {})},
                inputs={**EVAL["inputs"], **sections.pop("inputs", {})}, proxy_net=EVAL["proxy_net"], **sections)


def test_unknown_indicator_fails_at_config_time_with_the_allowed_list():
    with pytest.raises(ConfigError, match=re.escape("unknown: ['synflow']; allowed: " + ", ".join(available_indicators()))):
        from_dict(TenasConfig, {"prune": {"indicators": ["ntk", "synflow"]}})
    with pytest.raises(ConfigError, match=re.escape("prune.aggregate: 'sum' is not allowed")):
        from_dict(TenasConfig, {"prune": {"aggregate": "sum"}})


def test_default_is_kappa_and_regions_by_rank_sum():
    prune = TenasConfig().prune
    assert (prune.indicators, prune.aggregate) == (["ntk", "linear_regions"], "rank_sum")


def test_rank_round_with_the_defaults_is_tenas_rank_and_choice():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(2, 12)
        dk = [rng.choice([0.1, 0.2, -0.1, -math.inf, 0.0]) for _ in range(n)]
        dr = [float(rng.choice([0, 1, 2, 5, -1])) for _ in range(n)]
        groups = [rng.randint(0, 2) for _ in range(n)]
        quotas = {g: rng.randint(0, 2) for g in range(3)}
        ranks, values, order = rank_round([{"ntk": k, "linear_regions": r} for k, r in zip(dk, dr)],
                                          ["ntk", "linear_regions"], "rank_sum")
        rankings = rank_candidates(dk, dr)
        assert ranks == {"ntk": [r.kappa_rank for r in rankings], "linear_regions": [r.regions_rank for r in rankings]}
        assert values == [r.rank_sum for r in rankings]
        assert choose_in_order(order, groups, quotas) == choose_prunes(rankings, groups, quotas)


def test_value_delta_orients_by_direction_and_ranks_degenerate_nets_last():
    assert value_delta([10.0, 20.0], [12.0, 21.0], higher_is_better=True) == 1.5
    assert value_delta([10.0, 20.0], [12.0, 21.0], higher_is_better=False) == -1.5
    assert value_delta([10.0], [-math.inf], higher_is_better=True) == -math.inf
    assert value_delta([-math.inf], [3.0], higher_is_better=True) == math.inf
    assert value_delta([-math.inf], [-math.inf], higher_is_better=True) == 0.0


@pytest.fixture(scope="module")
def az_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("az")
    return run_tenas(with_indicators([*AZ, "linear_regions"], "log_rank"), run_dir), run_dir


def test_any_indicator_set_drives_the_pruning(az_run):
    summary, run_dir = az_run
    assert summary["finished"] and nb201.parse(summary["genotype"])
    rows = pq.read_table(run_dir / "candidates.parquet").to_pylist()
    assert [sum(r["round"] == k for r in rows) for k in range(3)] == [24, 18, 12]
    for row in rows:
        assert row["kappa"] is None and row["dkappa"] is None and len(row["regions"]) == 1
        assert all(len(row[name]) == 1 and f"delta_{name}" in row for name in AZ)
    for k in range(3):  # per edge, the pruned op has the best (highest) log-rank aggregate of its edge
        for edge in range(nb201.NUM_EDGES):
            on_edge = [r for r in rows if r["round"] == k and r["edge"] == edge]
            (pruned,) = [r for r in on_edge if r["pruned"]]
            assert pruned["aggregate"] == max(r["aggregate"] for r in on_edge)
    trajectory = json.loads((run_dir / "state.json").read_text())["trajectory"]
    assert all(math.isnan(p["kappa"]) and p["flops"] > 0 for p in trajectory)


def test_resume_refuses_a_changed_indicator_set_or_aggregate(az_run, tmp_path):
    _, run_dir = az_run
    with pytest.raises(ConfigError, match=re.escape("differs from the saved run in prune.indicators")):
        run_tenas(with_indicators(AZ, "log_rank"), run_dir, resume=True)
    with pytest.raises(ConfigError, match=re.escape("prune.aggregate ('log_rank' -> 'rank_sum')")):
        run_tenas(with_indicators([*AZ, "linear_regions"], "rank_sum"), run_dir, resume=True)
    run_tenas(with_indicators([*AZ, "linear_regions"], "log_rank"), run_dir, resume=True)  # same settings: fine


def test_eval_network_size_is_a_setting_only_when_an_eval_indicator_is_searched(tmp_path):
    stopped = run_tenas(tiny(prune={"max_rounds": 1}), tmp_path)
    assert not stopped["finished"]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert "proxy_net" not in saved["settings"] and "proxy_batch" not in saved["settings"]["inputs"]
    # a run saved before prune.indicators existed (state version 2) resumes as the κ + R search it was
    saved["version"] = 2
    for key in ("indicators", "aggregate"):
        del saved["settings"]["prune"][key]
    (tmp_path / "state.json").write_text(json.dumps(saved))
    assert run_tenas(tiny(proxy_net={"C": 8}), tmp_path, resume=True)["finished"]


def test_a_worker_reusing_its_eval_network_scores_like_a_fresh_one():
    cfg = with_indicators(["ntk", "naswot", "params"], prune={"repeats": 2})
    space = make_space(cfg)
    mask = space.initial_mask()
    tasks = round_tasks(cfg, space, mask, 0, space.next_round(mask, 1, 2).candidates[:3])
    shared = {**shared_inputs(cfg, cfg.prune.indicators), DEVICE_KEY: torch.device("cpu")}
    assert shared["inputs_naswot"].shape == (2, 1, 4, 3, 32, 32)  # repeats, batches, proxy_batch, C, H, W
    reused = TenasScorer(space, "paper", ("ntk", "naswot", "params"))
    for task in tasks:
        score = reused(task, shared)
        assert score == TenasScorer(space, "paper", ("ntk", "naswot", "params"))(task, shared)
        assert math.isnan(score.regions) and set(score.others) == {"naswot", "params"}
