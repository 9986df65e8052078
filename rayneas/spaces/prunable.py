"""The two supernet spaces (NB201, DARTS) behind one interface: masks, rounds, networks, genotypes.

TE-NAS prunes them round by round; a zero-cost search masks them to sampled
cells; both score the same networks this way.

A mask is the spaces' immutable `Mask` (cell type → live op names per edge;
NB201 has the single cell type ``"cell"``); an empty op tuple is a cut edge
(the DARTS edge rounds). The search loop only asks a space for the next round
and the networks of a mask; everything specific to NB201 or DARTS lives here.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Literal, NamedTuple

from torch import nn

from rayneas.spaces import darts, nb201
from rayneas.spaces.mask import Mask

#: Ops a supernet edge may hold, in the space's own order; `none` is never searched (as in TE-NAS).
SEARCH_OPS: dict[str, tuple[str, ...]] = {"nb201": nb201.SEARCH_OPS,
                                          "darts": tuple(op for op in darts.PRIMITIVES if op != "none")}
#: Classifier width of the search networks for each dataset (ImageNet16-120 has 120 classes).
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "imagenet16": 120, "imagenet": 1000}

Phase = Literal["ops", "edges"]


class Candidate(NamedTuple):
    """Removing ``op`` from ``edge`` of ``cell`` (in an edge round: the edge's only op, cutting it)."""

    cell: str
    edge: int
    op: str


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """One pruning round: its candidates, the group each belongs to, and how many each group prunes."""

    phase: Phase
    candidates: tuple[Candidate, ...]
    groups: tuple[tuple[str, int], ...]
    quotas: dict[tuple[str, int], int]


def _op_round(mask: Mask, prune_number: int) -> RoundPlan | None:
    """Every live op of every edge that still has a choice; each edge prunes up to ``prune_number``."""
    if mask.is_final():
        return None
    candidates, groups, quotas = [], [], {}
    for cell, edges in mask.items():
        for edge, ops in enumerate(edges):
            if len(ops) > 1:
                quotas[(cell, edge)] = min(prune_number, len(ops) - 1)
                for op in ops:
                    candidates.append(Candidate(cell, edge, op))
                    groups.append((cell, edge))
    return RoundPlan("ops", tuple(candidates), tuple(groups), quotas)


class PrunableSpace(abc.ABC):
    """A supernet TE-NAS can prune: what a round scores and which networks score it."""

    name: str

    @abc.abstractmethod
    def initial_mask(self) -> Mask:
        """Every searchable op live on every edge (``none`` excluded, as in TE-NAS)."""

    @abc.abstractmethod
    def next_round(self, mask: Mask, prune_number: int, edges_per_node: int) -> RoundPlan | None:
        """The round to run on ``mask``, or None when the mask is a final cell."""

    @abc.abstractmethod
    def kappa_net(self, mask: Mask) -> nn.Module:
        """The supernet κ is computed on, every op built (so a mask never changes the init), ``mask`` live.

        Scorers reuse it for later masks through its ``set_mask(mask)``."""

    @abc.abstractmethod
    def regions_net(self, mask: Mask) -> nn.Module:
        """The thin 1-channel copy linear regions are counted on, every op built, ``mask`` live (``set_mask``)."""

    @abc.abstractmethod
    def eval_net(self, mask: Mask) -> nn.Module:
        """The evaluation-size supernet the ``eval``-network indicators score, every op built, ``mask`` live."""

    @abc.abstractmethod
    def genotype(self, mask: Mask) -> Any:
        """The final cell of a fully pruned mask."""

    @abc.abstractmethod
    def genotype_text(self, genotype: Any) -> str:
        """The space's usual text form (NB201 string, DARTS ``Genotype(...)``)."""

    @abc.abstractmethod
    def parse_genotype(self, text: str) -> Any:
        """Inverse of `genotype_text`."""

    @abc.abstractmethod
    def final_network(self, genotype: Any, C: int | None, layers: int | None,
                      auxiliary: bool) -> tuple[nn.Module, dict]:
        """The network to train from the found cell (the paper's size where C/layers are None), and its recipe.

        The recipe, ``{"builder": "module:callable", "kwargs": {...}}``, rebuilds
        the same module as ``builder(genotype=genotype, **kwargs)``.
        """

    @abc.abstractmethod
    def edge_label(self, edge: int) -> str:
        """``"to<-from"`` with the space's node numbering."""

    @abc.abstractmethod
    def node_of(self, edge: int) -> int:
        """The node an edge enters."""


@dataclasses.dataclass(frozen=True)
class NB201Prunable(PrunableSpace):
    """NAS-Bench-201 supernet: C=3, N=1 with stem for κ; one C=1 cell without stem for regions.

    The eval network is the supernet at the benchmark's size (``eval_C`` ×
    ``eval_N``, default 16 × 5): masked to one op per edge it computes what
    ``nb201.build(cell)`` computes, with the same parameters in use.
    """

    dataset: str = "cifar10"
    C: int = 3
    N: int = 1
    ops: tuple[str, ...] = nb201.SEARCH_OPS
    eval_C: int = 16
    eval_N: int = 5
    name = "nb201"

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.dataset]

    def initial_mask(self) -> Mask:
        return nb201.search_mask(self.ops)

    def next_round(self, mask: Mask, prune_number: int, edges_per_node: int) -> RoundPlan | None:
        return _op_round(mask, prune_number)

    def kappa_net(self, mask: Mask) -> nn.Module:
        return nb201.supernet(self.C, self.N, self.num_classes, mask=mask)

    def eval_net(self, mask: Mask) -> nn.Module:
        return nb201.supernet(self.eval_C, self.eval_N, self.num_classes, mask=mask)

    def regions_net(self, mask: Mask) -> nn.Module:
        net = nb201.thin_network([list(nb201.SEARCH_OPS) for _ in nb201.EDGES], num_classes=self.num_classes)
        net.set_mask(mask)
        return net

    def genotype(self, mask: Mask) -> nb201.Genotype:
        return nb201.genotype_from_mask(mask)

    def genotype_text(self, genotype: nb201.Genotype) -> str:
        return genotype.to_string()

    def parse_genotype(self, text: str) -> nb201.Genotype:
        return nb201.parse(text)

    def final_network(self, genotype: nb201.Genotype, C: int | None, layers: int | None,
                      auxiliary: bool) -> tuple[nn.Module, dict]:
        kwargs = {"C": C or 16, "N": layers or 5, "num_classes": self.num_classes}
        return nb201.build(genotype, **kwargs), {"builder": "rayneas.spaces.nb201:build", "kwargs": kwargs}

    def edge_label(self, edge: int) -> str:
        dst, src = nb201.EDGES[edge]
        return f"{dst}<-{src}"

    def node_of(self, edge: int) -> int:
        return nb201.EDGES[edge][0]


@dataclasses.dataclass(frozen=True)
class DartsPrunable(PrunableSpace):
    """DARTS supernet: two cells (normal, reduce), C=1, stem multiplier 1, 4 steps, multiplier 4.

    Op rounds until one op per edge remains, then one edge round per node with
    more than ``edges_per_node`` inputs (normal cell first, nodes in order),
    each ranked on its own and keeping the edges whose removal would hurt
    most, as TE-NAS's ``prune_func_rank_group`` does.
    """

    dataset: str = "cifar10"
    C: int = 1
    ops: tuple[str, ...] = SEARCH_OPS["darts"]
    eval_C: int = 36
    eval_layers: int = 20
    name = "darts"

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.dataset]

    def initial_mask(self) -> Mask:
        return Mask.full(darts.CELL_TYPES, darts.NUM_EDGES, self.ops)

    def next_round(self, mask: Mask, prune_number: int, edges_per_node: int) -> RoundPlan | None:
        plan = _op_round(mask, prune_number)
        if plan is not None:
            return plan
        for cell in darts.CELL_TYPES:
            for node in range(darts.STEPS):
                live = [e for e, (n, _) in enumerate(darts.EDGES) if n == node and mask[cell][e]]
                if len(live) > edges_per_node:
                    candidates = tuple(Candidate(cell, e, mask[cell][e][0]) for e in live)
                    group = (cell, node)
                    return RoundPlan("edges", candidates, (group,) * len(live), {group: len(live) - edges_per_node})
        return None

    @staticmethod
    def _masked(net: darts.DartsSuperNet, mask: Mask) -> darts.DartsSuperNet:
        net.set_mask(mask)
        return net

    def kappa_net(self, mask: Mask) -> nn.Module:
        return self._masked(darts.DartsSuperNet(C=self.C, num_classes=self.num_classes, layers=2,
                                                stem_multiplier=1), mask)

    def eval_net(self, mask: Mask) -> nn.Module:
        """TE-NAS's supernet layout at DARTS's evaluation size: ``eval_layers`` cells of ``eval_C`` channels
        (stem multiplier 3), three stages of ⌈layers/3⌉ cells, the 2nd and 3rd opened by a reduction cell."""
        per_stage = -(-self.eval_layers // 3)
        return self._masked(darts.DartsSuperNet(C=self.eval_C, num_classes=self.num_classes, layers=self.eval_layers,
                                                stem_multiplier=3, cells_per_stage=per_stage), mask)

    def regions_net(self, mask: Mask) -> nn.Module:
        return self._masked(darts.DartsSuperNet(C=1, num_classes=self.num_classes, layers=2, use_stem=False,
                                                in_channels=1), mask)

    def genotype(self, mask: Mask) -> darts.Genotype:
        return darts.genotype_from_mask(mask)

    def genotype_text(self, genotype: darts.Genotype) -> str:
        return darts.format_genotype(genotype)

    def parse_genotype(self, text: str) -> darts.Genotype:
        return darts.parse_genotype(text)

    def final_network(self, genotype: darts.Genotype, C: int | None, layers: int | None,
                      auxiliary: bool) -> tuple[nn.Module, dict]:
        """DARTS's evaluation network: ImageNet C=48, 14 cells; otherwise the CIFAR one, C=36, 20 cells."""
        imagenet = self.dataset == "imagenet"
        builder = darts.DartsNetworkImageNet if imagenet else darts.DartsNetworkCIFAR
        kwargs = {"C": C or (48 if imagenet else 36), "num_classes": self.num_classes,
                  "layers": layers or (14 if imagenet else 20), "auxiliary": auxiliary}
        net = builder(kwargs["C"], kwargs["num_classes"], kwargs["layers"], genotype, auxiliary=auxiliary)
        return net, {"builder": f"rayneas.spaces.darts:{builder.__name__}", "kwargs": kwargs}

    def edge_label(self, edge: int) -> str:
        node, state = darts.EDGES[edge]
        return f"{node + 2}<-{state}"

    def node_of(self, edge: int) -> int:
        return darts.EDGES[edge][0] + 2


#: The spaces by name, each built from its dataset alone with the search's default sizes.
PRUNABLE: dict[str, type[PrunableSpace]] = {"nb201": NB201Prunable, "darts": DartsPrunable}


def make_space(cfg: Any) -> PrunableSpace:
    """The space of ``cfg`` (any config with ``space``, ``dataset``, ``supernet`` and ``proxy_net``)."""
    # Listed in the space's order whatever the config's order, so masks and tables read the same.
    ops = tuple(op for op in SEARCH_OPS[cfg.space] if cfg.supernet.ops is None or op in cfg.supernet.ops)
    size = cfg.proxy_net
    if cfg.space == "nb201":
        return NB201Prunable(cfg.dataset, cfg.supernet.C, cfg.supernet.N, ops, size.C or 16, size.layers or 5)
    return DartsPrunable(cfg.dataset, cfg.supernet.C, ops, size.C or 36, size.layers or 20)
