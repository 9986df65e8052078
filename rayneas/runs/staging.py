"""A run folder at a URI, worked on in a local folder: pulled when a command starts, pushed after every save.

Searches write their run folder with plain file operations (atomic renames,
torch and RLlib checkpoints, TensorBoard, matplotlib), as Ray Tune's trials
do; like Tune, rayneas runs them in a local folder and copies that to the
storage location (`staged`). Each store calls `RunFolder.saved` after it
saves, and `Mirror.push` then uploads only the files that changed since the
last push, so a growing run uploads each new file once.

A folder that a run replaces as a whole (EAS's ``checkpoint/``) must never be
seen half old, half new, and an object store cannot rename a folder. So it is
uploaded to a fresh ``<folder>.v<N>/``, and `MANIFEST`, written after every
other upload of a push, names the version that counts and every file pushed;
a push cut short leaves the previous manifest, and so a consistent folder, in
force. `Mirror.pull` fetches what the manifest names and nothing else, so
files a run writes straight to the location (the EAS NetPool, `remote_of`)
stay there.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from rayneas.storage import Location, StorageError, is_uri, open_location

MANIFEST = ".rayneas-mirror.json"  # at the remote location only: {"versions": {folder: N}, "files": [...]}
Signature = tuple[int, int]  # (size, mtime_ns) of a local file as last pushed or pulled
_STAGED: dict[Path, Mirror] = {}  # local run folder -> its mirror, while a `staged` block runs


class Mirror:
    def __init__(self, remote: str, local: Path, reading: bool = False) -> None:
        self.uri = remote
        self.reading = reading  # a reader's copy (plot, export): it never pushes a manifest
        self.remote: Location = open_location(remote)
        self.local = Path(local)
        self._sent: dict[str, Signature] = {}
        self._versions: dict[str, int] = {}

    def pull(self, atomic: bool = True) -> bool:
        """Copy the files of the last complete push into the local folder (``atomic=False``: without the
        whole-folder parts, e.g. the checkpoint, which plots and exports never read). False: nothing there."""
        manifest = self.remote.child(MANIFEST)
        if not manifest.exists():
            return False
        saved = json.loads(manifest.read_bytes())
        self._versions = saved["versions"]
        for rel in saved["files"]:
            if _top(rel) in self._versions and not atomic:
                continue
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.remote.child(self._remote_name(rel)).read_bytes())
            self._sent[rel] = _signature(target)
        return True

    def push(self, atomic: Iterable[str] = ()) -> None:
        """Upload what changed since the last push or pull, the folders named in ``atomic`` (or versioned
        before) as a new version each, then the manifest; then delete what the run deleted and the versions
        no longer named."""
        files = {rel: _signature(self.local / rel) for rel in self._local_files()}
        changed = [rel for rel, sig in files.items() if self._sent.get(rel) != sig]
        gone = [rel for rel in self._sent if rel not in files]
        moved = {_top(rel) for rel in changed + gone} & (set(atomic) | set(self._versions))
        before = dict(self._versions)
        for folder in moved:
            self._versions[folder] = self._versions.get(folder, 0) + 1
        for rel in files:
            if _top(rel) in moved or (rel in changed and _top(rel) not in self._versions):
                self._upload(rel)
        manifest = {"versions": self._versions, "files": sorted(files)}
        self.remote.child(MANIFEST).write_bytes(json.dumps(manifest, indent=1).encode())
        for rel in gone:
            if _top(rel) not in before:
                self.remote.fs.delete_file(self.remote.child(rel).path)
        for folder in moved & set(before):
            self.remote.fs.delete_dir(self.remote.child(f"{folder}.v{before[folder]}").path)
        self._sent = files

    def upload_new(self) -> list[str]:
        """Upload the files added or changed since the pull, leaving the manifest (and so what a resumed run
        reads) alone: what a reader of the folder (a plot, an export) adds beside a run that may go on."""
        files = self._local_files()
        added = [rel for rel in files if self._sent.get(rel) != _signature(self.local / rel)]
        for rel in added:
            self._upload(rel)
        return added

    def _upload(self, rel: str) -> None:
        self.remote.child(self._remote_name(rel)).write_bytes((self.local / rel).read_bytes())

    def _remote_name(self, rel: str) -> str:
        top, _, rest = rel.partition("/")
        return f"{top}.v{self._versions[top]}/{rest}" if top in self._versions else rel

    def _local_files(self) -> list[str]:
        """Files under the local folder, relative, leaving out hidden ones (temporary files of atomic writes)."""
        if not self.local.is_dir():
            return []
        return sorted(p.relative_to(self.local).as_posix() for p in self.local.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.local).parts))


def _top(rel: str) -> str:
    return rel.partition("/")[0]


def _signature(path: Path) -> Signature:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def staged(location: str | Path, reading: bool = False) -> Iterator[Path]:
    """The run folder at ``location`` as a local folder for the block: the folder itself if it is a local
    path, else a temporary copy of the URI's. A run's copy is pushed after every save (`push_staged`) and
    when the block ends, even by an error; a reader's (``reading``: plot, export) is pulled without the
    checkpoints, and only the files it adds are uploaded."""
    if not is_uri(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="rayneas-staged-") as tmp:
        local = Path(tmp).resolve() / Path(str(location).rstrip("/")).name
        mirror = Mirror(str(location).rstrip("/"), local, reading)
        if not mirror.pull(atomic=not reading) and reading:
            raise StorageError(f"{location} holds no rayneas run folder ({MANIFEST} is missing); give the "
                               "location of runs/<name>/ a run with --runs-dir URI wrote")
        _STAGED[local] = mirror
        try:
            yield local
        finally:
            del _STAGED[local]
            if reading:
                mirror.upload_new()
            elif local.is_dir():
                mirror.push()


def push_staged(run_dir: Path, atomic: Iterable[str] = ()) -> None:
    """Push the run folder ``run_dir`` to its URI if it is staged (``atomic``: the folders it replaces whole)."""
    mirror = _STAGED.get(Path(run_dir).resolve())
    if mirror is not None and not mirror.reading:
        mirror.push(atomic)


def remote_of(run_dir: Path) -> str | None:
    """The URI a staged run folder mirrors (None for a plain local folder): where a run writes what it
    should write there directly, such as its NetPool."""
    mirror = _STAGED.get(Path(run_dir).resolve())
    return None if mirror is None else mirror.uri
