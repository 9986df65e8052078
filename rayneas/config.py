"""YAML run configs: the file, its ``--set`` overrides, and the run kind it names.

A run config is a dataclass registered under a ``kind`` (a `RunKind`); its
YAML file names that kind at the top. The dataclass is built and checked by
`rayneas.schema` (re-exported here: ``from rayneas.config import spec``), so a
bad key fails with its path before any work starts.
"""
from __future__ import annotations

import dataclasses
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import yaml

from rayneas.schema import ConfigError, from_dict, spec, to_dict
from rayneas.tune.config import TuneSettings

__all__ = ["ENTRY_POINT_GROUP", "ConfigError", "RunKind", "Runner", "apply_overrides", "from_dict", "load_document",
           "load_run", "parse_run", "run_kind", "spec", "to_dict", "with_key"]


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``a.b=value`` strings; values are parsed as YAML (``3``, ``0.5``, ``[1, 2]``, ``true``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set seed=7")
        key, raw = item.split("=", 1)
        data = with_key(data, key.strip(), yaml.safe_load(raw), f"--set {item!r}")
    return dict(data)


def with_key(data: Mapping, key: str, value: Any, where: str) -> dict:
    """A copy of ``data`` with the dotted ``key`` (``scoring.num_actors``) set; sections are copied, not shared.

    ``where`` starts the error message (the --set item, the tune parameter).
    """
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{where}: empty key part in {key!r}")
    data = dict(data)
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{where}: {'.'.join(parts[: i + 1])} is not a section")
        node[part] = child = dict(child)
        node = child
    node[parts[-1]] = value
    return data


class Runner(Protocol):
    """Runs (or, with ``resume``, continues) a search in ``run_dir``; returns the summary it also saves."""

    def __call__(self, cfg: Any, run_dir: Path, resume: bool = False) -> dict: ...


@dataclasses.dataclass(frozen=True)
class RunKind:
    """What ``kind: <name>`` in a YAML config selects: the config dataclass and the runner.

    A search module defines one next to its runner, and pyproject.toml names it
    under ``[project.entry-points."rayneas.run_kinds"]``, so `parse_run` imports
    only the kind a config asks for, and a plug-in package can add kinds the
    same way.
    """

    name: str
    config_cls: type
    runner: Runner


ENTRY_POINT_GROUP = "rayneas.run_kinds"


def _run_kinds() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def run_kind(name: str, source: str = "<config>") -> RunKind:
    """The registered kind ``name``, imported on first use."""
    kinds = _run_kinds()
    if name not in kinds:
        known = ", ".join(sorted(kinds)) or "none (is rayneas installed? pip install -e .)"
        raise ConfigError(f"{source}: kind: {name!r} is not a known run kind; choose one of {known}")
    kind = kinds[name].load()
    if not isinstance(kind, RunKind) or kind.name != name:
        raise ConfigError(f"{source}: entry point {kinds[name].value!r} for kind {name!r} is not a RunKind named "
                          f"{name!r}; fix the [project.entry-points.\"{ENTRY_POINT_GROUP}\"] table that declares it")
    return kind


def parse_run(data: Mapping, source: str = "<config>") -> tuple[RunKind, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    data = dict(data)
    if "kind" not in data:
        raise ConfigError(
            f"{source}: no top-level 'kind' key, so it is not a run config; a run config names its search "
            f"first, e.g. 'kind: tenas' (known kinds: {', '.join(sorted(_run_kinds()))})"
        )
    kind = data.pop("kind")
    if not isinstance(kind, str):
        raise ConfigError(f"{source}: kind: {kind!r} must be a name, e.g. 'kind: tenas'")
    entry = run_kind(kind, source)
    return entry, from_dict(entry.config_cls, data)


def load_run(path: str | Path, overrides: Sequence[str] = ()) -> tuple[RunKind, Any]:
    """Read a YAML run config, apply ``--set`` overrides and validate it.

    A ``tune:`` block (what `rayneas tune` sweeps) is validated too, then left
    out: ``rayneas run`` runs the config's own values.
    """
    data = load_document(path, overrides)
    if "tune" in data:
        from_dict(TuneSettings, data.pop("tune"), "tune")
    return parse_run(data, str(path))


def load_document(path: str | Path, overrides: Sequence[str] = ()) -> dict:
    """The YAML file as plain data with ``--set`` overrides applied; nothing validated yet."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; see configs/ for examples")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return apply_overrides(data, overrides)
