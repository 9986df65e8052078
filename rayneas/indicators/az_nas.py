"""AZ-NAS's expressivity, progressivity and trainability (Lee & Ham, "AZ-NAS", CVPR 2024).

As cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_az_nas_score.py`` computes
them, from one train-mode forward that keeps the feature maps f_0 … f_L (the
stem's output and every cell's, reduction blocks included; forward hooks here,
``extract_cell_features`` there):

- expressivity of one map: the entropy −Σ p log(p + 1e−8) of the normalised
  eigenvalues p = s / Σs of its channel covariance over every sample and
  pixel (B·H·W × C rows, centred); ``az_expressivity`` = Σ over the maps;
- ``az_progressivity`` = min over l of (expressivity of f_l − of f_{l−1}):
  every layer should add expressivity;
- trainability of one block f_{l−1} → f_l: a Rademacher cotangent g_out on
  f_l, its vector-Jacobian product g_in = J_lᵀ g_out (one ``autograd.grad``,
  never the Jacobian itself), g_in pixel-unshuffled to f_l's resolution when
  the block downsamples, M = E over pixels of g_in g_outᵀ (C_in' × C_out),
  score −σmax(M) − 1/(σmax(M) + 1e−6) + 2, which is highest (0) at σmax = 1;
  ``az_trainability`` = the mean over blocks. A block whose g_in equals g_out
  exactly (an identity block, e.g. a cell that only forwards its input) scores
  −inf, as the reference.

All three: higher is better; the evaluation-size network; a batch of 64
Gaussian 3×32×32 inputs in the reference (``trainloader=None`` →
``torch.randn``). Differences from the reference, none changing a value
beyond round-off: covariances, M and their spectra in float64, eigenvalues
clamped at 0 before the entropy, the cotangents drawn from a private generator
seeded by ``seed`` (last block first) instead of the global RNG, and the
graph kept between blocks (``retain_graph``) so networks whose blocks share
graph segments work too.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rayneas.indicators.common import DegenerateNetworkError, check_image_batch, check_output
from rayneas.indicators.registry import InputSpec, register_indicator
from rayneas.nn_state import device_of, train_mode

AZ_BATCH = 64  # the reference notebook's search loader batch (config batch_size)
AZ_INPUTS = InputSpec(batch_size=AZ_BATCH, size=32, source="gaussian")
ENTROPY_EPSILON = 1e-8
SIGMA_EPSILON = 1e-6


def az_nas_scores(model: nn.Module, inputs: torch.Tensor, *, seed: int = 0,
                  features: Sequence[nn.Module] | None = None,
                  trainability: bool | Literal["or_worst"] = True) -> dict[str, float]:
    """expressivity, progressivity and (unless ``trainability=False``) trainability of ``model`` on ``inputs``.

    ``trainability="or_worst"``: a block with no gradient path scores −inf
    instead of raising, so the other two survive a net degenerate only there.

    ``features``: the modules whose outputs are the feature maps, in forward
    order, each called once per forward (default: ``model.stem`` then every
    module of ``model.cells``, as NAS-Bench-201's TinyNetwork has).
    """
    modules = list(features) if features is not None else default_feature_modules(model)
    x = check_image_batch(inputs, "AZ-NAS").to(device_of(model)).contiguous().clone().requires_grad_(True)
    with train_mode(model), torch.enable_grad():
        maps = _feature_maps(model, x, modules)
        entropies = [feature_entropy(f.detach(), i) for i, f in enumerate(maps)]
        scores = {
            "expressivity": math.fsum(entropies),
            "progressivity": min(b - a for a, b in zip(entropies, entropies[1:])),
        }
        if trainability:
            try:
                scores["trainability"] = _trainability(maps, torch.Generator().manual_seed(int(seed)))
            except DegenerateNetworkError:
                if trainability != "or_worst":
                    raise
                scores["trainability"] = -math.inf
    return scores


def az_nas_joint(model: nn.Module, inputs: torch.Tensor, *,
                 features: Sequence[nn.Module] | None = None) -> dict[str, float]:
    """The three registered AZ-NAS indicators from one forward (`measure_indicators` calls this once for all).

    A block without a gradient path makes only trainability degenerate (its
    worst value), as three separate calls would; a degenerate feature map
    raises for all three, as each separate call would.
    """
    scores = az_nas_scores(model, inputs, features=features, trainability="or_worst")
    return {f"az_{name}": value for name, value in scores.items()}


@register_indicator("az_expressivity", direction="higher", network="eval", inputs=AZ_INPUTS, joint=az_nas_joint)
def az_expressivity(model: nn.Module, inputs: torch.Tensor, *, features: Sequence[nn.Module] | None = None) -> float:
    """Σ over feature maps of the entropy of their normalised channel-covariance spectrum."""
    return az_nas_scores(model, inputs, features=features, trainability=False)["expressivity"]


@register_indicator("az_progressivity", direction="higher", network="eval", inputs=AZ_INPUTS, joint=az_nas_joint)
def az_progressivity(model: nn.Module, inputs: torch.Tensor, *, features: Sequence[nn.Module] | None = None) -> float:
    """The smallest increase of the expressivity from one feature map to the next."""
    return az_nas_scores(model, inputs, features=features, trainability=False)["progressivity"]


@register_indicator("az_trainability", direction="higher", network="eval", inputs=AZ_INPUTS, joint=az_nas_joint)
def az_trainability(model: nn.Module, inputs: torch.Tensor, *, seed: int = 0,
                    features: Sequence[nn.Module] | None = None) -> float:
    """Mean over blocks of −σmax − 1/(σmax + 1e−6) + 2, σmax of the block's random-cotangent gradient correlation."""
    return az_nas_scores(model, inputs, seed=seed, features=features)["trainability"]


def default_feature_modules(model: nn.Module) -> list[nn.Module]:
    stem, cells = getattr(model, "stem", None), getattr(model, "cells", None)
    if not isinstance(stem, nn.Module) or not isinstance(cells, (nn.ModuleList, nn.Sequential)):
        raise ValueError(f"AZ-NAS: {type(model).__name__} has no `stem` module and `cells` list, so its feature "
                         "maps are unknown; pass features=[the modules whose outputs are the feature maps]")
    return [stem, *cells]


def _feature_maps(model: nn.Module, x: torch.Tensor, modules: list[nn.Module]) -> list[torch.Tensor]:
    if len(modules) < 2:
        raise ValueError(f"AZ-NAS needs at least 2 feature maps (progressivity and trainability compare "
                         f"consecutive ones), got {len(modules)}")
    outputs: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(modules))}
    handles = [m.register_forward_hook(lambda module, args, out, i=i: outputs[i].append(out))
               for i, m in enumerate(modules)]
    try:
        check_output(model, model(x), x.shape[0], "AZ-NAS")
    finally:
        for handle in handles:
            handle.remove()
    for i, seen in outputs.items():
        if len(seen) != 1 or not isinstance(seen[0], torch.Tensor):
            raise ValueError(f"AZ-NAS: feature module {i} ({type(modules[i]).__name__}) must return one tensor "
                             f"in one call per forward, it ran {len(seen)} time(s)")
    return [outputs[i][0] for i in range(len(modules))]


def feature_entropy(feature: torch.Tensor, index: int = 0) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of a B × C (× H × W) feature map."""
    f = feature.double()
    rows = f.movedim(1, -1).reshape(-1, f.shape[1])
    centred = rows - rows.mean(dim=0, keepdim=True)
    covariance = centred.T @ centred / rows.shape[0]
    spectrum = torch.linalg.eigvalsh(covariance).clamp_min(0.0)
    total = spectrum.sum()
    if not float(total) > 0:
        raise DegenerateNetworkError(f"AZ-NAS: feature map {index} is the same for every sample and pixel, so its "
                                     "covariance spectrum is zero and its entropy undefined")
    p = spectrum / total
    return float(-(p * torch.log(p + ENTROPY_EPSILON)).sum())


def block_trainability(g_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """−σmax − 1/(σmax + 1e−6) + 2 of M = E_pixels[g_in g_outᵀ], g_in unshuffled to g_out's resolution."""
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf  # an identity block, as the reference scores it
    if g_in.dim() == 4 and g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if stride < 1 or g_in.shape[2:] != (g_out.shape[2] * stride, g_out.shape[3] * stride):
            raise ValueError(f"AZ-NAS: cannot match a {tuple(g_in.shape[2:])} feature map to "
                             f"{tuple(g_out.shape[2:])} by pixel-unshuffling")
        g_in = F.pixel_unshuffle(g_in, stride)
    gi = g_in.double().movedim(1, -1).reshape(-1, g_in.shape[1])
    go = g_out.double().movedim(1, -1).reshape(-1, g_out.shape[1])
    sigma = float(torch.linalg.matrix_norm(gi.T @ go / go.shape[0], ord=2))
    return -sigma - 1.0 / (sigma + SIGMA_EPSILON) + 2.0


def _trainability(maps: list[torch.Tensor], generator: torch.Generator) -> float:
    scores = []
    for i in reversed(range(1, len(maps))):
        f_out, f_in = maps[i], maps[i - 1]
        g_out = (torch.randint(0, 2, f_out.shape, generator=generator) * 2 - 1).to(f_out)
        (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
        if g_in is None:
            raise DegenerateNetworkError(f"AZ-NAS: feature map {i} does not depend on feature map {i - 1}")
        scores.append(block_trainability(g_in, g_out))
    if -math.inf in scores:
        return -math.inf
    return math.fsum(scores) / len(scores)
