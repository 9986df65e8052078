"""κ_N, the condition number of a network's empirical NTK on one batch (TE-NAS trainability).

Exactly as the reference code: the network in train mode (BatchNorm uses batch
statistics), J[i] = d logits[i].sum() / d w for every parameter whose name ends
in ``weight`` (biases excluded), Θ = J Jᵀ, κ = λmax / λmin, with Θ and its
eigenvalues in float64. Because train-mode BatchNorm couples the samples, each
row of J needs a backward pass through the whole batch.

Two ways to get J (their speed and accuracy are measured in docs/indicators.md):

- ``method="loop"`` (CPU default): one ``autograd.grad`` per sample. The
  inputs are made contiguous NCHW first: image batches built from numpy HWC
  arrays arrive channels_last, which on the CPU sends every BatchNorm to
  PyTorch's channels_last kernels, whose float32 sums are far less accurate,
  enough to reorder candidates whose Δκ differ in the third decimal (and on
  CUDA the batched backward's vmap rejects channels_last tensors outright).
- ``method="batched"`` (CUDA default): ``is_grads_batched`` pushes ``chunk_size``
  cotangents through one vmapped backward, fewer and larger kernels. On the
  CPU, convolution, pooling and BatchNorm backwards have no batching rule and
  fall back to a per-sample loop inside vmap, so the plain loop wins there.

Only parameters the output actually depends on enter J: masked-out supernet
ops add no columns of zeros, and no gradient is computed for them.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Literal

import torch
from torch import nn

from rayneas.indicators.common import reached_parameters
from rayneas.indicators.registry import InputSpec, register_indicator
from rayneas.nn_state import device_of, train_mode

log = logging.getLogger(__name__)

Method = Literal["auto", "loop", "batched"]
METHODS: tuple[str, ...] = ("auto", "loop", "batched")


@register_indicator("ntk", direction="lower", network="kappa", inputs=InputSpec(batch_size=72))
def ntk_condition_number(model: nn.Module, inputs: torch.Tensor, *, chunk_size: int | None = None,
                         method: Method = "auto", label: str | None = None) -> float:
    """κ of ``model`` on ``inputs`` (B ≥ 2 samples); ``math.inf`` when Θ is singular or not finite.

    ``label`` names the model in the warning logged for an infinite κ (default:
    its class). ``chunk_size`` bounds the cotangents per batched backward
    (``None``: the whole batch, halved on out-of-memory); the loop ignores it.
    """
    jacobian = ntk_jacobian(model, inputs, chunk_size=chunk_size, method=method)
    return condition_number(jacobian, label or type(model).__name__)


def ntk_jacobian(model: nn.Module, inputs: torch.Tensor, *, chunk_size: int | None = None,
                 method: Method = "auto") -> torch.Tensor:
    """J, B × P: row i is d model(inputs)[i].sum() / d (used weights), in the model's dtype and device."""
    _check_arguments(inputs, chunk_size, method)
    device = device_of(model)
    # Contiguous NCHW on every device: channels_last batches (image batches built from HWC arrays) make the
    # CPU's BatchNorm kernels far less accurate, and the batched backward's vmap cannot take them on CUDA.
    x = inputs.to(device).contiguous()
    if method == "auto":
        method = "loop" if device.type == "cpu" else "batched"
    with train_mode(model):
        out = model(x)
        if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"{type(model).__name__} must return a tensor of logits with one row per input; "
                f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))} for {x.shape[0]} inputs"
            )
        params = used_weights(model, out)
        if not params:
            return out.new_zeros(x.shape[0], 0)
        if method == "loop":
            return _loop_jacobian(out, params)
        return _batched_jacobian(out, params, chunk_size)


def condition_number(jacobian: torch.Tensor, label: str) -> float:
    """λmax / λmin of J Jᵀ in float64; ``math.inf`` (with a warning naming ``label``) when that is undefined."""
    if jacobian.shape[1] == 0:
        return _infinite(label, "no weight parameter influences the output")
    j = jacobian.double()
    if not bool(torch.isfinite(j).all()):
        return _infinite(label, "the Jacobian has NaN or infinite entries")
    theta = (j @ j.T).cpu()
    try:
        eigenvalues = torch.linalg.eigvalsh(theta)  # ascending
    except torch.linalg.LinAlgError as exc:
        return _infinite(label, f"eigvalsh failed ({exc})")
    low, high = float(eigenvalues[0]), float(eigenvalues[-1])
    if not low > 0:
        return _infinite(label, f"λmin = {low:.3g} ≤ 0 (λmax = {high:.3g}): the NTK is singular")
    kappa = high / low
    if not math.isfinite(kappa):
        return _infinite(label, f"λmax / λmin = {high:.3g} / {low:.3g} overflows")
    return kappa


def used_weights(model: nn.Module, out: torch.Tensor) -> list[nn.Parameter]:
    """The parameters named ``*weight`` that ``out``'s autograd graph reaches, in ``named_parameters`` order."""
    return [p for name, p in reached_parameters(model, out) if name.endswith("weight")]


def _loop_jacobian(out: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    rows = out.reshape(out.shape[0], -1)
    jacobian = out.new_empty(rows.shape[0], sum(p.numel() for p in params))
    last = rows.shape[0] - 1
    for i in range(rows.shape[0]):
        grads = torch.autograd.grad(rows[i].sum(), params, retain_graph=i < last)
        torch.cat([g.reshape(-1) for g in grads], out=jacobian[i])
    return jacobian


def _batched_jacobian(out: torch.Tensor, params: list[nn.Parameter], chunk_size: int | None) -> torch.Tensor:
    sums = out.reshape(out.shape[0], -1).sum(1)
    n = sums.shape[0]
    chunk = chunk_size or n
    blocks: list[torch.Tensor] = []
    start = 0
    while start < n:
        k = min(chunk, n - start)
        cotangents = torch.zeros(k, n, dtype=sums.dtype, device=sums.device)
        cotangents[torch.arange(k), torch.arange(start, start + k)] = 1
        try:
            with warnings.catch_warnings():
                # vmap warns for every op without a batching rule; the fallback is correct, only slower.
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                grads = torch.autograd.grad(sums, params, cotangents, retain_graph=True, is_grads_batched=True)
        except torch.OutOfMemoryError:
            if chunk_size is not None or k == 1:
                raise
            chunk = k // 2
            if sums.is_cuda:
                torch.cuda.empty_cache()
            log.info("NTK Jacobian: out of memory with %d cotangents per backward, retrying with %d", k, chunk)
            continue
        blocks.append(torch.cat([g.reshape(k, -1) for g in grads], dim=1))
        start += k
    return torch.cat(blocks)


def _infinite(label: str, why: str) -> float:
    log.warning("κ = inf for %s: %s", label, why)
    return math.inf


def _check_arguments(inputs: torch.Tensor, chunk_size: int | None, method: str) -> None:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor batch, got {type(inputs).__name__}")
    if inputs.dim() < 1 or inputs.shape[0] < 2:
        raise ValueError(
            f"κ needs a batch of at least 2 inputs (Θ is B × B), got shape {tuple(inputs.shape)}"
        )
    if not inputs.is_floating_point():
        raise ValueError(f"inputs must be floating point images, got dtype {inputs.dtype}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None (whole batch), got {chunk_size!r}")
