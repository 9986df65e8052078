"""Parallel, order-preserving, fault-tolerant scoring of candidates on Ray actors (or serially)."""
from rayneas.scoring.cluster import actors_that_fit, check_fits, ensure_ray
from rayneas.scoring.host import DEVICE_KEY, ActorPlacement, Scorer, select_device
from rayneas.scoring.pool import ScorerPool, ScoringError

__all__ = [
    "DEVICE_KEY",
    "ActorPlacement",
    "Scorer",
    "ScorerPool",
    "ScoringError",
    "actors_that_fit",
    "check_fits",
    "ensure_ray",
    "select_device",
]
