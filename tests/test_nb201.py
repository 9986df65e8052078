import csv
import gzip
import io
from importlib import resources

import numpy as np
import pytest
import torch

from rayneas.spaces import nb201
from rayneas.spaces.mask import Mask

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _csv_rows():
    raw = resources.files("rayneas.resources").joinpath("nb201_accuracy.csv.gz").read_bytes()
    return list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))


def test_round_trip_every_benchmark_cell():
    rows = _csv_rows()
    assert len(rows) == nb201.NUM_ARCHS
    for row in rows:
        index, arch = int(row["nb201_index"]), row["arch"]
        genotype = nb201.parse(arch)
        assert genotype.to_string() == arch
        assert nb201.index_of(genotype) == index
        assert nb201.from_index(index).to_string() == arch


def test_disconnected_cells_count_matches_design():
    disconnected = sum(not nb201.Genotype.from_code(c).is_connected() for c in range(nb201.NUM_ARCHS))
    assert disconnected == 341
    assert not nb201.from_index(1651).is_connected()  # the all-`none` cell


@pytest.mark.parametrize(
    "text, message",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "expected 3 nodes separated by '+', found 2"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv' in token 'conv~0'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "token 'none~1' must come from node 0"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 '|none~0|' needs 2 edge(s), found 1"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 'none~0|' must start and end with '|'"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "token 'none' must look like op~0"),
    ],
)
def test_malformed_genotype_points_at_token(text, message):
    with pytest.raises(nb201.GenotypeError) as err:
        nb201.parse(text)
    assert message in str(err.value)


def test_bad_index_and_unknown_op_messages():
    with pytest.raises(nb201.GenotypeError, match=r"integer in 0..15624, got 15625"):
        nb201.from_index(15625)
    with pytest.raises(nb201.GenotypeError, match="unknown op 'conv_7x7' on edge 0->1"):
        nb201.Genotype(("conv_7x7",) + ("none",) * 5)


def test_parameter_count_matches_benchmark():
    # NAS-Bench-201 reports 1.5316 MB parameters for the all-3x3 cell on CIFAR-10 (C=16, N=5).
    all_conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    net = nb201.build(all_conv)
    assert sum(p.numel() for p in net.parameters()) == 1_531_546
    assert len(net.cells) == 17


def test_one_hot_supernet_equals_benchmark_network():
    genotype = nb201.parse(BEST)
    torch.manual_seed(0)
    sup = nb201.supernet(C=4, N=1, mask=nb201.mask_from_genotype(genotype))
    net = nb201.build(genotype, C=4, N=1)
    # copy the chosen ops' weights into the fixed network
    sup_state = sup.state_dict()
    state = {k: sup_state[k] for k in net.state_dict()}
    net.load_state_dict(state)
    x = torch.randn(4, 3, 32, 32)
    sup.eval(), net.eval()
    assert torch.equal(sup(x), net(x))


def test_supernet_edge_is_mean_of_live_ops():
    torch.manual_seed(0)
    sup = nb201.supernet(C=2, N=1).eval()
    cell = sup.cells[0]
    x = torch.randn(3, 2, 8, 8)
    live = [["nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"], [], [], [], ["skip_connect"], []]
    sup.set_mask(Mask.from_json({"cell": live}))
    # output node 3 = identity(node 1) and node 1 = mean of the three live ops of edge 0
    expected = sum(cell.edges[0][name](x) for name in live[0]) / 3
    assert torch.allclose(cell(x), expected, atol=1e-6)
    sup.set_mask(nb201.search_mask().without("cell", 0, "skip_connect"))
    assert cell.live[0] == live[0]


def test_thin_network_shapes_and_mask_errors():
    thin = nb201.thin_network([list(nb201.SEARCH_OPS)] * 6)
    assert thin(torch.randn(10, 1, 3, 3)).shape == (10, 10)
    assert len(thin.cells) == 1
    with pytest.raises(nb201.GenotypeError, match=r"'none' is not live on cell edge 2 \(live: \['skip_connect'"):
        nb201.search_mask().without("cell", 2, "none")
    with pytest.raises(nb201.GenotypeError, match=r"edge 1: this network has no op\(s\) \['none'\] there"):
        thin.set_mask(Mask.from_json({"cell": [["skip_connect"], ["none"]] + [["skip_connect"]] * 4}))
    with pytest.raises(nb201.GenotypeError, match="mask cell has 5 edges but a cell of a NAS-Bench-201 network has 6"):
        thin.set_mask(Mask.from_json({"cell": [["skip_connect"]] * 5}))
    with pytest.raises(nb201.GenotypeError, match=r"cell types \['cell'\], got \['normal'\]"):
        thin.set_mask(Mask.from_json({"normal": [["skip_connect"]] * 6}))


def test_genotype_is_read_from_a_pruned_mask():
    mask = nb201.search_mask()
    for edge in range(6):
        for op in nb201.SEARCH_OPS[1:]:
            mask = mask.without("cell", edge, op)
    assert mask.is_final() and nb201.genotype_from_mask(mask).ops == ("skip_connect",) * 6
    with pytest.raises(nb201.GenotypeError, match=r"edges \[0, 1, 2, 3, 4, 5\] have .* live; a genotype needs"):
        nb201.genotype_from_mask(nb201.search_mask())
    # what the removed OpMask.genotype() gave on these seeded one-op masks
    expected = [
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|",
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|skip_connect~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    ]
    for seed, text in enumerate(expected):
        ops = [[nb201.SEARCH_OPS[int(i)]] for i in np.random.default_rng(seed).integers(0, 4, 6)]
        genotype = nb201.genotype_from_mask(Mask.from_json({"cell": ops}))
        assert genotype.to_string() == text and nb201.mask_from_genotype(genotype)["cell"] == tuple(map(tuple, ops))


def test_sample_is_seeded():
    a = [nb201.sample(np.random.default_rng(3)) for _ in range(3)]
    b = [nb201.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a == b


def test_box_average_equals_avg_pool_with_its_gradient():
    from torch.nn import functional as F

    from rayneas.spaces.ops import BoxAverage3x3

    x = torch.randn(3, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    reference = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert torch.allclose(BoxAverage3x3()(x), reference, atol=1e-14)
    assert torch.autograd.gradcheck(BoxAverage3x3(), (x,))
    # batched cotangents (the NTK's vmapped backward) agree with PyTorch's pooling
    eye = torch.eye(3, dtype=torch.float64)
    ours = torch.autograd.grad(BoxAverage3x3()(x).sum((1, 2, 3)), x, eye, is_grads_batched=True)[0]
    theirs = torch.autograd.grad(reference.sum((1, 2, 3)), x, eye, is_grads_batched=True)[0]
    assert torch.allclose(ours, theirs, atol=1e-14)
