"""The live-op mask TE-NAS prunes: one model for the NAS-Bench-201 and DARTS supernets.

A mask says, per cell type and edge, which ops are still live; an empty tuple
is a cut edge (DARTS's edge rounds). It is immutable and hashable, so search
states, scoring tasks and pruned candidates can share one without copying,
and its JSON form ``{cell type: [[op, ...], ...]}`` is what ``state.json``
stored before this class existed, so saved runs resume unchanged. A mask
knows no space: the network it is set on checks it with `check_mask`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, Mapping, Sequence

from rayneas.spaces.common import GenotypeError

EdgeOps = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Mask:
    """``cells``: (cell type, live ops of every edge) pairs, in the space's cell order.

    Build one with `from_json` or `full`; the constructor wants the nested
    tuples that keep a mask hashable.
    """

    cells: tuple[tuple[str, tuple[EdgeOps, ...]], ...]

    def __post_init__(self) -> None:
        edge_lists = [edges for _, edges in self.cells]
        if not all(isinstance(part, tuple) for part in [self.cells, *edge_lists, *(o for e in edge_lists for o in e)]):
            raise TypeError("Mask(cells) takes nested tuples; build masks from lists with Mask.from_json")
        for cell, edges in self.cells:
            for edge, ops in enumerate(edges):
                repeated = sorted({op for op in ops if ops.count(op) > 1})
                if repeated:
                    raise GenotypeError(f"mask {cell} edge {edge} lists {repeated} more than once; "
                                        f"list each live op once")

    @classmethod
    def from_json(cls, data: Mapping[str, Iterable[Iterable[str]]]) -> "Mask":
        """Read the plain form of `to_json` (also the form of old ``state.json`` files)."""
        if not isinstance(data, Mapping) or not data:
            raise GenotypeError(f"a mask must be a non-empty mapping {{cell type: [[op, ...] per edge]}}, "
                                f"got {data!r}")
        cells = []
        for cell, edges in data.items():
            if not isinstance(cell, str) or isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
                raise GenotypeError(f"mask entry {cell!r}: expected a cell-type name and a list of per-edge op "
                                    f"lists, got {edges!r}")
            cells.append((cell, tuple(_edge_ops(cell, edge, ops) for edge, ops in enumerate(edges))))
        return cls(tuple(cells))

    @classmethod
    def full(cls, cell_types: Sequence[str], num_edges: int, ops: Sequence[str]) -> "Mask":
        """Every op in ``ops`` live on every edge: where a pruning search starts."""
        return cls(tuple((cell, (tuple(ops),) * num_edges) for cell in cell_types))

    def to_json(self) -> dict[str, list[list[str]]]:
        return {cell: [list(ops) for ops in edges] for cell, edges in self.cells}

    @property
    def cell_types(self) -> tuple[str, ...]:
        return tuple(cell for cell, _ in self.cells)

    def __getitem__(self, cell: str) -> tuple[EdgeOps, ...]:
        for name, edges in self.cells:
            if name == cell:
                return edges
        raise GenotypeError(f"the mask has no cell type {cell!r}; it has {', '.join(self.cell_types)}")

    def items(self) -> Iterator[tuple[str, tuple[EdgeOps, ...]]]:
        return iter(self.cells)

    def without(self, cell: str, edge: int, op: str) -> "Mask":
        """The mask with ``op`` no longer live on ``edge`` of ``cell`` (removing an edge's last op cuts it)."""
        edges = self[cell]
        if not 0 <= edge < len(edges):
            raise GenotypeError(f"{cell} has edges 0..{len(edges) - 1}, not {edge}")
        if op not in edges[edge]:
            raise GenotypeError(f"{op!r} is not live on {cell} edge {edge} (live: {list(edges[edge])}); "
                                f"remove one of those")
        pruned = tuple(tuple(o for o in ops if o != op) if e == edge else ops for e, ops in enumerate(edges))
        return Mask(tuple((name, pruned if name == cell else old) for name, old in self.cells))

    def live_op_count(self) -> int:
        return sum(len(ops) for _, edges in self.cells for ops in edges)

    def is_final(self) -> bool:
        """No edge has an op left to choose: the op rounds are over (DARTS may still have edge rounds)."""
        return all(len(ops) <= 1 for _, edges in self.cells for ops in edges)

    def live_indices(self, cell: str, ops: Sequence[str]) -> list[list[int]]:
        """Per edge, the positions in ``ops`` of its live ops, in ``ops`` order (how networks index built ops)."""
        return [[k for k, op in enumerate(ops) if op in live] for live in self[cell]]


def check_mask(mask: object, cell_types: Sequence[str], num_edges: int, ops: Sequence[str], where: str) -> Mask:
    """``mask`` if it fits ``where`` (exactly ``cell_types``, ``num_edges`` each, ops from ``ops``); else raise.

    Networks call this before reading a mask, so a mask from another space or
    a hand-edited state fails here with its problem named, not deep in a forward.
    """
    if not isinstance(mask, Mask):
        raise GenotypeError(f"{where} needs a rayneas.spaces.mask.Mask, got {type(mask).__name__}; "
                            f"read plain {{cell: [[op, ...], ...]}} data with Mask.from_json")
    if mask.cell_types != tuple(cell_types):
        raise GenotypeError(f"{where} needs a mask of cell types {list(cell_types)}, got "
                            f"{list(mask.cell_types)}; start from the space's initial mask")
    for cell, edges in mask.items():
        if len(edges) != num_edges:
            raise GenotypeError(f"mask {cell} has {len(edges)} edges but a cell of {where} has {num_edges}; "
                                f"give one op list per edge (an empty list cuts the edge)")
        for edge, live in enumerate(edges):
            unknown = [op for op in live if op not in ops]
            if unknown:
                raise GenotypeError(f"mask {cell} edge {edge}: {where} has no op(s) {unknown}; "
                                    f"choose from {', '.join(ops)}")
    return mask


def _edge_ops(cell: str, edge: int, ops: Any) -> EdgeOps:
    if isinstance(ops, (str, bytes)) or not isinstance(ops, Iterable):
        raise GenotypeError(f"mask {cell} edge {edge}: expected a list of op names, got {ops!r}")
    names = tuple(ops)
    if not all(isinstance(op, str) for op in names):
        raise GenotypeError(f"mask {cell} edge {edge}: op names must be strings, got {list(names)!r}")
    return names
