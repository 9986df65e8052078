"""Suite-wide settings: one torch thread in the test process.

The CI machine has 2 cores and the Ray tests start actors beside pytest; a
second intra-op thread per process only adds contention (measured: test_morph
3 s with one thread, 40 s with two on a busy machine).
"""
import os

import pytest
import torch

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ray_local():
    """A local 2-CPU Ray for one test module (RLlib and NetPool tests); imported here so other tests never load Ray."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
