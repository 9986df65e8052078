"""rayneas.indicators: κ against a plain per-sample loop, linear regions against brute force, inits, registry."""
from __future__ import annotations

import copy
import logging
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from rayneas.indicators import (
    available_indicators,
    count_linear_regions,
    get_indicator,
    init_weights,
    ntk_batch,
    ntk_condition_number,
    ntk_jacobian,
    region_inputs,
    register_indicator,
)
from rayneas.indicators.linear_regions import pack_bits
from rayneas.indicators.oracle import plain_loop_kappa
from rayneas.indicators.ntk import used_weights
from rayneas.indicators.registry import _REGISTRY
from rayneas.spaces import nb201

DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
BEST_C10 = 6111


def masked_supernet(dtype: torch.dtype = torch.float32, seed: int = 0) -> nb201.NB201Network:
    mask = nb201.search_mask().without("cell", 0, "nor_conv_3x3").without("cell", 0, "avg_pool_3x3")
    mask = mask.without("cell", 4, "nor_conv_1x1")
    return init_weights(nb201.supernet(C=3, N=1, mask=mask), "paper", seed, fan="out").to(dtype)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return ntk_batch(8, seed=0, size=16)


@pytest.fixture(scope="module")
def crops() -> list[torch.Tensor]:
    return region_inputs(seed=0, n=300, batches=2)


# --- κ -----------------------------------------------------------------------------------------


def test_kappa_equals_the_plain_loop_float32(images):
    net = masked_supernet()
    kappa = ntk_condition_number(net, images)
    assert kappa == pytest.approx(plain_loop_kappa(copy.deepcopy(net), images), rel=1e-6)
    assert kappa == pytest.approx(plain_loop_kappa(copy.deepcopy(net).double(), images.double()), rel=1e-5)


def test_channels_last_batches_are_measured_as_contiguous_ones(images):
    # image_batch builds tensors from HWC arrays (channels_last strides); κ must not depend on that.
    net = masked_supernet()
    assert ntk_condition_number(net, images.contiguous(memory_format=torch.channels_last)) == \
        ntk_condition_number(net, images)


@pytest.mark.parametrize("method", ["loop", "batched"])
def test_every_method_feeds_the_model_a_contiguous_batch(images, method):
    # On CUDA the batched backward's vmap raises on channels_last tensors (seen on an H200), so the
    # contiguity must not depend on the device: check what the network itself receives.
    seen = []
    net = masked_supernet()
    net.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    ntk_condition_number(net, images[:4].contiguous(memory_format=torch.channels_last), method=method)
    assert seen == [True]


@pytest.mark.parametrize("method,chunk_size", [("loop", None), ("batched", None), ("batched", 3)])
def test_every_method_computes_the_definition_float64(images, method, chunk_size):
    net = masked_supernet(torch.float64)
    x = images.double()
    kappa = ntk_condition_number(net, x, method=method, chunk_size=chunk_size)
    assert kappa == pytest.approx(plain_loop_kappa(copy.deepcopy(net), x), rel=1e-9)


def test_batched_path_halves_its_chunk_when_memory_runs_out(images, monkeypatch):
    grad = torch.autograd.grad
    chunks: list[int] = []

    def small_memory(outputs, inputs, grad_outputs=None, **kwargs):
        if kwargs.get("is_grads_batched"):
            chunks.append(len(grad_outputs))
            if len(grad_outputs) > 3:
                raise torch.OutOfMemoryError("simulated")
        return grad(outputs, inputs, grad_outputs, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", small_memory)
    net = masked_supernet(torch.float64)
    kappa = ntk_condition_number(net, images.double(), method="batched")
    assert chunks == [8, 4, 2, 2, 2, 2]
    monkeypatch.undo()
    assert kappa == pytest.approx(plain_loop_kappa(copy.deepcopy(net), images.double()), rel=1e-9)


def test_kappa_is_bitwise_repeatable_and_uses_train_mode_without_side_effects(images):
    net = masked_supernet().eval()
    state = copy.deepcopy(net.state_dict())
    first, second = ntk_condition_number(net, images), ntk_condition_number(net, images)
    assert first == second
    assert not net.training and not any(m.training for m in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert first == pytest.approx(plain_loop_kappa(copy.deepcopy(net), images), rel=1e-6)
    assert first != pytest.approx(plain_loop_kappa(copy.deepcopy(net), images, train=False), rel=1e-3)


def test_only_weights_the_output_depends_on_enter_the_jacobian(images):
    net = masked_supernet()
    jacobian = ntk_jacobian(net, images)
    out = net(images)
    used = used_weights(net, out)
    names = {id(p): name for name, p in net.named_parameters()}
    used_names = {names[id(p)] for p in used}
    assert all(name.endswith("weight") for name in used_names)
    assert "cells.0.edges.0.nor_conv_3x3.1.weight" not in used_names  # pruned op
    assert "cells.0.edges.0.nor_conv_1x1.1.weight" in used_names
    assert jacobian.shape == (len(images), sum(p.numel() for p in used))
    live_weights = sum(p.numel() for name, p in net.named_parameters()
                       if name.endswith("weight") and not _pruned(name))
    assert jacobian.shape[1] == live_weights


def _pruned(name: str) -> bool:
    return name.startswith(("cells.0.edges.0.nor_conv_3x3", "cells.0.edges.4.nor_conv_1x1",
                            "cells.2.edges.0.nor_conv_3x3", "cells.2.edges.4.nor_conv_1x1",
                            "cells.4.edges.0.nor_conv_3x3", "cells.4.edges.4.nor_conv_1x1"))


def test_disconnected_cell_gives_infinite_kappa_with_a_warning_naming_it(images, caplog):
    net = init_weights(nb201.build(DISCONNECTED, C=3, N=1), "paper", 0, fan="out")
    with caplog.at_level(logging.WARNING, logger="rayneas.indicators.ntk"):
        kappa = ntk_condition_number(net, images, label="cell-under-test")
    assert kappa == math.inf
    assert "cell-under-test" in caplog.text and "λmin" in caplog.text


def test_nan_weights_give_infinite_kappa_not_an_exception(images, caplog):
    net = masked_supernet()
    with torch.no_grad():
        net.classifier.weight[0, 0] = float("nan")
    with caplog.at_level(logging.WARNING, logger="rayneas.indicators.ntk"):
        assert ntk_condition_number(net, images) == math.inf
    assert "NB201Network" in caplog.text and "NaN" in caplog.text


@pytest.mark.parametrize("kwargs,inputs,message", [
    ({}, torch.zeros(1, 3, 8, 8), "at least 2 inputs"),
    ({"method": "fast"}, None, "unknown method 'fast'"),
    ({"chunk_size": 0}, None, "chunk_size must be a positive integer"),
])
def test_kappa_rejects_bad_arguments(images, kwargs, inputs, message):
    with pytest.raises(ValueError, match=message):
        ntk_condition_number(masked_supernet(), images if inputs is None else inputs, **kwargs)


def test_kappa_rejects_a_model_without_one_output_row_per_input(images):
    with pytest.raises(ValueError, match="one row per input"):
        ntk_condition_number(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(0)), images)


# --- linear regions -----------------------------------------------------------------------------


def test_regions_of_a_known_piecewise_linear_function():
    # relu(x) and relu(x - 1) on a line: three regions, x < 0, 0 < x < 1, x > 1.
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.copy_(torch.tensor([0.0, -1.0]))
    model = nn.Sequential(conv, nn.ReLU())
    x = torch.linspace(-2, 3, 101).reshape(-1, 1, 1, 1)
    assert count_linear_regions(model, x) == 3
    assert count_linear_regions(model, [x[:10], x[10:]]) == 3  # batches pool their patterns


def test_regions_equal_a_brute_force_count_over_all_batches(crops):
    thin = init_weights(nb201.thin_network([[op] for op in nb201.from_index(BEST_C10).ops]), "paper", 0)
    patterns = []

    def record(module, args, out):
        patterns.append((out > 0).reshape(out.shape[0], -1))

    relus = [m for m in thin.modules() if isinstance(m, nn.ReLU)]
    rows: set[tuple[bool, ...]] = set()
    thin.train()
    for batch in crops:
        handles = [relu.register_forward_hook(record) for relu in relus]
        with torch.no_grad():
            thin(batch)
        for h in handles:
            h.remove()
        rows |= {tuple(r) for r in torch.cat(patterns, 1).tolist()}
        patterns.clear()
    thin.eval()
    assert count_linear_regions(thin, crops) == len(rows) > 100
    assert not thin.training  # restored


def test_disconnected_cell_has_one_region(crops):
    thin = init_weights(nb201.thin_network([[op] for op in nb201.parse(DISCONNECTED).ops]), "paper", 0)
    assert count_linear_regions(thin, crops) == 1


def test_pack_bits_keeps_rows_apart():
    bits = torch.rand(500, 37, generator=torch.Generator().manual_seed(0)) < 0.1
    bits[100:200] = bits[:100]
    assert torch.unique(pack_bits(bits), dim=0).shape[0] == torch.unique(bits, dim=0).shape[0]


@pytest.mark.parametrize("model,inputs,message", [
    (nn.Conv2d(1, 1, 1), torch.zeros(4, 1, 3, 3), "has no nn.ReLU module"),
    (nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), [], "at least one input batch"),
    (nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), torch.zeros(4, 9), "S×C×H×W"),
])
def test_regions_reject_bad_arguments(model, inputs, message):
    with pytest.raises(ValueError, match=message):
        count_linear_regions(model, inputs)


# --- inputs, init, registry -----------------------------------------------------------------------


def test_region_inputs_are_seeded_single_channel_crops():
    batches = region_inputs(seed=3, n=50, batches=3)
    assert [tuple(b.shape) for b in batches] == [(50, 1, 3, 3)] * 3
    assert all(torch.equal(a, b) for a, b in zip(batches, region_inputs(seed=3, n=50, batches=3)))
    assert not torch.equal(batches[0], region_inputs(seed=4, n=50, batches=3)[0])
    with pytest.raises(ValueError, match="batches must be a positive integer"):
        region_inputs(seed=0, batches=0)


def test_ntk_batch_is_contiguous_nchw():
    x = ntk_batch(4, seed=1)
    assert x.shape == (4, 3, 32, 32) and x.is_contiguous()


@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_init_is_deterministic_and_leaves_the_global_rng_alone(mode):
    nets = [nb201.supernet(C=3, N=1) for _ in range(3)]  # construction draws from the global RNG
    rng_state = torch.get_rng_state()
    a, b, c = (init_weights(net, mode, seed).state_dict() for net, seed in zip(nets, (5, 5, 6)))
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.0.weight"], c["stem.0.weight"])


def test_paper_init_is_kaiming_normal_with_the_requested_fan():
    conv = nn.Conv2d(64, 128, 3)
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.weight.fill_(3.0)
        bn.running_mean.fill_(2.0)
    model = nn.Sequential(conv, bn)
    init_weights(model, "paper", seed=0, fan="in")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)
    assert torch.all(conv.bias == 0) and torch.all(bn.weight == 1) and torch.all(bn.running_mean == 0)
    init_weights(model, "paper", seed=0, fan="out")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.03)


def test_reference_init_is_pytorchs_default_distribution():
    conv = nn.Conv2d(64, 128, 3)
    init_weights(conv, "reference", seed=0)
    bound = 1 / math.sqrt(64 * 9)  # kaiming_uniform_(a=sqrt(5)) of reset_parameters
    assert conv.weight.abs().max().item() <= bound
    assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "xavier"}, "unknown init mode 'xavier'"),
    ({"mode": "paper", "fan": "both"}, "fan must be 'in' or 'out'"),
])
def test_init_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        init_weights(nn.Conv2d(1, 1, 1), seed=0, **kwargs)


def test_registry_names_the_indicators_and_rejects_clashes():
    assert {"ntk", "linear_regions"} <= set(available_indicators())
    assert get_indicator("ntk") is ntk_condition_number
    assert get_indicator("linear_regions") is count_linear_regions
    with pytest.raises(ValueError, match="unknown indicator 'snip'; available: .*linear_regions.*ntk"):
        get_indicator("snip")

    @register_indicator("test_param_count")
    def param_count(model, inputs):
        return sum(p.numel() for p in model.parameters())

    try:
        assert get_indicator("test_param_count")(nn.Linear(2, 3), None) == 9
        with pytest.raises(ValueError, match="already taken"):
            register_indicator("ntk")(param_count)
    finally:
        _REGISTRY.pop("test_param_count")


# --- the correlation script -----------------------------------------------------------------------


def test_correlation_script_writes_scores_tau_table_and_plots(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "correlation_nb201.py"
    run = subprocess.run(
        [sys.executable, str(script), "--num-archs", "6", "--batch-size", "4", "--repeats", "2",
         "--region-samples", "40", "--region-batches", "2", "--proxy-C", "2", "--proxy-N", "1", "--proxy-batch", "4",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    scores = pacsv.read_csv(tmp_path / "scores.csv")
    assert scores.num_rows == 6 and {"kappa", "regions", "rank_sum", "kappa_0", "cifar10"} <= set(scores.column_names)
    proxies = set(available_indicators()) - {"ntk", "linear_regions"}
    assert proxies | {"az_nas"} | {f"{name}_1" for name in proxies} <= set(scores.column_names)
    taus = pq.read_table(tmp_path / "tau.parquet").to_pylist()
    assert [row["indicator"] for row in taus][:3] == ["kappa", "regions", "rank_sum"]
    assert {row["indicator"] for row in taus} >= proxies | {"az_nas"}
    assert {row["indicator"]: row["better"] for row in taus}["naswot"] == "higher"
    # The one disconnected cell of this sample (13286) gets −inf proxies, as κ = inf: it ranks last.
    disconnected = [i for i, ok in enumerate(scores.column("connected").to_pylist()) if not ok]
    assert disconnected and all(scores.column("naswot")[i].as_py() == -math.inf for i in disconnected)
    assert all(-1 <= row[d] <= 1 for row in taus for d in ("cifar10", "cifar100", "imagenet16"))
    assert all((tmp_path / f"scatter_{d}.png").stat().st_size > 0 for d in ("cifar10", "cifar100", "imagenet16"))
    assert "Kendall tau" in run.stdout
