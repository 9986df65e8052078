"""The DARTS space: genotype text, evaluation networks, and the TE-NAS supernet."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from rayneas.spaces.common import count_parameters
from rayneas.spaces.darts import (
    CELL_TYPES,
    DARTS_V2,
    EDGES,
    OP_INDEX,
    PRIMITIVES,
    DartsCell,
    DartsNetworkCIFAR,
    DartsNetworkImageNet,
    DartsSuperNet,
    Genotype,
    GenotypeError,
    MixedEdge,
    format_genotype,
    genotype_from_mask,
    mask_from_genotype,
    parse_genotype,
)
from rayneas.spaces.mask import Mask
from rayneas.spaces.ops import FactorizedReduce

# As printed in DARTS's cnn/genotypes.py.
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def test_primitives_and_edges_follow_darts():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                          "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert len(EDGES) == 14 and EDGES[:5] == ((0, 0), (0, 1), (1, 0), (1, 1), (1, 2))


# --- genotype text ----------------------------------------------------------


def test_published_string_round_trips():
    assert format_genotype(DARTS_V2) == DARTS_V2_TEXT
    assert parse_genotype(DARTS_V2_TEXT) == DARTS_V2
    assert parse_genotype(format_genotype(DARTS_V2)) == DARTS_V2


def test_range_concat_of_search_logs_equals_list_form():
    text = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert "range(2, 6)" in text
    assert parse_genotype(text) == DARTS_V2


def test_dict_form_is_json_and_round_trips():
    data = json.loads(json.dumps(DARTS_V2.to_dict()))
    assert data["normal"][7] == ["dil_conv_3x3", 2]
    assert Genotype.from_dict(data) == DARTS_V2


@pytest.mark.parametrize("text, message", [
    (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('sep_conv_7x7', 2)"), "genotype.normal[7]: unknown op 'sep_conv_7x7'"),
    (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"),
     "input index 7 is out of range for node 3 (state 5), which can only read states 0..4"),
    (DARTS_V2_TEXT.replace("('sep_conv_3x3', 1), ('skip_connect', 0), ", "", 1),
     "normal has 6 edges but genotype.reduce has 8"),
    (DARTS_V2_TEXT.replace("[('max_pool_3x3', 0), ", "["), "genotype.reduce has 7 edges; a DARTS cell needs exactly 2"),
    (DARTS_V2_TEXT[:-1], "malformed genotype text"),
    (DARTS_V2_TEXT.replace("normal_concat", "normal_cat"), "unknown genotype field 'normal_cat'"),
    (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "__import__('os')", 1), "cannot read \"__import__('os')\""),
    (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "[2, 3, 9]", 1), "states [9] do not exist"),
    ("Genotipe()", "must be a single Genotype(...) call"),
])
def test_bad_text_names_the_problem(text, message):
    with pytest.raises(GenotypeError) as info:
        parse_genotype(text)
    assert message in str(info.value)


def test_space_has_four_nodes_per_cell():
    three_nodes = Genotype(normal=DARTS_V2.normal[:6], normal_concat=[2, 3, 4], reduce=DARTS_V2.reduce[:6],
                           reduce_concat=[2, 3, 4])
    with pytest.raises(GenotypeError, match=r"needs 8 \(2 per node, 4 nodes\)"):
        parse_genotype(format_genotype(three_nodes))
    with pytest.raises(GenotypeError, match=r"missing keys \['reduce_concat'\]"):
        Genotype.from_dict({k: v for k, v in DARTS_V2.to_dict().items() if k != "reduce_concat"})


# --- evaluation networks ----------------------------------------------------


def test_darts_v2_cifar_network_has_the_published_size():
    net = DartsNetworkCIFAR(36, 10, 20, DARTS_V2, auxiliary=True)
    n = count_parameters(net)
    assert 2_500_000 <= n <= 5_000_000
    assert n == 3_349_342  # DARTS's train.py log: "param size = 3.349342MB"
    assert count_parameters(net, exclude_auxiliary=False) > n


def test_darts_v2_imagenet_network_has_the_published_size():
    net = DartsNetworkImageNet(48, 1000, 14, DARTS_V2)
    assert count_parameters(net) == 4_718_752  # DARTS's train_imagenet.py log: 4.718752MB (paper: 4.7M)


def test_cifar_network_forward_and_auxiliary_head():
    torch.manual_seed(0)
    net = DartsNetworkCIFAR(8, 10, 8, DARTS_V2, auxiliary=True, drop_path_prob=0.2)
    x = torch.randn(2, 3, 32, 32)
    logits, aux = net.train()(x)
    assert logits.shape == (2, 10) and aux is not None and aux.shape == (2, 10)
    net.eval()
    logits, aux = net(x)
    assert aux is None
    assert torch.equal(net(x)[0], logits)  # drop-path is off at eval time


def test_imagenet_network_forward():
    net = DartsNetworkImageNet(8, 7, 5, DARTS_V2, auxiliary=True).train()
    logits, aux = net(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 7) and aux.shape == (2, 7)


def test_network_rejects_text_genotype():
    with pytest.raises(GenotypeError, match="use parse_genotype"):
        DartsNetworkCIFAR(8, 10, 8, DARTS_V2_TEXT)


def test_padded_factorized_reduce_matches_darts_on_even_sizes():
    torch.manual_seed(0)
    fr = FactorizedReduce(4, 6).train()
    x = torch.randn(2, 4, 8, 8)
    relu = torch.relu(x)
    darts = fr.bn(torch.cat([fr.conv_1(relu), fr.conv_2(relu[:, :, 1:, 1:])], dim=1))  # operations.py, no pad
    assert torch.allclose(fr(x), darts, atol=1e-6)
    assert fr(torch.randn(2, 4, 3, 3)).shape == (2, 6, 2, 2)  # odd sizes: DARTS's version fails here


# --- supernet -----------------------------------------------------------------


def _cell_outputs(net: nn.Module, x: torch.Tensor) -> list[torch.Size]:
    shapes: list[torch.Size] = []
    hooks = [cell.register_forward_hook(lambda m, i, o: shapes.append(o.shape)) for cell in net.cells]
    out = net(x)
    for h in hooks:
        h.remove()
    return [*shapes, out.shape]


def test_kappa_supernet_shapes():
    net = DartsSuperNet()  # TE-NAS κ network: C=1, two cells, stem multiplier 1
    assert [cell.reduction for cell in net.cells] == [False, True]
    assert _cell_outputs(net, torch.randn(2, 3, 32, 32)) == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 10)]


def test_thin_supernet_runs_on_3x3_single_channel_inputs():
    net = DartsSuperNet(C=1, layers=2, use_stem=False, in_channels=1).train()
    shapes = _cell_outputs(net, torch.randn(1000, 1, 3, 3))
    assert shapes == [(1000, 4, 3, 3), (1000, 8, 2, 2), (1000, 10)]


def test_edge_is_mean_of_its_live_ops():
    torch.manual_seed(0)
    edge = MixedEdge(3, 1).train()
    x = torch.randn(4, 3, 6, 6)
    sep, dil = OP_INDEX["sep_conv_3x3"], OP_INDEX["dil_conv_5x5"]
    assert torch.equal(edge(x, [sep]), edge.ops[sep](x))
    assert torch.allclose(edge(x, [sep, dil]), (edge.ops[sep](x) + edge.ops[dil](x)) / 2)


def test_one_hot_supernet_cell_is_the_darts_cell():
    torch.manual_seed(0)
    net = DartsSuperNet(C=4).train()
    net.set_mask(mask_from_genotype(DARTS_V2))
    for super_cell in net.cells:
        t = "reduce" if super_cell.reduction else "normal"
        c_pp, c_p = super_cell.preprocess0[1].in_channels, super_cell.preprocess1[1].in_channels
        cell = DartsCell(DARTS_V2, c_pp, c_p, super_cell.c, super_cell.reduction, False).train()
        cell.preprocess0.load_state_dict(super_cell.preprocess0.state_dict())
        cell.preprocess1.load_state_dict(super_cell.preprocess1.state_dict())
        for k, (op, state) in enumerate(getattr(DARTS_V2, t)):
            cell._ops[k].load_state_dict(super_cell.edges[EDGES.index((k // 2, state))].ops[OP_INDEX[op]].state_dict())
        s0, s1 = torch.randn(2, c_pp, 8, 8), torch.randn(2, c_p, 8, 8)
        live = [[OP_INDEX[op] for op in ops] for ops in net.mask[t]]
        assert torch.allclose(super_cell(s0, s1, live), cell(s0, s1), atol=1e-6)


def test_pruning_an_op_changes_the_output_and_cut_nodes_give_zeros():
    torch.manual_seed(0)
    net = DartsSuperNet().train()
    x = torch.randn(2, 3, 8, 8)
    full = net(x)
    mask = net.mask.without("normal", 3, "sep_conv_3x3")
    net.set_mask(mask)
    assert not torch.allclose(net(x), full)
    for edge in (0, 1):  # node 0 loses both inputs
        for op in mask["normal"][edge]:
            mask = mask.without("normal", edge, op)
    net.set_mask(mask)
    assert mask["normal"][:2] == ((), ()) and torch.isfinite(net(x)).all()


def test_genotype_from_pruned_masks():
    start = DartsSuperNet().mask
    assert start.live_op_count() == 2 * 14 * 7  # 'none' is excluded from the start
    with pytest.raises(GenotypeError, match=r"normal edge 0 \(node 0 <- state 0\) still has 7 live ops"):
        genotype_from_mask(start)
    # ops phase done: one op per edge; then the edge phase keeps two edges per node
    chosen = mask_from_genotype(DARTS_V2)
    one_op = Mask.from_json({t: [ops or ["avg_pool_3x3"] for ops in edges] for t, edges in chosen.to_json().items()})
    assert one_op.is_final()
    with pytest.raises(GenotypeError, match=r"normal node 1 has 3 live edges \[2, 3, 4\] \(needs 2\)"):
        genotype_from_mask(one_op)
    found = genotype_from_mask(chosen)
    assert found == DARTS_V2.canonical() and found.canonical() == found
    assert found != DARTS_V2  # DARTS lists node 2's edges strongest first: ('sep_conv_3x3', 1), ('skip_connect', 0)


def _random_final_mask(seed: int) -> Mask:
    """Two live edges per node, one random searched op each: what the edge rounds end with."""
    rng = np.random.default_rng(seed)
    ops = [op for op in PRIMITIVES if op != "none"]
    cells = {}
    for cell in CELL_TYPES:
        edges: list[list[str]] = [[] for _ in EDGES]
        for node in range(4):
            for e in rng.choice([e for e, (n, _) in enumerate(EDGES) if n == node], size=2, replace=False):
                edges[int(e)] = [ops[int(rng.integers(len(ops)))]]
        cells[cell] = edges
    return Mask.from_json(cells)


# What the removed DartsSuperNet.genotype() gave on `_random_final_mask(seed)`.
SUPERNET_GENOTYPES = [
    "Genotype(normal=[('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 2), "
    "('sep_conv_3x3', 2), ('sep_conv_5x5', 3), ('sep_conv_3x3', 3), ('sep_conv_3x3', 4)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('sep_conv_5x5', 0), ('dil_conv_3x3', 1), ('sep_conv_3x3', 0), ('max_pool_3x3', 1), "
    "('avg_pool_3x3', 2), ('max_pool_3x3', 3), ('skip_connect', 0), ('max_pool_3x3', 3)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('dil_conv_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('avg_pool_3x3', 2), "
    "('dil_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('max_pool_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('dil_conv_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('sep_conv_3x3', 2), "
    "('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_5x5', 1)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('skip_connect', 0), ('max_pool_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 2), "
    "('dil_conv_5x5', 1), ('avg_pool_3x3', 3), ('avg_pool_3x3', 0), ('avg_pool_3x3', 3)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 2), "
    "('sep_conv_5x5', 1), ('dil_conv_5x5', 2), ('skip_connect', 3), ('skip_connect', 4)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('avg_pool_3x3', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 2), "
    "('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('dil_conv_5x5', 0), ('skip_connect', 1), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), "
    "('dil_conv_5x5', 0), ('dil_conv_3x3', 2), ('sep_conv_5x5', 1), ('sep_conv_5x5', 4)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), "
    "('dil_conv_3x3', 1), ('sep_conv_5x5', 3), ('avg_pool_3x3', 0), ('dil_conv_5x5', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('dil_conv_5x5', 1), ('dil_conv_3x3', 0), ('max_pool_3x3', 2), "
    "('skip_connect', 2), ('dil_conv_3x3', 3), ('avg_pool_3x3', 2), ('sep_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])",
]


@pytest.mark.parametrize("seed", range(len(SUPERNET_GENOTYPES)))
def test_genotype_from_mask_matches_the_old_supernet_reading(seed):
    mask = _random_final_mask(seed)
    genotype = genotype_from_mask(mask)
    assert format_genotype(genotype) == SUPERNET_GENOTYPES[seed]
    assert mask_from_genotype(genotype) == mask  # and the supernet computes exactly that cell again


def test_mask_validation_messages():
    net = DartsSuperNet()
    with pytest.raises(GenotypeError, match="needs a rayneas.spaces.mask.Mask, got dict; .* Mask.from_json"):
        net.set_mask({"normal": [["skip_connect"]] * 14, "reduce": [["skip_connect"]] * 14})
    with pytest.raises(GenotypeError, match=r"mask normal has 13 edges but a cell of a DARTS supernet with 4 nodes "
                                            r"has 14"):
        net.set_mask(Mask.full(CELL_TYPES, 13, ["skip_connect"]))
    with pytest.raises(GenotypeError, match=r"cell types \['normal', 'reduce'\], got \['normal', 'reduction'\]"):
        net.set_mask(Mask.full(("normal", "reduction"), 14, ["skip_connect"]))
    with pytest.raises(GenotypeError, match=r"mask reduce edge 0: .* has no op\(s\) \['conv_7x1'\]; choose from"):
        net.set_mask(Mask.from_json({"normal": [["skip_connect"]] * 14,
                                     "reduce": [["conv_7x1"]] + [["skip_connect"]] * 13}))
    with pytest.raises(GenotypeError, match=r"makes 'none' live on normal edges \[0, 1, .*exclude_none=False"):
        net.set_mask(Mask.full(CELL_TYPES, 14, PRIMITIVES))
    with_none = DartsSuperNet(exclude_none=False)
    assert with_none.mask.live_op_count() == 2 * 14 * 8
    with pytest.raises(ValueError, match=r"layers must be in 1..3"):
        DartsSuperNet(layers=4)
