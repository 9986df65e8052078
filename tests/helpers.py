"""Shared by the search tests: small TE-NAS configs (the real code path at a size CI affords) and a
`rayneas` subprocess to kill."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, TypeVar

from rayneas.config import from_dict
from rayneas.tenas.config import TenasConfig

T = TypeVar("T")

TINY = {"inputs": {"batch_size": 4, "image_size": 8, "region_samples": 100, "region_batches": 1},
        "prune": {"repeats": 1}, "scoring": {"num_actors": 0}}


def tiny(**sections) -> TenasConfig:
    """`TINY` with whole keys or section entries replaced, e.g. ``tiny(prune={"mode": "reference"})``."""
    return configured(TenasConfig, TINY, **sections)


def configured(cls: type[T], base: dict, **sections) -> T:
    """``cls`` from ``base`` with whole keys or section entries replaced (``base`` itself is left alone)."""
    data = json.loads(json.dumps(base))
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return from_dict(cls, data)


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the subprocess ended (rc {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def rayneas_process(args: list[str], address: str, log: Path, **env: str) -> subprocess.Popen:
    """``python -m rayneas ARGS`` joining the Ray at ``address``, its output appended to ``log``."""
    environ = {**os.environ, "RAY_ADDRESS": address, **env}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "rayneas", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=environ)


def stored_sizes(storage: Path | str, pattern: str) -> list[int]:
    """Sizes of the files matching the glob ``pattern`` under ``storage`` (a folder or a URI), and of the files
    under the folders matching it."""
    import fnmatch

    import pyarrow.fs as pafs

    from rayneas.storage import open_location

    root = open_location(storage)
    if not root.exists():
        return []
    infos = root.fs.get_file_info(pafs.FileSelector(root.path, recursive=True))
    wanted = pattern.split("/")

    def matches(rel: str) -> bool:  # as Path.glob: one name per part, the file or a folder above it
        parts = rel.split("/")[:len(wanted)]
        return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))

    return [i.size for i in infos if i.type == pafs.FileType.File and matches(i.path[len(root.path) + 1:])]


def delete_stored(storage: Path | str) -> None:
    from rayneas.storage import open_location

    root = open_location(storage)
    root.fs.delete_dir(root.path)


def interrupt_tune(config: Path, address: str, storage: Path | str, first: str, last: str, log: Path) -> None:
    """``rayneas tune CONFIG`` stopped by Ctrl+C once its trial wrote checkpoint ``first`` (a glob under
    ``storage``, a folder or a URI), Tune has recorded it, and before its last one (``last``), so that
    `Tuner.restore` has something to continue.

    SIGINT (Ctrl+C, or SIGUSR1): Tune saves the experiment state and stops; a SIGKILL can land while the
    driver copies that state to storage_path, and a half-copied file makes Tuner.restore start over. On a
    loaded machine a tiny trial can finish its last rounds before the signal takes effect: then the
    experiment is deleted and interrupted again (at most 3 times).
    """
    for _ in range(3):
        proc = rayneas_process(["tune", str(config)], address, log)
        # the checkpoint on disk, and the driver's record of that result (the trial's result.json, written
        # once Tune has registered the checkpoint): a state saved before that restores nothing
        wait_for(lambda: stored_sizes(storage, first) and any(stored_sizes(storage, "*/result.json")),
                 proc, "a first trial checkpoint that Tune has registered")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
        if not stored_sizes(storage, last):
            return
        delete_stored(storage)
    raise AssertionError("the trial wrote its last checkpoint before Ctrl+C took effect, 3 times")


def lock_table(monkeypatch, module: object, phase: str) -> dict[str, int]:
    """The NAS-Bench-201 accuracy table raises while ``module.<phase>`` runs; counts the reads before and after.

    ``phase`` is the function of a search module that scores (TE-NAS's
    pruning rounds, the zero-cost scoring): no accuracy may be read there.
    """
    import rayneas.lookup

    reads = {"during": 0, "after": 0}
    inside = {"now": False}
    real_load, real_phase = rayneas.lookup.load_table, getattr(module, phase)

    def guarded_load(*args, **kwargs):
        if inside["now"]:
            reads["during"] += 1
            raise AssertionError(f"the NAS-Bench-201 accuracy table was read during {phase}")
        reads["after"] += 1
        return real_load(*args, **kwargs)

    def guarded_phase(*args, **kwargs):
        inside["now"] = True
        try:
            return real_phase(*args, **kwargs)
        finally:
            inside["now"] = False

    monkeypatch.setattr(rayneas.lookup, "load_table", guarded_load)
    monkeypatch.setattr(module, phase, guarded_phase)
    return reads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class S3:
    bucket: str  # s3://NAME
    env: dict[str, str]  # the standard AWS variables that point a client at the server


@contextlib.contextmanager
def s3_server(bucket: str = "rayneas") -> Iterator[S3]:
    """A real S3-compatible server (moto's server mode) on a free port of 127.0.0.1, holding one bucket.

    While it runs, os.environ carries the standard AWS variables (keys, region, ``AWS_ENDPOINT_URL``)
    that point pyarrow, and so Tune and rayneas, at it; processes started meanwhile (a local Ray's
    workers, a ``rayneas`` subprocess) inherit them.
    """
    import pyarrow.fs as pafs
    import pytest
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                              allow_bucket_creation=True).create_dir(bucket)
            yield S3(f"s3://{bucket}", env)
    finally:
        server.stop()
