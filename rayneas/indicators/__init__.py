"""Training-free indicators: TE-NAS's κ and R, NASWOT, JacoV, AZ-NAS's three, FLOPs and parameters.

Every module of this package is imported here, so an indicator registers
itself with ``@register_indicator`` just by being a file in the package.
"""
import importlib
import pkgutil

from rayneas.indicators.aggregate import AGGREGATIONS, AggregationError, aggregate, best_first, dense_ranks
from rayneas.indicators.az_nas import az_expressivity, az_nas_scores, az_progressivity, az_trainability
from rayneas.indicators.common import DegenerateNetworkError, IndicatorError
from rayneas.indicators.cost import count_flops, count_params
from rayneas.indicators.init import INIT_MODES, init_weights
from rayneas.indicators.inputs import ntk_batch, region_inputs
from rayneas.indicators.linear_regions import count_linear_regions
from rayneas.indicators.measure import measure
from rayneas.indicators.naswot import jacov_score, naswot_score
from rayneas.indicators.ntk import ntk_condition_number, ntk_jacobian
from rayneas.indicators.registry import (
    IndicatorInfo,
    InputSpec,
    available_indicators,
    check_indicators,
    get_indicator,
    indicator_info,
    measure_indicators,
    register_indicator,
    takes_option,
    worst_value,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "AGGREGATIONS",
    "AggregationError",
    "DegenerateNetworkError",
    "INIT_MODES",
    "IndicatorError",
    "IndicatorInfo",
    "InputSpec",
    "aggregate",
    "available_indicators",
    "az_expressivity",
    "az_nas_scores",
    "az_progressivity",
    "az_trainability",
    "best_first",
    "check_indicators",
    "count_flops",
    "count_linear_regions",
    "count_params",
    "dense_ranks",
    "get_indicator",
    "indicator_info",
    "init_weights",
    "jacov_score",
    "measure",
    "measure_indicators",
    "naswot_score",
    "ntk_batch",
    "ntk_condition_number",
    "ntk_jacobian",
    "region_inputs",
    "register_indicator",
    "takes_option",
    "worst_value",
]
