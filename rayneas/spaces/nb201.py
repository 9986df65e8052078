"""The NAS-Bench-201 cell space: genotype strings, benchmark indices, networks.

One cell class serves both the fixed networks of the benchmark (one op per
edge) and the TE-NAS supernet (several ops per edge, each edge the mean of its
live ops), so a one-hot supernet is, op for op, the benchmark's network.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import resources
from typing import Sequence

import numpy as np
import torch
from torch import nn

from rayneas.spaces.common import GenotypeError
from rayneas.spaces.mask import Mask, check_mask
from rayneas.spaces.ops import Pooling, ReLUConvBN, ResNetBasicBlock, Zero, skip_connect

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
OP_INDEX = {name: i for i, name in enumerate(OPS)}
#: (to_node, from_node) in the order the genotype string lists them.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)
NUM_ARCHS = len(OPS) ** NUM_EDGES  # 15,625
SEARCH_OPS: tuple[str, ...] = OPS[1:]  # TE-NAS masks `none` out of the supernet from the start
CELL_TYPES: tuple[str, ...] = ("cell",)  # every cell of the network shares one mask


@dataclasses.dataclass(frozen=True)
class Genotype:
    """One op per edge, in `EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES:
            raise GenotypeError(f"a NAS-Bench-201 cell has {NUM_EDGES} edges, got {len(self.ops)} ops")
        for edge, op in zip(EDGES, self.ops):
            if op not in OP_INDEX:
                raise GenotypeError(
                    f"unknown op {op!r} on edge {edge[1]}->{edge[0]}; choose one of {', '.join(OPS)}"
                )

    def to_string(self) -> str:
        nodes = []
        for node in (1, 2, 3):
            tokens = [f"{op}~{src}" for (dst, src), op in zip(EDGES, self.ops) if dst == node]
            nodes.append("|" + "|".join(tokens) + "|")
        return "+".join(nodes)

    __str__ = to_string

    @property
    def code(self) -> int:
        """Base-5 number of the ops (first edge most significant); not the benchmark index."""
        value = 0
        for op in self.ops:
            value = value * len(OPS) + OP_INDEX[op]
        return value

    @classmethod
    def from_code(cls, code: int) -> "Genotype":
        ops = []
        for _ in range(NUM_EDGES):
            code, digit = divmod(code, len(OPS))
            ops.append(OPS[digit])
        return cls(tuple(reversed(ops)))

    def is_connected(self) -> bool:
        """Whether any path of non-`none` ops leads from the input to the output node."""
        reach = {0}
        for (dst, src), op in zip(EDGES, self.ops):
            if op != "none" and src in reach:
                reach.add(dst)
        return 3 in reach


def parse(text: str) -> Genotype:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, pointing at the bad token on error."""
    if not isinstance(text, str):
        raise GenotypeError(f"expected a genotype string, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise GenotypeError(
            f"{text!r}: expected 3 nodes separated by '+', found {len(nodes)}; "
            "example: |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        )
    ops: list[str] = []
    for node, part in enumerate(nodes, start=1):
        if not (part.startswith("|") and part.endswith("|")) or len(part) < 2:
            raise GenotypeError(f"{text!r}: node {node} {part!r} must start and end with '|'")
        tokens = part[1:-1].split("|")
        if len(tokens) != node:
            raise GenotypeError(f"{text!r}: node {node} {part!r} needs {node} edge(s), found {len(tokens)}")
        for src, token in enumerate(tokens):
            name, sep, index = token.partition("~")
            if not sep:
                raise GenotypeError(f"{text!r}: token {token!r} must look like op~{src}")
            if index != str(src):
                raise GenotypeError(f"{text!r}: token {token!r} must come from node {src} (write {name}~{src})")
            if name not in OP_INDEX:
                raise GenotypeError(f"{text!r}: unknown op {name!r} in token {token!r}; choose one of {', '.join(OPS)}")
            ops.append(name)
    return Genotype(tuple(ops))


@lru_cache(maxsize=1)
def _index_to_code() -> np.ndarray:
    """The benchmark's own (shuffled) order of the 15,625 cells, as base-5 codes."""
    with resources.files("rayneas.resources").joinpath("nb201_order.npy").open("rb") as fh:
        table = np.load(fh)
    return table


@lru_cache(maxsize=1)
def _code_to_index() -> np.ndarray:
    return np.argsort(_index_to_code())


def from_index(index: int) -> Genotype:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < NUM_ARCHS:
        raise GenotypeError(f"NAS-Bench-201 index must be an integer in 0..{NUM_ARCHS - 1}, got {index!r}")
    return Genotype.from_code(int(_index_to_code()[index]))


def index_of(genotype: Genotype) -> int:
    return int(_code_to_index()[genotype.code])


def resolve(arch: "str | int | Genotype") -> Genotype:
    """A genotype from a string, a benchmark index, or a digit string of one."""
    if isinstance(arch, Genotype):
        return arch
    if isinstance(arch, str) and arch.strip().isdigit():
        return from_index(int(arch))
    if isinstance(arch, str):
        return parse(arch)
    return from_index(arch)


def sample(rng: np.random.Generator) -> Genotype:
    return Genotype(tuple(OPS[i] for i in rng.integers(0, len(OPS), NUM_EDGES)))


def make_op(name: str, c_in: int, c_out: int, stride: int, affine: bool, track: bool) -> nn.Module:
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        return skip_connect(c_in, c_out, stride, affine, track)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0, 1, affine, track)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1, 1, affine, track)
    if name == "avg_pool_3x3":
        return Pooling(c_in, c_out, stride, "avg", affine, track)
    raise GenotypeError(f"unknown op {name!r}; choose one of {', '.join(OPS)}")


class Cell(nn.Module):
    """A 4-node cell; each edge outputs the mean of its live ops (one op: that op)."""

    def __init__(self, c_in: int, c_out: int, edge_ops: Sequence[Sequence[str]], affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.c_out = c_out
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, c_in if src == 0 else c_out, c_out, 1, affine, track_running_stats)
                           for op in ops})
            for (dst, src), ops in zip(EDGES, edge_ops)
        )
        self.live: list[list[str]] = [list(ops) for ops in edge_ops]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            total = None
            for e, (d, src) in enumerate(EDGES):
                if d != dst or not self.live[e]:
                    continue
                ops = self.edges[e]
                out = ops[self.live[e][0]](nodes[src])
                for name in self.live[e][1:]:
                    out = out + ops[name](nodes[src])
                if len(self.live[e]) > 1:
                    out = out / len(self.live[e])
                total = out if total is None else total + out
            if total is None:  # every incoming edge pruned away
                total = x.new_zeros(x.shape[0], self.c_out, x.shape[2], x.shape[3])
            nodes.append(total)
        return nodes[-1]


class NB201Network(nn.Module):
    """NAS-Bench-201's TinyNetwork: stem, 3 stages of N cells, residual reductions, pool, classifier.

    ``depth`` keeps only the first ``depth`` cells/blocks and ``use_stem=False``
    feeds the input straight into the first cell: the thin network TE-NAS counts
    linear regions on.
    """

    def __init__(self, edge_ops: Sequence[Sequence[str]], C: int = 16, N: int = 5, num_classes: int = 10, *,
                 use_stem: bool = True, depth: int | None = None, in_channels: int = 3, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if len(edge_ops) != NUM_EDGES:
            raise GenotypeError(f"need ops for {NUM_EDGES} edges, got {len(edge_ops)}")
        if not use_stem and in_channels != C:
            raise ValueError(f"without a stem the input channels ({in_channels}) must equal C ({C})")
        self.edge_ops = [tuple(ops) for ops in edge_ops]
        self.stem = (
            nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
            if use_stem else nn.Identity()
        )
        channels = [C] * N + [C * 2] + [C * 2] * N + [C * 4] + [C * 4] * N
        reductions = [False] * N + [True] + [False] * N + [True] + [False] * N
        if depth is not None:
            channels, reductions = channels[:depth], reductions[:depth]
        cells: list[nn.Module] = []
        c_prev = C
        for c, reduction in zip(channels, reductions):
            if reduction:
                cells.append(ResNetBasicBlock(c_prev, c, 2, affine, track_running_stats))
            else:
                cells.append(Cell(c_prev, c, self.edge_ops, affine, track_running_stats))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def set_mask(self, mask: Mask) -> None:
        """Evaluate only the built ops ``mask`` keeps live, in every cell (weights stay as they are)."""
        check_mask(mask, CELL_TYPES, NUM_EDGES, OPS, "a NAS-Bench-201 network")
        live = mask["cell"]
        for e, names in enumerate(live):
            unknown = [op for op in names if op not in self.edge_ops[e]]
            if unknown:
                raise GenotypeError(f"mask cell edge {e}: this network has no op(s) {unknown} there (built: "
                                    f"{list(self.edge_ops[e])}); build it with those ops or drop them from the mask")
        for cell in self.cells:
            if isinstance(cell, Cell):
                cell.live = [[op for op in self.edge_ops[e] if op in names] for e, names in enumerate(live)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)


def build(genotype: "Genotype | str | int", C: int = 16, N: int = 5, num_classes: int = 10, **kwargs) -> NB201Network:
    """The benchmark's network for one cell (NAS-Bench-201 trained C=16, N=5)."""
    genotype = resolve(genotype)
    return NB201Network([[op] for op in genotype.ops], C, N, num_classes, **kwargs)


def thin_network(edge_ops: Sequence[Sequence[str]], **kwargs) -> NB201Network:
    """TE-NAS's network for linear regions: C=1, first cell only, no stem, 1-channel input."""
    return NB201Network(edge_ops, C=1, N=1, use_stem=False, depth=1, in_channels=1, **kwargs)


def search_mask(ops: Sequence[str] = SEARCH_OPS) -> Mask:
    """Every op of ``ops`` live on every edge: where a TE-NAS search starts."""
    return Mask.full(CELL_TYPES, NUM_EDGES, ops)


def mask_from_genotype(genotype: Genotype) -> Mask:
    """The mask that makes the supernet compute ``genotype``: its one op live on each edge."""
    return Mask.from_json({"cell": [[op] for op in genotype.ops]})


def genotype_from_mask(mask: Mask) -> Genotype:
    """The cell a fully pruned mask describes (one live op per edge), read without building a network."""
    check_mask(mask, CELL_TYPES, NUM_EDGES, OPS, "the NAS-Bench-201 space")
    live = mask["cell"]
    undecided = [e for e, ops in enumerate(live) if len(ops) != 1]
    if undecided:
        raise GenotypeError(f"edges {undecided} have {[list(live[e]) for e in undecided]} live; a genotype needs "
                            f"exactly one op per edge, so keep pruning")
    return Genotype(tuple(ops[0] for ops in live))


def supernet(C: int = 3, N: int = 1, num_classes: int = 10, mask: Mask | None = None, **kwargs) -> NB201Network:
    """The TE-NAS supernet (all search ops built on every edge) restricted to ``mask`` (default: all live)."""
    net = NB201Network([list(SEARCH_OPS) for _ in EDGES], C, N, num_classes, **kwargs)
    net.set_mask(mask or search_mask())
    return net
