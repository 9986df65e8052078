"""TE-NAS scoring on a Ray cluster of several nodes, on one machine (`ray.cluster_utils.Cluster`).

A head without CPUs (the driver runs there) and two worker nodes of 4 logical CPUs each: Ray's
default policy would pack two 1-CPU actors onto one worker, so actors on two nodes show that the
pool spreads them. A worker node removed mid-round takes its actor and the tasks queued in it; the
search must still end with exactly the candidates table of one uninterrupted serial run. The
searches are the tiny config of `helpers.tiny` (rounds of about a second), so each test costs
little more than its actors' start. An EAS search on the same cluster trains its children on the
worker nodes, all through the one NetPool actor.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from helpers import tiny
from rayneas.cli import main
from rayneas.eas import search as eas_search
from rayneas.eas.netpool import NetPoolStore
from rayneas.scoring import ScorerPool, check_fits
from rayneas.tenas import search
from rayneas.tenas.search import run_tenas

WORKER_CPUS = 4
EAS_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


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


def _watching_pool(cluster: Cluster, rounds: list[list[str]], removed: list[str],
                   remove_after: int | None = None) -> type[ScorerPool]:
    """The search's pool, recording its actors' nodes after each round and, with ``remove_after``,
    removing the worker node of its first actor once that many results of the first round are in."""

    class WatchingPool(ScorerPool):
        def score(self, tasks, on_result=None):
            results = super().score(tasks, on_result)
            rounds.append([p.node_id for p in self.placements()])
            return results

        def _report(self, done: int, total: int) -> None:
            if done == remove_after and not removed:
                node_id = ray.get(self._actors[0].placement.remote()).node_id
                (node,) = [n for n in cluster.worker_nodes if n.node_id == node_id]
                removed.append(node_id)
                cluster.remove_node(node)
            super()._report(done, total)

    return WatchingPool


def test_scoring_actors_spread_over_the_worker_nodes(reference, two_workers, tmp_path, monkeypatch):
    rounds: list[list[str]] = []
    monkeypatch.setattr(search, "ScorerPool", _watching_pool(two_workers, rounds, []))
    summary = run_tenas(tiny(scoring={"num_actors": 2}), tmp_path)
    workers = {node.node_id for node in two_workers.worker_nodes}
    assert len(rounds) == 4 and all(len(nodes) == 2 and set(nodes) == workers for nodes in rounds)
    assert summary["genotype"] == reference["genotype"] and candidates(tmp_path) == reference["candidates"]


@pytest.mark.parametrize("cpus_per_actor, actors_at_end, logged", [
    (1, 2, "scoring actor lost on task"),
    (WORKER_CPUS, 1, "the nodes alive hold only 1 such actors: scoring goes on with 1 of 2"),
], ids=["started-again-elsewhere", "goes-on-with-one"])
def test_worker_node_removed_mid_round_gives_the_uninterrupted_table(reference, two_workers, tmp_path, monkeypatch,
                                                                     caplog, cpus_per_actor, actors_at_end, logged):
    """1-CPU actors: the lost actor is started again on the other worker. Actors of a whole worker
    each: the one worker left holds one, so the search goes on with one actor instead of waiting for
    an actor that could never start."""
    rounds: list[list[str]] = []
    removed: list[str] = []
    monkeypatch.setattr(search, "ScorerPool", _watching_pool(two_workers, rounds, removed, remove_after=3))
    with caplog.at_level(logging.WARNING, logger="rayneas.scoring.pool"):
        summary = run_tenas(tiny(scoring={"num_actors": 2, "num_cpus_per_actor": cpus_per_actor}), tmp_path)
    (left,) = [node.node_id for node in two_workers.worker_nodes]
    assert len(removed) == 1 and removed[0] != left
    # from the round of the removal on: the actors the one worker left holds, all on it
    assert len(rounds) == 4 and all(nodes == [left] * actors_at_end for nodes in rounds)
    assert logged in caplog.text
    assert summary["genotype"] == reference["genotype"] and candidates(tmp_path) == reference["candidates"]


def test_a_pool_counts_only_the_nodes_alive(two_workers):
    """After a worker node left, a pool that needed it fails at once, naming what is left."""
    two_workers.remove_node(two_workers.worker_nodes.copy().pop())
    with pytest.raises(ValueError, match=r"2 actors of 4 CPU .*\(2 node\(s\), 4 CPU, 0 GPU\) holds only 1 of them"):
        check_fits(2, WORKER_CPUS, 0)


def test_eas_env_runners_on_the_worker_nodes_share_one_netpool(two_workers, tmp_path, monkeypatch):
    """Two env runners of a whole worker each (so one per node) train real children (1 epoch) through the
    one NetPool actor; an RLlib episode callback, run in the env runners, records each child's node."""
    log = tmp_path / "episodes.jsonl"  # one disk on this machine: the env runners' processes append to it

    def record_node(*, episode, **_) -> None:
        import json
        import ray
        info = episode.get_infos(-1)
        pools = sorted(f"{a['namespace']}/{a['name']}" for a in ray.util.list_named_actors(all_namespaces=True)
                       if a["name"].startswith("rayneas-netpool-"))
        with open(log, "a") as out:
            out.write(json.dumps({"node": ray.get_runtime_context().get_node_id(), "arch": info["arch"],
                                  "netpool_hit": bool(info["netpool_hit"]), "pools": pools}) + "\n")

    built = eas_search.rllib_config
    monkeypatch.setattr(eas_search, "rllib_config",
                        lambda *a, **k: built(*a, **k).callbacks(on_episode_end=record_node))
    runs = f"file://{tmp_path / 'runs'}"  # a plain local path is refused on a multi-node cluster
    settings = ["reward.mode=train", "start.epochs=5", "child.finetune_epochs=1", "dataset.train_size=300",
                "episode.wider_steps=1", "episode.deeper_steps=1", "controller.num_env_runners=2",
                "controller.networks_per_iteration=2", f"controller.rllib={{num_cpus_per_env_runner: {WORKER_CPUS}}}",
                "budget.networks=6"]
    assert main(["run", str(EAS_CONFIG), "--runs-dir", runs, *[a for s in settings for a in ("--set", s)]]) == 0

    run_dir = tmp_path / "runs" / "eas_digits"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["finished"] and result["networks_evaluated"] == 6 and result["best"]["test_acc"] is not None
    episodes = [json.loads(line) for line in log.read_text().splitlines()]
    workers = {node.node_id for node in two_workers.worker_nodes}
    assert len(episodes) >= 6 and {e["node"] for e in episodes} == workers
    # one NetPool actor while the runners ran, and its child records were trained on both worker nodes
    assert len({tuple(e["pools"]) for e in episodes}) == 1 and len(episodes[0]["pools"]) == 1
    trained = {e["arch"]: e["node"] for e in episodes if not e["netpool_hit"]}
    children = {r.arch for r in NetPoolStore(f"{runs}/eas_digits/netpool.parquet").records() if r.parent is not None}
    assert children == set(trained) and set(trained.values()) == workers
