"""What the EAS controller sees and chooses: token ids, blocks, and the masks of valid actions.

The deeper actor addresses a layer as (block, position in block), not by
index, as in the paper. The space says what a block is (`EASSpace.blocks`):
in the plain space the conv runs between pool layers, then the fc part; in
the DenseNet space the dense blocks between transitions. Those coordinates
stay meaningful while the net grows, because Net2Deeper adds layers inside a
block and never a block.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rayneas.eas.space import EASSpace, PlainSpace
from rayneas.spaces.plain import KERNEL_SIZES

NUM_BLOCKS = 5  # the paper's deeper actor: 5 block outputs
BLOCK_POSITIONS = 10  # and 10 position outputs
PAD = 0  # token id of an empty slot; vocabulary tokens are 1..len(vocabulary)

Space = EASSpace | type[EASSpace]  # the rules of blocks and kernels need no instance


class EncodingError(ValueError):
    """A network the controller's state cannot represent."""


def blocks(arch: Sequence, space: Space = PlainSpace) -> list[list[int]]:
    """Layer indices per block (`EASSpace.blocks`); by default the plain space's."""
    return space.blocks(arch)


class ArchEncoder:
    """Token ids of the space's vocabulary (`EASSpace.vocabulary`), padded to ``max_layers``, and the masks."""

    def __init__(self, space: EASSpace) -> None:
        self.space, self.max_layers = space, space.max_layers
        self.ids = {token: i + 1 for i, token in enumerate(space.vocabulary())}

    @property
    def num_tokens(self) -> int:
        """Ids run 0 (padding) .. num_tokens - 1."""
        return len(self.ids) + 1

    def check(self, arch: Sequence) -> None:
        """Raise `EncodingError` if ``arch`` has a token outside the vocabulary or too many blocks."""
        unknown = [(i, layer.token) for i, layer in enumerate(arch) if layer.token not in self.ids]
        if unknown:
            i, token = unknown[0]
            raise EncodingError(f"layer {i} {token!r} is not in the vocabulary of the {self.space.widths()}; use a "
                                "start net whose widths are on those lists, or add the width")
        if len(arch) > self.max_layers:
            raise EncodingError(f"{len(arch)} layers exceed max_layers={self.max_layers}; raise max_layers or use "
                                "a shorter network")
        count = len(self.space.blocks(arch))
        if count > NUM_BLOCKS:
            raise EncodingError(f"the network has {count} blocks ({self.space.blocks_are}); the deeper action "
                                f"addresses at most {NUM_BLOCKS}: {self.space.fewer_blocks}")

    def encode(self, arch: Sequence) -> np.ndarray:
        self.check(arch)
        ids = np.full(self.max_layers, PAD, dtype=np.int64)
        ids[:len(arch)] = [self.ids[layer.token] for layer in arch]
        return ids

    def wider_mask(self, arch: Sequence) -> np.ndarray:
        """1 where layer i exists, can grow (not a pool, stem or transition) and has a next width on its list."""
        mask = np.zeros(self.max_layers, dtype=np.float32)
        mask[:len(arch)] = [self.space.next_width(layer) is not None for layer in arch]
        return mask

    def _positions(self, arch: Sequence) -> list[list[int]]:
        """The layers the deeper action can address, per block; none at max_layers."""
        if len(arch) >= self.max_layers:
            return []
        return [members[:BLOCK_POSITIONS] for members in self.space.blocks(arch)]

    def deeper_masks(self, arch: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """(block mask [NUM_BLOCKS], position mask [NUM_BLOCKS, BLOCK_POSITIONS]); all 0 at max_layers."""
        block_mask = np.zeros(NUM_BLOCKS, dtype=np.float32)
        position_mask = np.zeros((NUM_BLOCKS, BLOCK_POSITIONS), dtype=np.float32)
        for b, members in enumerate(self._positions(arch)):
            block_mask[b] = 1
            position_mask[b, :len(members)] = 1
        return block_mask, position_mask

    def kernel_mask(self, arch: Sequence) -> np.ndarray:
        """[NUM_BLOCKS, BLOCK_POSITIONS, kernels]: 1 where a new layer after (block, position) may take kernel
        ``KERNEL_SIZES[k]`` (`EASSpace.kernels_after`); all 0 where the position mask is 0, and where the new
        layer has no kernel (after an fc layer: the kernel choice is then ignored, no decision)."""
        mask = np.zeros((NUM_BLOCKS, BLOCK_POSITIONS, len(KERNEL_SIZES)), dtype=np.float32)
        for b, members in enumerate(self._positions(arch)):
            for p, index in enumerate(members):
                mask[b, p] = [k in self.space.kernels_after(arch[index]) for k in KERNEL_SIZES]
        return mask


def wider_choice_error(arch: Sequence, space: EASSpace, decisions: Sequence[int]) -> str | None:
    """Why these widen-or-not decisions (one per slot) are invalid, or None."""
    for i in np.flatnonzero(np.asarray(decisions)):
        if i >= len(arch):
            return f"widen slot {i}: the network has only {len(arch)} layers"
        if arch[i].kind not in space.grown:
            return f"widen layer {i}: it is a {arch[i].kind} layer"
        if space.next_width(arch[i]) is None:
            return f"widen layer {i} {arch[i].token!r}: it is already at the last width of its list"
    return None


def deeper_choice(arch: Sequence, max_layers: int, block: int, position: int, kernel: int,
                  space: Space = PlainSpace) -> tuple[int, int] | str:
    """(layer index to insert after, kernel size) of a (block, position, kernel index) choice, or why it is invalid."""
    if len(arch) >= max_layers:
        return f"deepen: the network already has {len(arch)} layers, the maximum (max_layers={max_layers})"
    groups = space.blocks(arch)
    if block >= len(groups):
        return f"deepen block {block}: the network has only {len(groups)} blocks"
    if position >= len(groups[block]):
        return f"deepen block {block} position {position}: the block has only {len(groups[block])} layers"
    index, size = groups[block][position], KERNEL_SIZES[kernel]
    allowed = space.kernels_after(arch[index])
    if allowed and size not in allowed:  # none allowed: the new layer has no kernel and ignores the choice
        return (f"deepen block {block} position {position}: kernel {size} for a new layer after "
                f"{arch[index].token!r}, which allows only {', '.join(map(str, allowed))}")
    return index, size
