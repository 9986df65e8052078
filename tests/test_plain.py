from pathlib import Path

import pytest
import torch

from rayneas.config import ConfigError, from_dict, load_run
from rayneas.eas.config import START_EPOCHS, START_LR, EASEnvConfig, PlainSpaceConfig
from rayneas.spaces.plain import (
    DEMO_CONV_WIDTHS,
    DEMO_FC_WIDTHS,
    DEMO_START,
    PAPER_START,
    ArchError,
    Layer,
    PlainCNN,
    WidthSchedule,
    parse,
    to_string,
)

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eas_digits.yaml"


@pytest.mark.parametrize("text", [DEMO_START, PAPER_START, "conv-16-3 pool conv-32-5 conv-32-1 fc-64 fc-10",
                                  "conv-1-1"])
def test_parse_round_trips(text):
    assert to_string(parse(text)) == text


def test_parse_reads_kinds_widths_kernels():
    assert parse("conv-16-5 pool fc-64") == (Layer("conv", 16, 5), Layer("pool"), Layer("fc", 64))
    assert parse("  conv-16-5\tpool  ") == parse("conv-16-5 pool")  # any whitespace separates tokens


@pytest.mark.parametrize("text, message", [
    ("conv-16-3 cnv-16-3", "layer 1 'cnv-16-3': unknown layer type 'cnv'"),
    ("conv-x-3", "layer 0 'conv-x-3': filters 'x' is not a positive integer"),
    ("conv-16-3 fc-1.5", "layer 1 'fc-1.5': units '1.5' is not a positive integer"),
    ("conv-0-3", "filters '0' is not a positive integer"),
    ("conv-16-4", "layer 0 'conv-16-4': kernel 4 is not one of 1, 3, 5"),
    ("conv-16", "conv takes 2 number(s): write conv-{filters}-{kernel}"),
    ("conv-16-3 pool-2", "pool takes no numbers"),
    ("conv-16-3 fc-64 conv-16-3", "layer 2 'conv-16-3' comes after an fc layer"),
    ("conv-16-3 fc-64 pool", "layer 2 'pool' comes after an fc layer"),
    ("fc-64", "layer 0 'fc-64': the network must start with a conv layer"),
    ("pool conv-4-3", "must start with a conv layer"),
    ("", "the architecture is empty"),
    (" ".join(["conv-4-3"] * 51), "51 layers exceed the maximum of 50"),
])
def test_parse_errors_name_the_bad_token(text, message):
    with pytest.raises(ArchError) as info:
        parse(text)
    assert message in str(info.value)


def test_fifty_layers_are_allowed():
    assert len(parse(" ".join(["conv-4-3"] * 50))) == 50


def test_layer_rejects_inconsistent_fields():
    with pytest.raises(ArchError, match="kernel must be one of"):
        Layer("conv", 8, 2)
    with pytest.raises(ArchError, match="a pool layer has no width"):
        Layer("pool", 8)


@pytest.mark.parametrize("arch, size", [(DEMO_START, 8), ("conv-4-3 pool pool pool pool pool conv-6-5", 8),
                                        ("conv-5-1 pool conv-7-3 fc-9 fc-3", 13), ("conv-3-3", 32)])
def test_network_output_shape(arch, size):
    net = PlainCNN(arch, in_channels=3, num_classes=7)
    assert net(torch.rand(4, 3, size, size)).shape == (4, 7)
    assert len(net.blocks) == len(net.arch)


def test_network_init_is_seeded():
    torch.manual_seed(123)  # the global RNG must not matter
    a = PlainCNN(DEMO_START, seed=5).state_dict()
    torch.manual_seed(456)
    b = PlainCNN(DEMO_START, seed=5).state_dict()
    c = PlainCNN(DEMO_START, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_width_schedule_steps_to_next_width_and_masks_the_last():
    schedule = WidthSchedule(DEMO_CONV_WIDTHS, DEMO_FC_WIDTHS)
    assert schedule.next_width(Layer("conv", 4, 3)) == 8
    assert schedule.next_width(Layer("conv", 6, 3)) == 8  # off-list widths step to the next larger one
    assert schedule.next_width(Layer("conv", 40, 3)) is None
    assert schedule.next_width(Layer("fc", 72)) == 80
    assert schedule.next_width(Layer("pool")) is None
    vocab = schedule.vocabulary()
    assert len(vocab) == len(set(vocab)) == 10 * 3 + 10 + 1
    assert {"conv-40-5", "fc-8", "pool"} <= set(vocab)
    with pytest.raises(ArchError, match="strictly increasing"):
        WidthSchedule((8, 4), (8,))


def test_digits_config_validates():
    kind, cfg = load_run(CONFIG)
    assert kind.name == "eas" and isinstance(cfg, EASEnvConfig)  # a run config is also the env's config
    assert cfg.space.start_arch() == parse(DEMO_START)
    assert cfg.space.schedule() == WidthSchedule(DEMO_CONV_WIDTHS, DEMO_FC_WIDTHS)
    assert (cfg.child.finetune_epochs, cfg.child.finetune_lr, cfg.child.batch_size) == (20, 0.02, 64)
    assert (cfg.start.epochs, cfg.start.lr) == (START_EPOCHS, START_LR)  # docs/eas_env.md: the plateau
    assert (cfg.noise.wider, cfg.noise.deeper) == (0.01, 0.001)


def test_default_space_is_the_eas_codes_digits_demo():
    # digits is the default dataset; CIFAR-10 configs spell out the paper-scale lists
    space = from_dict(PlainSpaceConfig, {"max_layers": 20})
    assert (space.start_net, space.conv_widths[-1], space.fc_widths[-1]) == (DEMO_START, 40, 80)


@pytest.mark.parametrize("space, message", [
    ({"start_net": "conv-4-3 fc-8 pool"}, "space: start_net: 'conv-4-3 fc-8 pool': layer 2 'pool' comes after"),
    ({"conv_widths": [8, 4]}, "space: conv_widths/fc_widths: conv widths must be strictly increasing"),
    ({"max_layers": 51}, "space.max_layers: 51 is out of range; it must be <= 50"),
    ({"start_net": "conv-4-3 conv-4-3", "max_layers": 1}, "2 layers exceed the maximum of 1"),
])
def test_bad_space_config_names_the_key(space, message):
    with pytest.raises(ConfigError) as info:
        from_dict(EASEnvConfig, {"space": space})
    assert message in str(info.value)

