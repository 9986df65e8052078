"""Independent, reproducible random streams from one run seed.

Every random draw of a search (input batches, inits, rounds, repeats) takes
its seed from (run seed, stream keys), never from process state, so a task
gives the same numbers in any worker and in any order.
"""
from __future__ import annotations

import numpy as np


def derive_seed(seed: int, *keys: int) -> int:
    """A 31-bit seed for (seed, keys); different keys give statistically independent streams."""
    return int(np.random.SeedSequence(seed, spawn_key=keys).generate_state(1)[0] >> 1)
