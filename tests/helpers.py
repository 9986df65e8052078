"""Small TE-NAS configs shared by the search tests: the real code path at a size CI affords."""
from __future__ import annotations

import json

from rayneas.config import from_dict
from rayneas.tenas.config import TenasConfig

TINY = {"inputs": {"batch_size": 4, "image_size": 8, "region_samples": 100, "region_batches": 1},
        "prune": {"repeats": 1}, "scoring": {"num_actors": 0}}


def tiny(**sections) -> TenasConfig:
    """`TINY` with whole keys or section entries replaced, e.g. ``tiny(prune={"mode": "reference"})``."""
    data = json.loads(json.dumps(TINY))
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return from_dict(TenasConfig, data)
