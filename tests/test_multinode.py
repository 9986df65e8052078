"""TE-NAS scoring on a Ray cluster of several nodes, on one machine (`ray.cluster_utils.Cluster`).

A head without CPUs (the driver runs there) and two worker nodes of 4 logical CPUs each: Ray's
default policy would pack two 1-CPU actors onto one worker, so actors on two nodes show that the
pool spreads them. A worker node removed mid-round takes its actor and the tasks queued in it; the
search must still end with exactly the candidates table of one uninterrupted serial run. The
searches are the tiny config of `helpers.tiny` (rounds of about a second), so each test costs
little more than its actors' start.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from helpers import tiny
from rayneas.scoring import ScorerPool, check_fits
from rayneas.tenas import search
from rayneas.tenas.search import run_tenas

WORKER_CPUS = 4


def candidates(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "state.json").read_text())["candidates"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted serial search: what every multi-node run must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference")
    summary = run_tenas(tiny(), run_dir)
    return {"genotype": summary["genotype"], "candidates": candidates(run_dir)}


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=WORKER_CPUS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def two_workers(cluster):
    """Two live worker nodes at the start of each test (a test may remove one)."""
    while len(cluster.worker_nodes) < 2:
        cluster.add_node(num_cpus=WORKER_CPUS)
    cluster.wait_for_nodes()
    return cluster


def _watching_pool(cluster: Cluster, seen: list[list[str]], remove_after: int | None = None) -> type[ScorerPool]:
    """The search's pool, recording its actors' nodes at the first result (and again at the end), and
    removing the worker node of its first actor after ``remove_after`` results of the first round."""

    class WatchingPool(ScorerPool):
        def _report(self, done: int, total: int) -> None:
            if not seen:
                seen.append([p.node_id for p in self.placements()])
                if remove_after is not None:
                    seen.append([])  # the node removed, once
            if remove_after is not None and done == remove_after and not seen[1]:
                (node,) = [n for n in cluster.worker_nodes if n.node_id == seen[0][0]]
                seen[1].append(node.node_id)
                cluster.remove_node(node)
            super()._report(done, total)

        def shutdown(self) -> None:
            seen.append([p.node_id for p in self.placements()])
            super().shutdown()

    return WatchingPool


def test_scoring_actors_spread_over_the_worker_nodes(reference, two_workers, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(search, "ScorerPool", _watching_pool(two_workers, seen))
    summary = run_tenas(tiny(scoring={"num_actors": 2}), tmp_path)
    workers = {node.node_id for node in two_workers.worker_nodes}
    assert set(seen[0]) == workers  # one actor on each worker node
    assert summary["genotype"] == reference["genotype"] and candidates(tmp_path) == reference["candidates"]


@pytest.mark.parametrize("cpus_per_actor, actors_at_end", [(1, 2), (WORKER_CPUS, 1)])
def test_worker_node_removed_mid_round_gives_the_uninterrupted_table(reference, two_workers, tmp_path, monkeypatch,
                                                                     caplog, cpus_per_actor, actors_at_end):
    """1-CPU actors: the lost actor is started again on the other worker. Actors of a whole worker
    each: the one worker left holds one, so the search goes on with one actor instead of waiting for
    an actor that could never start."""
    seen: list[list[str]] = []
    monkeypatch.setattr(search, "ScorerPool", _watching_pool(two_workers, seen, remove_after=3))
    with caplog.at_level(logging.WARNING, logger="rayneas.scoring.pool"):
        summary = run_tenas(tiny(scoring={"num_actors": 2, "num_cpus_per_actor": cpus_per_actor}), tmp_path)
    _, (removed,), last = seen
    assert removed not in last  # the removed node's actor was started again elsewhere, or not at all
    assert len(last) == actors_at_end and set(last) == {two_workers.worker_nodes.copy().pop().node_id}
    assert "scoring actor lost" in caplog.text
    assert summary["genotype"] == reference["genotype"] and candidates(tmp_path) == reference["candidates"]


def test_a_pool_counts_only_the_nodes_alive(two_workers):
    """After a worker node left, a pool that needed it fails at once, naming what is left."""
    two_workers.remove_node(two_workers.worker_nodes.copy().pop())
    with pytest.raises(ValueError, match=r"2 actors of 4 CPU .*\(2 node\(s\), 4 CPU, 0 GPU\) holds only 1 of them"):
        check_fits(2, WORKER_CPUS, 0)
