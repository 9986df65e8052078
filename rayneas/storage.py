"""Where outputs live: a local folder or a URI that pyarrow's filesystem layer opens (``s3://``, ``gs://``,
``file://``), the same layer Ray Tune uses for its ``storage_path``.

Everything that writes through a `Location` works unchanged on a node's disk,
on a shared mount and in an object store; only the location string differs.
Credentials and endpoints come from the filesystem's usual environment
(for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``...).
"""
from __future__ import annotations

import dataclasses
import os
import posixpath
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rayneas.errors import RayneasError


class StorageError(RayneasError, ValueError):
    """An output location that cannot be opened, or that the run would lose."""


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def resolve(location: str | Path) -> str:
    """A URI as given, a local path made absolute: the same string on every process that is handed it."""
    return str(location) if is_uri(location) else str(Path(location).resolve())


@dataclasses.dataclass(frozen=True)
class Location:
    """A file or folder on some filesystem: ``fs`` and the filesystem's own ``path`` (no scheme)."""

    fs: pafs.FileSystem
    path: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def local(self) -> bool:
        """On the disk of the process's node (writes can then be made atomic by a rename)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def child(self, name: str) -> Location:
        return Location(self.fs, posixpath.join(self.path, name))

    def sibling(self, name: str) -> Location:
        return Location(self.fs, posixpath.join(posixpath.dirname(self.path), name))

    def kind(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self.kind() != pafs.FileType.NotFound

    def files(self, suffix: str = "") -> list[Location]:
        """The files directly in this folder whose names end in ``suffix``, by name (hidden ones left out)."""
        if self.kind() != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path))
        found = [i.path for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
                 and not i.base_name.startswith(".")]
        return [Location(self.fs, p) for p in sorted(found)]

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file at once: a reader never sees half of it (a rename on a local disk; object
        stores make a single upload visible only when it completes)."""
        target = self
        if self.local:  # object stores need no folders; the pid keeps two writers off one temporary file
            self.fs.create_dir(posixpath.dirname(self.path), recursive=True)
            target = self.sibling(f".{self.name}.{os.getpid()}.tmp")
        try:
            with self.fs.open_output_stream(target.path) as stream:
                stream.write(data)
            if target is not self:
                self.fs.move(target.path, self.path)
        finally:
            if target is not self and target.exists():
                self.fs.delete_file(target.path)

    def read_parquet(self) -> pa.Table:
        return pq.read_table(self.path, filesystem=self.fs)

    def write_parquet(self, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.write_bytes(sink.getvalue().to_pybytes())


def join(location: str | Path, name: str) -> str:
    """``location/name`` for a local path or a URI (whose own separator is always ``/``)."""
    return f"{str(location).rstrip('/')}/{name}" if is_uri(location) else str(Path(location) / name)


def open_location(location: str | Path) -> Location:
    """The `Location` of a local path or URI (``s3://bucket/key?endpoint_override=...`` options included)."""
    where = resolve(location)
    if not is_uri(where):
        return Location(pafs.LocalFileSystem(), where)
    try:
        fs, path = pafs.FileSystem.from_uri(where)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise StorageError(f"cannot open {where!r}: {exc}; use a local path or a URI pyarrow opens "
                         "(s3://bucket/path, gs://bucket/path, file:///shared/mount/path)") from exc
    return Location(fs, path)


def check_shared(location: str | Path, option: str) -> None:
    """Refuse, before any work, an output location the run would lose or that other nodes cannot reach.

    A URI (``file://`` naming a shared mount included) is taken as shared. A
    local path is refused on a Ray cluster of several nodes (a trial, env
    runner or pool on another node would write to, or look for, a folder on
    its own disk), and, when relative, inside a Ray job's unpacked working
    directory, which Ray deletes after the job.
    """
    if is_uri(location):
        return
    fix = ("give a URI every node reaches (s3://bucket/runs, gs://bucket/runs) or a shared mount as "
           "file:///mount/runs")
    if not Path(location).is_absolute() and "working_dir_files" in Path.cwd().parts:
        raise StorageError(f"{option} {location} is relative to this Ray job's working directory, which Ray deletes "
                         f"after the job; {fix}")
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        nodes = sum(1 for node in ray.nodes() if node["Alive"])
        if nodes > 1:
            raise StorageError(f"{option} {location} is on one node's disk, but the Ray cluster has {nodes} nodes; "
                             f"{fix}")
