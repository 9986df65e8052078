"""Running a model in train mode for a measurement without leaving a trace on it.

The indicators need train-mode BatchNorm (batch statistics, as TE-NAS does),
and so does Net2Deeper when it fits an identity BatchNorm to a batch; a
train-mode forward updates running statistics, and neither may change the
model it reads, so modes and buffers are put back afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


@contextmanager
def train_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in train mode inside the block; its modes and buffers as before, after it."""
    with _mode(model, True):
        yield model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block (e.g. a batch of one through BatchNorm); modes and buffers restored."""
    with _mode(model, False):
        yield model


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()]
    buffers = [(buf, buf.detach().clone()) for buf in model.buffers()]
    model.train(training)
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
        for module, mode in modes:
            module.training = mode


def device_of(model: nn.Module) -> torch.device:
    """Where the model's tensors live (CPU for a model without any), so inputs can follow it."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
