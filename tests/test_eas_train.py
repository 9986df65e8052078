import dataclasses
import math

import pytest
import torch

from rayneas.data import digits_split
from rayneas.eas.config import TrainConfig
from rayneas.eas.train import accuracy, train_child
from rayneas.morph import deepen, widen
from rayneas.spaces.plain import DEMO_START, PlainCNN


@pytest.fixture(scope="module")
def digits():
    return digits_split(0)


@dataclasses.dataclass
class NoTestSplit:
    """Train and val of the digits; touching the test split fails the test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def x_test(self):
        raise AssertionError("child training read the test split")

    y_test = x_test


def quick(epochs: int = 3) -> TrainConfig:
    return TrainConfig(epochs=epochs)


def test_training_learns_digits_without_touching_test(digits):
    data = NoTestSplit(digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    net = PlainCNN("conv-16-3 pool conv-32-3 fc-32", seed=0)
    untrained = accuracy(net, digits.x_val, digits.y_val)
    result = train_child(net, data, quick(8), seed=0)
    assert result.val_accuracy > max(0.75, untrained + 0.5)
    assert result.val_accuracy == accuracy(net, digits.x_val, digits.y_val)
    assert result.epochs == 8 and result.seconds > 0 and result.train_loss < math.log(10)


def test_training_is_seeded(digits):
    def run(seed: int) -> tuple[float, dict]:
        net = PlainCNN(DEMO_START, seed=1)
        result = train_child(net, digits, quick(2), seed=seed)
        return result.train_loss, net.state_dict()

    (loss_a, a), (loss_b, b), (loss_c, _) = run(0), run(0), run(1)
    assert loss_a == loss_b and all(torch.equal(a[k], b[k]) for k in a)
    assert loss_a != loss_c  # another seed shuffles differently


def test_zero_epochs_only_scores(digits):
    net = PlainCNN(DEMO_START, seed=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = train_child(net, digits, quick(0), seed=0)
    assert math.isnan(result.train_loss) and result.epochs == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_morphed_network_trains_all_its_new_weights(digits):
    net = PlainCNN(DEMO_START, seed=3)
    train_child(net, digits, quick(1), seed=0)
    gen = torch.Generator().manual_seed(0)
    widen(net, 0, 8, rng=gen, noise=0.01)
    deepen(net, 2, kernel=3, batch=digits.x_train[:64], rng=gen, noise=0.001)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    train_child(net, digits, quick(1), seed=0)
    assert all(not torch.equal(before[name], p) for name, p in net.named_parameters())


def test_mismatched_split_is_rejected(digits):
    data = NoTestSplit(digits.x_train, digits.y_train[:-1], digits.x_val, digits.y_val)
    with pytest.raises(ValueError, match="images and labels differ in number: train 1077 vs 1076"):
        train_child(PlainCNN(DEMO_START), data, quick(), seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_gpu(digits):
    net = PlainCNN(DEMO_START, seed=4)
    result = train_child(net, digits, quick(2), seed=0, device="cuda")
    assert next(net.parameters()).is_cuda and 0 <= result.val_accuracy <= 1
