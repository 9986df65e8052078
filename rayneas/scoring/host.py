"""What scores tasks inside one worker: the scorer, its device and its view of the shared inputs.

The serial path runs the very same `ScorerHost` in the driver and a Ray actor
wraps one (`rayneas.scoring.actor`), so a candidate is scored by identical code
with identical inputs whichever way the pool runs. No Ray here: scorers import
this module, and they run in processes that need not schedule anything.
"""
from __future__ import annotations

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


class ScorerHost:
    """A scorer and its device-placed shared inputs."""

    def __init__(self, factory: Callable[[], Scorer], shared: Mapping[str, Any], device: torch.device) -> None:
        view = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in shared.items()}
        view[DEVICE_KEY] = device
        self.device = device
        self.shared: Mapping[str, Any] = MappingProxyType(view)
        self.scorer = factory()

    def __call__(self, task: Any) -> Any:
        return self.scorer(task, self.shared)
