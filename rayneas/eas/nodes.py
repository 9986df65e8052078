"""The dataset on every node that can run an env runner, checked before the controller starts.

The driver checks ``dataset.root`` on its own node; each env runner reads it
again on the node it lands on. A node without the files would fail its env
runner inside RLlib, which logs the error and fails later with an unrelated
one (an IndexError while inferring the spaces, or a runner that never comes
back). So one zero-CPU task per node that an env runner fits on reads the
file list there first, and the run stops with one line naming the node.
Nodes an autoscaler adds later are not checked here; their env runners fail
with the same line (`rayneas.eas.evaluator`) in the runner's log.
"""
from __future__ import annotations

from typing import Mapping

from rayneas.data.arrays import DataError
from rayneas.eas.config import DatasetConfig
from rayneas.eas.data import check_dataset


def this_node() -> str:
    """"node IP (Ray node id ID)" of the calling process, or "this process" outside Ray."""
    import ray

    if not ray.is_initialized():
        return "this process"
    return f"node {ray.util.get_node_ip_address()} (Ray node id {ray.get_runtime_context().get_node_id()})"


def missing_here(dataset: DatasetConfig, exc: DataError) -> str:
    """The one-line message for a dataset this node cannot read, with the loader's own fix."""
    return (f"{this_node()} cannot read dataset.root {dataset.root}: every node that runs env runners needs the "
            f"dataset at that path (copy it there or use a shared mount). {exc}")


def _probe(dataset: DatasetConfig) -> str | None:
    try:
        check_dataset(dataset)
    except DataError as exc:
        return missing_here(dataset, exc)
    return None


def check_dataset_on_nodes(dataset: DatasetConfig, runners: list[Mapping[str, float]]) -> None:
    """Raise `DataError` naming the first node (an env runner of ``runners`` fits on) that lacks the dataset."""
    if dataset.root is None or not runners:
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from rayneas.scoring.cluster import bundles_that_fit

    nodes = [n["NodeID"] for n in ray.nodes()
             if n.get("Alive") and bundles_that_fit([n["Resources"]], runners[:1])]
    probe = ray.remote(num_cpus=0)(_probe)
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(dataset)
            for node in nodes]
    problem = next((message for message in ray.get(refs) if message), None)
    if problem:
        raise DataError(problem)
