"""Redrawing a network's weights for one repeat of an indicator, reproducibly from a seed.

κ and R vary strongly between initialisations. Two ways to draw weights:

- ``"paper"``: Kaiming-normal weights (ReLU gain) for convs and linears, zero
  biases, norm layers at weight 1 / bias 0, with ``fan="out"`` for the κ
  network and ``fan="in"`` for the thin linear-region network, as the
  reference code's ``kaiming_norm_fanout`` / ``kaiming_norm_fanin`` branches.
- ``"reference"``: each module's own ``reset_parameters()``, i.e. PyTorch's
  default init, which is what the public TE-NAS code ends up running: its
  launcher passes ``--init kaiming_normal``, and ``init_model`` has no branch
  for ``kaiming_normal_fanout`` / ``_fanin``, so it never redraws anything.

Which networks share a seed (per repeat, per round, per candidate) is the
caller's schedule (`rayneas.scoring.supernet.init_seeds`), not this module's.
Both modes draw from a private generator, so the global torch RNG is untouched
and the same seed gives bit-identical parameters and buffers ("paper" on any
device; "reference" on the same device).
"""
from __future__ import annotations

import numbers
from typing import Literal

import torch
from torch import nn

InitMode = Literal["paper", "reference"]
Fan = Literal["in", "out"]
INIT_MODES: tuple[str, ...] = ("paper", "reference")

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_KAIMING = (nn.modules.conv._ConvNd, nn.Linear)


def init_weights(model: nn.Module, mode: InitMode, seed: int, fan: Fan = "in") -> nn.Module:
    """Redraw every parameter of ``model`` in place (and reset norm running statistics); returns the model."""
    if mode not in INIT_MODES:
        raise ValueError(f"unknown init mode {mode!r}; choose one of {', '.join(INIT_MODES)}")
    if fan not in ("in", "out"):
        raise ValueError(f"fan must be 'in' or 'out' (Kaiming fan_in / fan_out), got {fan!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in model.modules():
            if next(module.parameters(recurse=False), None) is None and not isinstance(module, _NORMS):
                continue
            if mode == "paper" and isinstance(module, _KAIMING):
                _kaiming(module, fan, generator)
            elif mode == "paper" and isinstance(module, _NORMS):
                _unit_norm(module)
            else:
                _reset(module, generator)
    return model


def _kaiming(module: nn.Module, fan: Fan, generator: torch.Generator) -> None:
    weight = module.weight
    # Drawn on the CPU generator, then copied, so a seed gives the same weights on every device.
    fresh = torch.empty(weight.shape, dtype=weight.dtype)
    nn.init.kaiming_normal_(fresh, mode=f"fan_{fan}", nonlinearity="relu", generator=generator)
    weight.copy_(fresh)
    if getattr(module, "bias", None) is not None:
        module.bias.zero_()


def _unit_norm(module: nn.Module) -> None:
    if getattr(module, "weight", None) is not None:
        module.weight.fill_(1.0)
    if getattr(module, "bias", None) is not None:
        module.bias.zero_()
    if isinstance(module, nn.modules.batchnorm._NormBase):
        module.reset_running_stats()


def _reset(module: nn.Module, generator: torch.Generator) -> None:
    reset = getattr(module, "reset_parameters", None)
    if reset is None:
        raise ValueError(
            f"{type(module).__name__} holds parameters but has no reset_parameters(), so init_weights cannot "
            "redraw them; give the module a reset_parameters() method"
        )
    # reset_parameters() draws from the global RNGs (CUDA's for CUDA tensors): fork them, seed them from
    # our generator, restore them afterwards.
    devices = sorted({p.device.index or 0 for p in module.parameters(recurse=False) if p.is_cuda})
    with torch.random.fork_rng(devices=devices):
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        # Seed the generators in use directly: torch.manual_seed also queues a lazy seeding of every CUDA
        # device, recording a stack trace each time, which made this 7x slower than "paper" init.
        torch.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        reset()
