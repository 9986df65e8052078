"""A run folder at a URI, worked on in a local folder: pulled when the run starts, pushed after every save.

Searches write their run folder with plain file operations (atomic renames,
torch and RLlib checkpoints, TensorBoard, matplotlib), as Ray Tune's trials
do; like Tune, rayneas runs them in a local folder and copies it to the
storage location. `Mirror.push` uploads only the files that changed since the
last push, so a growing run uploads each new file once.

A folder that a run replaces as a whole (EAS's ``checkpoint/``) must never be
seen half old, half new, but an object store cannot rename a folder. So it is
uploaded to a fresh ``<folder>.v<N>/`` and `MANIFEST`, written after it,
names the version that counts; a push cut short leaves the previous version
in force, and the next push deletes the stray one. Every other file is one
upload, which an object store makes visible whole.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Iterable

import pyarrow.fs as pafs

from rayneas.storage import Location, open_location

MANIFEST = ".rayneas-mirror.json"  # at the remote location only: {"versions": {folder: N}}
Signature = tuple[int, int]  # (size, mtime_ns) of a local file as last pushed or pulled


class Mirror:
    def __init__(self, remote: str, local: Path, atomic: Iterable[str] = ()) -> None:
        self.remote: Location = open_location(remote)
        self.local = Path(local)
        self.atomic = frozenset(atomic)
        self._sent: dict[str, Signature] = {}
        self._versions: dict[str, int] = {}

    def exists(self) -> bool:
        return self.remote.exists()

    def pull(self, atomic: bool = True) -> None:
        """Copy the remote folder into the local one (``atomic=False``: without the whole-folder parts, e.g. the
        checkpoint, which plots and exports never read)."""
        manifest = self.remote.child(MANIFEST)
        self._versions = json.loads(manifest.read_bytes())["versions"] if manifest.exists() else {}
        current = {f"{name}.v{n}": name for name, n in self._versions.items()}
        for info in self._remote_files():
            rel = posixpath.relpath(info.path, self.remote.path)
            top, _, rest = rel.partition("/")
            if rel == MANIFEST or (top in current and not atomic):
                continue
            if top in current:
                rel = f"{current[top]}/{rest}"
            elif top.rpartition(".v")[0] in self.atomic:
                continue  # a version a push never finished
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Location(self.remote.fs, info.path).read_bytes())
            self._sent[rel] = _signature(target)

    def push(self) -> None:
        """Upload what changed since the last push or pull; delete what the run deleted."""
        files = {rel: _signature(self.local / rel) for rel in self._local_files()}
        changed = [rel for rel, sig in files.items() if self._sent.get(rel) != sig]
        gone = [rel for rel in self._sent if rel not in files]
        moved = {_top(rel) for rel in changed + gone} & self.atomic
        for rel in changed:
            if _top(rel) not in moved:
                self._upload(rel, rel)
        for folder in sorted(moved):
            version = self._versions.get(folder, 0) + 1
            for rel in files:
                if _top(rel) == folder:
                    self._upload(rel, f"{folder}.v{version}/{rel.partition('/')[2]}")
            self._versions[folder] = version
        if moved:
            self.remote.child(MANIFEST).write_bytes(json.dumps({"versions": self._versions}).encode())
        for rel in gone:
            if _top(rel) not in self.atomic:
                self.remote.fs.delete_file(self.remote.child(rel).path)
        for folder in moved:  # the version the manifest no longer names, and any a push never finished
            for stale in self._remote_versions(folder) - {f"{folder}.v{self._versions[folder]}"}:
                self.remote.fs.delete_dir(self.remote.child(stale).path)
        self._sent = files

    def _upload(self, rel: str, target: str) -> None:
        self.remote.child(target).write_bytes((self.local / rel).read_bytes())

    def _local_files(self) -> list[str]:
        """Files under the local folder, relative, leaving out hidden ones (temporary files of atomic writes)."""
        return sorted(str(p.relative_to(self.local).as_posix()) for p in self.local.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.local).parts))

    def _remote_files(self) -> list[pafs.FileInfo]:
        if self.remote.kind() != pafs.FileType.Directory:
            return []
        infos = self.remote.fs.get_file_info(pafs.FileSelector(self.remote.path, recursive=True))
        return [i for i in infos if i.type == pafs.FileType.File]

    def _remote_versions(self, folder: str) -> set[str]:
        infos = self.remote.fs.get_file_info(pafs.FileSelector(self.remote.path))
        return {i.base_name for i in infos if i.type == pafs.FileType.Directory
                and i.base_name.rpartition(".v")[0] == folder}


def _top(rel: str) -> str:
    return rel.partition("/")[0]


def _signature(path: Path) -> Signature:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
