"""`make demo`: the main job on embedded defaults, needing no download."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rayneas.cli import _describe, _print_lookup
from rayneas.spaces import nb201


def demo(runs_dir: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(2):
        genotype = nb201.sample(rng)
        _describe(genotype.to_string(), C=16, N=5, num_classes=10)
        _print_lookup(genotype.to_string(), None)
        print()
