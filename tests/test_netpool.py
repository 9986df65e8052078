import dataclasses
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
import ray  # noqa: E402

from rayneas.eas.netpool import NetPoolStore, NetRecord, evaluate_once, netpool_actor, netpool_name  # noqa: E402
from rayneas.eas.netpool_files import SCHEMA  # noqa: E402

ARCHS = [f"conv-{w}-3 pool fc-8" for w in (4, 8, 12, 16, 20, 24)]


@dataclasses.dataclass(frozen=True)
class FakeResult:
    """Stands in for a training run, so the workers need not import torch."""

    val_accuracy: float
    epochs: int = 2
    seconds: float = 0.5


def fake_result(arch: str) -> FakeResult:
    return FakeResult(len(arch) / 100)


def test_records_persist_and_reload(tmp_path):
    path = tmp_path / "pool" / "netpool.parquet"
    pool = NetPoolStore(path)
    pool.put(NetRecord("conv-4-3", 0.5, 20, 1.5, None))
    pool.put(NetRecord("conv-8-3", 0.75, 20, 2.5, "conv-4-3"))
    reloaded = NetPoolStore(path)
    assert reloaded.records() == pool.records() and len(reloaded) == 2
    assert reloaded.get("conv-8-3").parent == "conv-4-3"
    assert reloaded.get_or_claim("conv-4-3", "me").record == NetRecord("conv-4-3", 0.5, 20, 1.5, None)


def test_first_record_wins(tmp_path):
    pool = NetPoolStore(tmp_path / "p.parquet")
    first = NetRecord("conv-4-3", 0.5, 20, 1.0)
    assert pool.put(first) == first
    assert pool.put(NetRecord("conv-4-3", 0.9, 20, 1.0)) == first
    assert NetPoolStore(tmp_path / "p.parquet").get("conv-4-3") == first


def test_claims_exclude_others_until_released_or_stale():
    pool = NetPoolStore(claim_timeout_s=0.2)
    assert pool.get_or_claim("a", "w1").status == "claimed"
    assert pool.get_or_claim("a", "w2") == pool.get_or_claim("a", "w3")
    assert pool.get_or_claim("a", "w2").status == "busy" and pool.get_or_claim("a", "w2").owner == "w1"
    pool.release("a", "w2")  # not the owner: no effect
    assert pool.get_or_claim("a", "w2").status == "busy"
    pool.release("a", "w1")
    assert pool.get_or_claim("a", "w2").status == "claimed"
    began = time.monotonic()
    pool.wait("a")  # in one thread only time changes a claim: returns when w2 is presumed dead
    assert time.monotonic() - began > 0.1 and pool.get_or_claim("a", "w3").status == "claimed"


def test_releasing_a_searchs_claims_leaves_other_searches_claims_in_a_shared_pool():
    # a Tune trial that lost an env runner releases its dead workers' claims, not a live trial's
    pool = NetPoolStore()
    pool.get_or_claim("a", "trial1/w1")
    pool.get_or_claim("b", "trial2/w1")
    pool.get_or_claim("c", "trial2/w2")
    assert pool.release_all_claims("trial2") == 2
    assert pool.get_or_claim("a", "trial2/w3").status == "busy"  # trial 1's worker still trains it
    assert pool.get_or_claim("b", "trial2/w3").status == "claimed"
    assert pool.release_all_claims("trial") == 0  # a group is a whole name, not a prefix of one
    seen = []  # evaluate_once claims for its search: another worker sees the owner under that group

    def train() -> FakeResult:
        seen.append(pool.get_or_claim("d", "trial1/w9"))
        return fake_result("d")

    evaluate_once(pool, "d", train, group="trial3")
    assert seen[0].status == "busy" and seen[0].owner.startswith("trial3/")


def test_each_search_drains_only_its_own_episode_log():
    # the trials of a Tune experiment share one pool: one search's iteration must never collect another's children
    pool = NetPoolStore()
    pool.log_episode("a", {"arch": ARCHS[0]})
    pool.log_episode("b", {"arch": ARCHS[1]})
    pool.log_episode("a", {"arch": ARCHS[2]})
    assert pool.drain_episodes("a") == [{"arch": ARCHS[0]}, {"arch": ARCHS[2]}]
    assert pool.drain_episodes("a") == []
    assert pool.drain_episodes("b") == [{"arch": ARCHS[1]}]


def test_failed_training_releases_the_claim():
    pool = NetPoolStore()

    def boom() -> FakeResult:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate_once(pool, "conv-4-3", boom)
    record, trained = evaluate_once(pool, "conv-4-3", lambda: fake_result("conv-4-3"))
    assert trained and record.accuracy == fake_result("conv-4-3").val_accuracy
    assert evaluate_once(pool, "conv-4-3", boom) == (record, False)  # cached: boom is never called


def test_settings_never_share_a_record_and_weights_persist(tmp_path):
    path = tmp_path / "netpool.parquet"
    pool = NetPoolStore(path)
    a, _ = evaluate_once(pool, "conv-4-3", lambda: FakeResult(0.5), setting="lr=0.02", weights=lambda: b"A")
    b, trained = evaluate_once(pool, "conv-4-3", lambda: FakeResult(0.7), setting="lr=0.005", weights=lambda: b"B")
    assert trained and (a.accuracy, b.accuracy) == (0.5, 0.7)  # same arch, other setting: trained again
    evaluate_once(pool, "conv-8-3", lambda: FakeResult(0.9), setting="lr=0.02")  # no weights kept
    reloaded = NetPoolStore(path)
    assert reloaded.weights("conv-4-3", "lr=0.02") == b"A" and reloaded.weights("conv-4-3", "lr=0.005") == b"B"
    assert reloaded.weights("conv-8-3", "lr=0.02") is None
    assert reloaded.best("lr=0.02") == a  # the most accurate record that can be exported
    assert len(list((tmp_path / "netpool.weights").iterdir())) == 2


def test_each_record_is_appended_as_one_part_and_weights_are_kept_once_by_content(tmp_path):
    path = tmp_path / "netpool.parquet"
    pool = NetPoolStore(path)
    pool.put(NetRecord("a", 0.5, 1, 1.0), b"same")
    first = {p: (p.stat().st_ino, p.read_bytes()) for p in path.iterdir()}
    pool.put(NetRecord("b", 0.6, 1, 1.0, "a"), b"same")
    pool.put(NetRecord("c", 0.7, 1, 1.0, "a"), b"other")
    assert len(list(path.iterdir())) == 3  # one part per record ...
    assert all((p.stat().st_ino, p.read_bytes()) == kept for p, kept in first.items())  # ... none rewritten
    assert len(list((tmp_path / "netpool.weights").iterdir())) == 2  # equal weights share one file
    reloaded = NetPoolStore(path)
    assert [r.arch for r in reloaded.records()] == ["a", "b", "c"]  # in the order they were added
    assert reloaded.weights("b") == b"same" and reloaded.weights("c") == b"other"


def test_a_single_file_pool_of_an_earlier_version_becomes_the_first_part(tmp_path):
    path = tmp_path / "netpool.parquet"
    old = [{**dataclasses.asdict(NetRecord("a", 0.5, 1, 1.0)), "weights_file": None}]
    pq.write_table(pa.Table.from_pylist(old, schema=SCHEMA), path)
    pool = NetPoolStore(path)
    pool.put(NetRecord("b", 0.6, 1, 1.0, "a"))
    assert path.is_dir() and len(list(path.iterdir())) == 2
    assert [r.arch for r in NetPoolStore(path).records()] == ["a", "b"]
    (tmp_path / ".netpool.parquet.upgrade").mkdir()  # an upgrade killed after deleting the old file:
    for part in path.iterdir():
        part.rename(tmp_path / ".netpool.parquet.upgrade" / part.name)
    path.rmdir()
    assert [r.arch for r in NetPoolStore(path).records()] == ["a", "b"]  # the next load finishes it


def test_a_file_uri_names_the_same_pool_as_its_path(tmp_path):
    path = tmp_path / "shared" / "netpool.parquet"
    NetPoolStore(path.as_uri()).put(NetRecord("a", 0.5, 1, 1.0), b"W")
    assert NetPoolStore(path).weights("a") == b"W"


def test_importing_the_pool_does_not_import_ray():
    code = "import sys, rayneas.eas.netpool; assert 'ray' not in sys.modules, 'ray was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_foreign_parquet_is_rejected(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"arch": ["conv-4-3"], "acc": [0.5]}), path)
    with pytest.raises(ValueError, match=r"is not a NetPool file: it lacks column\(s\) \['accuracy', 'epochs'"):
        NetPoolStore(path)


@pytest.fixture(scope="module")
def ray_local():
    # pytest imports this file as a top-level module Ray workers cannot import: ship it by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def wait_until_gone(name: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name)
        except ValueError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"actor {name!r} still registered after {timeout_s} s")


@ray.remote(num_cpus=1)
def worker(archs: list[str], path: str) -> list[str]:
    """Evaluate every arch through the shared pool; returns the ones this worker trained."""
    pool = netpool_actor(path)
    trained = []
    for arch in archs:
        def evaluate(arch=arch) -> FakeResult:
            time.sleep(0.2)  # long enough for the other worker to ask for the same arch meanwhile
            return fake_result(arch)

        record, here = evaluate_once(pool, arch, evaluate, parent="start")
        assert record.arch == arch
        if here:
            trained.append(arch)
    return trained


def test_two_ray_workers_never_train_the_same_net_and_the_pool_survives_restart(ray_local, tmp_path):
    path = str(tmp_path / "netpool.parquet")
    pool = netpool_actor(path)
    a, b = ray.get([worker.remote(ARCHS, path), worker.remote(ARCHS[::-1], path)])
    assert set(a).isdisjoint(b) and set(a) | set(b) == set(ARCHS)
    assert a and b  # both workers did some of the work
    records = ray.get(pool.records.remote())
    assert sorted(r.arch for r in records) == sorted(ARCHS)
    assert all(r.accuracy == fake_result(r.arch).val_accuracy and r.parent == "start" for r in records)

    ray.kill(pool)  # a restarted search: a new actor loads the Parquet file
    wait_until_gone(netpool_name(path))
    restarted = netpool_actor(path)
    assert sorted(ray.get(restarted.records.remote()), key=lambda r: r.arch) == sorted(records, key=lambda r: r.arch)
    assert ray.get(worker.remote(ARCHS, path)) == []  # nothing is trained again
    other = netpool_actor(tmp_path / "another.parquet")  # another run's file: its own actor, its own records
    assert ray.get(other.records.remote()) == [] and netpool_name(tmp_path / "another.parquet") != netpool_name(path)
    with pytest.raises(ValueError, match="already exists with location"):
        netpool_actor(tmp_path / "another.parquet", name=netpool_name(path))
    ray.kill(restarted)
    ray.kill(other)


def test_a_waiting_worker_wakes_when_the_record_arrives_and_never_holds_up_the_actor(ray_local, tmp_path):
    pool = netpool_actor(tmp_path / "wake.parquet")
    for arch in ("a", "b"):
        assert ray.get(pool.get_or_claim.remote(arch, "w1")).status == "claimed"
        assert ray.get(pool.get_or_claim.remote(arch, "w2")).status == "busy"
    waiting = {arch: pool.wait.remote(arch) for arch in ("a", "b")}
    assert ray.get(pool.get_or_claim.remote("c", "w2")).status == "claimed"  # answered while two calls wait
    assert ray.wait(list(waiting.values()), num_returns=2, timeout=0.5)[0] == []  # the claims are held (6 h)
    ray.get(pool.put.remote(NetRecord("a", 0.5, 1, 1.0), b"W"))
    assert ray.wait([waiting["a"]], timeout=10)[0] and not ray.wait([waiting["b"]], timeout=0.2)[0]
    ray.get(pool.release.remote("b", "w1"))  # a failed training wakes its waiters too
    assert ray.wait([waiting["b"]], timeout=10)[0]
    assert ray.get(pool.get_or_claim.remote("b", "w2")).status == "claimed"
    assert ray.get(pool.weights.remote("a")) == b"W"
    ray.kill(pool)
