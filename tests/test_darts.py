"""The DARTS space: genotype text, evaluation networks, and the TE-NAS supernet."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rayneas.spaces.common import count_parameters
from rayneas.spaces.darts import (
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
    genotype_masks,
    parse_genotype,
)
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
    net.set_masks(*genotype_masks(DARTS_V2))
    for super_cell in net.cells:
        t = "reduce" if super_cell.reduction else "normal"
        c_pp, c_p = super_cell.preprocess0[1].in_channels, super_cell.preprocess1[1].in_channels
        cell = DartsCell(DARTS_V2, c_pp, c_p, super_cell.c, super_cell.reduction, False).train()
        cell.preprocess0.load_state_dict(super_cell.preprocess0.state_dict())
        cell.preprocess1.load_state_dict(super_cell.preprocess1.state_dict())
        for k, (op, state) in enumerate(getattr(DARTS_V2, t)):
            cell._ops[k].load_state_dict(super_cell.edges[EDGES.index((k // 2, state))].ops[OP_INDEX[op]].state_dict())
        s0, s1 = torch.randn(2, c_pp, 8, 8), torch.randn(2, c_p, 8, 8)
        live = [[OP_INDEX[op] for op in net.live_ops(t, e)] for e in range(len(EDGES))]
        assert torch.allclose(super_cell(s0, s1, live), cell(s0, s1), atol=1e-6)


def test_pruning_an_op_changes_the_output_and_cut_nodes_give_zeros():
    torch.manual_seed(0)
    net = DartsSuperNet().train()
    x = torch.randn(2, 3, 8, 8)
    full = net(x)
    op_mask = net.op_mask
    op_mask["normal"][3, OP_INDEX["sep_conv_3x3"]] = False
    net.set_masks(op_mask=op_mask)
    assert not torch.allclose(net(x), full)
    assert ("normal", 3, "sep_conv_3x3") not in net.live_candidates()
    edge_mask = net.edge_mask
    edge_mask["normal"][:2] = False  # node 0 loses both inputs
    net.set_masks(edge_mask=edge_mask)
    assert net.live_edges("normal", 0) == [] and torch.isfinite(net(x)).all()


def test_genotype_from_pruned_masks():
    net = DartsSuperNet()
    assert len(net.live_candidates()) == 2 * 14 * 7  # 'none' is excluded from the start
    with pytest.raises(GenotypeError, match=r"normal edge 0 \(node 0 <- state 0\) still has 7 live ops"):
        net.genotype()
    # ops phase done: one op per edge; then the edge phase keeps two edges per node
    op_mask, edge_mask = genotype_masks(DARTS_V2)
    for t in ("normal", "reduce"):
        op_mask[t][~edge_mask[t], OP_INDEX["avg_pool_3x3"]] = True
    net.set_masks(op_mask=op_mask)
    assert net.live_candidates() == []
    with pytest.raises(GenotypeError, match=r"normal node 1 has 3 live edges \[2, 3, 4\] \(needs 2\)"):
        net.genotype()
    net.set_masks(edge_mask=edge_mask)
    found = net.genotype()
    assert found == DARTS_V2.canonical() and found.canonical() == found
    assert found != DARTS_V2  # DARTS lists node 2's edges strongest first: ('sep_conv_3x3', 1), ('skip_connect', 0)


def test_mask_validation_messages():
    net = DartsSuperNet()
    with pytest.raises(GenotypeError, match=r"op_mask\['normal'\] must be a torch.bool tensor of shape \(14, 8\)"):
        net.set_masks(op_mask={"normal": torch.ones(14, 7, dtype=torch.bool)})
    with pytest.raises(GenotypeError, match="unknown cell type 'reduction'"):
        net.set_masks(edge_mask={"reduction": torch.ones(14, dtype=torch.bool)})
    with pytest.raises(GenotypeError, match=r"makes 'none' live on edges \[0, 1"):
        net.set_masks(op_mask={"normal": torch.ones(14, 8, dtype=torch.bool)})
    with_none = DartsSuperNet(exclude_none=False)
    assert len(with_none.live_candidates()) == 2 * 14 * 8
    with pytest.raises(ValueError, match=r"layers must be in 1..3"):
        DartsSuperNet(layers=4)
