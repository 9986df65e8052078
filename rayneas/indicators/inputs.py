"""The input batches the indicators see: images for κ, 3×3 one-channel crops for linear regions.

Only images are used, never labels, and dataset sources draw from the train
split (`rayneas.data.image_batch`), so no architecture is chosen with test data.
"""
from __future__ import annotations

from pathlib import Path

import torch

from rayneas.data import image_batch

REGION_CROP = 3  # TE-NAS counts regions of the thin network on 1×3×3 inputs


def ntk_batch(n: int = 72, seed: int = 0, source: str = "sample_images", size: int | None = None,
              root: str | Path | None = None) -> torch.Tensor:
    """n images (N×3×size×size, contiguous NCHW) for one κ evaluation; 72 is the reference code's NB201 batch."""
    return image_batch(source, n, seed, size, root).contiguous()


def region_inputs(seed: int, n: int = 1000, batches: int = 3, source: str = "sample_images",
                  root: str | Path | None = None) -> list[torch.Tensor]:
    """``batches`` tensors of n×1×3×3: random 3×3 crops of one random colour channel each, all distinct images.

    The reference code feeds 3 batches of 1000 (3,000 samples); the batches go
    through the network separately (train-mode BatchNorm sees 1000 samples) and
    their activation patterns are pooled.
    """
    for name, value in (("n", n), ("batches", batches)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"region_inputs: {name} must be a positive integer, got {value!r}")
    crops = image_batch(source, n * batches, seed, REGION_CROP, root, channels=1).contiguous()
    return list(crops.split(n))
