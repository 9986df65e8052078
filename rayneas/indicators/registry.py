"""Name → indicator function, so a search can be configured with indicator names.

An indicator is a function ``(model, inputs, **options) -> number`` that
measures the model exactly as given: re-initialising weights for a repeat is
the caller's job, so the same model and inputs always give the same number.
Every module of this package is imported by the package itself, so a new
indicator is a new file with a ``@register_indicator`` function in it.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

Indicator = Callable[..., Any]
F = TypeVar("F", bound=Indicator)

_REGISTRY: dict[str, Indicator] = {}


def register_indicator(name: str) -> Callable[[F], F]:
    """Decorator: make ``fn`` available as ``get_indicator(name)``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an indicator name must be a non-empty string, got {name!r}")

    def decorate(fn: F) -> F:
        known = _REGISTRY.get(name)
        if known is not None and _qualname(known) != _qualname(fn):
            raise ValueError(
                f"indicator name {name!r} is already taken by {_qualname(known)}; "
                f"register {_qualname(fn)} under another name"
            )
        _REGISTRY[name] = fn
        return fn

    return decorate


def get_indicator(name: str) -> Indicator:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown indicator {name!r}; available: {', '.join(available_indicators()) or 'none'}"
        ) from None


def available_indicators() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def _qualname(fn: Indicator) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
