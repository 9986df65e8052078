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
from typing import Hashable, Mapping, NamedTuple, Sequence


class Score(NamedTuple):
    """One network, one repeat: NTK condition number (inf when degenerate) and linear-region count."""

    kappa: float
    regions: int


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


def mean_deltas(full: Sequence[Score], pruned: Sequence[Score], precision: int) -> tuple[float, float]:
    """(Δκ, ΔR) of one candidate: each the mean over repeats of the per-repeat change.

    Each repeat's Δκ is rounded to ``precision`` decimals first, as the
    reference code does, so differences below that count as ties. ``fsum``
    makes the mean independent of summation order.
    """
    if len(full) != len(pruned) or not full:
        raise ValueError(f"need one supernet and one candidate score per repeat, got {len(full)} and {len(pruned)}")
    dkappa = [round(relative_drop(f.kappa, p.kappa), precision) for f, p in zip(full, pruned)]
    dregions = [f.regions - p.regions for f, p in zip(full, pruned)]
    return math.fsum(dkappa) / len(dkappa), math.fsum(dregions) / len(dregions)


def dense_ranks(values: Sequence[float], descending: bool) -> list[int]:
    """0 for the best value; equal values share a rank; no gaps after ties."""
    if any(math.isnan(v) for v in values):
        raise ValueError(f"cannot rank NaN values: {list(values)}")
    order = {v: r for r, v in enumerate(sorted(set(values), reverse=descending))}
    return [order[v] for v in values]


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
    missing = set(groups) - set(quotas)
    if missing:
        raise ValueError(f"no prune quota for group(s) {sorted(map(str, missing))}")
    taken = {g: 0 for g in quotas}
    chosen = []
    for i in sorted(range(len(rankings)), key=lambda i: (rankings[i].rank_sum, rankings[i].kappa_rank, i)):
        if taken[groups[i]] < quotas[groups[i]]:
            taken[groups[i]] += 1
            chosen.append(i)
    return sorted(chosen)
