"""Short training of an EAS child network, scored on a held-out validation split.

The reward a search learns from must never see the test images, so training
reads only ``x_train``/``y_train`` and scoring only ``x_val``/``y_val`` of the
data it is given (a `rayneas.data.DigitsSplit` or anything with those four).
Shuffling comes from a generator seeded by ``seed``, so a run repeats exactly
on the CPU (on a GPU up to cuDNN's own non-determinism).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Protocol

import torch
from torch import nn

from rayneas.eas.config import TrainConfig


class TrainValData(Protocol):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclasses.dataclass(frozen=True)
class TrainResult:
    val_accuracy: float
    epochs: int
    seconds: float
    train_loss: float  # mean loss of the last epoch (nan with 0 epochs)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in eval mode, on the model's device; the model's mode is restored."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size].to(device))
        correct += (logits.argmax(dim=1).cpu() == y[start:start + batch_size].cpu()).sum().item()
    model.train(was_training)
    return correct / len(x)


def train_child(model: nn.Module, data: TrainValData, cfg: TrainConfig, *, seed: int,
                device: str | torch.device = "cpu",
                augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> TrainResult:
    """Train ``model`` in place on ``device`` for ``cfg.epochs`` epochs and score it on the validation split.

    SGD as in EAS (momentum, optional Nesterov, weight decay) with a cosine
    learning rate stepped every batch; a fresh optimizer each call, so a
    network morphed since its last training is handled correctly.
    ``augment(batch, generator)`` transforms each training batch (e.g.
    `rayneas.eas.data.cifar_plus`), drawing from the shuffling generator so
    the run stays seeded.
    """
    if len(data.x_train) != len(data.y_train) or len(data.x_val) != len(data.y_val):
        raise ValueError(
            f"images and labels differ in number: train {len(data.x_train)} vs {len(data.y_train)}, "
            f"val {len(data.x_val)} vs {len(data.y_val)}"
        )
    if len(data.x_train) == 0 or len(data.x_val) == 0:
        raise ValueError("the train and validation splits must both be non-empty")
    start = time.perf_counter()
    model.to(device)
    x, y = data.x_train.to(device), data.y_train.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                weight_decay=cfg.weight_decay)
    # Full batches only: a 1-image tail batch would break BatchNorm on a 1x1 map.
    steps_per_epoch = max(1, len(x) // cfg.batch_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    epoch_loss = float("nan")
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen).to(device)
        losses = []
        for i in range(steps_per_epoch):
            batch = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            inputs = x[batch] if augment is None else augment(x[batch], gen)
            loss = loss_fn(model(inputs), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.detach())
        epoch_loss = torch.stack(losses).mean().item()
    val = accuracy(model, data.x_val, data.y_val)
    return TrainResult(val, cfg.epochs, time.perf_counter() - start, epoch_loss)
