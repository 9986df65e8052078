"""The images EAS children train and are scored on: digits (bundled) or CIFAR-10 from disk.

Only training images are ever read: the validation split that scores children
is carved from them, so a search never sees the test split. CIFAR-10 children
train on CIFAR-10+ (4-pixel padding, random 32x32 crop, random horizontal
flip), as in the paper; the draws come from the trainer's seeded generator, so
a run repeats.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rayneas.data import digits_split, load_cifar, to_tensor
from rayneas.data.cifar import check_cifar
from rayneas.eas.config import DatasetConfig

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ChildData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    in_channels: int
    num_classes: int
    augment: Augment | None  # applied to every training batch


def cifar_plus(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """CIFAR-10+ augmentation of a batch N x C x H x W: zero-pad ``pad`` pixels, random HxW crop, random flip.

    Zero is the normalized mean colour here (the images are normalized first).
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    top, left = (torch.randint(0, 2 * pad + 1, (2, n), generator=gen)).to(x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def check_dataset(cfg: DatasetConfig) -> None:
    """Raise the loader's one-line `DataError` now if a file of the dataset is missing (digits need none)."""
    if cfg.name == "cifar10":
        assert cfg.root is not None  # DatasetConfig checks it
        check_cifar(cfg.root, "cifar10")


def load_child_data(cfg: DatasetConfig, seed: int) -> ChildData:
    if cfg.name == "digits":
        split = digits_split(seed, val_fraction=cfg.val_fraction or 0.2)
        return ChildData(split.x_train, split.y_train, split.x_val, split.y_val, 1, 10, None)
    assert cfg.root is not None  # DatasetConfig checks it
    train = load_cifar(cfg.root, "cifar10", "train")
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, round(len(train) * (cfg.val_fraction or 0.1)))
    x, y = to_tensor(train.images, "cifar10"), torch.from_numpy(train.labels)
    val, fit = torch.from_numpy(order[:n_val]), torch.from_numpy(order[n_val:])
    return ChildData(x[fit], y[fit], x[val], y[val], 3, 10, cifar_plus)


def load_test_data(cfg: DatasetConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out test images (digits' test split of ``seed``, CIFAR-10's test batch): read once, after a
    search, to report its best network; never while searching."""
    if cfg.name == "digits":
        split = digits_split(seed, val_fraction=cfg.val_fraction or 0.2)
        return split.x_test, split.y_test
    assert cfg.root is not None
    test = load_cifar(cfg.root, "cifar10", "test")
    return to_tensor(test.images, "cifar10"), torch.from_numpy(test.labels)
