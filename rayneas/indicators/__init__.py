"""Training-free indicators of TE-NAS: NTK condition number (κ) and linear-region count (R).

Every module of this package is imported here, so an indicator registers
itself with ``@register_indicator`` just by being a file in the package.
"""
import importlib
import pkgutil

from rayneas.indicators.init import INIT_MODES, init_weights
from rayneas.indicators.inputs import ntk_batch, region_inputs
from rayneas.indicators.linear_regions import count_linear_regions
from rayneas.indicators.ntk import ntk_condition_number, ntk_jacobian
from rayneas.indicators.registry import available_indicators, get_indicator, register_indicator

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "INIT_MODES",
    "available_indicators",
    "count_linear_regions",
    "get_indicator",
    "init_weights",
    "ntk_batch",
    "ntk_condition_number",
    "ntk_jacobian",
    "region_inputs",
    "register_indicator",
]
