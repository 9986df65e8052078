import random

import pytest
import torch
from morph_helpers import outputs, state, with_trained_statistics

from rayneas.errors import RayneasError
from rayneas.morph import MorphError
from rayneas.morph import densenet as morph
from rayneas.spaces import densenet
from rayneas.spaces.densenet import DEMO_START, KERNEL_SIZES, DenseNet, Layer, SpecError, in_widths, parse


def random_spec(rng: random.Random) -> str:
    tokens = [f"stem-{rng.randint(1, 6)}-{rng.choice(KERNEL_SIZES)}"]
    for block in range(rng.randint(1, 3)):
        if block:
            tokens.append(f"trans-{rng.randint(1, 8)}")
        tokens += [f"dense-{rng.randint(1, 5)}-{rng.choice(KERNEL_SIZES)}" for _ in range(rng.randint(1, 3))]
    return " ".join(tokens)


def trained_looking(spec: str, in_channels: int, seed: int) -> DenseNet:
    return with_trained_statistics(DenseNet(spec, in_channels=in_channels, num_classes=5, seed=seed), in_channels, seed)


def dense_indices(net: DenseNet) -> list[int]:
    return [i for i, layer in enumerate(net.spec) if layer.kind == "dense"]


def random_transforms(net: DenseNet, rng: random.Random, gen: torch.Generator, n: int, noise: bool) -> None:
    for _ in range(n):
        index = rng.choice(dense_indices(net))
        if rng.random() < 0.5:
            morph.widen(net, index, net.spec[index].width + rng.randint(1, 4), rng=gen, noise=0.01 if noise else 0.0)
        else:
            kernel = rng.choice([None, *(k for k in KERNEL_SIZES if k >= net.spec[index].kernel)])
            morph.deepen(net, index, rng=gen, kernel=kernel, noise=0.001 if noise else 0.0)


# --- the space ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    DEMO_START,
    "stem-16-3 dense-12-3 dense-12-5 trans-24 dense-12-1 trans-18 dense-4-3 dense-48-3",
    "stem-1-1 dense-1-1",
])
def test_parse_format_round_trip(text):
    spec = parse(text)
    assert densenet.format(spec) == text
    assert parse(densenet.format(spec)) == spec
    assert densenet.to_string(spec) == text


def test_parse_reads_tokens():
    assert parse("stem-8-3 dense-4-5 trans-6 dense-2-1") == (
        Layer("stem", 8, 3), Layer("dense", 4, 5), Layer("trans", 6), Layer("dense", 2, 1))
    assert parse("  stem-8-3\n dense-4-5 ") == (Layer("stem", 8, 3), Layer("dense", 4, 5))


@pytest.mark.parametrize("text, message", [
    ("stem-8-3 dense-4-3 conv-4-3", "layer 2 'conv-4-3': unknown layer type 'conv'; use stem-{channels}-{kernel}, "
                                    "dense-{growth}-{kernel} or trans-{channels}"),
    ("stem-8-3 dense-4", "layer 1 'dense-4': dense takes 2 number(s): write dense-{growth}-{kernel}, e.g. dense-12-3"),
    ("stem-8-3 dense-4-3 trans-4-1 dense-4-3", "layer 2 'trans-4-1': trans takes 1 number(s): write trans-{channels}"),
    ("stem-8 dense-4-3", "layer 0 'stem-8': stem takes 2 number(s): write stem-{channels}-{kernel}"),
    ("stem-8-3 dense-0-3", "layer 1 'dense-0-3': growth '0' is not a positive integer"),
    ("stem-8-3 dense-x-3", "growth 'x' is not a positive integer"),
    ("stem-8-3 dense-4-7", "layer 1 'dense-4-7': kernel 7 is not one of 1, 3, 5"),
    ("stem-8-3 dense-4-3 trans- dense-4-3", "layer 2 'trans-': channels '' is not a positive integer"),
    ("dense-4-3 dense-4-3", "layer 0 'dense-4-3': the network must start with a stem conv"),
    ("stem-8-3 dense-4-3 stem-8-3 dense-4-3", "layer 2 'stem-8-3': only the first layer is a stem"),
    ("stem-8-3", "layer 0 'stem-8-3' must be followed by a dense layer"),
    ("stem-8-3 trans-4 dense-4-3", "layer 0 'stem-8-3' must be followed by a dense layer"),
    ("stem-8-3 dense-4-3 trans-4", "layer 2 'trans-4' must be followed by a dense layer: every dense block needs"),
    ("stem-8-3 dense-4-3 trans-4 trans-4 dense-4-3", "layer 2 'trans-4' must be followed by a dense layer"),
    ("", "the spec is empty; example: 'stem-8-3 dense-4-3"),
])
def test_parse_errors_name_the_token_and_the_forms(text, message):
    with pytest.raises(SpecError) as info:
        parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, RayneasError) and isinstance(info.value, ValueError)


def test_parse_rejects_too_many_layers_and_non_strings():
    with pytest.raises(SpecError, match="51 layers exceed the maximum of 50"):
        parse("stem-2-3 " + " ".join(["dense-1-1"] * 50))
    with pytest.raises(SpecError, match="expected a DenseNet spec string, got list"):
        parse(["stem-2-3"])
    with pytest.raises(SpecError, match="a transition's conv is always 1x1"):
        Layer("trans", 4, 3)


def test_every_dense_layer_reads_its_block_so_far():
    net = DenseNet("stem-5-3 dense-3-3 dense-2-1 trans-4 dense-6-5 dense-1-3", in_channels=2, num_classes=7)
    assert in_widths(net.spec, 2) == [2, 5, 8, 10, 4, 10, 11]
    assert [m.weight.shape for m in (net.layers[0],)] == [(5, 2, 3, 3)]
    assert net.layers[1].conv.weight.shape == (3, 5, 3, 3) and net.layers[1].bn.num_features == 5
    assert net.layers[2].conv.weight.shape == (2, 8, 1, 1)
    assert net.layers[3].conv.weight.shape == (4, 10, 1, 1)
    assert net.layers[5].conv.weight.shape == (1, 10, 3, 3)
    assert net.classifier.linear.weight.shape == (7, 11) and net.classifier.bn.num_features == 11
    x = torch.randn(2, 2, 9, 9)
    assert net(x).shape == (2, 7)
    # The dense concatenation by hand: block input, then each layer's output appended.
    net.eval()
    with torch.no_grad():
        h = net.layers[0](x)
        h = torch.cat([h, net.layers[1](h)], 1)
        h = torch.cat([h, net.layers[2](h)], 1)
        h = net.layers[3](h)
        assert h.shape == (2, 4, 5, 5)
        h = torch.cat([h, net.layers[4](h)], 1)
        h = torch.cat([h, net.layers[5](h)], 1)
        assert torch.equal(net.classifier(h), net(x))


def test_same_seed_same_network():
    a, b = DenseNet(DEMO_START, seed=3), DenseNet(DEMO_START, seed=3)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(DenseNet(DEMO_START, seed=4).layers[0].weight, a.layers[0].weight)


# --- the transforms ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", range(10))
def test_random_transform_sequences_preserve_the_function(case):
    rng = random.Random(case)
    in_channels = rng.choice([1, 3])
    net = trained_looking(random_spec(rng), in_channels, case)
    gen = torch.Generator().manual_seed(case)
    x = torch.randn(16, in_channels, 9, 9, generator=gen) * 2 + 0.5
    before, start = outputs(net, x), net.spec
    random_transforms(net, rng, gen, n=12, noise=False)
    assert len(net.spec) > len(start) or net.spec != start
    assert (outputs(net, x) - before).abs().max().item() <= 1e-5
    # The spec describes the module exactly: a fresh network of that spec has
    # the same parameter shapes, takes the state dict key for key and computes the same.
    rebuilt = DenseNet(net.spec_string, in_channels=in_channels, num_classes=5)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    assert torch.equal(outputs(rebuilt, x), outputs(net, x))


def test_transforms_preserve_the_function_in_train_mode():
    """Copies have the originals' batch statistics, so train-mode BN keeps them copies too."""
    net = trained_looking("stem-4-3 dense-3-3 dense-2-1 trans-5 dense-3-5", 1, 5)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(32, 1, 9, 9, generator=gen)
    net.train()
    with torch.no_grad():
        before = net(x)
        morph.widen(net, 1, 6, rng=gen)
        morph.deepen(net, 2, rng=gen, kernel=3)
        morph.deepen(net, 5, rng=gen)
        morph.widen(net, 6, 8, rng=gen)
        assert net.spec_string == "stem-4-3 dense-6-3 dense-2-1 dense-2-3 trans-5 dense-3-5 dense-8-5"
        after = net(x)
    assert net.training and all(m.training for m in net.modules())  # new modules follow the network's mode
    assert (after - before).abs().max().item() <= 1e-5


@pytest.mark.parametrize("case", range(4))
def test_noise_changes_outputs_a_little(case):
    rng = random.Random(100 + case)
    net = trained_looking(random_spec(rng), 1, case)
    gen = torch.Generator().manual_seed(case)
    x = torch.randn(16, 1, 9, 9, generator=gen) * 2 + 0.5
    before = outputs(net, x)
    random_transforms(net, rng, gen, n=10, noise=True)
    diff = (outputs(net, x) - before).abs().max().item()
    assert 0 < diff < 0.05 * before.abs().max().item()


def test_same_seed_same_morphed_network():
    def run() -> dict:
        net = trained_looking(DEMO_START, 3, 0)
        random_transforms(net, random.Random(7), torch.Generator().manual_seed(7), n=10, noise=True)
        return state(net)

    a, b = run(), run()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_widen_replicates_units_and_splits_every_readers_weights():
    net = trained_looking("stem-4-3 dense-3-3 dense-2-3 trans-5 dense-2-1", 1, 0)
    old = state(net)
    morph.widen(net, 1, 7, rng=torch.Generator().manual_seed(0))
    assert net.spec_string == "stem-4-3 dense-7-3 dense-2-3 trans-5 dense-2-1"
    new_conv = net.layers[1].conv.weight
    assert new_conv.shape == (7, 4, 3, 3) and torch.equal(new_conv[:3], old["layers.1.conv.weight"])
    assert torch.equal(net.layers[1].bn.running_mean, old["layers.1.bn.running_mean"])  # its own input BN: as was
    # Readers: the later dense layer and the transition; the segment sits after the 4 stem channels.
    for reader in ("layers.2", "layers.3"):
        weight = net.state_dict()[f"{reader}.conv.weight"]
        assert weight.shape[1] == 4 + 7 + (2 if reader == "layers.3" else 0)
        assert torch.equal(weight[:, :4], old[f"{reader}.conv.weight"][:, :4])
        for unit in range(3):
            copies = [j for j in range(7) if torch.equal(new_conv[j], old["layers.1.conv.weight"][unit])]
            summed = weight[:, [4 + j for j in copies]].sum(dim=1)
            assert torch.allclose(summed, old[f"{reader}.conv.weight"][:, 4 + unit], atol=1e-6)
            for key in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
                copied = net.state_dict()[f"{reader}.{key}"][[4 + j for j in copies]]
                assert torch.equal(copied, old[f"{reader}.{key}"][4 + unit].expand(len(copies)))
    # the next block reads only the transition: untouched
    assert torch.equal(net.layers[4].conv.weight, old["layers.4.conv.weight"])


def test_widen_in_the_last_block_updates_the_classifier():
    net = trained_looking("stem-3-3 dense-2-3 trans-4 dense-3-1", 1, 1)
    x = torch.randn(5, 1, 9, 9)
    before = outputs(net, x)
    morph.widen(net, 3, 9, rng=torch.Generator().manual_seed(1))
    assert net.classifier.linear.in_features == 4 + 9 and net.classifier.bn.num_features == 13
    assert (outputs(net, x) - before).abs().max() <= 1e-5


def test_deepen_inserts_a_copy_reading_its_original_with_zero_weights():
    net = trained_looking("stem-4-3 dense-3-1 trans-5 dense-2-3", 1, 2)
    old = state(net)
    morph.deepen(net, 1, rng=torch.Generator().manual_seed(2), kernel=5)
    assert net.spec_string == "stem-4-3 dense-3-1 dense-3-5 trans-5 dense-2-3"
    new = net.layers[2]
    assert new.conv.weight.shape == (3, 7, 5, 5) and new.bn.num_features == 7
    assert torch.equal(new.conv.weight[:, 4:], torch.zeros(3, 3, 5, 5))  # the copied layer's output: zero weights
    centre = new.conv.weight[:, :4, 2:3, 2:3]  # a 1x1 copy zero-padded to 5x5
    assert new.conv.weight[:, :4].abs().sum() == centre.abs().sum()
    assert all(any(torch.equal(centre[i], old["layers.1.conv.weight"][u]) for u in range(3)) for i in range(3))
    assert torch.equal(new.bn.running_mean[:4], old["layers.1.bn.running_mean"])
    assert torch.equal(new.bn.running_mean[4:], old["layers.2.bn.running_mean"][4:7])  # from the next reader
    assert net.layers[3].conv.weight.shape == (5, 10, 1, 1)


def test_token_level_transforms_match_module_transforms():
    spec = parse(DEMO_START)
    assert densenet.format(morph.widened(spec, 3, 10)) == "stem-8-3 dense-4-3 trans-6 dense-10-3 trans-5 dense-4-3"
    assert densenet.format(morph.deepened(spec, 1)) == (
        "stem-8-3 dense-4-3 dense-4-3 trans-6 dense-4-3 trans-5 dense-4-3")
    assert densenet.format(morph.deepened(spec, 5, kernel=5)).endswith("trans-5 dense-4-3 dense-4-5")
    net = DenseNet(DEMO_START)
    morph.deepen(net, 5, rng=torch.Generator(), kernel=5)
    assert net.spec == morph.deepened(spec, 5, kernel=5)


NET = "stem-3-3 dense-4-3 trans-5 dense-2-1"


@pytest.mark.parametrize("action, message", [
    (lambda net: morph.widen(net, 2, 8, rng=torch.Generator()),
     "cannot widen layer 2 'trans-5': it is a transition; only dense layers (their growth) can be widened"),
    (lambda net: morph.widen(net, 0, 8, rng=torch.Generator()), "cannot widen layer 0 'stem-3-3': it is the stem conv"),
    (lambda net: morph.widen(net, 1, 3, rng=torch.Generator()),
     "cannot widen layer 1 'dense-4-3' to 3: the new width must be an integer larger than the current 4"),
    (lambda net: morph.widen(net, 1, 4, rng=torch.Generator()), "larger than the current 4"),
    (lambda net: morph.widen(net, 4, 8, rng=torch.Generator()),
     "cannot widen layer 4: index out of range, the network has 4 layers (0..3)"),
    (lambda net: morph.widen(net, -1, 8, rng=torch.Generator()), "index out of range"),
    (lambda net: morph.widen(net, 1, 8, rng=torch.Generator(), noise=-0.1), "noise must be a number >= 0"),
    (lambda net: morph.widen(net, 1, 8, rng=None), "pass `rng`, a seeded torch.Generator"),
    (lambda net: morph.deepen(net, 2, rng=torch.Generator()),
     "cannot deepen after layer 2 'trans-5': it is a transition; a new layer goes into a dense block"),
    (lambda net: morph.deepen(net, 1, rng=torch.Generator(), max_layers=4),
     "cannot deepen: the network already has 4 layers and may have at most 4"),
    (lambda net: morph.deepen(net, 1, rng=torch.Generator(), kernel=1),
     "cannot deepen after layer 1 'dense-4-3' with kernel 1: the new layer starts as a copy of its 3x3 filters "
     "(zero-padded), so the kernel must be one of (3, 5)"),
    (lambda net: morph.deepen(net, 3, rng=torch.Generator(), kernel=7), "kernel must be one of (1, 3, 5)"),
    (lambda net: morph.deepen(net, 1.0, rng=torch.Generator()), "layer index must be an integer, got 1.0"),
    (lambda net: morph.deepen(net, 1, rng=torch.Generator(), noise=float("nan")), "noise must be a number >= 0"),
])
def test_impossible_transforms_raise_and_leave_the_network_unchanged(action, message):
    net = trained_looking(NET, 1, 4)
    before, spec, modules = state(net), net.spec, list(net.modules())
    with pytest.raises(MorphError) as info:
        action(net)
    assert message in str(info.value)
    after = net.state_dict()
    assert net.spec == spec and list(net.modules()) == modules and after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_deepen_stops_at_the_maximum_depth():
    net = DenseNet("stem-2-3 " + " ".join(["dense-1-1"] * 48), in_channels=1)
    morph.deepen(net, 48, rng=torch.Generator())
    assert len(net.spec) == 50 and len(net.layers) == 50
    with pytest.raises(MorphError, match="already has 50 layers and may have at most 50"):
        morph.deepen(net, 1, rng=torch.Generator())
    assert len(net.spec) == 50 and len(net.layers) == 50


def test_restructure_refuses_modules_that_do_not_match_the_spec():
    net = DenseNet(DEMO_START)
    spec = morph.widened(net.spec, 1, 6)
    with pytest.raises(ValueError, match="layer 1 'dense-6-3' reading 8 channels does not match"):
        net.restructure(spec, list(net.layers), net.classifier)
    assert net.spec == parse(DEMO_START)


def test_transforms_follow_the_networks_dtype():
    """New modules take the network's dtype (and device): in float64 preservation holds to rounding."""
    net = trained_looking("stem-3-3 dense-2-3 trans-4 dense-3-1", 1, 6).double()
    x = torch.randn(4, 1, 9, 9, dtype=torch.float64)
    before = outputs(net, x)
    random_transforms(net, random.Random(6), torch.Generator().manual_seed(6), n=10, noise=False)
    assert all(t.dtype == torch.float64 for t in net.state_dict().values() if t.is_floating_point())
    assert (outputs(net, x) - before).abs().max().item() <= 1e-12
