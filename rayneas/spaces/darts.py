"""The DARTS cell space (Liu et al. 2019): genotypes, evaluation networks, TE-NAS supernet.

The evaluation networks follow DARTS's ``cnn/model.py`` layer for layer, so a
genotype found by TE-NAS here trains as the same network DARTS, TE-NAS and
their successors report. The supernet follows TE-NAS's DARTS search network
(``NASNetworkDARTS`` with ``NASNetSearchCell``), because its κ and linear
regions are what the pruning search ranks.

Cell layout (DARTS): states 0 and 1 are the two cell inputs (outputs of the
cells two back and one back); intermediate node ``i`` (0-based) is state
``i + 2`` and sums two edges, each an op applied to an earlier state; the cell
outputs the concatenation of the states in ``*_concat``.
"""
from __future__ import annotations

import abc
import ast
import collections
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from rayneas.spaces.ops import DARTS_OPS, FactorizedReduce, ReLUConvBN

#: DARTS's `genotypes.PRIMITIVES`; also the column order of the supernet's op masks.
PRIMITIVES: tuple[str, ...] = tuple(DARTS_OPS)
OP_INDEX = {name: i for i, name in enumerate(PRIMITIVES)}
STEPS = 4  # intermediate nodes per DARTS cell
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
_EXAMPLE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5], "
            "reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])")


class GenotypeError(ValueError):
    """A DARTS genotype (text, dict, tuple or supernet mask) is malformed."""


def cell_edges(steps: int = STEPS) -> list[tuple[int, int]]:
    """(node, input state) of every supernet edge, in DARTS's and TE-NAS's edge order."""
    return [(node, state) for node in range(steps) for state in range(node + 2)]


EDGES: tuple[tuple[int, int], ...] = tuple(cell_edges())
NUM_EDGES = len(EDGES)  # 14


def _edge_list(value: Any, field: str) -> list[tuple[str, int]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise GenotypeError(f"genotype.{field} must be a list of (op, input) pairs, got {value!r}")
    edges = []
    for k, edge in enumerate(value):
        if isinstance(edge, (str, bytes)) or not isinstance(edge, Sequence) or len(edge) != 2:
            raise GenotypeError(f"genotype.{field}[{k}] must be an (op, input) pair like ('sep_conv_3x3', 0), "
                                f"got {edge!r}")
        op, index = edge
        if not isinstance(op, str) or isinstance(index, bool) or not isinstance(index, int):
            raise GenotypeError(f"genotype.{field}[{k}] must be (str, int), got {edge!r}")
        edges.append((op, index))
    return edges


def _concat_list(value: Any, field: str) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise GenotypeError(f"genotype.{field} must be a list of state indices like [2, 3, 4, 5], got {value!r}")
    items = list(value)
    if not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise GenotypeError(f"genotype.{field} must be a non-empty list of ints like [2, 3, 4, 5], got {value!r}")
    return items


_GenotypeFields = collections.namedtuple("Genotype", _FIELDS)


class Genotype(_GenotypeFields):
    """DARTS's ``Genotype`` namedtuple, checked and canonicalised on construction.

    Concats are stored as lists, so ``range(2, 6)`` (DARTS's search logs) and
    ``[2, 3, 4, 5]`` (its published genotypes) give equal genotypes, and
    ``repr(DARTS_V2)`` is exactly the published string. The number of nodes is
    read from the edge count (2 per node), as DARTS's ``model.Cell`` does;
    `parse_genotype` and `Genotype.from_dict` also insist on the 4 nodes of the
    DARTS space.
    """

    __slots__ = ()

    def __new__(cls, normal: Any, normal_concat: Any, reduce: Any, reduce_concat: Any) -> "Genotype":
        self = super().__new__(cls, _edge_list(normal, "normal"), _concat_list(normal_concat, "normal_concat"),
                               _edge_list(reduce, "reduce"), _concat_list(reduce_concat, "reduce_concat"))
        for cell in CELL_TYPES:
            edges = getattr(self, cell)
            if not edges or len(edges) % 2:
                raise GenotypeError(f"genotype.{cell} has {len(edges)} edges; a DARTS cell needs exactly 2 per "
                                    f"node (8 for its 4 nodes)")
        if len(self.normal) != len(self.reduce):
            raise GenotypeError(f"genotype.normal has {len(self.normal)} edges but genotype.reduce has "
                                f"{len(self.reduce)}; both cells need 2 edges per node")
        for cell in CELL_TYPES:
            edges = getattr(self, cell)
            for k, (op, index) in enumerate(edges):
                node = k // 2
                if op not in OP_INDEX:
                    raise GenotypeError(f"genotype.{cell}[{k}]: unknown op {op!r}; choose one of "
                                        f"{', '.join(PRIMITIVES)}")
                if not 0 <= index < node + 2:
                    raise GenotypeError(
                        f"genotype.{cell}[{k}] {(op, index)!r}: input index {index} is out of range for node "
                        f"{node} (state {node + 2}), which can only read states 0..{node + 1}"
                    )
            concat = getattr(self, cell + "_concat")
            bad = [i for i in concat if not 0 <= i < self.steps + 2]
            if bad:
                raise GenotypeError(f"genotype.{cell}_concat {concat}: states {bad} do not exist; a cell with "
                                    f"{self.steps} nodes has states 0..{self.steps + 1}")
        return self

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    def canonical(self) -> "Genotype":
        """The same cells with each node's two edges ordered by (input, op).

        DARTS lists a node's edges strongest first, so one cell has two
        spellings; compare or deduplicate genotypes through this form.
        """
        def ordered(edges: list[tuple[str, int]]) -> list[tuple[str, int]]:
            return [e for k in range(0, len(edges), 2) for e in sorted(edges[k:k + 2], key=lambda e: (e[1], e[0]))]

        return Genotype(ordered(self.normal), self.normal_concat, ordered(self.reduce), self.reduce_concat)

    def to_dict(self) -> dict[str, list]:
        """A JSON-able form: pairs become 2-item lists."""
        return {
            "normal": [[op, index] for op, index in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, index] for op, index in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], steps: int = STEPS) -> "Genotype":
        if not isinstance(data, Mapping):
            raise GenotypeError(f"a genotype dict must be a mapping with keys {', '.join(_FIELDS)}, got {data!r}")
        unknown = sorted(set(data) - set(_FIELDS))
        missing = [f for f in _FIELDS if f not in data]
        if unknown or missing:
            raise GenotypeError(f"genotype dict: unknown keys {unknown}, missing keys {missing}; "
                                f"expected exactly {', '.join(_FIELDS)}")
        return _with_steps(cls(**{f: data[f] for f in _FIELDS}), steps)


def _with_steps(genotype: Genotype, steps: int) -> Genotype:
    if genotype.steps != steps:
        raise GenotypeError(f"genotype has {len(genotype.normal)} edges per cell; a DARTS cell needs "
                            f"{2 * steps} (2 per node, {steps} nodes)")
    return genotype


def _literal(node: ast.expr, text: str, field: str) -> Any:
    if (field.endswith("_concat") and isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "range" and not node.keywords):
        try:
            return range(*(_literal(arg, text, field) for arg in node.args))
        except TypeError:
            pass  # reported below with the offending text
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(f"genotype field {field}: cannot read {ast.get_source_segment(text, node)!r}; "
                            f"write plain lists, tuples, strings and ints (or range(a, b) for a concat)") from None


def parse_genotype(text: str, steps: int = STEPS) -> Genotype:
    """Read the text ``repr(genotype)`` gives (DARTS's published form), without evaluating code."""
    if not isinstance(text, str):
        raise GenotypeError(f"expected genotype text, got {type(text).__name__}")
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise GenotypeError(f"malformed genotype text ({exc.msg} at column {exc.offset}): {text!r}; "
                            f"expected {_EXAMPLE}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise GenotypeError(f"genotype text must be a single Genotype(...) call, got {text!r}; expected {_EXAMPLE}")
    if call.args:
        raise GenotypeError("genotype text must name its fields (normal=..., normal_concat=..., reduce=..., "
                            "reduce_concat=...) as repr() writes them")
    values: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg not in _FIELDS:
            raise GenotypeError(f"unknown genotype field {keyword.arg!r}; expected {', '.join(_FIELDS)}")
        if keyword.arg in values:
            raise GenotypeError(f"genotype field {keyword.arg!r} is given twice")
        values[keyword.arg] = _literal(keyword.value, text, keyword.arg)
    missing = [f for f in _FIELDS if f not in values]
    if missing:
        raise GenotypeError(f"genotype text lacks field(s) {', '.join(missing)}")
    return _with_steps(Genotype(**values), steps)


def format_genotype(genotype: Genotype) -> str:
    """The published DARTS text form, which `parse_genotype` reads back."""
    if not isinstance(genotype, Genotype):
        raise GenotypeError(f"expected a Genotype, got {type(genotype).__name__}")
    return repr(genotype)


DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


# --- evaluation networks (DARTS cnn/model.py) ------------------------------


def _preprocess(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
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
        self.preprocess0, self.preprocess1 = _preprocess(c_prev_prev, c_prev, c, reduction_prev)
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


# --- TE-NAS supernet ---------------------------------------------------------


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
        self.preprocess0, self.preprocess1 = _preprocess(c_prev_prev, c_prev, c, reduction_prev)
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


def genotype_masks(genotype: Genotype) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(op_mask, edge_mask) that make the supernet compute ``genotype`` (e.g. to score DARTS_V2).

    A supernet edge averages its ops, so a node reading one state through two
    ops is not expressible and is refused. The supernet always concatenates
    its last ``multiplier`` nodes, whatever the genotype's concat says.
    """
    edges = cell_edges(genotype.steps)
    op_mask = {t: torch.zeros(len(edges), len(PRIMITIVES), dtype=torch.bool) for t in CELL_TYPES}
    edge_mask = {t: torch.zeros(len(edges), dtype=torch.bool) for t in CELL_TYPES}
    for t in CELL_TYPES:
        for k, (op, state) in enumerate(getattr(genotype, t)):
            e = edges.index((k // 2, state))
            if edge_mask[t][e]:
                raise GenotypeError(f"genotype.{t} node {k // 2} reads state {state} twice; a supernet edge "
                                    f"holds one op per input, so this genotype has no mask")
            op_mask[t][e, OP_INDEX[op]] = True
            edge_mask[t][e] = True
    return op_mask, edge_mask


class DartsSuperNet(nn.Module):
    """TE-NAS's DARTS search network, with op and edge masks shared by all cells of a type.

    Layout (TE-NAS ``NASNetworkDARTS``): three stages of ``cells_per_stage``
    cells, a reduction cell opening stages 2 and 3, cut to the first ``layers``
    cells; with the defaults that is one normal and one reduction cell, the κ
    network of the paper (C=1, stem multiplier 1). TE-NAS's thin network for
    linear regions is ``DartsSuperNet(C=1, layers=2, use_stem=False,
    in_channels=1)``: the 1-channel input is both s0 and s1 of the first cell.

    Masks: ``op_mask[cell_type]`` is a [num_edges, 8] bool tensor, columns in
    `PRIMITIVES` order; ``edge_mask[cell_type]`` a [num_edges] bool tensor for
    the "keep the top-2 incoming edges per node" phase. An edge is evaluated
    when its edge mask is set and it has at least one live op.

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
        self.edge_pairs: tuple[tuple[int, int], ...] = tuple(cell_edges(steps))  # (node, input state)
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
        op_mask = torch.ones(len(self.edge_pairs), len(PRIMITIVES), dtype=torch.bool)
        if exclude_none:
            op_mask[:, OP_INDEX["none"]] = False
        self._op_mask = {t: op_mask.clone() for t in CELL_TYPES}
        self._edge_mask = {t: torch.ones(len(self.edge_pairs), dtype=torch.bool) for t in CELL_TYPES}
        self._live: dict[str, list[list[int]]] = {}
        self._refresh_live()

    # masks ------------------------------------------------------------------

    @property
    def op_mask(self) -> dict[str, torch.Tensor]:
        """A copy of the op masks ([num_edges, 8] bool per cell type)."""
        return {t: m.clone() for t, m in self._op_mask.items()}

    @property
    def edge_mask(self) -> dict[str, torch.Tensor]:
        """A copy of the edge masks ([num_edges] bool per cell type)."""
        return {t: m.clone() for t, m in self._edge_mask.items()}

    def set_masks(self, op_mask: Mapping[str, torch.Tensor] | None = None,
                  edge_mask: Mapping[str, torch.Tensor] | None = None) -> None:
        """Replace the masks of the cell types given; others stay as they are."""
        new_ops = dict(self._op_mask)
        new_edges = dict(self._edge_mask)
        for name, given, target, shape in (("op_mask", op_mask, new_ops, (len(self.edge_pairs), len(PRIMITIVES))),
                                           ("edge_mask", edge_mask, new_edges, (len(self.edge_pairs),))):
            for cell_type, mask in (given or {}).items():
                if cell_type not in CELL_TYPES:
                    raise GenotypeError(f"{name}: unknown cell type {cell_type!r}; use 'normal' or 'reduce'")
                if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != shape:
                    got = (f"{mask.dtype} tensor of shape {tuple(mask.shape)}" if isinstance(mask, torch.Tensor)
                           else type(mask).__name__)
                    raise GenotypeError(f"{name}[{cell_type!r}] must be a torch.bool tensor of shape {shape}, "
                                        f"got {got}")
                target[cell_type] = mask.detach().to("cpu", copy=True)
        if self.exclude_none:
            for cell_type, mask in new_ops.items():
                on = mask[:, OP_INDEX["none"]].nonzero().flatten().tolist()
                if on:
                    raise GenotypeError(f"op_mask[{cell_type!r}] makes 'none' live on edges {on}, but this "
                                        f"supernet excludes 'none' (exclude_none=True); clear column "
                                        f"{OP_INDEX['none']} or build it with exclude_none=False")
        self._op_mask, self._edge_mask = new_ops, new_edges
        self._refresh_live()

    def _refresh_live(self) -> None:
        self._live = {
            t: [torch.nonzero(self._op_mask[t][e]).flatten().tolist() if self._edge_mask[t][e] else []
                for e in range(len(self.edge_pairs))]
            for t in CELL_TYPES
        }

    def live_ops(self, cell_type: str, edge: int) -> list[str]:
        """Names of the ops evaluated on ``edge`` (none when the edge is cut)."""
        return [PRIMITIVES[k] for k in self._live[cell_type][edge]]

    def live_candidates(self) -> list[tuple[str, int, str]]:
        """(cell type, edge, op) for every live op on every edge that still has more than one."""
        return [(t, e, PRIMITIVES[k]) for t in CELL_TYPES for e, ops in enumerate(self._live[t])
                if len(ops) > 1 for k in ops]

    def live_edges(self, cell_type: str, node: int) -> list[int]:
        """Indices of the live edges entering intermediate ``node``."""
        return [e for e, (n, _) in enumerate(self.edge_pairs) if n == node and self._live[cell_type][e]]

    def genotype(self) -> Genotype:
        """The genotype the masks describe, once every node has 2 live edges of one op each.

        Each node's edges come in `Genotype.canonical` order (by input state).
        """
        problems = []
        cells: dict[str, list[tuple[str, int]]] = {}
        for t in CELL_TYPES:
            cells[t] = []
            for node in range(self.steps):
                edges = self.live_edges(t, node)
                if len(edges) != 2:
                    problems.append(f"{t} node {node} has {len(edges)} live edges {edges} (needs 2)")
                for e in edges:
                    ops = self.live_ops(t, e)
                    if len(ops) != 1:
                        problems.append(f"{t} edge {e} (node {node} <- state {self.edge_pairs[e][1]}) still has "
                                        f"{len(ops)} live ops {ops}")
                    cells[t].append((ops[0], self.edge_pairs[e][1]))
        if problems:
            raise GenotypeError("the masks do not describe a genotype yet: " + "; ".join(problems))
        concat = list(range(2 + self.steps - self.multiplier, self.steps + 2))
        return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"],
                        reduce_concat=concat)

    # forward ----------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self._live["reduce" if cell.reduction else "normal"])
        return self.classifier(self.global_pooling(self.lastact(s1)).flatten(1))
