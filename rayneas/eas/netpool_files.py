"""A NetPool's files: records appended as one-record Parquet parts, weights stored under their content's hash.

Appending a small file per record keeps a put O(1) however large the pool
grows (rewriting one table per record made a run's writes O(N²) in children),
and files that are written once and never changed are what object stores do
well: a run's checkpoint need not upload them again, and two writers of one
location can never corrupt each other's files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import time
import uuid

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from rayneas.storage import open_location


@dataclasses.dataclass(frozen=True)
class NetRecord:
    arch: str
    accuracy: float  # validation accuracy
    epochs: int
    seconds: float  # training time
    parent: str | None = None  # the architecture it was morphed from, None for a start network
    setting: str = ""  # what else the result depends on (dataset, seed, training settings)


_ARROW_TYPES = {"str": pa.string(), "str | None": pa.string(), "float": pa.float64(), "int": pa.int64()}
#: The Parquet parts' columns: every `NetRecord` field, then where the record's weights are kept.
SCHEMA = pa.schema([(f.name, _ARROW_TYPES[f.type]) for f in dataclasses.fields(NetRecord)]
                   + [("weights_file", pa.string())])


class PoolFiles:
    """A pool's files at ``location``: a folder of one-record Parquet parts, weights beside it in
    ``<stem>.weights/`` under their content's hash. Every file is written once and never changed."""

    def __init__(self, location: str) -> None:
        self.records = open_location(location)
        self.weights = self.records.sibling(f"{posixpath.splitext(self.records.name)[0]}.weights")
        self._upgrading = self.records.sibling(f".{self.records.name}.upgrade")

    def load(self) -> list[tuple[NetRecord, str | None]]:
        """Every record with its weights file name, in the order they were added."""
        if not self.records.exists() and self._upgrading.exists():  # killed between `_upgrade`'s last two steps
            self.records.fs.move(self._upgrading.path, self.records.path)
        if self.records.kind() == pafs.FileType.File:
            return self._upgrade()
        parts = self.records.files(".parquet")
        if not parts:
            return []
        table = ds.dataset([p.path for p in parts], filesystem=self.records.fs, format="parquet").to_table()
        return _rows(table, self.records.path)

    def add(self, record: NetRecord, weights: bytes | None) -> str | None:
        """Write ``weights`` (unless a file with these bytes exists), then the record naming them; returns
        the weights file's name. The record comes last, so a pool never names a file it lacks."""
        name = None
        if weights is not None:
            name = hashlib.sha256(weights).hexdigest() + ".pt"
            if not self.weights.child(name).exists():
                self.weights.child(name).write_bytes(weights)
        part = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"  # by name = by time added
        self.records.child(part).write_parquet(_table([(record, name)]))
        return name

    def read_weights(self, name: str) -> bytes:
        return self.weights.child(name).read_bytes()

    def _upgrade(self) -> list[tuple[NetRecord, str | None]]:
        """A pool from before records were appended is one Parquet file: it becomes the folder's first part
        (written beside, then swapped in; `load` finishes a swap that was cut short)."""
        rows = _rows(self.records.read_parquet(), self.records.path)
        self._upgrading.child(f"{0:020d}-upgraded.parquet").write_parquet(_table(rows))
        self.records.fs.delete_file(self.records.path)
        self.records.fs.move(self._upgrading.path, self.records.path)
        return rows


def _rows(table: pa.Table, where: str) -> list[tuple[NetRecord, str | None]]:
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{where} is not a NetPool file: it lacks column(s) {missing}; "
                         "point the netpool setting at a new location or at one a NetPool wrote")
    rows = table.select(SCHEMA.names).to_pylist()
    return [(NetRecord(**{k: v for k, v in row.items() if k != "weights_file"}), row["weights_file"]) for row in rows]


def _table(rows: list[tuple[NetRecord, str | None]]) -> pa.Table:
    return pa.Table.from_pylist([{**dataclasses.asdict(r), "weights_file": w} for r, w in rows], schema=SCHEMA)
