"""Finding and reading dataset batch files as distributed, shared by every loader.

CIFAR and the downsampled ImageNet variants use the same layout (one flat row
of R, G and B planes per image), so one reader checks shapes and labels for
all of them; a wrong or truncated file then fails at load time with the file
name and the fix instead of as a reshape error deep inside a search.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rayneas.errors import RayneasError


class DataError(RayneasError, FileNotFoundError):
    """A dataset file is missing or unusable; the message names the path, the files and the fix."""


@dataclass(frozen=True)
class ImageArrays:
    """Images in HWC uint8 order (as image libraries and the datasets' own code use) with int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be N x H x W x C uint8, got {self.images.shape} {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must have shape ({len(self.images)},), got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.images)


def locate(root: str | Path, subdirs: Sequence[str], stems: Sequence[str], suffixes: Sequence[str], fix: str) -> list[Path]:
    """The files ``stems`` (each under one of ``suffixes``) in the first of root/subdir..., root that has them all.

    Archives extract into a named folder, and users point at either the folder
    or its parent; accepting both saves a confusing "not found" for a path
    that is one level off.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist. {fix}")
    candidates = [root / d for d in subdirs if (root / d).is_dir()] + [root]
    searched = [{s: next((f / (s + x) for x in suffixes if (f / (s + x)).is_file()), None) for s in stems}
                for f in candidates]
    for found in searched:
        if None not in found.values():
            return list(found.values())  # type: ignore[arg-type]
    folder, missing = candidates[0], [s for s, path in searched[0].items() if path is None]
    forms = " (each as " + " or ".join(f"NAME{x}" if x else "NAME" for x in suffixes) + ")" if len(suffixes) > 1 else ""
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"expected the files {', '.join(stems)}{forms} in {folder}; missing: "
        f"{'all of them' if len(missing) == len(stems) else ', '.join(missing)} "
        f"(looked in {looked}). {fix}"
    )


def _read(path: Path) -> dict[str, Any]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    with open(path, "rb") as f:
        # latin1 decodes the Python 2 pickles of the original archives; keys are
        # str there and bytes in Python 3 re-pickles, so both are accepted.
        entry = pickle.load(f, encoding="latin1")
    if not isinstance(entry, dict):
        raise TypeError(f"expected a dict, got {type(entry).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def read_batch(path: Path, label_key: str, side: int, fix: str) -> ImageArrays:
    """One batch file: rows of R, G, B planes of side x side pixels, turned into HWC images."""
    try:
        entry = _read(path)
    except Exception as exc:  # any unpickling/zip failure means the same thing: a broken file
        raise DataError(f"{path} is not a readable batch file ({type(exc).__name__}: {exc}). {fix}") from exc
    if "data" not in entry or label_key not in entry:
        raise DataError(f"{path} lacks the keys 'data' and '{label_key}' (found {sorted(map(str, entry))}). {fix}")
    data, labels = np.asarray(entry["data"]), np.asarray(entry[label_key])
    width = 3 * side * side
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width or labels.shape != (len(data),):
        raise DataError(
            f"{path} has data {data.shape} {data.dtype} and {labels.shape[0] if labels.ndim else 0} labels; "
            f"expected N x {width} uint8 ({side}x{side} RGB planes) with N labels. The file is corrupted "
            f"or from another dataset. {fix}"
        )
    images = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return ImageArrays(np.ascontiguousarray(images), labels.astype(np.int64))


def concat(parts: Sequence[ImageArrays]) -> ImageArrays:
    return ImageArrays(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
