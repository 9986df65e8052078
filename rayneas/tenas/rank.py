"""TE-NAS's pruning decision: pure functions of the scored numbers, so they are tested on known values.

Rules of the paper's code (``prune_tenas.py``): Δκ is ranked descending
(removing the op hurts trainability least), ΔR ascending (removing it costs the
fewest linear regions), both with dense ranks (equal values share a rank, the
next value takes the next integer); the rank sums are sorted ascending with
ties going to the better κ rank and then to the earlier candidate (the
reference's stable sorts), and every group (an edge in the op rounds, a node
in the DARTS edge rounds) prunes its first ``quota`` candidates in that order.
"""
from __future__ import annotations

import math
import statistics
from typing import Hashable, Literal, Mapping, NamedTuple, Sequence, get_args

from rayneas.indicators.aggregate import dense_ranks

KappaAggregate = Literal["mean", "median", "geomean"]
KAPPA_AGGREGATES: tuple[str, ...] = get_args(KappaAggregate)


class Ranking(NamedTuple):
    kappa_rank: int
    regions_rank: int

    @property
    def rank_sum(self) -> int:
        return self.kappa_rank + self.regions_rank


def relative_drop(full: float, pruned: float) -> float:
    """(κ_full − κ_pruned) / κ_full, kept finite or −inf when a κ is infinite.

    A degenerate NTK (κ = inf) must rank worst, never crash or give NaN: a
    pruned net that becomes degenerate gives −inf; if the supernet itself is
    degenerate, a pruned net that is not gives the limit 1 and one that is
    gives 0 (no change).
    """
    if math.isinf(full):
        return 0.0 if math.isinf(pruned) else 1.0
    if math.isinf(pruned):
        return -math.inf
    return (full - pruned) / full


def kappa_delta(full: Sequence[float], pruned: Sequence[float], precision: int,
                how: KappaAggregate = "mean") -> float:
    """Δκ of one candidate over its repeats.

    ``mean`` / ``median``: of the per-repeat (κ_full − κ_pruned)/κ_full, each
    rounded to ``precision`` decimals first (the reference rounds, so changes
    below that tie; it then takes the mean). A near-singular repeat (κ ≈ 1e14)
    can decide a mean on its own; the median ignores it. ``geomean``:
    1 − the geometric mean of κ_pruned/κ_full, rounded once: a ratio of
    condition numbers is scale-free, so its log is the natural thing to average.
    """
    _check_repeats(full, pruned)
    if how == "geomean":
        return round(1.0 - _geomean_ratio(full, pruned), precision)
    per_repeat = [round(relative_drop(f, p), precision) for f, p in zip(full, pruned)]
    if how == "median":
        return float(statistics.median(per_repeat))
    if how == "mean":
        return _mean(per_repeat)
    raise ValueError(f"unknown Δκ aggregate {how!r}; choose one of {', '.join(KAPPA_AGGREGATES)}")


def regions_delta(full: Sequence[int], pruned: Sequence[int], precision: int | None) -> float:
    """ΔR of one candidate: the mean over repeats of R_full − R_pruned.

    ``precision=None`` (paper mode, the paper's formula) keeps the absolute
    change; a number (reference mode, as ``prune_tenas.py`` computes it) makes
    each repeat's change relative, (R_full − R_pruned)/R_full, rounded to that
    many decimals, so sub-0.1% changes tie at precision 3.
    """
    _check_repeats(full, pruned)
    if precision is None:
        return _mean([f - p for f, p in zip(full, pruned)])
    return _mean([round((f - p) / f, precision) for f, p in zip(full, pruned)])


def value_delta(full: Sequence[float], pruned: Sequence[float], higher_is_better: bool) -> float:
    """How much better the pruned net scores than the supernet, mean over repeats (any indicator but κ and R).

    Oriented by the indicator's direction (positive: removing the op improves
    it), absolute and unrounded. A pruned net at its indicator's worst end
    (a degenerate network: −inf for higher-is-better) gives −inf, so it ranks
    last; a degenerate supernet with a pruned net that is not gives +inf.
    """
    _check_repeats(full, pruned)
    sign = 1.0 if higher_is_better else -1.0
    per_repeat = []
    for f, p in zip(full, pruned):
        f, p = sign * f, sign * p
        if p == -math.inf:
            per_repeat.append(0.0 if f == -math.inf else -math.inf)
        elif f == -math.inf:
            per_repeat.append(math.inf)
        else:
            per_repeat.append(p - f)
    if math.inf in per_repeat and -math.inf not in per_repeat:
        return math.inf
    return _mean(per_repeat)


def _check_repeats(full: Sequence, pruned: Sequence) -> None:
    if len(full) != len(pruned) or not full:
        raise ValueError(f"need one supernet and one candidate score per repeat, got {len(full)} and {len(pruned)}")


def _mean(values: Sequence[float]) -> float:
    # fsum: the mean does not depend on summation order; -inf stays -inf (fsum of inf and -inf would be NaN).
    if any(v == -math.inf for v in values):
        return -math.inf
    return math.fsum(values) / len(values)


def _geomean_ratio(full: Sequence[float], pruned: Sequence[float]) -> float:
    """exp(mean log(κ_pruned/κ_full)), with the limits `relative_drop` uses for infinite κ."""
    logs = []
    for f, p in zip(full, pruned):
        if math.isinf(f):
            logs.append(0.0 if math.isinf(p) else -math.inf)
        elif math.isinf(p):
            logs.append(math.inf)
        else:
            logs.append(math.log(p / f))
    if math.inf in logs:
        return math.inf
    return math.exp(math.fsum(logs) / len(logs))


def rank_candidates(dkappa: Sequence[float], dregions: Sequence[float]) -> list[Ranking]:
    """κ and region ranks of every candidate of a round (all ranked together)."""
    if len(dkappa) != len(dregions):
        raise ValueError(f"{len(dkappa)} Δκ values but {len(dregions)} ΔR values")
    kappa_ranks = dense_ranks(dkappa, descending=True)
    return [Ranking(k, r) for k, r in zip(kappa_ranks, dense_ranks(dregions, descending=False))]


def choose_prunes(rankings: Sequence[Ranking], groups: Sequence[Hashable], quotas: Mapping[Hashable, int]) -> list[int]:
    """Indices of the candidates to prune: per group, the ``quotas[group]`` best rank sums."""
    if len(rankings) != len(groups):
        raise ValueError(f"{len(rankings)} rankings but {len(groups)} groups")
    order = sorted(range(len(rankings)), key=lambda i: (rankings[i].rank_sum, rankings[i].kappa_rank, i))
    return choose_in_order(order, groups, quotas)


def choose_in_order(order: Sequence[int], groups: Sequence[Hashable], quotas: Mapping[Hashable, int]) -> list[int]:
    """Indices of the candidates to prune: walking ``order`` (best first), each group takes its quota."""
    missing = set(groups) - set(quotas)
    if missing:
        raise ValueError(f"no prune quota for group(s) {sorted(map(str, missing))}")
    taken = {g: 0 for g in quotas}
    chosen = []
    for i in order:
        if taken[groups[i]] < quotas[groups[i]]:
            taken[groups[i]] += 1
            chosen.append(i)
    return sorted(chosen)
