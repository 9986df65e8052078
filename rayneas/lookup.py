"""Trained accuracies of NAS-Bench-201 cells, for judging a finished search.

The table is read only here and only on request, so no search can peek at it.
It comes from the CSV a user names, ``$RAYNEAS_NB201_CSV``, or the copy
bundled with the package (NATS-Bench data, MIT; see resources/NB201_SOURCE.md).
"""
from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from rayneas.errors import RayneasError
from rayneas.spaces import nb201

ENV_VAR = "RAYNEAS_NB201_CSV"
COLUMNS = ("nb201_index", "arch", "cifar10_test", "cifar100_test", "imagenet16_test")


class AccuracyTableError(RayneasError, FileNotFoundError):
    """The accuracy table is missing or not in the expected format."""


@dataclasses.dataclass(frozen=True)
class Accuracies:
    index: int
    arch: str
    cifar10: float
    cifar100: float
    imagenet16: float


def _read(source: Path | object, label: str) -> pa.Table:
    try:
        if isinstance(source, Path):
            table = pacsv.read_csv(source)
        else:
            with source.open("rb") as fh:  # type: ignore[attr-defined]
                table = pacsv.read_csv(pa.input_stream(fh, compression="gzip"))
    except (pa.ArrowInvalid, OSError) as exc:
        raise AccuracyTableError(f"{label}: cannot read the NAS-Bench-201 accuracy CSV: {exc}") from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise AccuracyTableError(
            f"{label}: missing column(s) {missing}; expected {', '.join(COLUMNS)} "
            "(see rayneas/resources/NB201_SOURCE.md for the format)"
        )
    if table.num_rows != nb201.NUM_ARCHS:
        raise AccuracyTableError(f"{label}: expected {nb201.NUM_ARCHS} rows, found {table.num_rows}")
    return table.sort_by("nb201_index")


def load_table(csv_path: str | Path | None = None) -> pa.Table:
    """The accuracy table, sorted by benchmark index.

    The file is chosen on every call (``csv_path``, else ``$RAYNEAS_NB201_CSV``
    as it is now, else the bundled copy); only reading it is cached, keyed by
    the file and its modification time, so a changed setting or file is seen.
    """
    path = csv_path or os.environ.get(ENV_VAR)
    if not path:
        return _bundled()
    path = Path(path).resolve()
    if not path.is_file():
        raise AccuracyTableError(
            f"NAS-Bench-201 accuracy CSV {str(path)!r} does not exist; pass an existing file "
            f"(--csv PATH or ${ENV_VAR}) or leave both unset to use the bundled copy"
        )
    return _read_file(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read_file(path: Path, mtime_ns: int) -> pa.Table:
    return _read(path, str(path))


@lru_cache(maxsize=1)
def _bundled() -> pa.Table:
    return _read(resources.files("rayneas.resources").joinpath("nb201_accuracy.csv.gz"), "bundled table")


def lookup(arch: "str | int | nb201.Genotype", csv_path: str | Path | None = None) -> Accuracies:
    """Accuracies (percent, 200 epochs) of a cell given as string, index or Genotype."""
    genotype = nb201.resolve(arch)
    index = nb201.index_of(genotype)
    row = load_table(csv_path).slice(index, 1).to_pylist()[0]
    return Accuracies(index, row["arch"], row["cifar10_test"], row["cifar100_test"], row["imagenet16_test"])


def best_accuracies(csv_path: str | Path | None = None) -> dict[str, tuple[float, int]]:
    """Per dataset, the highest test accuracy in the benchmark and the index of the cell that has it.

    No single cell is best on all three, so a search's result is put beside
    three different cells: say so wherever these are printed.
    """
    table = load_table(csv_path)
    best = {}
    for name, column in (("CIFAR-10", "cifar10_test"), ("CIFAR-100", "cifar100_test"),
                         ("ImageNet16-120", "imagenet16_test")):
        values = table[column].to_numpy()
        index = int(values.argmax())
        best[name] = (float(values[index]), int(table["nb201_index"][index].as_py()))
    return best
