"""Fixed-point arithmetic: formats, saturating products, precision configs, quantized inference."""

from .formats import (
    FixedFormat,
    Overflow,
    RailStats,
    Rounding,
    fixed_matmul,
    quantize,
    rail_stats,
    requantize,
    sat_add,
    sat_mul,
)
from .precision import PrecisionDict
from .quantized import INSTRUMENT_ASSUMPTIONS, QuantizedNetwork

__all__ = [
    "FixedFormat",
    "Rounding",
    "Overflow",
    "RailStats",
    "quantize",
    "rail_stats",
    "requantize",
    "sat_add",
    "sat_mul",
    "fixed_matmul",
    "PrecisionDict",
    "QuantizedNetwork",
    "INSTRUMENT_ASSUMPTIONS",
]
