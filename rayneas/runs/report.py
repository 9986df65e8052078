"""Watching a run: its console progress bar and its TensorBoard scalars in ``runs/<name>/tb``.

Each run kind decides what it reports (a pruning round, an EAS iteration, a
scored cell); the bar and the writer are the same for all of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from tensorboardX import SummaryWriter
from tqdm import tqdm

TENSORBOARD_DIR = "tb"


def progress_bar(total: int, unit: str, desc: str, initial: int = 0) -> tqdm:
    """A console bar whose rate gives the ETA; `note` prints beside it without breaking it."""
    return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, desc=desc)


def note(message: str) -> None:
    tqdm.write(message)


class Board:
    """TensorBoard scalars in ``runs/<name>/tb``; a resumed run appends to the same folder."""

    def __init__(self, run_dir: Path) -> None:
        self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
