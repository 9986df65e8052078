"""Fashion-MNIST from its four IDX files as distributed (gzip-compressed or not), and the IDX format itself.

The files are those of the dataset's own release (github.com/zalandoresearch/fashion-mnist),
which Debian packages as ``dataset-fashion-mnist`` in `DEBIAN_FASHION_MNIST`: reading them
as they are lets a user point at either, with no download and no conversion step.
IDX: two zero bytes, a type code, the number of dimensions, one big-endian
uint32 per dimension, then the values in C order.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Literal

import numpy as np

from rayneas.data.arrays import DataError, ImageArrays, locate

#: Where ``apt-get install dataset-fashion-mnist`` puts the four files (``dpkg -L dataset-fashion-mnist``).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FASHION_SIDE = 28
_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def fashion_fix(folder: str | Path) -> str:
    """How to get the files (into ``folder``), for every error about them."""
    names = ", ".join(f"{name}.gz" for split in FASHION_FILES.values() for name in split)
    return (f"Install them with `apt-get install dataset-fashion-mnist` (into {DEBIAN_FASHION_MNIST}) or put the "
            f"four files {names} (https://github.com/zalandoresearch/fashion-mnist) in {folder}")


def read_idx(path: str | Path) -> np.ndarray:
    """The array an IDX file holds (``.gz``: gzip-compressed); a `DataError` naming the file if it is not one."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip raises OSError (BadGzipFile) or EOFError on a damaged file
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}); the file is damaged") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file (it starts with {raw[:4]!r}, not two zero bytes, a type code "
                        "and a dimension count)")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header]) if len(raw) >= header else ()
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(shape) != ndim or len(raw) != expected:
        raise DataError(f"{path} holds {len(raw)} bytes; its IDX header ({ndim} dimensions, shape {shape}) "
                        f"needs {expected}: the file is truncated or damaged")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def fashion_files(root: str | Path, split: Literal["train", "test"]) -> list[Path]:
    """The images and labels files of ``split`` under ``root`` (or its ``fashion-mnist`` subfolder)."""
    if split not in FASHION_FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; choose 'train' or 'test'")
    return locate(root, ["fashion-mnist"], FASHION_FILES[split], ["", ".gz"], fashion_fix(Path(root).expanduser()))


def check_fashion_mnist(root: str | Path) -> None:
    """Raise the loader's clear error now if a file is missing, before workers start reading them."""
    for split in FASHION_FILES:
        fashion_files(root, split)  # type: ignore[arg-type]


def load_fashion_mnist(root: str | Path, split: Literal["train", "test"]) -> ImageArrays:
    """All images of one split, N x 28 x 28 x 1 uint8, with labels 0..9 (60,000 train, 10,000 test)."""
    images_path, labels_path = fashion_files(root, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (FASHION_SIDE, FASHION_SIDE):
        raise DataError(f"{images_path} holds {images.dtype} {images.shape}; Fashion-MNIST images are N x 28 x 28 "
                        f"uint8. {fashion_fix(Path(root).expanduser())}")
    if labels.shape != (len(images),) or (len(labels) and labels.max() > 9):
        raise DataError(f"{labels_path} holds labels {labels.shape} for {len(images)} images in {images_path}; "
                        f"expected one label 0..9 per image. {fashion_fix(Path(root).expanduser())}")
    return ImageArrays(images[..., None], labels.astype(np.int64))
