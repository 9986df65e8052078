"""Suite-wide settings: one torch thread in the test process.

The CI machine has 2 cores and the Ray tests start actors beside pytest; a
second intra-op thread per process only adds contention (measured: test_morph
3 s with one thread, 40 s with two on a busy machine).
"""
import os

import torch

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
torch.set_num_threads(1)
