"""The run folder ``runs/<name>/``: its config snapshot, its ``result.json``, and what is wrong with it.

Every run kind writes ``config.json`` (the config of the latest session, which
export and plots read) and ``result.json`` (when finished; a Tune trial also
before each report, marked ``finished: false``, so a trial a scheduler stops
leaves what it reached); the rest of the folder (its state, tables, checkpoint)
is the run kind's own.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rayneas.runs.files import write_json_atomic
from rayneas.runs.staging import push_staged
from rayneas.schema import ConfigError, to_dict

CONFIG, RESULT = "config.json", "result.json"


class RunDirError(ConfigError):
    """The run folder does not fit the request (an existing run without --resume, or a different config)."""


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; is {path.parent} the folder of a rayneas run (runs/<name>/)?")
    return json.loads(path.read_text())


class RunFolder:
    """One run folder; a run kind's store adds its own state files and calls `saved` after each save."""

    #: Folders the store replaces as a whole (by a rename): a copy at a URI shows one version at a time.
    WHOLE: tuple[str, ...] = ()

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)

    def saved(self) -> None:
        """The folder is consistent again after a save: a folder staged for a URI (`rayneas.runs.staging`)
        uploads what changed, so a run killed later resumes from there."""
        push_staged(self.dir, self.WHOLE)

    def already_holds(self, what: str, marker: str) -> RunDirError:
        """The error for starting a run where ``marker`` shows ``what`` (e.g. "a TE-NAS run") already is."""
        return RunDirError(f"{self.dir} already holds {what} ({marker}); continue it with --resume, or start a new "
                           "one under another name (--set name=...)")

    def write_config(self, cfg: Any) -> None:
        write_json_atomic(self.dir / CONFIG, to_dict(cfg))

    def write_result(self, result: dict) -> None:
        write_json_atomic(self.dir / RESULT, result)
        self.saved()
