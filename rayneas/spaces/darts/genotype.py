"""DARTS genotypes (Liu et al. 2019): the namedtuple, its published text form, and masks.

Cell layout (DARTS): states 0 and 1 are the two cell inputs (outputs of the
cells two back and one back); intermediate node ``i`` (0-based) is state
``i + 2`` and sums two edges, each an op applied to an earlier state; the cell
outputs the concatenation of the states in ``*_concat``.

Nothing here builds a network: TE-NAS reads its final genotype straight from
the pruned `Mask`, and the evaluation networks and the supernet take their
constants from here.
"""
from __future__ import annotations

import ast
import collections
from typing import Any, Iterable, Mapping, Sequence

from rayneas.spaces.common import GenotypeError
from rayneas.spaces.mask import Mask, check_mask
from rayneas.spaces.ops import DARTS_OPS

#: DARTS's `genotypes.PRIMITIVES`; also the order of the supernet's ops on every edge.
PRIMITIVES: tuple[str, ...] = tuple(DARTS_OPS)
OP_INDEX = {name: i for i, name in enumerate(PRIMITIVES)}
STEPS = 4  # intermediate nodes per DARTS cell
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
_EXAMPLE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5], "
            "reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])")


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


def mask_from_genotype(genotype: Genotype) -> Mask:
    """The mask that makes the supernet compute ``genotype`` (e.g. to score DARTS_V2 like a found cell).

    A supernet edge averages its ops, so a node reading one state through two
    ops is not expressible and is refused. The supernet always concatenates
    its last nodes, whatever the genotype's concat says.
    """
    edges = cell_edges(genotype.steps)
    cells: dict[str, list[list[str]]] = {}
    for t in CELL_TYPES:
        cells[t] = [[] for _ in edges]
        for k, (op, state) in enumerate(getattr(genotype, t)):
            e = edges.index((k // 2, state))
            if cells[t][e]:
                raise GenotypeError(f"genotype.{t} node {k // 2} reads state {state} twice; a supernet edge "
                                    f"holds one op per input, so this genotype has no mask")
            cells[t][e] = [op]
    return Mask.from_json(cells)


def genotype_from_mask(mask: Mask) -> Genotype:
    """The cell a fully pruned mask describes: per node, its 2 live edges with their one op each.

    A node's edges come by input state (`Genotype.canonical` order), and both
    concats are states 2..5, the 4 nodes TE-NAS's supernet concatenates.
    """
    check_mask(mask, CELL_TYPES, NUM_EDGES, PRIMITIVES, "the DARTS space")
    problems = []
    cells: dict[str, list[tuple[str, int]]] = {}
    for t in CELL_TYPES:
        cells[t] = []
        for node in range(STEPS):
            live = [e for e, (n, _) in enumerate(EDGES) if n == node and mask[t][e]]
            if len(live) != 2:
                problems.append(f"{t} node {node} has {len(live)} live edges {live} (needs 2)")
            for e in live:
                ops = mask[t][e]
                if len(ops) != 1:
                    problems.append(f"{t} edge {e} (node {node} <- state {EDGES[e][1]}) still has {len(ops)} "
                                    f"live ops {list(ops)}")
                cells[t].append((ops[0], EDGES[e][1]))
    if problems:
        raise GenotypeError("the mask does not describe a genotype yet: " + "; ".join(problems)
                            + "; prune until every node keeps 2 edges of one op each")
    concat = list(range(2, STEPS + 2))
    return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)
