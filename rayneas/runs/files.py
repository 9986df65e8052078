"""Writes that never leave a half-written file behind: write beside the target, then rename.

Run state, candidate tables and the NetPool are rewritten while a search runs;
a crash (or a killed driver) mid-write must leave the previous version intact,
so `--resume` always finds a readable file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid keeps two processes writing the same file from sharing one temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    _replace(Path(path), lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, data: Any, indent: int = 1) -> None:
    write_text_atomic(path, json.dumps(data, indent=indent))


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    _replace(Path(path), lambda tmp: pq.write_table(table, tmp))
