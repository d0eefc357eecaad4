"""The exact reference of the fixed-point tests: a cast of a fractions.Fraction, written from
the definitions ("round, then overflow") without any of the kernels' shortcuts."""

from __future__ import annotations

import math
from fractions import Fraction

from linncore.fixed.formats import FixedFormat, Overflow, Rounding


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
