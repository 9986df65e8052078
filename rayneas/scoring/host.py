"""What scores tasks inside one worker: the scorer, its device and its view of the shared inputs.

The serial path runs the very same `ScorerHost` in the driver and a Ray actor
wraps one (`rayneas.scoring.actor`), so a candidate is scored by identical code
with identical inputs whichever way the pool runs. No Ray here: scorers import
this module, and they run in processes that need not schedule anything.
"""
from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol

import torch

DEVICE_KEY = "device"
"""The key under which every scorer finds the torch.device its worker computes on."""


class Scorer(Protocol):
    """Scores one task; built inside each worker by a zero-argument factory.

    ``shared`` is read-only: the pool's shared inputs, torch tensors already on
    ``shared["device"]``. For results that do not depend on the worker, draw all
    randomness from the task (e.g. a seed in it), never from process state.
    """

    def __call__(self, task: Any, shared: Mapping[str, Any]) -> Any: ...


def select_device(has_gpu: bool) -> torch.device:
    """CUDA only when Ray granted a GPU *and* torch can use one, so logical GPUs on a CPU build still work."""
    return torch.device("cuda") if has_gpu and torch.cuda.is_available() else torch.device("cpu")


def use_deterministic_kernels(device: torch.device) -> None:
    """Make this process's CUDA kernels deterministic and full float32, so a seed gives the same numbers.

    cuDNN's convolution backward and cuBLAS's split reductions sum in a
    varying order by default: on an H200 the same κ came out different in the
    6th digit run after run, enough to reorder candidates whose Δκ tie at 3
    decimals. cuDNN also runs float32 convolutions in TF32 by default, which
    put κ 2.6e-3 off its float64 value there (the CPU: 2.4e-5). The CPU
    kernels are deterministic and full precision already.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts in this process
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


class ScorerHost:
    """A scorer and its device-placed shared inputs.

    ``deterministic`` (default) switches a CUDA worker to deterministic
    kernels (`use_deterministic_kernels`); benchmarks turn it off to measure
    what that costs.
    """

    def __init__(self, factory: Callable[[], Scorer], shared: Mapping[str, Any], device: torch.device,
                 deterministic: bool = True) -> None:
        if deterministic:
            use_deterministic_kernels(device)
        view = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in shared.items()}
        view[DEVICE_KEY] = device
        self.device = device
        self.shared: Mapping[str, Any] = MappingProxyType(view)
        self.scorer = factory()

    def __call__(self, task: Any) -> Any:
        return self.scorer(task, self.shared)
