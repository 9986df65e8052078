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

from rayneas.data.tensors import check_count, random_crops


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
    """n random crops (N x C x size x size) of sklearn's two sample photos, CIFAR-10-normalized.

    A stand-in for a CIFAR batch when no dataset is on disk: real photos have
    the spatial correlations that Gaussian noise lacks, which is what the
    NTK and linear-region indicators respond to.
    """
    check_count(n)
    photos = _photos()
    rng = np.random.default_rng(seed)
    return random_crops(photos, rng.integers(0, len(photos), n), size, rng, flip=flip, channels=channels,
                        normalize="cifar10")
