"""Helpers shared by every search space."""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import torch
from torch import nn

from rayneas.errors import RayneasError


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Number of parameters, counted the way the papers report model size.

    DARTS (utils.count_parameters_in_MB) leaves out every parameter whose name
    contains ``auxiliary``: the auxiliary head only helps training and is
    dropped at test time, so published sizes (DARTS 3.3M, TE-NAS 3.8M) exclude it.
    """
    return sum(
        p.numel() for name, p in model.named_parameters()
        if not (exclude_auxiliary and "auxiliary" in name)
    )


T = TypeVar("T")


def parse_tokens(text: str, read: Callable[[str], T], check: Callable[[list[T]], tuple[T, ...]],
                 error: type[RayneasError], what: str) -> tuple[T, ...]:
    """Read a whitespace-separated token string (the EAS spaces' network form) and check the whole.

    An error from ``read`` names the text, the token and its 0-based position;
    one from ``check`` names the text, so the user sees where to fix it.
    """
    if not isinstance(text, str):
        raise error(f"expected {what}, got {type(text).__name__}")
    items = []
    for i, token in enumerate(text.split()):
        try:
            items.append(read(token))
        except error as exc:
            raise error(f"{text!r}: layer {i} {token!r}: {exc}") from None
    try:
        return check(items)
    except error as exc:
        raise error(f"{text!r}: {exc}") from None


def token_numbers(kind: str, names: Sequence[str], texts: Sequence[str], form: str, error: type[RayneasError],
                  kernels: Sequence[int]) -> list[int]:
    """The numbers of a token ``{kind}-{a}-{b}``: one per name, each a positive integer.

    A number named ``kernel`` must be one of ``kernels``; ``form`` shows how to
    write the token, for the error.
    """
    if len(texts) != len(names):
        raise error(f"{kind} takes {len(names)} number(s): write {form}")
    values = []
    for name, text in zip(names, texts):
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise error(f"{name} {text!r} is not a positive integer")
        if name == "kernel" and int(text) not in kernels:
            raise error(f"kernel {int(text)} is not one of {', '.join(map(str, kernels))}")
        values.append(int(text))
    return values


def check_widths(name: str, widths: Sequence[int], error: type[RayneasError]) -> None:
    """A width list a widened layer steps through: non-empty, positive integers, strictly increasing."""
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise error(f"{name} widths must be a non-empty list of positive integers, got {widths!r}")
    if any(a >= b for a, b in zip(widths, widths[1:])):
        raise error(f"{name} widths must be strictly increasing, got {list(widths)}")


def next_width(widths: Sequence[int], current: int) -> int | None:
    """The first width of the (increasing) list above ``current``; None if there is none."""
    return next((w for w in widths if w > current), None)


def check_length(items: Sequence[object], max_layers: int, error: type[RayneasError], noun: str, example: str) -> None:
    """A token list is not empty and within the controller's ``max_layers``."""
    if not items:
        raise error(f"the {noun} is empty; example: {example!r}")
    if len(items) > max_layers:
        raise error(f"{len(items)} layers exceed the maximum of {max_layers}; remove layers")


def he_init(model: nn.Module, gen: torch.Generator) -> None:
    """He init as in the EAS code (convs fan-out, linears fan-in, zero biases, BN identity).

    Drawn from a private generator so the same seed gives the same network
    whatever else used torch's RNG; the EAS spaces (plain CNN, DenseNet) share it.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=gen)
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=gen)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class GenotypeError(RayneasError, ValueError):
    """A genotype or live-op mask of a cell space is malformed; the message names the problem and the fix.

    One class for every space (``nb201.GenotypeError`` and
    ``darts.GenotypeError`` are this class), because the `Mask` both spaces
    share raises it too.
    """
