"""One batch of input images for the training-free indicators, from any supported source."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from rayneas.data.cifar import load_cifar
from rayneas.data.embedded import sample_image_crops
from rayneas.data.imagenet16 import load_imagenet16
from rayneas.data.tensors import check_count, random_crops

Source = Literal["sample_images", "cifar10", "cifar100", "imagenet16", "gaussian"]
SOURCES: tuple[str, ...] = get_args(Source)


def image_batch(
    source: Source,
    n: int,
    seed: int,
    size: int | None = None,
    root: str | Path | None = None,
    *,
    channels: int = 3,
    flip: bool = True,
) -> torch.Tensor:
    """n images N x channels x size x size float32, the same for the same arguments.

    Dataset sources draw n distinct images of the TRAIN split only (an
    architecture chosen with test images would leak the test set), normalized
    with that dataset's statistics; ``size`` below the native 32 (16 for
    ImageNet16) takes random crops. ``size=None`` means the native size, 32
    for photos and noise. ``flip`` mirrors about half of the images, like the
    training augmentation.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}; choose one of {', '.join(SOURCES)}")
    check_count(n)
    size = size if size is not None else 16 if source == "imagenet16" else 32
    if source == "sample_images":
        return sample_image_crops(n, size, seed, channels, flip)
    if source == "gaussian":
        if channels < 1 or size < 1:
            raise ValueError(f"channels and size must be positive, got channels={channels!r}, size={size!r}")
        return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))
    if root is None:
        raise ValueError(f"image source {source!r} reads the dataset from disk: pass root=<folder holding it>")
    data = load_imagenet16(root, "train") if source == "imagenet16" else load_cifar(root, source, "train")
    if n > len(data):
        raise ValueError(f"asked for {n} distinct images but the {source} train split has only {len(data)}")
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data), n, replace=False)
    return random_crops(data.images, index, size, rng, flip=flip, channels=channels, normalize=source)
