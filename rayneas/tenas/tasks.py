"""The scoring tasks of one TE-NAS pruning round: the supernet and every candidate, once per repeat."""
from __future__ import annotations

from rayneas.scoring.supernet import ScoreTask, init_seeds
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import Candidate, PrunableSpace
from rayneas.tenas.config import TenasConfig


def candidate_name(space: PrunableSpace, c: Candidate) -> str:
    return f"{c.cell} {space.edge_label(c.edge)} {c.op}"


def round_tasks(cfg: TenasConfig, space: PrunableSpace, mask: Mask, index: int,
                candidates: tuple[Candidate, ...]) -> list[ScoreTask]:
    """One task per (network, repeat): the supernet once per repeat, then every candidate.

    In reference mode each candidate has its own thin network, so its task also
    counts the supernet's R under that init (``regions_baseline``).
    """
    mode = cfg.prune.mode
    baseline = mask if mode == "reference" else None
    nets = [(mask, None, None, f"round {index + 1} supernet")] + [
        (mask.without(*c), i, baseline, f"round {index + 1} without {candidate_name(space, c)}")
        for i, c in enumerate(candidates)]
    tasks = []
    for m, candidate, base, label in nets:
        for r in range(cfg.prune.repeats):
            seeds = init_seeds(mode, cfg.seed, index, r, candidate)
            tasks.append(ScoreTask(m, r, seeds.kappa, seeds.regions, f"{label}, repeat {r}", base))
    return tasks
