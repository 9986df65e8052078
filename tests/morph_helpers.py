"""What the Net2Net tests of both EAS spaces (plain CNN, DenseNet) share."""
from __future__ import annotations

import torch
from torch import nn


def with_trained_statistics(net: nn.Module, in_channels: int, seed: int) -> nn.Module:
    """``net`` with non-trivial BN affine parameters, biases and running statistics, in eval mode.

    A fresh network's BNs are identities with zero means: a transform that
    mishandled BN entries would still pass on it, so preservation tests start here.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.3, generator=gen)
            if isinstance(module, nn.Linear):
                module.bias.normal_(0.0, 0.3, generator=gen)
        net.train()
        for _ in range(3):
            net(torch.randn(32, in_channels, 9, 9, generator=gen) * 2 + 0.5)
    return net.eval()


def outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(x)


def state(net: nn.Module) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}
