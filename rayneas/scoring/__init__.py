"""Parallel, order-preserving, fault-tolerant scoring of candidates on Ray actors (or serially).

What one task computes on a masked supernet is `rayneas.scoring.supernet`, the
config sections of the searches that score that way `rayneas.scoring.config`.

Names resolve lazily, so a scorer that imports `rayneas.scoring.host` (to read
``DEVICE_KEY``) does not import Ray with this package.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "actors_that_fit": "cluster", "alive_nodes": "cluster", "check_fits": "cluster", "ensure_ray": "cluster",
    "DEVICE_KEY": "host", "Scorer": "host", "select_device": "host",
    "ActorPlacement": "actor",
    "ScorerPool": "pool", "ScoringError": "pool",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rayneas.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rayneas.scoring.{_WHERE[name]}"), name)
