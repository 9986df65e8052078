"""Zero-cost proxies (NASWOT, JacoV, AZ-NAS, FLOPs, params) against slow, plain implementations; aggregation; metadata."""
from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from rayneas.errors import RayneasError
from rayneas.indicators import (
    AGGREGATIONS,
    AggregationError,
    DegenerateNetworkError,
    InputSpec,
    aggregate,
    available_indicators,
    az_expressivity,
    az_nas_scores,
    az_progressivity,
    az_trainability,
    best_first,
    count_flops,
    count_params,
    get_indicator,
    indicator_info,
    init_weights,
    jacov_score,
    naswot_score,
    measure_indicators,
    register_indicator,
)
from rayneas.indicators import az_nas as az_nas_module
from rayneas.indicators.az_nas import block_trainability, feature_entropy
from rayneas.indicators.naswot import jacov_from_jacobian
from rayneas.indicators.registry import _REGISTRY, DIRECTIONS, NETWORKS
from rayneas.spaces import nb201
from rayneas.tenas.rank import rank_candidates

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
IDENTITY_CELL = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def small_net(cell: str = CELL, dtype: torch.dtype = torch.float32, seed: int = 0, C: int = 2) -> nb201.NB201Network:
    """The NB201 evaluation network at a test's size: C channels, one cell per stage (5 blocks)."""
    return init_weights(nb201.build(cell, C=C, N=1), "paper", seed).to(dtype)


def batch(n: int = 6, size: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class SideBranch(nn.Module):
    """Conv-ReLU-pool-linear, plus a ReLU branch whose output is thrown away (it never reaches the output)."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.relu = nn.ReLU()
            self.side = nn.Sequential(nn.Conv2d(3, 5, 1), nn.ReLU())
            self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.side(x)
        return self.head(self.relu(self.conv(x)).mean(dim=(2, 3)))


def no_bn_net() -> nn.Module:
    """Samples independent of each other (no BatchNorm), so each input's gradient can be taken alone."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)).double()


def state(model: nn.Module) -> tuple[list[bool], dict[str, torch.Tensor]]:
    return [m.training for m in model.modules()], copy.deepcopy(model.state_dict())


def assert_untouched(model: nn.Module, before: tuple[list[bool], dict[str, torch.Tensor]]) -> None:
    modes, tensors = before
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


# --- NASWOT ---------------------------------------------------------------------------------------


def plain_naswot(model: nn.Module, x: torch.Tensor) -> float:
    """The reference procedure: codes (input > 0) of every ReLU a backward reaches, K by explicit pair loops."""
    model = copy.deepcopy(model).train()
    codes: list[torch.Tensor] = []
    visited: set[int] = set()

    def forward_hook(module, args, out):
        k = len(codes)
        codes.append((args[0] > 0).reshape(len(x), -1).clone())
        out.register_hook(lambda grad: visited.add(k))  # fires when the backward reaches this ReLU

    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(forward_hook)
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()
    kernel = np.zeros((len(x), len(x)))
    for k in sorted(visited):
        for i in range(len(x)):
            for j in range(len(x)):
                kernel[i, j] += int((codes[k][i] == codes[k][j]).sum())
    return float(np.linalg.slogdet(kernel)[1])


@pytest.mark.parametrize("cell", [CELL, "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|"
                                        "skip_connect~2|"])
def test_naswot_equals_the_reference_procedure(cell):
    net, x = small_net(cell), batch()
    before = state(net)
    assert naswot_score(net, x) == pytest.approx(plain_naswot(net, x), rel=1e-12)
    assert_untouched(net, before)


def test_naswot_counts_only_relus_on_a_path_to_the_output():
    net, x = SideBranch(), batch(5)
    assert naswot_score(net, x) == pytest.approx(plain_naswot(net, x), rel=1e-12)
    net.side = nn.Sequential(nn.Identity())  # without the dead branch: same score
    assert naswot_score(SideBranch(), x) == naswot_score(net, x)


def test_naswot_is_minus_infinity_with_a_warning_when_two_inputs_are_equal(caplog):
    x = batch()
    x[3] = x[1]
    with caplog.at_level(logging.WARNING, logger="rayneas.indicators.naswot"):
        assert naswot_score(small_net(), x) == -math.inf
    assert "singular" in caplog.text


# --- JacoV ----------------------------------------------------------------------------------------


def naslib_jacov(jacobian: np.ndarray) -> float:
    """NASLib's eval_score, verbatim in numpy: corrcoef, eig, −Σ log(v + k) + 1/(v + k)."""
    v = np.linalg.eig(np.corrcoef(jacobian))[0].real
    return float(-np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)))


def test_jacov_equals_per_sample_input_gradients():
    net, x = no_bn_net(), batch(5, dtype=torch.float64)
    rows = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        net(xi).sum().backward()
        rows.append(xi.grad.reshape(-1).numpy())
    net.zero_grad()
    assert jacov_score(net, x) == pytest.approx(naslib_jacov(np.stack(rows)), rel=1e-9)


def test_jacov_on_a_batchnorm_net_is_one_train_mode_backward_of_the_batch():
    net, x = small_net(dtype=torch.float64), batch(6, dtype=torch.float64)
    before = state(net)
    reference = copy.deepcopy(net).train()
    xr = x.clone().requires_grad_(True)
    reference(xr).backward(torch.ones(len(x), 10, dtype=torch.float64))
    assert jacov_score(net, x) == pytest.approx(naslib_jacov(xr.grad.reshape(len(x), -1).numpy()), rel=1e-9)
    assert_untouched(net, before)


def test_jacov_is_highest_for_uncorrelated_gradients():
    # f(x) = ½|x|²: gradient x, random rows nearly uncorrelated; f(x) = w·x: every gradient is w.
    uncorrelated = jacov_from_jacobian(torch.randn(6, 400, generator=torch.Generator().manual_seed(0)))
    w = torch.randn(400, generator=torch.Generator().manual_seed(1))
    identical = jacov_from_jacobian(w.expand(6, 400))
    assert -6 > uncorrelated > -6.5 > identical  # −B is the maximum (all eigenvalues 1)
    k = 1e-5
    assert identical == pytest.approx(-(math.log(6 + k) + 1 / (6 + k) + 5 * (math.log(k) + 1 / k)), rel=1e-6)


def test_jacov_rejects_a_constant_gradient_row():
    jacobian = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    jacobian[2] = 0.5
    with pytest.raises(DegenerateNetworkError, match=r"sample\(s\) \[2\]"):
        jacov_from_jacobian(jacobian)


# --- AZ-NAS ---------------------------------------------------------------------------------------


def plain_features(net: nb201.NB201Network, x: torch.Tensor) -> list[torch.Tensor]:
    """As AZ-NAS's extract_cell_features: the stem's output, then every cell's, one block at a time."""
    features = [net.stem(x)]
    for cell in net.cells:
        features.append(cell(features[-1]))
    return features


def plain_entropy(feature: np.ndarray) -> float:
    rows = np.moveaxis(feature, 1, -1).reshape(-1, feature.shape[1])
    s = np.clip(np.linalg.eigvalsh(np.cov(rows.T, bias=True)), 0, None)
    p = s / s.sum()
    return float(sum(-pi * math.log(pi + 1e-8) for pi in p))


def plain_unshuffle(g: np.ndarray, s: int) -> np.ndarray:
    b, c, h, w = g.shape
    out = np.zeros((b, c * s * s, h // s, w // s))
    for ch in range(c):
        for dy in range(s):
            for dx in range(s):
                out[:, ch * s * s + dy * s + dx] = g[:, ch, dy::s, dx::s]
    return out


def plain_block_score(cell: nn.Module, f_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """g_in = Jᵀ g_out with J the block's full Jacobian, M = mean over pixels of outer products, σmax by SVD."""
    jacobian = torch.autograd.functional.jacobian(cell, f_in.detach())  # out shape + in shape
    g_in = torch.einsum("abcd,abcdefgh->efgh", g_out, jacobian).numpy()
    go = g_out.numpy()
    if g_in.shape[2] != go.shape[2]:
        g_in = plain_unshuffle(g_in, g_in.shape[2] // go.shape[2])
    b, co, h, w = go.shape
    m = np.zeros((g_in.shape[1], co))
    for n in range(b):
        for y in range(h):
            for x in range(w):
                m += np.outer(g_in[n, :, y, x], go[n, :, y, x])
    sigma = np.linalg.svd(m / (b * h * w), compute_uv=False).max()
    return -sigma - 1 / (sigma + 1e-6) + 2


def test_az_nas_equals_plain_per_block_computation():
    net, x = small_net(dtype=torch.float64), batch(4, dtype=torch.float64)
    before = state(net)
    scores = az_nas_scores(net, x, seed=3)
    assert_untouched(net, before)

    reference = copy.deepcopy(net).train()
    with torch.no_grad():
        features = plain_features(reference, x)
    entropies = [plain_entropy(f.numpy()) for f in features]
    assert len(entropies) == 6  # stem + cell, reduction, cell, reduction, cell
    assert scores["expressivity"] == pytest.approx(sum(entropies), rel=1e-9)
    assert scores["progressivity"] == pytest.approx(min(np.diff(entropies)), rel=1e-9, abs=1e-12)

    generator = torch.Generator().manual_seed(3)
    blocks = []
    for i in reversed(range(1, len(features))):
        g_out = (torch.randint(0, 2, features[i].shape, generator=generator) * 2 - 1).double()
        blocks.append(plain_block_score(reference.cells[i - 1], features[i - 1], g_out))
    assert scores["trainability"] == pytest.approx(np.mean(blocks), rel=1e-9)

    assert az_expressivity(net, x) == scores["expressivity"]
    assert az_progressivity(net, x) == scores["progressivity"]
    assert az_trainability(net, x, seed=3) == scores["trainability"]
    assert az_trainability(net, x, seed=4) != scores["trainability"]


def test_the_three_az_indicators_share_one_pass_with_the_values_of_separate_calls(monkeypatch):
    net, x = small_net(dtype=torch.float64), batch(4, dtype=torch.float64)
    names = ["az_expressivity", "naswot", "az_trainability", "az_progressivity"]
    separate = {name: float(indicator_info(name).fn(net, x)) for name in names}
    calls = []
    forward = az_nas_module._feature_maps
    monkeypatch.setattr(az_nas_module, "_feature_maps", lambda *args: calls.append(1) or forward(*args))
    joint = measure_indicators(names, net, lambda name: x, lambda name, model, inputs: indicator_info(name).fn(model, inputs))
    assert joint == separate and list(joint) == ["az_expressivity", "az_trainability", "az_progressivity", "naswot"]
    assert len(calls) == 1  # one forward for the three


def test_a_joint_pass_degenerate_only_in_trainability_keeps_the_other_two(monkeypatch):
    def no_path_block(maps, generator):
        raise DegenerateNetworkError("no gradient path")

    net, x = small_net(), batch(4)
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    expected = measure_indicators(names[:2], net, lambda name: x, lambda *args: math.nan)
    monkeypatch.setattr(az_nas_module, "_trainability", no_path_block)
    values = measure_indicators(names, net, lambda name: x, lambda *args: math.nan)
    assert values == {**expected, "az_trainability": -math.inf}


def test_az_trainability_of_an_identity_block_is_minus_infinity():
    # Node 3 = node 0 + zeros: the cell passes its input through unchanged, so g_in == g_out.
    assert az_trainability(small_net(IDENTITY_CELL), batch(4)) == -math.inf
    g = torch.ones(2, 3, 4, 4)
    assert block_trainability(g, g.clone()) == -math.inf


def test_block_trainability_known_value():
    # g_in = a·g_out on one channel, unit Rademacher entries: M = a, σmax = |a|.
    g_out = torch.tensor([1.0, -1.0, 1.0, -1.0]).reshape(1, 1, 2, 2)
    assert block_trainability(0.5 * g_out, g_out) == pytest.approx(-0.5 - 1 / (0.5 + 1e-6) + 2)
    assert block_trainability(g_out.new_ones(1, 1, 4, 4) * 3, g_out.new_ones(1, 1, 2, 2)) == \
        pytest.approx(-math.sqrt(4 * 9) - 1 / (math.sqrt(36) + 1e-6) + 2)  # 4 unshuffled channels of 3


def test_feature_entropy_of_isotropic_and_rank_one_maps():
    isotropic = torch.randn(4096, 4, generator=torch.Generator().manual_seed(0))
    assert feature_entropy(isotropic) == pytest.approx(math.log(4), abs=0.01)  # uniform spectrum
    rank_one = torch.randn(4096, 1, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 2.0, 3.0])
    assert feature_entropy(rank_one) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DegenerateNetworkError, match="feature map 7"):
        feature_entropy(torch.ones(4, 3, 2, 2), 7)


def test_az_nas_needs_feature_modules():
    with pytest.raises(ValueError, match="pass features="):
        az_expressivity(no_bn_net().float(), batch(4))
    net = no_bn_net().float()
    assert math.isfinite(az_expressivity(net, batch(4), features=[net[0], net[2]]))


# --- FLOPs and params -----------------------------------------------------------------------------


def plain_flops(model: nn.Module, x: torch.Tensor) -> int:
    """2 × multiply-accumulates of every conv and linear layer that runs, counted with forward hooks."""
    total = 0

    def conv(module, args, out):
        nonlocal total
        total += 2 * out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    def linear(module, args, out):
        nonlocal total
        total += 2 * out.numel() * module.in_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear)
    with torch.no_grad():
        model.eval()(x)
    return total // len(x)


def test_flops_equal_hooked_conv_and_linear_multiply_adds():
    net = small_net(C=4)
    before = state(net)
    flops = count_flops(net, batch(1, size=16))
    assert flops == plain_flops(copy.deepcopy(net), batch(1, size=16)) > 0
    assert count_flops(net, batch(3, size=16)) == flops  # per sample
    assert_untouched(net, before)


def test_flops_and_params_of_the_benchmark_network_match_nas_bench_201():
    # NAS-Bench-201 lists FLOP=153.27 M (multiply-adds), Params=1.073 MB for a CIFAR-10 cell of four 3×3 convs,
    # one 1×1 conv and one skip (arch 13714 in AZ-NAS's tss_general.ipynb output); the cost depends only on the ops.
    net = nb201.build(6111, C=16, N=5)
    assert count_flops(net, batch(1, size=32)) / 2e6 == pytest.approx(153.27, abs=0.01)
    assert count_params(net, batch(1, size=32)) / 1e6 == pytest.approx(1.073, abs=0.001)


def test_params_count_only_what_the_output_uses():
    mask = nb201.search_mask().without("cell", 0, "nor_conv_3x3").without("cell", 5, "nor_conv_1x1")
    net = nb201.supernet(C=3, N=1, mask=mask)
    reference = copy.deepcopy(net)
    reference(batch(2)).sum().backward()
    used = sum(p.numel() for p in reference.parameters() if p.grad is not None)
    assert count_params(net, batch(1)) == used < sum(p.numel() for p in net.parameters())


# --- degenerate networks ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["naswot", "jacov", "az_expressivity", "az_progressivity", "az_trainability"])
@pytest.mark.parametrize("cell", [DISCONNECTED, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_a_cell_without_a_path_from_input_to_output_raises_a_clear_error(name, cell):
    with pytest.raises(DegenerateNetworkError, match="no path leads from its input to its output") as info:
        get_indicator(name)(small_net(cell), batch(4))
    assert isinstance(info.value, RayneasError) and isinstance(info.value, ValueError)
    assert name.split("_")[0] in str(info.value).lower()


@pytest.mark.parametrize("name", ["flops", "params"])
def test_cost_of_a_disconnected_cell_is_finite(name):
    value = get_indicator(name)(small_net(DISCONNECTED), batch(1))
    assert math.isfinite(value) and value > 0


@pytest.mark.parametrize("name", ["naswot", "jacov", "az_expressivity", "az_trainability"])
def test_nan_weights_raise_instead_of_returning_nan(name):
    net = small_net()
    with torch.no_grad():
        net.classifier.weight[0, 0] = float("nan")
    with pytest.raises(RayneasError, match="NaN or infinite outputs"):
        get_indicator(name)(net, batch(4))


@pytest.mark.parametrize("name", ["naswot", "jacov", "az_expressivity"])
def test_proxies_reject_a_batch_of_one(name):
    with pytest.raises(ValueError, match="at least 2 inputs"):
        get_indicator(name)(small_net(), batch(1))


# --- aggregation ----------------------------------------------------------------------------------


def test_rank_sum_uses_each_indicators_direction_and_dense_ranks():
    scores = {"ntk": [10.0, 5.0, 5.0, 20.0], "linear_regions": [100, 300, 200, 300]}
    # ntk (lower better): 5, 5 → 0; 10 → 1; 20 → 2.  R (higher better): 300, 300 → 0; 200 → 1; 100 → 2.
    assert aggregate("rank_sum", scores) == [3, 0, 1, 2]
    assert best_first("rank_sum", [3, 0, 1, 2]) == [1, 2, 3, 0]


def test_rank_sum_is_the_tenas_pruning_rank_sum():
    dkappa, dregions = [0.1, -0.3, 0.1, 0.05, 0.2], [4.0, 1.0, 1.0, 0.0, 4.0]
    expected = [r.rank_sum for r in rank_candidates(dkappa, dregions)]
    got = aggregate("rank_sum", {"dk": dkappa, "dr": dregions}, directions={"dk": "higher", "dr": "lower"})
    assert got == expected


def test_log_rank_is_az_nas_sum_of_log_normalised_ranks():
    scores = {"naswot": [1.0, 3.0, 2.0, 2.0], "ntk": [10.0, 5.0, 5.0, 20.0]}
    # naswot ascending ranks 1, 4, 2.5, 2.5; ntk oriented (−κ) ranks 2, 3.5, 3.5, 1; m = 4.
    expected = [math.log(1 / 4) + math.log(2 / 4), math.log(4 / 4) + math.log(3.5 / 4),
                math.log(2.5 / 4) + math.log(3.5 / 4), math.log(2.5 / 4) + math.log(1 / 4)]
    assert aggregate("log_rank", scores) == pytest.approx(expected, rel=1e-12)
    assert aggregate("log_rank", {"naswot": [7.0, 9.0]})[1] == 0.0  # best on everything: log 1
    assert best_first("log_rank", expected) == [1, 2, 3, 0]
    assert AGGREGATIONS["log_rank"].direction == "higher" and AGGREGATIONS["rank_sum"].direction == "lower"


def test_log_rank_penalises_one_bad_rank_more_than_rank_sum():
    # Candidate 0 is best on b and c but worst on a: the best rank sum, only third by log ranks.
    scores = {"a": [1.0, 3.0, 5.0, 4.0, 2.0], "b": [5.0, 3.0, 1.0, 2.0, 4.0], "c": [5.0, 3.0, 1.0, 2.0, 4.0]}
    directions = {k: "higher" for k in scores}
    assert aggregate("rank_sum", scores, directions=directions) == [4, 6, 8, 7, 5]
    log_ranks = aggregate("log_rank", scores, directions=directions)
    assert log_ranks[0] == pytest.approx(math.log(1 / 5)) and log_ranks[1] == pytest.approx(3 * math.log(3 / 5))
    assert best_first("log_rank", log_ranks) == [4, 1, 0, 3, 2]


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "borda"}, "unknown aggregation 'borda'; choose one of rank_sum, log_rank"),
    ({"scores": {"snip": [1.0, 2.0]}}, "'snip' is not a registered indicator.*directions="),
    ({"scores": {"naswot": [1.0, float("nan")]}, "candidates": ["a", "b"]}, "'naswot' is NaN for b"),
    ({"scores": {"ntk": [1.0, math.inf]}}, "'ntk' is inf for candidate 1.*nonfinite='worst'"),
    ({"scores": {"ntk": [1.0, -math.inf]}, "nonfinite": "worst"}, "'ntk' is -inf for candidate 1.*best end"),
    ({"scores": {"ntk": [1.0, 2.0], "naswot": [1.0]}}, "one score per candidate"),
    ({"scores": {"ntk": [1.0, 2.0]}, "candidates": ["only one"]}, "1 candidate names for 2"),
    ({"scores": {}}, "no indicator scores"),
])
def test_aggregation_errors_name_the_problem(kwargs, message):
    arguments = {"method": "rank_sum", "scores": {"ntk": [1.0, 2.0]}, **kwargs}
    with pytest.raises(AggregationError, match=message):
        aggregate(arguments.pop("method"), arguments.pop("scores"), **arguments)


@pytest.mark.parametrize("method", ["rank_sum", "log_rank"])
def test_infinities_at_the_bad_end_rank_last_when_allowed(method):
    scores = {"ntk": [math.inf, 3.0, 2.0], "naswot": [5.0, -math.inf, 6.0]}
    values = aggregate(method, scores, nonfinite="worst")
    assert best_first(method, values)[0] == 2


# --- registry metadata ----------------------------------------------------------------------------

EXPECTED = {  # name: (direction, network, batch size, channels)
    "ntk": ("lower", "kappa", 72, 3),
    "linear_regions": ("higher", "thin", 1000, 1),
    "naswot": ("higher", "eval", 128, 3),
    "jacov": ("higher", "eval", 128, 3),
    "az_expressivity": ("higher", "eval", 64, 3),
    "az_progressivity": ("higher", "eval", 64, 3),
    "az_trainability": ("higher", "eval", 64, 3),
    "flops": ("higher", "eval", 1, 3),
    "params": ("higher", "eval", 1, 3),
}


def test_every_registered_indicator_declares_its_metadata():
    assert set(available_indicators()) == set(EXPECTED)
    for name, (direction, network, batch_size, channels) in EXPECTED.items():
        info = indicator_info(name)
        assert (info.name, info.direction, info.network) == (name, direction, network)
        assert (info.inputs.batch_size, info.inputs.channels, info.inputs.labels) == (batch_size, channels, False)
        assert info.fn is get_indicator(name)
        assert info.direction in DIRECTIONS and info.network in NETWORKS
    assert indicator_info("linear_regions").inputs == InputSpec(batch_size=1000, channels=1, size=3, batches=3)
    assert indicator_info("az_trainability").inputs.source == "gaussian"
    assert indicator_info("ntk").higher_is_better is False


def declared_network(network: str, cell: str) -> nn.Module:
    """Each declared network of a cell, at a size the test affords (eval: C=4, N=1 instead of C=16, N=5)."""
    genotype = nb201.parse(cell)
    if network == "kappa":
        return nb201.supernet(C=3, N=1, mask=nb201.mask_from_genotype(genotype))
    if network == "thin":
        return nb201.thin_network([[op] for op in genotype.ops])
    return nb201.build(genotype, C=4, N=1)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_indicator_runs_on_its_declared_network_and_inputs(name):
    info = indicator_info(name)
    net = init_weights(declared_network(info.network, CELL), "paper", 0)
    n = min(info.inputs.batch_size, 8) if info.inputs.batch_size > 1 else 1
    size = info.inputs.size or 8
    inputs = [torch.randn(n, info.inputs.channels, size, size, generator=torch.Generator().manual_seed(b))
              for b in range(info.inputs.batches)]
    value = info.fn(net, inputs if info.inputs.batches > 1 else inputs[0])
    assert math.isfinite(float(value))


def test_registration_defaults_and_bad_metadata():
    @register_indicator("test_defaults")
    def plain(model, inputs):
        return 0.0

    try:
        info = indicator_info("test_defaults")
        assert (info.direction, info.network, info.inputs) == ("higher", "eval", InputSpec())
    finally:
        _REGISTRY.pop("test_defaults")
    with pytest.raises(ValueError, match="direction must be one of higher, lower"):
        register_indicator("x", direction="up")
    with pytest.raises(ValueError, match="network must be one of kappa, thin, eval"):
        register_indicator("x", network="big")
    with pytest.raises(ValueError, match="InputSpec.batch_size must be a positive integer"):
        InputSpec(batch_size=0)
    with pytest.raises(ValueError, match="unknown indicator 'snip'"):
        indicator_info("snip")
