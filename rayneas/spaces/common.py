"""Helpers shared by every search space."""
from __future__ import annotations

from torch import nn

from rayneas.errors import RayneasError


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Number of parameters, counted the way the papers report model size.

    DARTS (utils.count_parameters_in_MB) leaves out every parameter whose name
    contains ``auxiliary``: the auxiliary head only helps training and is
    dropped at test time, so published sizes (DARTS 3.3M, TE-NAS 3.8M) exclude it.
    """
    return sum(
        p.numel() for name, p in model.named_parameters()
        if not (exclude_auxiliary and "auxiliary" in name)
    )


class GenotypeError(RayneasError, ValueError):
    """A genotype or live-op mask of a cell space is malformed; the message names the problem and the fix.

    One class for every space (``nb201.GenotypeError`` and
    ``darts.GenotypeError`` are this class), because the `Mask` both spaces
    share raises it too.
    """
