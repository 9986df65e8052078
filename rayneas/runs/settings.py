"""Resume checks: the settings a run saved against the ones it is resumed with.

A run saves the part of its config that decides its numbers; a resume must
match it exactly, and a mismatch names every differing key. Where the input
data lives is replaced by `inputs_digest` of what the search read, so a moved
dataset resumes and a changed one does not.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from rayneas.runs.folder import RunDirError

DIGEST = "inputs_digest"


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b))
                for k in diff_keys(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)]
    return [] if a == b else [f"{prefix} ({a!r} -> {b!r})"]


def check_resumable(run_dir: Path, saved: dict, wanted: dict) -> None:
    """Refuse to resume ``run_dir`` when the saved settings differ from the wanted ones, naming the keys."""
    if saved == wanted:
        return
    # The digest follows from the data and the other settings: name it only when nothing else differs.
    diff = sorted(diff_keys({**saved, DIGEST: None}, {**wanted, DIGEST: None})) or [
        f"the input images ({DIGEST} {saved.get(DIGEST)} -> {wanted.get(DIGEST)}): inputs.root holds "
        "different data than the saved run read"]
    raise RunDirError(f"cannot resume {run_dir}: the config differs from the saved run in {', '.join(diff)}; "
                      f"resume with the same settings or start a new run under another name")


def inputs_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the named tensors' shapes, dtypes and bytes: equal exactly when the search sees the same data."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
