"""Combining several indicators into one ranking of a pool of candidates, by ranks.

Indicators live on incomparable scales (κ ~ 1e3–1e6, a log-determinant in
the hundreds, FLOPs in the millions), so both aggregations use each
candidate's rank within the pool per indicator, taking every indicator's
direction from its registration (`indicator_info`) unless ``directions``
overrides it:

- ``rank_sum`` (TE-NAS, ``prune_tenas.py``): per indicator, dense ranks with
  0 for the best value (equal values share a rank, the next value takes the
  next integer), summed over indicators. **Lower is better.** For κ and R
  this is exactly TE-NAS's rank sum.
- ``log_rank`` (AZ-NAS, ``Σ np.log(stats.rankdata(score) / m)`` in its
  notebooks): per indicator, ranks 1 … m within the pool of m candidates with
  the *best* value getting m (``rankdata`` of the values oriented so higher is
  better, ties sharing their average rank), summed as Σ log(rank / m).
  **Higher is better**, 0 for a candidate best on every indicator; one bad
  rank costs a lot (log), so a candidate must be good on all indicators.

NaN never ranks: it raises `AggregationError` naming the indicator and the
candidate. Infinities raise too unless ``nonfinite="worst"``, which accepts an
infinity at the bad end of its indicator's direction (κ = inf, NASWOT or AZ
trainability = −inf, as the indicators return for singular cases) and ranks
it worst, as TE-NAS ranks a degenerate NTK.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Literal, Mapping, Sequence

from rayneas.errors import RayneasError
from rayneas.indicators.registry import DIRECTIONS, Direction, indicator_info

NonFinite = Literal["raise", "worst"]


class AggregationError(RayneasError, ValueError):
    """Scores that cannot be aggregated: an unknown method or indicator, NaN or infinite values, ragged columns."""


def dense_ranks(values: Sequence[float], descending: bool) -> list[int]:
    """0 for the best value; equal values share a rank; no gaps after ties."""
    if any(math.isnan(v) for v in values):
        raise ValueError(f"cannot rank NaN values: {list(values)}")
    order = {v: r for r, v in enumerate(sorted(set(values), reverse=descending))}
    return [order[v] for v in values]


def rank_sum(columns: Sequence[Sequence[float]]) -> list[float]:
    """Σ over indicators of dense ranks, 0 = best; ``columns`` are oriented so that higher is better."""
    totals = [0.0] * len(columns[0])
    for column in columns:
        for i, rank in enumerate(dense_ranks(column, descending=True)):
            totals[i] += rank
    return totals


def log_rank(columns: Sequence[Sequence[float]]) -> list[float]:
    """Σ over indicators of log(rank / m), rank m = best, ties averaged; ``columns`` oriented higher-is-better."""
    from scipy.stats import rankdata  # imported here: scipy.stats is slow to import and only needed here

    m = len(columns[0])
    totals = [0.0] * m
    for column in columns:
        for i, rank in enumerate(rankdata(column)):
            totals[i] += math.log(float(rank) / m)
    return totals


@dataclasses.dataclass(frozen=True)
class Aggregation:
    name: str
    fn: Callable[[Sequence[Sequence[float]]], list[float]]
    direction: Direction  # of the aggregate itself


AGGREGATIONS: dict[str, Aggregation] = {
    "rank_sum": Aggregation("rank_sum", rank_sum, "lower"),
    "log_rank": Aggregation("log_rank", log_rank, "higher"),
}


def get_aggregation(name: str) -> Aggregation:
    try:
        return AGGREGATIONS[name]
    except KeyError:
        raise AggregationError(f"unknown aggregation {name!r}; choose one of {', '.join(AGGREGATIONS)}") from None


def aggregate(method: str, scores: Mapping[str, Sequence[float]], *, candidates: Sequence[str] | None = None,
              directions: Mapping[str, Direction] | None = None, nonfinite: NonFinite = "raise") -> list[float]:
    """One aggregate value per candidate (see ``AGGREGATIONS[method].direction`` for which end is best).

    ``scores`` maps indicator name → one value per candidate (same order for
    every indicator). ``candidates`` names them in error messages (default
    "candidate 0", …). ``directions`` gives the direction of indicators that
    are not registered (or overrides a registration, e.g. for a Δκ).
    """
    aggregation = get_aggregation(method)
    if nonfinite not in ("raise", "worst"):
        raise AggregationError(f"nonfinite must be 'raise' or 'worst', got {nonfinite!r}")
    if not scores:
        raise AggregationError("no indicator scores to aggregate")
    sizes = {name: len(values) for name, values in scores.items()}
    m = next(iter(sizes.values()))
    if m == 0 or any(size != m for size in sizes.values()):
        raise AggregationError(f"every indicator needs one score per candidate (at least one); got {sizes}")
    labels = list(candidates) if candidates is not None else [f"candidate {i}" for i in range(m)]
    if len(labels) != m:
        raise AggregationError(f"{len(labels)} candidate names for {m} scores per indicator")
    columns = [_oriented(name, values, _direction(name, directions), labels, nonfinite)
               for name, values in scores.items()]
    return aggregation.fn(columns)


def best_first(method: str, values: Sequence[float]) -> list[int]:
    """Candidate indices ordered from the best aggregate value to the worst (ties: earlier candidate first)."""
    sign = 1.0 if get_aggregation(method).direction == "lower" else -1.0
    return sorted(range(len(values)), key=lambda i: (sign * values[i], i))


def _direction(name: str, directions: Mapping[str, Direction] | None) -> Direction:
    if directions is not None and name in directions:
        direction = directions[name]
        if direction not in DIRECTIONS:
            raise AggregationError(f"direction of {name!r} must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        return direction
    try:
        return indicator_info(name).direction
    except ValueError:
        raise AggregationError(f"{name!r} is not a registered indicator, so its direction is unknown; pass "
                               f"directions={{{name!r}: 'higher' or 'lower'}}") from None


def _oriented(name: str, values: Sequence[float], direction: Direction, labels: Sequence[str],
              nonfinite: NonFinite) -> list[float]:
    """The values as floats, negated for lower-is-better indicators, after the NaN / infinity checks."""
    sign = 1.0 if direction == "higher" else -1.0
    oriented = []
    for label, value in zip(labels, values):
        v = float(value)
        if math.isnan(v):
            raise AggregationError(f"indicator {name!r} is NaN for {label}; a NaN cannot be ranked")
        if math.isinf(v) and (nonfinite == "raise" or sign * v > 0):
            where = "its best end" if sign * v > 0 else "its worst end"
            raise AggregationError(
                f"indicator {name!r} is {v} for {label} ({direction} is better, so this is {where}); "
                + ("pass nonfinite='worst' to rank it last" if sign * v < 0 else "an infinite best value is a bug")
            )
        oriented.append(sign * v)
    return oriented
