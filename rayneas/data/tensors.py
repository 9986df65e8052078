"""numpy images in, normalized N x C x H x W float32 torch tensors out.

The mean/std are NAS-Bench-201's (its ``get_datasets``), so indicators see the
same input statistics as the benchmark's training runs did.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Normalization = Literal["cifar10", "cifar100", "imagenet16"]

MEAN_STD: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (tuple(x / 255 for x in (125.3, 123.0, 113.9)), tuple(x / 255 for x in (63.0, 62.1, 66.7))),
    "cifar100": (tuple(x / 255 for x in (129.3, 124.1, 112.4)), tuple(x / 255 for x in (68.2, 65.4, 70.4))),
    "imagenet16": (tuple(x / 255 for x in (122.68, 116.66, 104.01)), tuple(x / 255 for x in (63.22, 61.26, 65.09))),
}


def check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of images must be a positive integer, got {n!r}")


def check_crop_size(size: int, height: int, width: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= min(height, width):
        raise ValueError(
            f"crop size {size!r} does not fit the source images ({height} x {width}); "
            f"choose a size in 1..{min(height, width)}"
        )


def to_tensor(images: np.ndarray, normalize: Normalization | None = None) -> torch.Tensor:
    """N x H x W x C uint8 -> N x C x H x W float32 in [0, 1], then per-channel (x - mean) / std if asked."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected N x H x W x C uint8 images, got shape {images.shape} dtype {images.dtype}")
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32)).div_(255.0)
    if normalize is None:
        return x
    if normalize not in MEAN_STD:
        raise ValueError(f"unknown normalization {normalize!r}; choose one of {', '.join(MEAN_STD)} or None")
    if x.shape[1] != 3:
        raise ValueError(f"normalization {normalize!r} is for RGB images; got {x.shape[1]} channels")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in MEAN_STD[normalize])
    return x.sub_(mean).div_(std)


def random_crops(
    images: np.ndarray,
    index: np.ndarray,
    size: int,
    rng: np.random.Generator,
    *,
    flip: bool,
    channels: int,
    normalize: Normalization,
) -> torch.Tensor:
    """Crop i: a random size x size window of images[index[i]] (HWC uint8), maybe mirrored.

    channels=1 keeps one random colour channel per crop, the input TE-NAS's
    linear-region count feeds its thin 1-channel networks.
    """
    height, width = images.shape[1:3]
    check_crop_size(size, height, width)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (one random colour channel per image) or 3 (RGB), got {channels!r}")
    n = len(index)
    offsets = np.arange(size)
    rows = (rng.integers(0, height - size + 1, n)[:, None] + offsets)[:, :, None]
    cols = (rng.integers(0, width - size + 1, n)[:, None] + offsets)[:, None, :]
    if flip:
        cols = np.where((rng.random(n) < 0.5)[:, None, None], cols[:, :, ::-1], cols)
    x = to_tensor(images[index[:, None, None], rows, cols], normalize)
    if channels == 1:
        x = x[torch.arange(n), torch.from_numpy(rng.integers(0, 3, n))].unsqueeze(1)
    return x
