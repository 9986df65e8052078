"""The Ray actor that hosts one scorer, and where it landed (node, GPU ids, device, threads)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import ray
import torch

from rayneas.scoring.host import Scorer, ScorerHost, select_device


@dataclass(frozen=True)
class ActorPlacement:
    """Where one scoring actor runs (for logs, and to check GPU packing and the spread over nodes)."""

    node_id: str  # Ray's node id (hex), as in ray.nodes()
    pid: int
    gpu_ids: tuple[Any, ...]
    device: str
    threads: int


class ScoringActor:
    """Body of one Ray scoring actor; the pool passes ``shared`` as the ObjectRef of its one stored copy."""

    def __init__(self, factory: Callable[[], Scorer], shared: Mapping[str, Any], threads: int) -> None:
        torch.set_num_threads(threads)
        self.gpu_ids = tuple(ray.get_gpu_ids())
        self.host = ScorerHost(factory, shared, select_device(bool(self.gpu_ids)))

    def score(self, task: Any) -> Any:
        return self.host(task)

    def placement(self) -> ActorPlacement:
        return ActorPlacement(ray.get_runtime_context().get_node_id(), os.getpid(), self.gpu_ids,
                              str(self.host.device), torch.get_num_threads())


RemoteScoringActor = ray.remote(ScoringActor)
