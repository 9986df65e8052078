"""NASWOT and its first version JacoV (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

``naswot`` (the ICML version, BayesWatch/nas-without-training ``score_networks.py``
and ``scores.py``): every ReLU gives each sample a binary code, 1 where its
input is positive. Two samples that share many code bits lie in the same
linear piece of the network, so the kernel

    K = Σ over ReLUs of  c cᵀ + (1 − c)(1 − c)ᵀ      (c: B × units codes of the batch)

counts, for every pair, the units that agree; the score is log|det K|
(``slogdet``): higher when the batch's codes are far apart, i.e. the net tells
the inputs apart. As the reference, only ReLUs whose output reaches the
model's output count (the reference registers a backward hook and keeps the
ReLUs it visits; here the autograd graph is walked instead, no backward
needed), the network runs in train mode, and codes are read from ``nn.ReLU``
modules. A singular K (two identical inputs, too few units) gives −inf, as
``np.linalg.slogdet`` does, with a warning.

``jacov`` (the arXiv v1 version, as NASLib ``naslib/predictors/pruners/measures/jacov.py``
computes it): J row i = d(sum of all logits)/d input i from one backward of
the whole batch in train mode, Σ = the B × B correlation matrix of J's rows,
score = −Σ over Σ's eigenvalues v of (log(v + 1e−5) + 1/(v + 1e−5)). The
summand is smallest at v = 1, so the score is highest (−B) when the samples'
gradients are uncorrelated; higher is better, as NASLib ranks it (no sign flip).
"""
from __future__ import annotations

import logging
import math

import torch
from torch import nn

from rayneas.indicators.common import (
    DegenerateNetworkError,
    IndicatorError,
    check_image_batch,
    check_output,
    graph_nodes,
)
from rayneas.indicators.registry import InputSpec, register_indicator
from rayneas.nn_state import device_of, train_mode

log = logging.getLogger(__name__)

NASWOT_BATCH = 128  # BayesWatch/nas-without-training score_networks.py --batch_size default
JACOV_EPSILON = 1e-5  # NASLib jacov.py eval_score k


@register_indicator("naswot", direction="higher", network="eval", inputs=InputSpec(batch_size=NASWOT_BATCH, size=32))
def naswot_score(model: nn.Module, inputs: torch.Tensor) -> float:
    """log|det K| of the ReLU-code kernel of ``model`` on ``inputs`` (B ≥ 2); −inf when K is singular."""
    codes = relu_codes(model, inputs)
    sign, logdet = torch.linalg.slogdet(hamming_kernel(codes))
    if not math.isfinite(float(logdet)) or float(sign) == 0:
        log.warning("naswot = -inf for %s: the ReLU-code kernel is singular (identical inputs, or fewer "
                    "distinct codes than samples)", type(model).__name__)
        return -math.inf
    return float(logdet)


def relu_codes(model: nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """One B × units boolean tensor per ``nn.ReLU`` call whose output reaches the model's output."""
    x = check_image_batch(inputs, "naswot").to(device_of(model)).contiguous().clone().requires_grad_(True)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"naswot: {type(model).__name__} has no nn.ReLU module; the codes are read with forward "
                         "hooks on nn.ReLU modules (functional relu calls are invisible to it)")
    records: list[tuple[torch.Tensor, object]] = []

    def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        # The node is kept now: an in-place op downstream would change out.grad_fn.
        records.append(((out > 0).reshape(out.shape[0], -1), out.grad_fn))

    handles = [relu.register_forward_hook(record) for relu in relus]
    try:
        with train_mode(model), torch.enable_grad():
            out = check_output(model, model(x), x.shape[0], "naswot")
            reached = graph_nodes([out])
    finally:
        for handle in handles:
            handle.remove()
    codes = [code for code, node in records if node is not None and node in reached]
    if not codes:
        raise DegenerateNetworkError(f"naswot: no nn.ReLU of {type(model).__name__} lies on a path to its output, "
                                     "so there are no codes to compare")
    return codes


def hamming_kernel(codes: list[torch.Tensor]) -> torch.Tensor:
    """K[i, j] = number of units (over all code tensors) where samples i and j agree, in float64.

    c cᵀ + (1 − c)(1 − c)ᵀ = n − r_i − r_j + 2 c cᵀ with r the row sums: one
    matmul per tensor, in float32, which is exact for sums of 0/1 below 2^24
    per tensor, accumulated in float64.
    """
    batch = codes[0].shape[0]
    kernel = torch.zeros(batch, batch, dtype=torch.float64, device=codes[0].device)
    for code in codes:
        if code.shape[1] >= 2 ** 24:
            raise ValueError(f"naswot: a ReLU with {code.shape[1]} units per sample is too large for exact "
                             "float32 code products; split it")
        c = code.to(torch.float32)
        ones = c.sum(dim=1, dtype=torch.float64)
        kernel += code.shape[1] - ones[:, None] - ones[None, :] + 2 * (c @ c.T).double()
    return kernel


@register_indicator("jacov", direction="higher", network="eval", inputs=InputSpec(batch_size=NASWOT_BATCH, size=32))
def jacov_score(model: nn.Module, inputs: torch.Tensor) -> float:
    """−Σ log(v + k) + 1/(v + k) over the eigenvalues v of the correlation of per-sample input gradients."""
    x = check_image_batch(inputs, "jacov").to(device_of(model)).contiguous().clone().requires_grad_(True)
    with train_mode(model), torch.enable_grad():
        out = check_output(model, model(x), x.shape[0], "jacov")
        (grad,) = torch.autograd.grad(out.sum(), x)
    return jacov_from_jacobian(grad.reshape(grad.shape[0], -1))


def jacov_from_jacobian(jacobian: torch.Tensor) -> float:
    """The JacoV score of a B × D matrix of input gradients (float64 correlation and eigenvalues)."""
    j = jacobian.double()
    if not bool(torch.isfinite(j).all()):
        raise IndicatorError("jacov: the input gradients have NaN or infinite entries")
    centred = j - j.mean(dim=1, keepdim=True)
    norms = torch.linalg.vector_norm(centred, dim=1)
    flat = torch.nonzero(norms == 0).flatten().tolist()
    if flat:
        raise DegenerateNetworkError(
            f"jacov: the input gradient of sample(s) {flat} is constant (the output does not depend on those "
            "inputs), so its correlation with the other samples is 0/0"
        )
    unit = centred / norms[:, None]
    correlation = (unit @ unit.T).clamp(-1.0, 1.0)  # as np.corrcoef clips
    # eigvalsh: the matrix is symmetric (NASLib's np.linalg.eig may return complex round-off); clamp round-off
    # below 0 so that log(v + k) stays defined.
    eigenvalues = torch.linalg.eigvalsh(correlation).clamp_min(0.0)
    shifted = eigenvalues + JACOV_EPSILON
    return float(-(torch.log(shifted) + 1.0 / shifted).sum())
