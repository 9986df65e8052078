import random

import pytest
import torch
from morph_helpers import outputs, state, with_trained_statistics

from rayneas.morph import MorphError, deepen, deepened, widen, widened
from rayneas.spaces.plain import KERNEL_SIZES, Layer, PlainCNN, parse, to_string


def random_arch(rng: random.Random) -> str:
    layers = [f"conv-{rng.randint(1, 6)}-{rng.choice(KERNEL_SIZES)}"]
    for _ in range(rng.randint(0, 6)):
        layers.append("pool" if rng.random() < 0.3 else f"conv-{rng.randint(1, 6)}-{rng.choice(KERNEL_SIZES)}")
    layers += [f"fc-{rng.randint(1, 8)}" for _ in range(rng.randint(0, 2))]
    return " ".join(layers)


def trained_looking(arch: str, in_channels: int, seed: int) -> PlainCNN:
    return with_trained_statistics(PlainCNN(arch, in_channels=in_channels, num_classes=5, seed=seed), in_channels, seed)


def random_transforms(net: PlainCNN, rng: random.Random, gen: torch.Generator, batch: torch.Tensor, n: int,
                      noise: bool) -> None:
    for _ in range(n):
        index = rng.choice([i for i, layer in enumerate(net.arch) if layer.kind != "pool"])
        if rng.random() < 0.5:
            widen(net, index, net.arch[index].width + rng.randint(1, 5), rng=gen, noise=0.01 if noise else 0.0)
        else:
            deepen(net, index, kernel=rng.choice(KERNEL_SIZES), batch=batch, rng=gen, noise=0.001 if noise else 0.0)


@pytest.mark.parametrize("case", range(12))
def test_random_transform_sequences_preserve_the_function(case):
    rng = random.Random(case)
    in_channels = rng.choice([1, 3])
    net = trained_looking(random_arch(rng), in_channels, case)
    gen = torch.Generator().manual_seed(case)
    x = torch.randn(16, in_channels, 9, 9, generator=gen) * 2 + 0.5
    batch = torch.randn(64, in_channels, 9, 9, generator=gen) * 2 + 0.5
    before = outputs(net, x)
    start = net.arch
    random_transforms(net, rng, gen, batch, n=12, noise=False)
    assert len(net.arch) > len(start) or net.arch != start
    assert (outputs(net, x) - before).abs().max().item() <= 1e-5
    # The token list describes the module exactly: a fresh network of that
    # architecture takes its state dict key for key and computes the same.
    rebuilt = PlainCNN(to_string(net.arch), in_channels=in_channels, num_classes=5)
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    assert torch.equal(outputs(rebuilt, x), outputs(net, x))


@pytest.mark.parametrize("case", range(4))
def test_noise_changes_outputs_a_little(case):
    rng = random.Random(100 + case)
    net = trained_looking(random_arch(rng), 1, case)
    gen = torch.Generator().manual_seed(case)
    x = torch.randn(16, 1, 9, 9, generator=gen) * 2 + 0.5
    before = outputs(net, x)
    random_transforms(net, rng, gen, x, n=10, noise=True)
    diff = (outputs(net, x) - before).abs().max().item()
    assert 0 < diff < 0.05 * before.abs().max().item()


def test_same_seed_same_morphed_network():
    def run() -> dict:
        net = trained_looking("conv-4-3 pool conv-4-5 fc-8", 1, 0)
        rng, gen = random.Random(7), torch.Generator().manual_seed(7)
        random_transforms(net, rng, gen, torch.ones(8, 1, 9, 9), n=10, noise=True)
        return state(net)

    a, b = run(), run()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_widen_replicates_units_and_splits_outgoing_weights():
    net = trained_looking("conv-3-3 pool conv-4-3 fc-5", 1, 0)
    old_conv, old_reader = net.blocks[0].conv.weight.clone(), net.blocks[2].conv.weight.clone()
    widen(net, 0, 7, rng=torch.Generator().manual_seed(0))
    assert net.arch[0] == Layer("conv", 7, 3)
    new_conv, new_reader = net.blocks[0].conv.weight, net.blocks[2].conv.weight
    assert new_conv.shape == (7, 1, 3, 3) and new_reader.shape == (4, 7, 3, 3)
    assert torch.equal(new_conv[:3], old_conv)
    # each old input channel's weights are shared equally among its copies
    for unit in range(3):
        copies = [j for j in range(7) if torch.equal(new_conv[j], old_conv[unit])]
        summed = new_reader[:, copies].sum(dim=1)
        assert torch.allclose(summed, old_reader[:, unit], atol=1e-6)


def test_widen_last_layer_updates_classifier_across_global_pool():
    net = trained_looking("conv-3-3 pool conv-4-1", 1, 1)
    x = torch.randn(5, 1, 9, 9)
    before = outputs(net, x)
    widen(net, 2, 9, rng=torch.Generator().manual_seed(1))
    assert net.classifier.in_features == 9
    assert (outputs(net, x) - before).abs().max() <= 1e-5


def test_deepen_conv_is_identity_in_train_mode_on_its_batch():
    net = trained_looking("conv-4-3 pool conv-6-3 fc-8", 1, 2)
    batch = torch.randn(64, 1, 9, 9)
    net.train()
    with torch.no_grad():
        before = net(batch)
        deepen(net, 2, kernel=5, batch=batch)
        after = net(batch)
    assert net.training and net.blocks[3].training  # the new layer follows the network's mode
    assert (after - before).abs().max() <= 1e-5


def test_deepen_fc_inserts_identity_fc():
    net = trained_looking("conv-4-3 fc-6 fc-3", 1, 3)
    x = torch.randn(5, 1, 9, 9)
    before = outputs(net, x)
    deepen(net, 1)
    assert to_string(net.arch) == "conv-4-3 fc-6 fc-6 fc-3"
    assert torch.equal(outputs(net, x), before)


def test_token_level_transforms_match_module_transforms():
    arch = parse("conv-4-3 pool fc-8")
    assert to_string(widened(arch, 0, 12)) == "conv-12-3 pool fc-8"
    assert to_string(deepened(arch, 0, kernel=1)) == "conv-4-3 conv-4-1 pool fc-8"
    assert to_string(deepened(arch, 2)) == "conv-4-3 pool fc-8 fc-8"


@pytest.mark.parametrize("action, message", [
    (lambda net, b: widen(net, 1, 8, rng=torch.Generator()), "cannot widen layer 1: it is a pool layer"),
    (lambda net, b: widen(net, 2, 3, rng=torch.Generator()),
     "cannot widen layer 2 'conv-4-5' to 3: the new width must be an integer larger than the current 4"),
    (lambda net, b: widen(net, 2, 4, rng=torch.Generator()), "larger than the current 4"),
    (lambda net, b: widen(net, 4, 8, rng=torch.Generator()),
     "cannot widen layer 4: index out of range, the network has 4 layers (0..3)"),
    (lambda net, b: widen(net, -1, 8, rng=torch.Generator()), "index out of range"),
    (lambda net, b: widen(net, 0, 8, rng=torch.Generator(), noise=-0.1), "noise must be a number >= 0"),
    (lambda net, b: deepen(net, 1, batch=b), "cannot deepen after layer 1: it is a pool layer"),
    (lambda net, b: deepen(net, 0, batch=b, max_layers=4),
     "cannot deepen: the network already has 4 layers and may have at most 4"),
    (lambda net, b: deepen(net, 0, kernel=7, batch=b), "kernel 7 is not one of (1, 3, 5)"),
    (lambda net, b: deepen(net, 0), "pass `batch`"),
    (lambda net, b: deepen(net, 0, batch=torch.ones(4, 3, 9, 9)), "must be network inputs of shape N x 1 x H x W"),
    (lambda net, b: deepen(net, 3, noise=0.1), "noise > 0 needs `rng`"),
])
def test_impossible_transforms_raise_and_leave_the_network_unchanged(action, message):
    net = trained_looking("conv-3-3 pool conv-4-5 fc-8", 1, 4)
    before, arch = state(net), net.arch
    with pytest.raises(MorphError) as info:
        action(net, torch.ones(8, 1, 9, 9))
    assert message in str(info.value)
    after = net.state_dict()
    assert net.arch == arch and after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_deepen_stops_at_fifty_layers():
    net = PlainCNN(" ".join(["conv-2-1"] * 48) + " fc-4")
    deepen(net, 48)
    assert len(net.arch) == 50
    with pytest.raises(MorphError, match="already has 50 layers and may have at most 50"):
        deepen(net, 49)
    assert len(net.arch) == 50 and len(net.blocks) == 50
