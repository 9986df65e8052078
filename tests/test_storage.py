"""Outputs in object storage: a real S3-compatible server (moto's, on 127.0.0.1) started by the test.

The NetPool of a search lives at an ``s3://`` location: Ray workers share it through its actor, and
a new actor (a restarted search) finds every record and weights file there.
"""
from __future__ import annotations

import sys

import pyarrow.fs as pafs
import pytest
import ray

from helpers import s3_server
from rayneas.eas.netpool import NetPoolStore, NetRecord, call, evaluate_once, netpool_actor, netpool_name
from rayneas.storage import open_location
from test_netpool import ARCHS, fake_result, wait_until_gone, worker


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def ray_s3(s3):
    """A local Ray started after the server, so that its workers inherit the AWS variables."""
    ray.cloudpickle.register_pickle_by_value(sys.modules["test_netpool"])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield s3
    ray.shutdown()


def test_a_netpool_in_s3_is_shared_by_ray_workers_and_reloaded_by_a_new_actor(ray_s3):
    location = f"{ray_s3.bucket}/netpool-test/netpool.parquet"
    pool = netpool_actor(location)
    a, b = ray.get([worker.remote(ARCHS, location), worker.remote(ARCHS[::-1], location)])
    assert set(a).isdisjoint(b) and set(a) | set(b) == set(ARCHS)
    evaluate_once(pool, "conv-4-3", lambda: fake_result("conv-4-3"), weights=lambda: b"W")
    bucket = open_location(location)
    assert isinstance(bucket.fs, pafs.S3FileSystem)
    assert len(bucket.files(".parquet")) == len(ARCHS) + 1  # one part per record, in the bucket
    ray.kill(pool)
    wait_until_gone(netpool_name(location))
    restarted = netpool_actor(location)
    assert sorted(r.arch for r in ray.get(restarted.records.remote())) == sorted([*ARCHS, "conv-4-3"])
    assert call(restarted, "weights", "conv-4-3", "") == b"W"
    assert NetPoolStore(location).get("conv-4-3") == NetRecord("conv-4-3", fake_result("conv-4-3").val_accuracy,
                                                               2, 0.5)
    ray.kill(restarted)
