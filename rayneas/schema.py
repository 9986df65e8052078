"""Typed dataclasses from plain data: the field bounds (`spec`), `from_dict` and `to_dict`.

Every key is checked against the dataclass fields (recursively), so a typo, a
wrong type or an out-of-range value fails with the key path, the bad value and
what is allowed, instead of an hour into a search. Kept apart from
`rayneas.config` (YAML files, ``--set`` overrides, run kinds) so a section
such as the ``tune:`` block can be defined without importing the config loader.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, TypeVar, Union, get_args, get_origin

from rayneas.errors import RayneasError

T = TypeVar("T")


class ConfigError(RayneasError, ValueError):
    """A config value or key is wrong; the message names the key path and the fix."""


def spec(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    doc: str = "",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with bounds that `from_dict` enforces."""
    meta = {"ge": ge, "gt": gt, "le": le, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        tagged = _tagged(args)
        if tagged:
            return _convert_tagged(tagged, value, path)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {tp}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}: {value!r}")
            return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp in _SCALARS:
        accepts, expected, build = _SCALARS[tp]
        if not accepts(value):
            raise ConfigError(f"{path}: expected {expected}, got {value!r}")
        return build(value)
    raise ConfigError(f"{path}: unsupported field type {_type_name(tp)}")


TAG = "kind"


def _tagged(args: Sequence[Any]) -> dict[Any, type]:
    """``{kind value: class}`` when every non-None member of a union is a dataclass with a one-value
    ``kind: Literal[...]`` field (a tagged union, e.g. a space section's ``kind: plain | densenet``), else {}."""
    members = [a for a in args if a is not type(None)]
    tags: dict[Any, type] = {}
    for cls in members:
        hint = typing.get_type_hints(cls).get(TAG) if dataclasses.is_dataclass(cls) else None
        if get_origin(hint) is not Literal or len(get_args(hint)) != 1:
            return {}
        tags[get_args(hint)[0]] = cls
    return tags


def _convert_tagged(tagged: dict[Any, type], value: Any, path: str) -> Any:
    """The member that ``value``'s ``kind`` names; without a ``kind``, the union's first member (its default)."""
    tag = value.get(TAG, next(iter(tagged))) if isinstance(value, Mapping) else next(iter(tagged))
    if tag not in tagged:
        raise ConfigError(f"{path}.{TAG}: {tag!r} is not allowed; choose one of {', '.join(map(repr, tagged))}")
    return from_dict(tagged[tag], value, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # YAML's true is no number


#: Leaf types: (accepts the YAML value?, what to call it in an error, the stored value).
_SCALARS: dict[Any, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    bool: (lambda v: isinstance(v, bool), "true or false", bool),
    int: (lambda v: _is_number(v) and isinstance(v, int), "an integer", int),
    float: (_is_number, "a number", float),
    str: (lambda v: isinstance(v, str), "a string", str),
    Path: (lambda v: isinstance(v, (str, Path)), "a path", Path),
}


def _check_bounds(field: dataclasses.Field, value: Any, path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    meta = field.metadata
    if meta.get("ge") is not None and not value >= meta["ge"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be >= {meta['ge']}")
    if meta.get("gt") is not None and not value > meta["gt"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be > {meta['gt']}")
    if meta.get("le") is not None and not value <= meta["le"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be <= {meta['le']}")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build ``cls`` from plain data, rejecting unknown keys, wrong types and bad ranges."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or '<root>'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    moved = [key for key in unknown if key in getattr(cls, "MOVED_KEYS", {})]
    if moved:  # a key an older version had here: say where it went
        raise ConfigError(f"{path}.{moved[0]}: {cls.MOVED_KEYS[moved[0]]}" if path else cls.MOVED_KEYS[moved[0]])
    if unknown:
        where = path or "<root>"
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}" + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; allowed keys are {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name in data:
            value = _convert(hints[name], data[name], key_path)
            _check_bounds(field, value, key_path)
            kwargs[name] = value
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key_path}: required key is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ cross-field checks
        raise ConfigError(f"{path or '<root>'}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Plain YAML-able data (Paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
