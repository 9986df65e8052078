"""Data that ships with scikit-learn, so tests, demos and the default configs run with no download.

``load_digits`` (1,797 8x8 digits) is small enough to train EAS child networks
in seconds; ``load_sample_images`` (two 427x640 photos) gives natural-image
statistics for the training-free indicators, which only need inputs, not labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits, load_sample_images
from sklearn.model_selection import train_test_split

from rayneas.data.tensors import check_count, check_crop_size, random_crops


@dataclass(frozen=True)
class DigitsSplit:
    """Images N x 1 x 8 x 8 float32 in [0, 1] and int64 labels 0..9; test is held out from model selection."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    return images, bunch.target.astype(np.int64)


@lru_cache(maxsize=1)
def _photos() -> np.ndarray:
    photos = np.stack(load_sample_images().images)  # both are 427 x 640 x 3
    photos.setflags(write=False)
    return photos


def digits_split(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> DigitsSplit:
    """Stratified train/val/test split of sklearn's digits; the same seed gives the same split."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in (0, 1) "
            "and sum to less than 1 so that training images remain"
        )
    images, labels = _digits()
    rest, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
    )
    parts = [torch.from_numpy(a[i]) for i in (train, val, test) for a in (images, labels)]
    return DigitsSplit(*parts)


def sample_image_crops(n: int, size: int = 32, seed: int = 0, channels: int = 3, flip: bool = True) -> torch.Tensor:
    """n CIFAR-like images (N x C x size x size) made from sklearn's two sample photos, CIFAR-10-normalized.

    A stand-in for a CIFAR batch when no dataset is on disk: real photos have
    the spatial correlations that Gaussian noise lacks, which is what the
    NTK and linear-region indicators respond to. Each image is a thumbnail, as
    CIFAR's are: a random square window of a photo, of a side drawn
    log-uniformly from the thumbnail side (``max(32, size)``) to the photo's
    height, area-averaged down to that side and rounded to uint8; ``size``
    below 32 then takes a random crop of the thumbnail, as `image_batch` does
    for a dataset. Plain 32-pixel windows at the photos' own resolution would
    be mostly flat patches of sky or petal, with near-duplicates that make the
    NTK near-singular (the comparison is in docs/indicators.md).
    """
    check_count(n)
    photos = _photos()
    height, width = photos.shape[1:3]
    check_crop_size(size, height, width)
    rng = np.random.default_rng(seed)
    side = max(THUMBNAIL, int(size))
    which = rng.integers(0, len(photos), n)
    windows = np.rint(np.exp(rng.uniform(np.log(side), np.log(height), n))).astype(np.int64)
    top = (rng.random(n) * (height - windows + 1)).astype(np.int64)
    left = (rng.random(n) * (width - windows + 1)).astype(np.int64)
    # Only the size x size crop of each thumbnail is computed: 3,000 region crops of 3x3 cost 9, not 1,024, bins.
    first = rng.integers(0, side - size + 1, (2, n))
    thumbs = _area_resize(_summed_areas(), which, top, left, windows, side, first, size)
    return random_crops(thumbs, np.arange(n), size, rng, flip=flip, channels=channels, normalize="cifar10")


THUMBNAIL = 32  # CIFAR's side


@lru_cache(maxsize=1)
def _summed_areas() -> np.ndarray:
    """Summed-area tables of the photos (exact int64, a zero row and column in front): any box sum in 4 reads."""
    photos = _photos().astype(np.int64)
    table = np.zeros((photos.shape[0], photos.shape[1] + 1, photos.shape[2] + 1, photos.shape[3]), np.int64)
    table[:, 1:, 1:] = photos.cumsum(1).cumsum(2)
    table.setflags(write=False)
    return table


def _area_resize(table: np.ndarray, which: np.ndarray, top: np.ndarray, left: np.ndarray, windows: np.ndarray,
                 side: int, first: np.ndarray, size: int) -> np.ndarray:
    """N x size x size x 3 uint8: pixels first[0]+(0..size) x first[1]+(0..size) of each window area-resized to side.

    Bin i of a window of s pixels covers [floor(i s / side), ceil((i + 1) s / side)), the bins of
    ``adaptive_avg_pool2d``, so the thumbnail equals torch's area resize rounded to uint8.
    """
    rows, cols = (f[:, None] + np.arange(size) for f in first)  # N x size bin indices

    def bins(i: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return origin[:, None] + (i * windows[:, None]) // side, origin[:, None] - ((-(i + 1) * windows[:, None]) // side)

    (r0, r1), (c0, c1) = bins(rows, top), bins(cols, left)
    r0, r1, c0, c1 = r0[:, :, None], r1[:, :, None], c0[:, None, :], c1[:, None, :]
    p = which[:, None, None]
    sums = table[p, r1, c1] - table[p, r0, c1] - table[p, r1, c0] + table[p, r0, c0]
    area = ((r1 - r0) * (c1 - c0))[..., None]
    return np.rint(sums / area).astype(np.uint8)
