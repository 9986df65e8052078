"""TE-NAS's DARTS supernet: every op on every edge, a `Mask` choosing the live ones.

It follows TE-NAS's DARTS search network (``NASNetworkDARTS`` with
``NASNetSearchCell``) rather than DARTS's own, because its κ and linear
regions are what the pruning search ranks.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from rayneas.spaces.common import GenotypeError
from rayneas.spaces.darts.genotype import CELL_TYPES, PRIMITIVES, STEPS, cell_edges
from rayneas.spaces.darts.network import preprocess_inputs
from rayneas.spaces.mask import Mask, check_mask
from rayneas.spaces.ops import DARTS_OPS


class MixedEdge(nn.Module):
    """Every DARTS op on one edge; the output is the mean of the live ones.

    TE-NAS weights the ops by a softmax of logits that are 0 (live) or −1000
    (pruned), i.e. the mean of the live ops, and skips ops whose weight is ≤
    0.01, so a pruned op is never run (its ReLUs add no linear-region pattern).
    """

    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(DARTS_OPS[name](c, stride) for name in PRIMITIVES)

    def forward(self, x: torch.Tensor, live: Sequence[int]) -> torch.Tensor:
        out = self.ops[live[0]](x)
        for k in live[1:]:
            out = out + self.ops[k](x)
        return out / len(live) if len(live) > 1 else out


class SuperCell(nn.Module):
    """TE-NAS's NASNetSearchCell: all edges of the DAG, each a `MixedEdge`."""

    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction, self.steps, self.multiplier, self.c = reduction, steps, multiplier, c
        self.preprocess0, self.preprocess1 = preprocess_inputs(c_prev_prev, c_prev, c, reduction_prev)
        self.edges = nn.ModuleList(
            MixedEdge(c, 2 if reduction and state < 2 else 1) for _, state in cell_edges(steps)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, live: Sequence[Sequence[int]]) -> torch.Tensor:
        """``live[e]``: indices of the ops evaluated on edge ``e`` (empty: the edge is cut)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        stride = 2 if self.reduction else 1
        edge = 0
        for _ in range(self.steps):
            total = None
            for state in states:
                if live[edge]:
                    out = self.edges[edge](state, live[edge])
                    total = out if total is None else total + out
                edge += 1
            if total is None:  # every input of this node is cut: it contributes zeros
                ref = states[1][:, :, ::stride, ::stride]
                total = ref.new_zeros(ref.shape[0], self.c, ref.shape[2], ref.shape[3])
            states.append(total)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSuperNet(nn.Module):
    """TE-NAS's DARTS search network, with one `Mask` shared by all cells of a type.

    Layout (TE-NAS ``NASNetworkDARTS``): three stages of ``cells_per_stage``
    cells, a reduction cell opening stages 2 and 3, cut to the first ``layers``
    cells; with the defaults that is one normal and one reduction cell, the κ
    network of the paper (C=1, stem multiplier 1). TE-NAS's thin network for
    linear regions is ``DartsSuperNet(C=1, layers=2, use_stem=False,
    in_channels=1)``: the 1-channel input is both s0 and s1 of the first cell.

    Mask: cell types ``normal`` and ``reduce``, one op tuple per edge in
    `cell_edges` order; an edge is evaluated when it has a live op, and an
    empty tuple (the "keep the top-2 incoming edges per node" phase) cuts it.

    ``exclude_none`` (default True, as TE-NAS): TE-NAS's ``prune_tenas.py`` sets
    the logit of op 0 — ``none`` in its DARTS space — to −∞ before every round
    and builds the genotype without ``none``, so ``none`` is never a candidate
    and only the other 7 ops are pruned. With it, masks that make ``none`` live
    are refused. (TE-NAS lists the ops in another order; this module uses
    DARTS's `PRIMITIVES` order throughout.)

    Differences from DARTS's own search network, all as in TE-NAS: affine BN,
    no BN after the pooling ops, and a final BN+ReLU before global pooling.
    ``forward`` returns the logits only.
    """

    def __init__(self, C: int = 1, num_classes: int = 10, layers: int = 2, steps: int = STEPS,
                 multiplier: int = 4, stem_multiplier: int = 1, use_stem: bool = True, in_channels: int = 3,
                 cells_per_stage: int = 1, exclude_none: bool = True) -> None:
        super().__init__()
        for name, value in (("C", C), ("num_classes", num_classes), ("steps", steps),
                            ("stem_multiplier", stem_multiplier), ("in_channels", in_channels),
                            ("cells_per_stage", cells_per_stage)):
            if value < 1:
                raise ValueError(f"DartsSuperNet: {name} must be >= 1, got {value}")
        if not 1 <= layers <= 3 * cells_per_stage:
            raise ValueError(f"DartsSuperNet: layers must be in 1..{3 * cells_per_stage} (3 stages of "
                             f"cells_per_stage={cells_per_stage} cells), got {layers}")
        if not 1 <= multiplier <= steps:
            raise ValueError(f"DartsSuperNet: multiplier (nodes concatenated) must be in 1..{steps}, "
                             f"got {multiplier}")
        self.steps, self.multiplier, self.exclude_none = steps, multiplier, exclude_none
        self.num_edges = len(cell_edges(steps))
        if use_stem:
            c_stem = C * stem_multiplier
            self.stem: nn.Module = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                                 nn.BatchNorm2d(c_stem))
        else:
            c_stem = in_channels
            self.stem = nn.Identity()
        n = cells_per_stage
        channels = [C] * n + [2 * C] * n + [4 * C] * n
        reductions = ([False] * n + [True] + [False] * (n - 1) + [True] + [False] * (n - 1))
        self.cells = nn.ModuleList()
        c_prev_prev, c_prev, reduction_prev = c_stem, c_stem, False
        for c, reduction in list(zip(channels, reductions))[:layers]:
            self.cells.append(SuperCell(steps, multiplier, c_prev_prev, c_prev, c, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, multiplier * c, reduction
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        searched = tuple(op for op in PRIMITIVES if not (exclude_none and op == "none"))
        self.set_mask(Mask.full(CELL_TYPES, self.num_edges, searched))

    @property
    def mask(self) -> Mask:
        return self._mask

    def set_mask(self, mask: Mask) -> None:
        """Evaluate only the ops ``mask`` keeps live (weights stay: every op of every edge is built)."""
        check_mask(mask, CELL_TYPES, self.num_edges, PRIMITIVES, f"a DARTS supernet with {self.steps} nodes")
        if self.exclude_none:
            for t, edges in mask.items():
                on = [e for e, ops in enumerate(edges) if "none" in ops]
                if on:
                    raise GenotypeError(f"the mask makes 'none' live on {t} edges {on}, but this supernet "
                                        f"excludes 'none' (exclude_none=True); drop it from those edges or "
                                        f"build the supernet with exclude_none=False")
        self._mask = mask
        self._live: dict[str, list[list[int]]] = {t: mask.live_indices(t, PRIMITIVES) for t in CELL_TYPES}

    # forward ----------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self._live["reduce" if cell.reduction else "normal"])
        return self.classifier(self.global_pooling(self.lastact(s1)).flatten(1))
