"""Name → indicator function and what it needs, so a search can be configured with indicator names.

An indicator is a function ``(model, inputs, **options) -> number`` that
measures the model exactly as given: re-initialising weights for a repeat is
the caller's job, so the same model and inputs always give the same number.
Every module of this package is imported by the package itself, so a new
indicator is a new file with a ``@register_indicator`` function in it.

Each registration also says how to use the number (`IndicatorInfo`): its
direction (is a higher value better or worse), the network it is meant to be
computed on, and the inputs it needs. The indicator itself measures whatever
model it is given; the metadata is for the caller that builds the network and
the batch, and for the aggregations that rank candidates
(`rayneas.indicators.aggregate`). ``indicator_info(name)`` looks it up.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable, Literal, Mapping, Sequence, TypeVar, get_args

from rayneas.indicators.common import DegenerateNetworkError

Indicator = Callable[..., Any]
#: ``(model, inputs, **options) -> {indicator name: value}``: several indicators from one shared computation.
JointIndicator = Callable[..., Mapping[str, float]]
F = TypeVar("F", bound=Indicator)

Direction = Literal["higher", "lower"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)

#: The networks of one NAS-Bench-201-style cell an indicator is computed on:
#: ``kappa``: TE-NAS's κ network (C=3, N=1, the supernet masked to the cell);
#: ``thin``: TE-NAS's linear-region network (C=1, first cell only, no stem, 1-channel input);
#: ``eval``: the cell's own evaluation-size network (NAS-Bench-201: C=16, N=5), as the benchmark trained it.
Network = Literal["kappa", "thin", "eval"]
NETWORKS: tuple[str, ...] = get_args(Network)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The batches an indicator expects.

    ``batch_size`` samples per batch (None: any), ``batches`` separate batches
    (pooled by the indicator), ``channels`` and ``size`` (square side; None:
    any) of each sample, ``labels`` whether it needs class labels too,
    ``source`` the image source the reference code feeds (`rayneas.data.image_batch`
    names; None: the caller's images).
    """

    batch_size: int | None = None
    channels: int = 3
    size: int | None = None
    batches: int = 1
    labels: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"InputSpec.{name} must be a positive integer or None, got {value!r}")
        for name in ("channels", "batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"InputSpec.{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class IndicatorInfo:
    name: str
    fn: Indicator
    direction: Direction
    network: Network
    inputs: InputSpec
    joint: JointIndicator | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"


_REGISTRY: dict[str, IndicatorInfo] = {}


def register_indicator(name: str, *, direction: Direction = "higher", network: Network = "eval",
                       inputs: InputSpec | None = None, joint: JointIndicator | None = None) -> Callable[[F], F]:
    """Decorator: make ``fn`` available as ``get_indicator(name)``, with its metadata in ``indicator_info(name)``.

    Defaults: higher is better, computed on the evaluation-size network, on
    any batch of 3-channel images without labels (``InputSpec()``). `ntk` and
    `linear_regions` declare theirs (lower / κ network, higher / thin network).
    ``joint``: a function that computes this indicator together with others
    (same network and inputs) from one pass, e.g. AZ-NAS's three from one
    forward; `measure_indicators` calls it once for all of them that a caller
    asks for, so scoring the three costs one pass instead of three.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an indicator name must be a non-empty string, got {name!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"indicator {name!r}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if network not in NETWORKS:
        raise ValueError(f"indicator {name!r}: network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if inputs is not None and not isinstance(inputs, InputSpec):
        raise ValueError(f"indicator {name!r}: inputs must be an InputSpec, got {type(inputs).__name__}")
    spec = inputs if inputs is not None else InputSpec()

    def decorate(fn: F) -> F:
        known = _REGISTRY.get(name)
        if known is not None and _qualname(known.fn) != _qualname(fn):
            raise ValueError(
                f"indicator name {name!r} is already taken by {_qualname(known.fn)}; "
                f"register {_qualname(fn)} under another name"
            )
        _REGISTRY[name] = IndicatorInfo(name, fn, direction, network, spec, joint)
        return fn

    return decorate


def indicator_info(name: str) -> IndicatorInfo:
    """The registration of ``name``: its function, direction, network and input needs."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown indicator {name!r}; available: {', '.join(available_indicators()) or 'none'}"
        ) from None


def worst_value(name: str) -> float:
    """The value that ranks last for ``name``: what a network with no path from input to output scores."""
    return -math.inf if indicator_info(name).higher_is_better else math.inf


def measure_indicators(names: Sequence[str], model: Any, inputs_of: Callable[[str], Any],
                       measure: Callable[..., float],
                       options_of: Callable[[str], Mapping[str, Any]] | None = None) -> dict[str, float]:
    """{name: value} of ``names`` on ``model``: ``measure(name, model, inputs, **options)`` for each, except
    that the indicators sharing a ``joint`` function get it called once, as ``joint(model, inputs,
    **options)`` with the first one's inputs and options.

    ``options_of(name)``: keyword options of the indicator's function (e.g.
    AZ-NAS's ``features`` for networks not shaped like NAS-Bench-201's;
    `takes_option` tells which functions take one). A `DegenerateNetworkError`
    from a joint pass gives each of its indicators its worst value, as
    separate calls would.
    """
    values: dict[str, float] = {}
    for name in names:
        if name in values:
            continue
        options = options_of(name) if options_of is not None else {}
        joint = indicator_info(name).joint
        if joint is None:
            values[name] = measure(name, model, inputs_of(name), **options)
            continue
        members = [n for n in names if indicator_info(n).joint is joint]
        try:
            computed = joint(model, inputs_of(name), **options)
            values.update({n: float(computed[n]) for n in members})
        except DegenerateNetworkError:
            values.update({n: worst_value(n) for n in members})
    return values


def takes_option(name: str, option: str) -> bool:
    """Whether indicator ``name``'s function takes the keyword ``option``, so a caller passes it only there."""
    return option in inspect.signature(indicator_info(name).fn).parameters


def get_indicator(name: str) -> Indicator:
    return indicator_info(name).fn


def available_indicators() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def check_indicators(names: list[str], where: str) -> None:
    """Refuse an empty list, repeats and names that are not registered, listing the registered ones."""
    allowed = available_indicators()
    unknown = [n for n in names if n not in allowed]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"{where} {names} must list distinct registered indicators (at least one); unknown: "
                         f"{unknown or 'none'}; allowed: {', '.join(allowed)}")


def _qualname(fn: Indicator) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
