"""ImageNet16-120: the 16x16 downsampled ImageNet restricted to its first 120 classes, as in NAS-Bench-201.

The files are those of Chrabaszcz et al. (2017), either the pickles NAS-Bench-201
uses (``train_data_batch_1..10``, ``val_data``) or the ``.npz`` release of the
same arrays (same names plus ``.npz``). Labels there are 1-based over 1,000
classes; NAS-Bench-201 keeps the images with label <= 120 and shifts to 0..119,
so the 151,700 train / 6,000 valid images match the benchmark's numbers.
Classes are filtered batch by batch so the full 1.28 M-image train split is
never held at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from rayneas.data.arrays import DataError, ImageArrays, concat, locate, read_batch

_FILES = {"train": [f"train_data_batch_{i}" for i in range(1, 11)], "valid": ["val_data"]}
_SUBDIRS = {
    "train": ["ImageNet16", "Imagenet16_train", "Imagenet16_train_npz"],
    "valid": ["ImageNet16", "Imagenet16_val", "Imagenet16_val_npz"],
}


def load_imagenet16(root: str | Path, split: Literal["train", "valid"], num_classes: int = 120) -> ImageArrays:
    """Images N x 16 x 16 x 3 uint8 of the first ``num_classes`` classes, labels 0..num_classes-1."""
    if split not in _FILES:
        raise ValueError(f"unknown ImageNet16 split {split!r}; choose 'train' or 'valid'")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= 1000:
        raise ValueError(f"num_classes must be an integer in 1..1000 (120 for ImageNet16-120), got {num_classes!r}")
    fix = (
        "Download ImageNet 16x16 (Imagenet16_train and Imagenet16_val, pickle or npz) from "
        f"https://image-net.org/download-images and extract the files into {Path(root).expanduser()}/ImageNet16/ "
        "(the layout NAS-Bench-201 uses)."
    )
    parts = []
    for path in locate(root, _SUBDIRS[split], _FILES[split], ["", ".npz"], fix):
        batch = read_batch(path, "labels", 16, fix)
        if len(batch) and (batch.labels.min() < 1 or batch.labels.max() > 1000):
            raise DataError(
                f"{path} has labels {batch.labels.min()}..{batch.labels.max()}; the distributed files use "
                f"1-based labels 1..1000. The file is corrupted or was relabelled. {fix}"
            )
        keep = batch.labels <= num_classes
        parts.append(ImageArrays(batch.images[keep], batch.labels[keep] - 1))
    return concat(parts)
