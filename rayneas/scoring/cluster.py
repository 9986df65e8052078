"""Starting Ray once per process, and checking up front that a pool's actors can ever be placed.

Ray queues an actor whose resources no node can provide forever (with a
warning in some log), so a pool asking for too much would hang the search;
`check_fits` turns that into an immediate error naming the numbers.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Iterable, Mapping

import ray

from rayneas.quiet import is_quiet, quiet_loggers, ray_init_args

log = logging.getLogger(__name__)

_EPS = 1e-6  # Ray stores resource amounts in units of 1e-4; absorb float noise in the divisions


def ensure_ray(num_cpus: int | None = None, num_gpus: float | None = None, *, address: str | None = None) -> dict[str, float]:
    """Start a local Ray, or join the cluster at ``address``/$RAY_ADDRESS, unless this process already runs Ray.

    Library code calls this instead of ``ray.init`` so that a caller who set Ray
    up (a cluster, a test fixture, Tune) is never overridden. ``num_cpus`` and
    ``num_gpus`` size a new local Ray (logical counts: ``num_gpus=2`` on a
    CPU-only machine is allowed and schedules like two GPUs). Returns the
    cluster's total resources.
    """
    if ray.is_initialized():
        return ray.cluster_resources()
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if num_cpus is not None or num_gpus is not None:
            raise ValueError(
                f"num_cpus/num_gpus size a new local Ray, but the cluster at {address!r} has its own resources; "
                "drop them (or unset RAY_ADDRESS to start a local Ray)"
            )
        ray.init(address=address, **ray_init_args(joins_cluster=True))
    else:
        # Under `uv run`, Ray would otherwise rebuild the uv environment for each worker.
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 **ray_init_args(joins_cluster=False))
    if is_quiet():
        quiet_loggers()
    return ray.cluster_resources()


def actors_that_fit(nodes: Iterable[Mapping[str, float]], num_cpus: float, num_gpus: float) -> float:
    """How many actors of (num_cpus, num_gpus) the nodes hold at once; ``inf`` when they need nothing.

    Counted per node because an actor lives on one node, and per GPU for a
    fraction, because Ray packs fractional requests onto a single GPU: three
    0.6-GPU actors need three GPUs, not two.
    """
    total = 0.0
    for res in nodes:
        fits = math.inf
        if num_cpus > 0:
            fits = min(fits, math.floor(res.get("CPU", 0.0) / num_cpus + _EPS))
        if 0 < num_gpus < 1:
            fits = min(fits, math.floor(res.get("GPU", 0.0) + _EPS) * math.floor(1 / num_gpus + _EPS))
        elif num_gpus >= 1:
            fits = min(fits, math.floor(res.get("GPU", 0.0) / num_gpus + _EPS))
        total += fits
    return total


def check_fits(num_actors: int, num_cpus: float, num_gpus: float, *, autoscaling: bool = False) -> None:
    """Raise when the running Ray cluster can never hold ``num_actors`` such actors at once.

    Resources that exist but are held by other actors or trials are not an
    error: the pool's actors wait for them (and the pool warns if that stalls).
    Only nodes alive now are counted, and Ray cannot tell here how far an
    autoscaler may grow the cluster, so with ``autoscaling`` (set by the user
    for a cluster-launcher or KubeRay cluster) a shortfall is logged as a
    warning and the actors wait for the nodes the autoscaler adds.
    """
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    room = actors_that_fit(nodes, num_cpus, num_gpus)
    if room < num_actors:
        have = _total(nodes)
        problem = (f"ScorerPool asks for {num_actors} actors of {num_cpus:g} CPU + {num_gpus:g} GPU each, "
                   f"but the Ray cluster ({len(nodes)} node(s), {have.get('CPU', 0):g} CPU, "
                   f"{have.get('GPU', 0):g} GPU) holds only {room:g} of them")
        if autoscaling:
            log.warning("%s now; waiting for the autoscaler to add nodes (scoring.autoscaling is true)", problem)
            return
        raise ValueError(f"{problem}; lower num_actors, num_cpus_per_actor or num_gpus_per_actor, start Ray with "
                         "more resources, or set scoring.autoscaling: true on a cluster that adds nodes on demand")



def _total(nodes: list[Mapping[str, Any]]) -> dict[str, float]:
    return {key: sum(res.get(key, 0.0) for res in nodes) for key in ("CPU", "GPU")}
