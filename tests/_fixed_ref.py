"""What the fixed-point tests share: the engines they compare (the compiled core ``C``, when
built, and the NumPy twin ``K``) and the exact reference, a cast of a fractions.Fraction
written from the definitions ("round, then overflow") without any of the kernels' shortcuts.

The ``engine`` fixture (each available engine active in turn) comes from tests/conftest.py."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from linncore._numpy import kernels as K
from linncore.fixed.formats import FixedFormat, Overflow, Rounding

try:
    import linncore._core as C
except ImportError:  # the compiled core is not built: only the NumPy engine is tested
    C = None

__all__ = ["C", "ENGINES", "K", "needs_core", "ref_cast"]

#: The engines available on this machine, by backend name.
ENGINES = ["numpy"] + (["native"] if C is not None else [])
#: Skips a test that compares the compiled core with its twin when the core is not built.
needs_core = pytest.mark.skipif(C is None, reason="the compiled core linncore._core is not built")


def _splitmix_unit53(seed: int, i: int) -> int:
    mask = (1 << 64) - 1
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) >> 11


def ref_cast(value: Fraction, f: FixedFormat, seed: int = 0, index: int = 0) -> int:
    """The code of an exact rational value: round with f's mode, then overflow."""
    y = value * Fraction(2) ** f.frac_bits
    fl = math.floor(y)
    r = y - fl
    half = Fraction(1, 2)
    R = Rounding
    up = {
        R.TRN: False,
        R.TRN_ZERO: r != 0 and y < 0,
        R.RND: r >= half,
        R.RND_ZERO: r > half or (r == half and y < 0),
        R.RND_INF: r > half or (r == half and y > 0),
        R.RND_MIN_INF: r > half,
        R.RND_CONV: r > half or (r == half and fl % 2 == 1),
        R.STOCH: r != 0 and Fraction(_splitmix_unit53(seed, index), 2**53) < r,
    }[f.rounding]
    c = fl + int(up)
    lo, hi = f.code_min, f.code_max
    if lo <= c <= hi:
        return c
    if f.overflow == Overflow.WRAP:
        w = c % (1 << f.bits)
        return w - (1 << f.bits) if f.signed and w >= 1 << (f.bits - 1) else w
    return lo if c < lo else hi
