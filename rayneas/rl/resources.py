"""What an RLlib controller asks Ray for, counted from RLlib's own request before anything starts.

IMPALA and APPO start a remote learner actor by default (and aggregator
actors when asked), beyond the env runners; on a cluster without room for
them Ray queues the actors forever and the search sits at 0 networks with no
message. `Algorithm.default_resource_request` is the request Tune reserves
for an RLlib trainable: one bundle for the driver (the main process, which
holds the learner when ``num_learners`` is 0), then the env runners, any
evaluation runners, then the remote learners with their aggregator actors.
Reading it instead of re-deriving it keeps the count right for every
algorithm and every key a user passes through ``controller.rllib``.
"""
from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

Bundle = dict[str, float]

FIX = ("lower controller.num_env_runners, set controller.rllib.num_learners: 0 (the controller then learns in "
       "the driver) or lower the num_cpus_*/num_gpus_* keys in controller.rllib")


def controller_bundles(config: AlgorithmConfig) -> tuple[Bundle, list[Bundle]]:
    """(driver, actors): RLlib's resource request for ``config``, without zero amounts.

    The driver bundle is what the process that builds the algorithm needs (a
    Tune trial's own bundle); each actor bundle is one Ray actor RLlib starts,
    in RLlib's order, which is the order its env runners expect their bundle
    indices in a placement group.
    """
    request = config.algo_class.default_resource_request(config.copy(copy_frozen=False))
    driver, *actors = [{key: float(amount) for key, amount in bundle.items() if amount} for bundle in request.bundles]
    return driver, actors


def describe_request(config: AlgorithmConfig, actors: list[Bundle]) -> str:
    """E.g. "the controller (IMPALA) asks Ray for 2 env runner(s) of {CPU: 1} each and 1 learner/evaluation
    bundle(s) of {CPU: 2} (num_learners=1, ...)": a learner's bundle also holds its aggregator actors."""
    runners = config.num_env_runners
    parts = [f"{runners} env runner(s) of {_amounts(actors[0])} each"] if runners else []
    rest = actors[runners:]
    if rest:
        kinds = sorted({_amounts(b) for b in rest})
        parts.append(f"{len(rest)} learner/evaluation bundle(s) of {' or '.join(kinds)} (num_learners="
                     f"{config.num_learners}, num_gpus_per_learner={config.num_gpus_per_learner:g}, "
                     f"num_aggregator_actors_per_learner={config.num_aggregator_actors_per_learner})")
    return f"the controller ({config.algo_class.__name__}) asks Ray for {' and '.join(parts)}"


def _amounts(bundle: Bundle) -> str:
    return "{" + ", ".join(f"{key}: {amount:g}" for key, amount in sorted(bundle.items())) + "}"


def check_controller_fits(config: AlgorithmConfig, *, autoscaling: bool = False) -> None:
    """Raise `PlacementError` (one line: the actors, their resources, what to change) before any actor starts
    when the running Ray cluster can never hold the controller's actors; a warning with ``autoscaling``."""
    from rayneas.scoring.cluster import check_placeable

    _, actors = controller_bundles(config)
    if actors:
        check_placeable(describe_request(config, actors), actors, FIX, "controller.autoscaling",
                        autoscaling=autoscaling)
