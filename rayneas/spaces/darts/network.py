"""DARTS's evaluation networks (``cnn/model.py``), layer for layer.

Following DARTS exactly means a genotype found by TE-NAS here trains as the
same network DARTS, TE-NAS and their successors report, so accuracies are
comparable with the papers.
"""
from __future__ import annotations

import abc

import torch
from torch import nn

from rayneas.spaces.common import GenotypeError
from rayneas.spaces.darts.genotype import Genotype
from rayneas.spaces.ops import DARTS_OPS, FactorizedReduce, ReLUConvBN


def preprocess_inputs(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to ``c`` channels and the same size.

    After a reduction cell, s0 has twice the resolution of s1 and is halved by
    FactorizedReduce. The shared FactorizedReduce pads right/bottom by one
    before its offset conv: on even sizes that reads exactly the pixels of
    DARTS's unpadded version (tests check it), and on the odd 3×3 inputs of the
    thin TE-NAS network both halves come out ⌈H/2⌉ wide, where DARTS's
    version would give 2 and 1 and fail to concatenate.
    """
    pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
    return pre0, ReLUConvBN(c_prev, c, 1, 1, 0)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob``, rescaling the rest (DARTS utils)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """One cell of a DARTS evaluation network: two chosen ops per node."""

    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocess_inputs(c_prev_prev, c_prev, c, reduction_prev)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.multiplier = len(self.concat)
        self.indices = [index for _, index in edges]
        self._ops = nn.ModuleList(
            DARTS_OPS[name](c, 2 if reduction and index < 2 else 1) for name, index in edges
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self._ops) // 2):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self._ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


def _auxiliary_head(c: int, num_classes: int, pool_stride: int, bn_after_768: bool) -> nn.Sequential:
    """DARTS's auxiliary classifier (CIFAR: 8×8 in, pool stride 3; ImageNet: 14×14 in, stride 2).

    DARTS's ImageNet head lacks the BN after its 768-channel conv ("omitted due
    to a typo", kept so for consistency with the paper), hence the flag.
    """
    layers: list[nn.Module] = [
        nn.ReLU(inplace=False),
        nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),
        nn.Conv2d(c, 128, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(inplace=False),
        nn.Conv2d(128, 768, 2, bias=False),
    ]
    if bn_after_768:
        layers.append(nn.BatchNorm2d(768))
    layers += [nn.ReLU(inplace=False), nn.Flatten(), nn.Linear(768, num_classes)]
    return nn.Sequential(*layers)


class _DartsNetwork(nn.Module, abc.ABC):
    """Cells stacked as in DARTS: reductions at ``layers // 3`` and ``2 * layers // 3``.

    ``forward`` returns ``(logits, auxiliary_logits)`` like DARTS; the second
    is None unless the network has an auxiliary head and is training.
    ``drop_path_prob`` is read at every forward (DARTS's training loop raises
    it linearly over the epochs).
    """

    def __init__(self, genotype: Genotype, C: int, num_classes: int, layers: int, c_stem: int,
                 reduction_prev: bool, auxiliary: bool, drop_path_prob: float, aux_pool_stride: int,
                 aux_bn_after_768: bool) -> None:
        super().__init__()
        if not isinstance(genotype, Genotype):
            raise GenotypeError(f"expected a Genotype (use parse_genotype for text), got {type(genotype).__name__}")
        if layers < 3:
            raise ValueError(f"a DARTS network needs at least 3 layers (two reductions), got layers={layers}")
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1), got {drop_path_prob}")
        self.genotype = genotype
        self.drop_path_prob = drop_path_prob
        self._aux_at = 2 * layers // 3
        c_prev_prev, c_prev, c_curr = c_stem, c_stem, C
        self.cells = nn.ModuleList()
        c_aux = 0
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = DartsCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self._aux_at:
                c_aux = c_prev
        self.auxiliary_head = (
            _auxiliary_head(c_aux, num_classes, aux_pool_stride, aux_bn_after_768) if auxiliary else None
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    @abc.abstractmethod
    def stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs of the first cell."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        s0, s1 = self.stem_states(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_at and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), logits_aux


class DartsNetworkCIFAR(_DartsNetwork):
    """DARTS's NetworkCIFAR (paper: C=36, 20 layers, auxiliary weight 0.4, drop-path 0.2)."""

    def __init__(self, C: int, num_classes: int, layers: int, genotype: Genotype, auxiliary: bool = False,
                 drop_path_prob: float = 0.0) -> None:
        stem_multiplier = 3
        super().__init__(genotype, C, num_classes, layers, stem_multiplier * C, False, auxiliary,
                         drop_path_prob, aux_pool_stride=3, aux_bn_after_768=True)
        self.stem = nn.Sequential(nn.Conv2d(3, stem_multiplier * C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem_multiplier * C))

    def stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class DartsNetworkImageNet(_DartsNetwork):
    """DARTS's NetworkImageNet (paper: C=48, 14 layers, 1000 classes, 224×224 input).

    DARTS pools with ``AvgPool2d(7)``, the whole 7×7 map at 224×224; adaptive
    pooling is the same there and also accepts other input sizes.
    """

    def __init__(self, C: int, num_classes: int, layers: int, genotype: Genotype, auxiliary: bool = False,
                 drop_path_prob: float = 0.0) -> None:
        super().__init__(genotype, C, num_classes, layers, C, True, auxiliary, drop_path_prob,
                         aux_pool_stride=2, aux_bn_after_768=False)
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=False),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )

    def stem_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
