"""Starting Ray once per process, and checking up front that a run's actors can ever be placed.

Ray queues an actor whose resources no node can provide forever (with a
warning in some log), so a pool or an RLlib controller asking for too much
would hang the search; `check_fits` (a pool's identical actors) and
`check_placeable` (any mix of actors) turn that into an immediate error
naming the numbers and the setting to change.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Iterable, Mapping

import ray

from rayneas.errors import RayneasError
from rayneas.quiet import is_quiet, quiet_loggers, ray_init_args

log = logging.getLogger(__name__)
Bundle = Mapping[str, float]


class PlacementError(RayneasError, ValueError):
    """The Ray cluster can never hold what the run asks for; the message names the numbers and the fix."""

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


def alive_nodes() -> list[Mapping[str, float]]:
    """The resources of each node alive now: Ray keeps listing a node that left, marked not alive."""
    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


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
    nodes = alive_nodes()
    room = actors_that_fit(nodes, num_cpus, num_gpus)
    if room < num_actors:
        problem = (f"ScorerPool asks for {num_actors} actors of {num_cpus:g} CPU + {num_gpus:g} GPU each, "
                   f"but the Ray cluster ({_describe(nodes)}) holds only {room:g} of them")
        _shortfall(problem, "lower num_actors, num_cpus_per_actor or num_gpus_per_actor", "scoring.autoscaling",
                   autoscaling)


def bundles_that_fit(nodes: Iterable[Mapping[str, float]], bundles: Iterable[Bundle]) -> int:
    """How many of ``bundles`` (one actor, or a group Ray places together, each; any mix) the nodes hold at once.

    Largest first, each on the first node with room (first-fit decreasing): a
    check for the usual mixes (identical env runners plus a few learners), not
    Ray's scheduler. GPUs are counted per device, because Ray puts a
    fractional request on a single GPU and a whole one on free GPUs.
    """
    free = [{**{k: float(v) for k, v in res.items() if k != "GPU"},
             "GPU": [1.0] * math.floor(res.get("GPU", 0.0) + _EPS)} for res in nodes]
    placed = 0
    for bundle in sorted(bundles, key=lambda b: (b.get("GPU", 0.0), b.get("CPU", 0.0)), reverse=True):
        placed += any(_take(node, bundle) for node in free)
    return placed


def _take(node: dict[str, Any], bundle: Bundle) -> bool:
    """Reserve ``bundle`` on ``node`` (free amounts, GPUs as a list of free fractions) if it fits there."""
    others = {k: v for k, v in bundle.items() if k != "GPU" and v > 0}
    if any(node.get(k, 0.0) + _EPS < v for k, v in others.items()):
        return False
    gpu, devices = bundle.get("GPU", 0.0), node["GPU"]
    if 0 < gpu < 1:
        slot = next((i for i, share in enumerate(devices) if share + _EPS >= gpu), None)
        if slot is None:
            return False
        devices[slot] -= gpu
    elif gpu >= 1:
        whole = [i for i, share in enumerate(devices) if share + _EPS >= 1]
        if len(whole) + _EPS < gpu:
            return False
        for i in whole[:math.ceil(gpu - _EPS)]:
            devices[i] = 0.0
    for key, amount in others.items():
        node[key] -= amount
    return True


def check_placeable(what: str, bundles: list[Bundle], fix: str, setting: str, *, autoscaling: bool = False) -> None:
    """Raise `PlacementError` when the running Ray cluster can never hold all of ``bundles`` at once.

    ``what`` names who asks (e.g. "the controller (IMPALA) asks Ray for 2 env
    runners and 1 learner"), ``fix`` the settings that shrink the request and
    ``setting`` the config key that marks an autoscaling cluster; with
    ``autoscaling`` a shortfall is a warning, as in `check_fits`.
    """
    nodes = alive_nodes()
    room = bundles_that_fit(nodes, bundles)
    if room < len(bundles):
        need = _total(bundles)
        problem = (f"{what} ({need.get('CPU', 0):g} CPU, {need.get('GPU', 0):g} GPU in all), but the Ray cluster "
                   f"({_describe(nodes)}) holds only {room} of those {len(bundles)} at once")
        _shortfall(problem, fix, setting, autoscaling)


def _shortfall(problem: str, fix: str, setting: str, autoscaling: bool) -> None:
    if autoscaling:
        log.warning("%s now; waiting for the autoscaler to add nodes (%s is true)", problem, setting)
        return
    raise PlacementError(f"{problem}; {fix}, start Ray with more resources, or set {setting}: true on a cluster "
                         "that adds nodes on demand")



def _describe(nodes: list[Mapping[str, float]]) -> str:
    have = _total(nodes)
    return f"{len(nodes)} node(s), {have.get('CPU', 0):g} CPU, {have.get('GPU', 0):g} GPU"


def _total(resources: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    resources = list(resources)
    return {key: sum(res.get(key, 0.0) for res in resources) for key in ("CPU", "GPU")}
