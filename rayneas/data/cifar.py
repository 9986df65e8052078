"""CIFAR-10 and CIFAR-100 from the "python version" archives of the Toronto site, unchanged.

Reading the archives as distributed (no torchvision, no conversion step) lets
a user point at an existing download; CIFAR-100 uses its 100 fine labels,
the ones NAS-Bench-201 reports accuracy on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from rayneas.data.arrays import ImageArrays, concat, locate, read_batch

_LAYOUT = {
    # name: (archive folder, archive file, label key, train files, test files)
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", "labels",
                [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", "fine_labels", ["train"], ["test"]),
}


def load_cifar(root: str | Path, name: Literal["cifar10", "cifar100"], split: Literal["train", "test"]) -> ImageArrays:
    """All images of one split, N x 32 x 32 x 3 uint8; ``root`` is the archive folder or its parent."""
    paths, label_key, fix = _files(root, name, split)
    return concat([read_batch(p, label_key, 32, fix) for p in paths])


def check_cifar(root: str | Path, name: Literal["cifar10", "cifar100"]) -> None:
    """Raise the loader's clear error now if a batch file is missing, before workers start reading them."""
    for split in ("train", "test"):
        _files(root, name, split)


def _files(root: str | Path, name: str, split: str) -> tuple[list[Path], str, str]:
    if name not in _LAYOUT:
        raise ValueError(f"unknown CIFAR dataset {name!r}; choose 'cifar10' or 'cifar100'")
    if split not in ("train", "test"):
        raise ValueError(f"unknown CIFAR split {split!r}; choose 'train' or 'test'")
    folder, archive, label_key, train, test = _LAYOUT[name]
    fix = (
        f"Download the {name.upper().replace('CIFAR', 'CIFAR-')} python version ({archive}) from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it under {Path(root).expanduser()} "
        f"(giving {folder}/)."
    )
    return locate(root, [folder], train if split == "train" else test, [""], fix), label_key, fix
