"""What the EAS controller sees and chooses: token ids, blocks, and the masks of valid actions.

The deeper actor addresses a layer as (block, position in block), not by
index, as in the paper: blocks are the conv runs between pool layers, and the
fc part is the last block. Those coordinates stay meaningful while the net
grows, because Net2Deeper adds layers inside a block and never a block.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rayneas.spaces.plain import KERNEL_SIZES, Layer, WidthSchedule

NUM_BLOCKS = 5  # the paper's deeper actor: 5 block outputs
BLOCK_POSITIONS = 10  # and 10 position outputs
PAD = 0  # token id of an empty slot; vocabulary tokens are 1..len(vocabulary)


class EncodingError(ValueError):
    """A network the controller's state cannot represent."""


def blocks(arch: Sequence[Layer]) -> list[list[int]]:
    """Layer indices per block: each run of conv layers between pools, then the fc layers (if any)."""
    groups: list[list[int]] = [[]]
    for i, layer in enumerate(arch):
        if layer.kind == "pool" or (layer.kind == "fc" and arch[i - 1].kind != "fc"):
            groups.append([])
        if layer.kind != "pool":
            groups[-1].append(i)
    return [g for g in groups if g]


class ArchEncoder:
    """Token ids of the schedule's vocabulary (`WidthSchedule.vocabulary`), padded to ``max_layers``."""

    def __init__(self, schedule: WidthSchedule, max_layers: int) -> None:
        self.schedule, self.max_layers = schedule, max_layers
        self.ids = {token: i + 1 for i, token in enumerate(schedule.vocabulary())}

    @property
    def num_tokens(self) -> int:
        """Ids run 0 (padding) .. num_tokens - 1."""
        return len(self.ids) + 1

    def check(self, arch: Sequence[Layer]) -> None:
        """Raise `EncodingError` if ``arch`` has a token outside the vocabulary or too many blocks."""
        unknown = [(i, layer.token) for i, layer in enumerate(arch) if layer.token not in self.ids]
        if unknown:
            i, token = unknown[0]
            raise EncodingError(
                f"layer {i} {token!r} is not in the vocabulary of the width lists (conv {list(self.schedule.conv)}, "
                f"fc {list(self.schedule.fc)}); use a start net whose widths are on those lists, or add the width"
            )
        if len(arch) > self.max_layers:
            raise EncodingError(f"{len(arch)} layers exceed max_layers={self.max_layers}; raise max_layers or use "
                                "a shorter network")
        if len(blocks(arch)) > NUM_BLOCKS:
            raise EncodingError(f"the network has {len(blocks(arch))} blocks (conv runs between pools, then the fc "
                                f"part); the deeper action addresses at most {NUM_BLOCKS}: remove pool layers")

    def encode(self, arch: Sequence[Layer]) -> np.ndarray:
        self.check(arch)
        ids = np.full(self.max_layers, PAD, dtype=np.int64)
        ids[:len(arch)] = [self.ids[layer.token] for layer in arch]
        return ids

    def wider_mask(self, arch: Sequence[Layer]) -> np.ndarray:
        """1 where layer i exists, is not a pool and has a next width on its list."""
        mask = np.zeros(self.max_layers, dtype=np.float32)
        mask[:len(arch)] = [self.schedule.next_width(layer) is not None for layer in arch]
        return mask

    def deeper_masks(self, arch: Sequence[Layer]) -> tuple[np.ndarray, np.ndarray]:
        """(block mask [NUM_BLOCKS], position mask [NUM_BLOCKS, BLOCK_POSITIONS]); all 0 at max_layers.
        Every kernel is valid (it is ignored after an fc layer), so kernels need no mask."""
        block_mask = np.zeros(NUM_BLOCKS, dtype=np.float32)
        position_mask = np.zeros((NUM_BLOCKS, BLOCK_POSITIONS), dtype=np.float32)
        if len(arch) < self.max_layers:
            for b, members in enumerate(blocks(arch)):
                block_mask[b] = 1
                position_mask[b, :min(len(members), BLOCK_POSITIONS)] = 1
        return block_mask, position_mask


def wider_choice_error(arch: Sequence[Layer], schedule: WidthSchedule, decisions: Sequence[int]) -> str | None:
    """Why these widen-or-not decisions (one per slot) are invalid, or None."""
    for i in np.flatnonzero(np.asarray(decisions)):
        if i >= len(arch):
            return f"widen slot {i}: the network has only {len(arch)} layers"
        if arch[i].kind == "pool":
            return f"widen layer {i}: it is a pool layer"
        if schedule.next_width(arch[i]) is None:
            return f"widen layer {i} {arch[i].token!r}: it is already at the last width of its list"
    return None


def deeper_choice(arch: Sequence[Layer], max_layers: int, block: int, position: int,
                  kernel: int) -> tuple[int, int] | str:
    """(layer index to insert after, kernel size) of a (block, position, kernel index) choice, or why it is invalid."""
    if len(arch) >= max_layers:
        return f"deepen: the network already has {len(arch)} layers, the maximum (max_layers={max_layers})"
    groups = blocks(arch)
    if block >= len(groups):
        return f"deepen block {block}: the network has only {len(groups)} blocks"
    if position >= len(groups[block]):
        return f"deepen block {block} position {position}: the block has only {len(groups[block])} layers"
    return groups[block][position], KERNEL_SIZES[kernel]
