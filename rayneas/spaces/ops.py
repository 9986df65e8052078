"""Candidate operations shared by the cell spaces (NAS-Bench-201 and DARTS).

They follow the benchmarks' reference implementations layer for layer, so a
genotype found here builds the same network its benchmark trained.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The `none` op: contributes nothing, but keeps the output shape of the edge."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if x.shape[1] == self.c_out:
            return x.mul(0.0)
        return x.new_zeros(x.shape[0], self.c_out, x.shape[2], x.shape[3])


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1×1 convs, so no pixel is dropped."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        half = c_out // 2
        self.conv_1 = nn.Conv2d(c_in, half, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - half, 1, stride=2, padding=0, bias=False)
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        y = self.pad(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(y[:, :, 1:, 1:])], dim=1))


def _box3(x: torch.Tensor) -> torch.Tensor:
    """Sum over each 3×3 window (zero padding 1, stride 1), as two passes of shifted slices."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., :, 0:w] + p[..., :, 1:w + 1] + p[..., :, 2:w + 2]
    return rows[..., 0:h, :] + rows[..., 1:h + 1, :] + rows[..., 2:h + 2, :]


def _inverse_count(x: torch.Tensor) -> torch.Tensor:
    """1 / in-image pixels of each 3×3 window: 1/4 in corners, 1/6 on edges, 1/9 inside."""
    return 1.0 / _box3(x.new_ones(1, 1, x.shape[-2], x.shape[-1]))


class _BoxAverage(torch.autograd.Function):
    """avg_pool2d(3, 1, 1, count_include_pad=False), with a cheap backward on the CPU.

    The NTK needs one backward per sample, and PyTorch's pooling backward is a
    large share of the κ time (docs/indicators.md). A zero-padded box sum is its
    own adjoint, so the backward is the same two slice passes as the forward.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _box3(x) * _inverse_count(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(_inverse_count(inputs[0]))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (inverse,) = ctx.saved_tensors
        return _box3(grad * inverse)


class BoxAverage3x3(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BoxAverage.apply(x)


class Pooling(nn.Module):
    """3×3 pooling, with a 1×1 ReLUConvBN first when the channel count changes (NAS-Bench-201)."""

    def __init__(self, c_in: int, c_out: int, stride: int, mode: str = "avg", affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.preprocess = (
            None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats)
        )
        if mode == "avg" and stride == 1:
            self.op: nn.Module = BoxAverage3x3()
        elif mode == "avg":
            self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        elif mode == "max":
            self.op = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise ValueError(f"pooling mode {mode!r} is unknown; use 'avg' or 'max'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x if self.preprocess is None else self.preprocess(x))


def skip_connect(c_in: int, c_out: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return FactorizedReduce(c_in, c_out, affine, track_running_stats)


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's fixed reduction block between stages."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, 1, affine, track_running_stats)
        if stride == 2:
            self.downsample: nn.Module | None = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


# --- DARTS-only ops (Liu et al. 2019, cnn/operations.py) ---------------------


class DilConv(nn.Sequential):
    """DARTS's (dilated) depthwise-separable conv: ReLU, depthwise k×k, pointwise 1×1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """DARTS's sep_conv: the undilated DilConv block applied twice, striding only in the first.

    Layer for layer this is DARTS's eight-layer SepConv, so the composition adds
    nothing but avoids a second copy of the block.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1),
            DilConv(c_in, c_out, kernel, 1, padding, 1),
        )


#: name -> builder(C, stride) for the eight DARTS ops, in DARTS's `PRIMITIVES`
#: order (genotypes.py), which `rayneas.spaces.darts` keeps as the order of every supernet edge's ops.
DARTS_OPS: dict[str, Callable[[int, int], nn.Module]] = {
    "none": lambda c, stride: Zero(c, c, stride),
    "max_pool_3x3": lambda c, stride: Pooling(c, c, stride, "max"),
    "avg_pool_3x3": lambda c, stride: Pooling(c, c, stride, "avg"),
    "skip_connect": lambda c, stride: skip_connect(c, c, stride),
    "sep_conv_3x3": lambda c, stride: SepConv(c, c, 3, stride, 1),
    "sep_conv_5x5": lambda c, stride: SepConv(c, c, 5, stride, 2),
    "dil_conv_3x3": lambda c, stride: DilConv(c, c, 3, stride, 2, 2),
    "dil_conv_5x5": lambda c, stride: DilConv(c, c, 5, stride, 4, 2),
}
