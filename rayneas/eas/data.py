"""The images EAS children train and are scored on: digits (bundled), CIFAR-10 or Fashion-MNIST from disk.

Only training images are ever read: the validation split that scores children
is carved from them, so a search never sees the test split. CIFAR-10 children
train on CIFAR-10+ (4-pixel padding, random crop, random horizontal flip), as
in the paper; the draws come from the trainer's seeded generator, so a run
repeats. Fashion-MNIST pixels are scaled to [0, 1], as digits'. ``image_size``
area-downsamples every split alike (`torch.nn.functional.adaptive_avg_pool2d`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rayneas.data import check_fashion_mnist, digits_split, load_cifar, load_fashion_mnist, read_idx, to_tensor
from rayneas.data.idx import fashion_files
from rayneas.data.cifar import check_cifar
from rayneas.eas.config import DatasetConfig

CIFAR_TRAIN_IMAGES = 50_000
FASHION_VAL_FRACTION = 1 / 12  # 5,000 of the 60,000 training images
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


def _downsample(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Area downsampling to size x size (each output pixel the mean of the input pixels it covers)."""
    return x if size is None or size == x.shape[-1] else F.adaptive_avg_pool2d(x, size)


def _split(n: int, cfg: DatasetConfig, seed: int, default_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) indices of ``n`` training images: a seeded permutation, the validation split first,
    then ``train_size`` of the rest (all without it)."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_val = max(1, round(n * (cfg.val_fraction or default_fraction)))
    return order[:n_val], _subset(order[n_val:], cfg, n_val)


def _subset(fit: torch.Tensor, cfg: DatasetConfig, n_val: int) -> torch.Tensor:
    """The first ``train_size`` of the (shuffled) training indices ``fit``."""
    if cfg.train_size is not None and cfg.train_size > len(fit):
        raise ValueError(f"dataset.train_size: {cfg.train_size} exceeds the {len(fit)} training images left after "
                         f"the validation split of {n_val}; set at most {len(fit)} or null")
    return fit[:cfg.train_size]


def _fashion(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32)).div_(255.0)


def check_dataset(cfg: DatasetConfig, seed: int = 0) -> None:
    """Raise the loaders' errors now (a missing file, a ``train_size`` too large), before env runners start.

    The split sizes it checks do not depend on ``seed``, so a per-node check may leave it out."""
    if cfg.name == "digits":
        split = digits_split(seed, val_fraction=cfg.val_fraction or 0.2)
        _subset(torch.arange(len(split.x_train)), cfg, len(split.x_val))
        return
    assert cfg.root is not None
    if cfg.name == "fashion_mnist":
        check_fashion_mnist(cfg.root)
        _split(len(read_idx(fashion_files(cfg.root, "train")[1])), cfg, seed, FASHION_VAL_FRACTION)  # the labels
    else:
        check_cifar(cfg.root, "cifar10")
        _split(CIFAR_TRAIN_IMAGES, cfg, seed, 0.1)


def load_child_data(cfg: DatasetConfig, seed: int) -> ChildData:
    size = cfg.image_size
    if cfg.name == "digits":
        split = digits_split(seed, val_fraction=cfg.val_fraction or 0.2)
        fit = _subset(torch.arange(len(split.x_train)), cfg, len(split.x_val))  # digits_split shuffled them
        return ChildData(_downsample(split.x_train[fit], size), split.y_train[fit], _downsample(split.x_val, size),
                         split.y_val, 1, 10, None)
    assert cfg.root is not None  # DatasetConfig checks it (or sets the Debian folder)
    if cfg.name == "fashion_mnist":
        train = load_fashion_mnist(cfg.root, "train")
        val, fit = _split(len(train), cfg, seed, FASHION_VAL_FRACTION)
        x, y = train.images, torch.from_numpy(train.labels)
        return ChildData(_downsample(_fashion(x[fit.numpy()]), size), y[fit],
                         _downsample(_fashion(x[val.numpy()]), size), y[val], 1, 10, None)
    train = load_cifar(cfg.root, "cifar10", "train")
    val, fit = _split(len(train), cfg, seed, 0.1)
    x, y = _downsample(to_tensor(train.images, "cifar10"), size), torch.from_numpy(train.labels)
    return ChildData(x[fit], y[fit], x[val], y[val], 3, 10, cifar_plus)


def load_test_data(cfg: DatasetConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out test images (digits' test split of ``seed``, CIFAR-10's test batch, Fashion-MNIST's 10,000
    test images), at the search's ``image_size``: read once, after a search, to report its best network; never
    while searching."""
    if cfg.name == "digits":
        split = digits_split(seed, val_fraction=cfg.val_fraction or 0.2)
        return _downsample(split.x_test, cfg.image_size), split.y_test
    assert cfg.root is not None
    if cfg.name == "fashion_mnist":
        test = load_fashion_mnist(cfg.root, "test")
        return _downsample(_fashion(test.images), cfg.image_size), torch.from_numpy(test.labels)
    test = load_cifar(cfg.root, "cifar10", "test")
    return _downsample(to_tensor(test.images, "cifar10"), cfg.image_size), torch.from_numpy(test.labels)
