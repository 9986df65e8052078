"""Net2Net transforms on the token level: what a transform yields, or why it is impossible.

The module-level transforms call these first, so an impossible request fails
before any weight is touched, and a controller can compute a child's
architecture string (e.g. to look it up in the NetPool) without building it.
"""
from __future__ import annotations

from typing import Sequence

from rayneas.errors import RayneasError
from rayneas.spaces.plain import KERNEL_SIZES, MAX_LAYERS, Arch, Layer


class MorphError(RayneasError, ValueError):
    """A Net2Net transform that cannot be applied to this network; the network is left as it was."""


def check_index(length: int, index: int, action: str) -> None:
    """A token index for a transform: an integer in 0..length-1 (either space's token list)."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise MorphError(f"cannot {action}: layer index must be an integer, got {index!r}")
    if not 0 <= index < length:
        raise MorphError(
            f"cannot {action} layer {index}: index out of range, the network has {length} layers (0..{length - 1})"
        )


def check_depth(length: int, max_layers: int) -> None:
    """Room for one more token."""
    if length + 1 > max_layers:
        raise MorphError(f"cannot deepen: the network already has {length} layers and may have at most {max_layers}")


def check_wider(index: int, token: str, current: int, width: int) -> None:
    """A new width for token ``index`` (either space): an integer above the current one."""
    if isinstance(width, bool) or not isinstance(width, int) or width <= current:
        raise MorphError(
            f"cannot widen layer {index} {token!r} to {width!r}: the new width must be an integer "
            f"larger than the current {current}"
        )


def _layer_at(arch: Sequence[Layer], index: int, action: str) -> Layer:
    check_index(len(arch), index, action)
    layer = arch[index]
    if layer.kind == "pool":
        raise MorphError(f"cannot {action} layer {index}: it is a pool layer; choose a conv or fc layer")
    return layer


def widened(arch: Sequence[Layer], index: int, width: int) -> Arch:
    """The architecture with layer ``index`` at ``width`` filters/units."""
    layer = _layer_at(arch, index, "widen")
    check_wider(index, layer.token, layer.width, width)
    return (*arch[:index], Layer(layer.kind, width, layer.kernel), *arch[index + 1:])


def deepened(arch: Sequence[Layer], index: int, kernel: int = 3, max_layers: int = MAX_LAYERS) -> Arch:
    """The architecture with an identity layer (same width; ``kernel`` for a conv) after layer ``index``."""
    layer = _layer_at(arch, index, "deepen after")
    check_depth(len(arch), max_layers)
    if kernel not in KERNEL_SIZES:
        raise MorphError(f"cannot deepen: kernel {kernel!r} is not one of {KERNEL_SIZES}")
    new = Layer("conv", layer.width, kernel) if layer.kind == "conv" else Layer("fc", layer.width)
    return (*arch[:index + 1], new, *arch[index + 1:])
