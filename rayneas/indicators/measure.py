"""One indicator of one network, as every search measures it: a network without a path scores its worst."""
from __future__ import annotations

from typing import Any

import torch

from rayneas.indicators.common import DegenerateNetworkError
from rayneas.indicators.ntk import ntk_condition_number
from rayneas.indicators.registry import indicator_info, worst_value


def measure(name: str, net: torch.nn.Module, inputs: Any, label: str, **options: Any) -> float:
    """Indicator ``name`` of ``net``; a network without a path from input to output gets its worst value.

    ``options`` go to the indicator function (e.g. AZ-NAS's ``features``, for networks not shaped like
    NAS-Bench-201's).
    """
    try:
        if name == "ntk":
            return float(ntk_condition_number(net, inputs, label=label))
        return float(indicator_info(name).fn(net, inputs, **options))
    except DegenerateNetworkError:
        return worst_value(name)
