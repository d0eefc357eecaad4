"""NumPy twins of csrc/lc_fixed.c: the executable specification of the fixed-point kernels.

A format is the tuple ``(bits, int_bits, signed, rounding, overflow)``; codes are int64
(widths up to 64 bits signed, 63 unsigned).
Every cast is "round, then overflow" on exact values: ``cast(v, s)`` is the integer ``v``
times ``2^-s`` rounded with the destination's rounding mode, then brought into its rails
with its overflow mode.  Two evaluations of it live here:

* ``_cast_exact`` on Python integers (object arrays): exact for any size and shift; this is
  the definition.
* ``_cast_int64`` on int64 arrays, used only where a bound written next to the call proves
  that no intermediate leaves int64; it computes the same integers.

Wide formats (sums and products that may leave int64) go through Python integers: the
exact sums of products that the C kernel forms in 128 or 192 bits are plain integer sums
here.  Values returned as doubles are the codes converted to the nearest double, then
scaled by lsb (exact when ``|code| <= 2^53``), as in C.

Quantization of doubles takes the same fast path as the C kernel where double arithmetic is
exact, and the exact decomposition ``x = M * 2^E`` elsewhere.  Stochastic rounding draws
``t = splitmix64(seed, index) >> 11`` and rounds up iff ``t < frac * 2^53``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "fixed_constants",
    "fix_quantize",
    "fix_from_codes",
    "fix_requantize",
    "fix_add",
    "fix_mul",
    "fix_matmul",
]

ROUNDING = {
    "TRN": 0,
    "TRN_ZERO": 1,
    "RND": 2,
    "RND_ZERO": 3,
    "RND_INF": 4,
    "RND_MIN_INF": 5,
    "RND_CONV": 6,
    "STOCH": 7,
}
OVERFLOW = {"SAT": 0, "SAT_SYM": 1, "WRAP": 2}
_STATUS = {"NAN": 16, "INF": 17, "CODE": 18, "FORMAT": 19}
MAX_ABS_INT_BITS = 960
MAX_FRAC_BITS = 992
MAX_BITS = 64
MAX_BITS_UNSIGNED = 63
_TRN, _TRN_ZERO, _RND, _RND_ZERO, _RND_INF, _RND_MIN_INF, _RND_CONV, _STOCH = range(8)
_SAT, _SAT_SYM, _WRAP = range(3)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_DBL_MIN = 2.2250738585072014e-308


def fixed_constants() -> dict:
    """The fixed-point enum and status values this engine implements."""
    return {
        "ROUNDING": dict(ROUNDING),
        "OVERFLOW": dict(OVERFLOW),
        "STATUS": dict(_STATUS),
        "MAX_ABS_INT_BITS": MAX_ABS_INT_BITS,
        "MAX_FRAC_BITS": MAX_FRAC_BITS,
        "MAX_BITS": MAX_BITS,
        "MAX_BITS_UNSIGNED": MAX_BITS_UNSIGNED,
    }


# ---------------------------------------------------------------- formats and generator


class _Fmt:
    """A checked format tuple with its derived constants (lc_fixed.c's fixinfo)."""

    def __init__(self, t: object, name: str):
        if not isinstance(t, tuple) or len(t) != 5:
            raise TypeError(
                f"{name}: expected a (bits, int_bits, signed, rounding, overflow) tuple, got {t!r}"
            )
        bits, int_bits, signed, rounding, overflow = (
            int(t[0]),
            int(t[1]),
            bool(t[2]),
            int(t[3]),
            int(t[4]),
        )
        if (
            not (2 if signed else 1) <= bits <= (MAX_BITS if signed else MAX_BITS_UNSIGNED)
            or not -MAX_ABS_INT_BITS <= int_bits <= MAX_ABS_INT_BITS
            or bits - int_bits > MAX_FRAC_BITS
            or not 0 <= rounding < len(ROUNDING)
            or not 0 <= overflow < len(OVERFLOW)
        ):
            raise ValueError(f"{name}: invalid fixed-point format {t!r}")
        self.t = t
        self.bits, self.signed, self.rounding, self.overflow = bits, signed, rounding, overflow
        self.frac = bits - int_bits
        if signed:
            self.raw_max = (1 << (bits - 1)) - 1
            self.raw_min = -self.raw_max - 1
        else:
            self.raw_max, self.raw_min = (1 << bits) - 1, 0
        self.hi = self.raw_max
        self.lo = -self.raw_max if (signed and overflow == _SAT_SYM) else self.raw_min
        self.scale = math.ldexp(1.0, self.frac)
        self.lsb = math.ldexp(1.0, -self.frac)
        self.max_abs = (1 << (bits - 1)) if signed else self.raw_max


def _rng_unit53(seed: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64 output number idx + 1 from state seed, top 53 bits (int64); see lc_rng.h."""
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + (idx.astype(np.uint64) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.int64)


# ---------------------------------------------------------------- the cast


def _decide(rounding: int, r, half, neg, odd, stoch_up) -> np.ndarray:
    """Round-up decision for floor + r / 2^s, 0 <= r < 2^s, half = 2^(s-1)."""
    if rounding == _TRN:
        up = np.zeros(np.shape(r), dtype=bool)
    elif rounding == _TRN_ZERO:
        up = np.asarray(neg, dtype=bool).copy()
    elif rounding == _RND:
        up = r >= half
    elif rounding == _RND_ZERO:
        up = (r > half) | ((r == half) & neg)
    elif rounding == _RND_INF:
        up = (r > half) | ((r == half) & ~neg)
    elif rounding == _RND_MIN_INF:
        up = r > half
    elif rounding == _RND_CONV:
        up = (r > half) | ((r == half) & odd)
    else:
        up = stoch_up()
    return np.asarray(up, dtype=bool) & np.asarray(r != 0, dtype=bool)


def _overflow(c: np.ndarray, f: _Fmt) -> tuple[np.ndarray, np.ndarray]:
    """(codes int64, overflow flags) for rounded codes c (int64 or Python ints)."""
    inside = np.asarray((c >= f.lo) & (c <= f.hi), dtype=bool)
    if inside.all():
        return c.astype(np.int64), ~inside
    if c.dtype != object and f.bits >= 62:
        c = c.astype(object)  # the wrap mask and the rails of wide formats leave int64
    if f.overflow == _WRAP:
        w = c & ((1 << f.bits) - 1)
        if f.signed:
            w = np.where(np.asarray(w >= (1 << (f.bits - 1)), dtype=bool), w - (1 << f.bits), w)
        out = w
    else:
        out = np.where(
            np.asarray(c < f.lo, dtype=bool),
            f.lo,
            np.where(np.asarray(c > f.hi, dtype=bool), f.hi, c),
        )
    return np.asarray(out).astype(np.int64), ~inside


def _cast_exact(v: np.ndarray, s, f: _Fmt, seed: int, idx: np.ndarray):
    """cast(v * 2^-s) on Python integers; s a Python int or an object array of them."""
    v = np.asarray(v, dtype=object)
    s = np.asarray(s, dtype=object)
    right = np.asarray(s > 0, dtype=bool)
    sr = np.where(right, s, 1)  # shift used for the right-shift lane
    sl = np.where(right, 0, -s)  # shift used for the left-shift lane
    fl = v >> sr
    r = v - (fl << sr)
    neg = np.asarray(v < 0, dtype=bool)
    odd = np.asarray(fl & 1, dtype=bool)
    half = np.left_shift(1, sr - 1) if sr.ndim else 1 << (int(sr) - 1)

    def stoch():
        t = _rng_unit53(seed, idx).astype(object)
        return (t << sr) < (r << 53)  # t < r * 2^(53 - s), exactly

    up = _decide(f.rounding, r, half, neg, odd, stoch)
    c = np.where(right, fl + up.astype(object) * 1, v << sl)
    return _overflow(np.asarray(c, dtype=object), f)


def _cast_int64(v: np.ndarray, s: int, f: _Fmt, seed: int, idx: np.ndarray):
    """cast(v * 2^-s) on int64; needs |v| < 2^62, s <= 62 and |v| * 2^-s < 2^62."""
    v = np.asarray(v, dtype=np.int64)
    if s <= 0:
        return _overflow(v << np.int64(-s), f)
    fl = v >> np.int64(s)
    r = v & np.int64((1 << s) - 1)

    def stoch():
        t = _rng_unit53(seed, idx)
        if s <= 53:
            return t < (r << np.int64(53 - s))
        q = r >> np.int64(s - 53)
        rem = r & np.int64((1 << (s - 53)) - 1)
        return (t < q) | ((t == q) & (rem != 0))

    up = _decide(f.rounding, r, np.int64(1 << (s - 1)), v < 0, (fl & 1) != 0, stoch)
    return _overflow(fl + up, f)


def _bitlen(v: np.ndarray) -> int:
    """Bits of the largest magnitude in v (0 for an empty or all-zero array)."""
    if v.size == 0:
        return 0
    return max(int(abs(int(v.max()))), int(abs(int(v.min())))).bit_length()


def _cast(v: np.ndarray, s: int, f: _Fmt, seed: int, idx: np.ndarray):
    """cast(v * 2^-s) choosing int64 arithmetic where it is provably exact."""
    if v.dtype != object:
        nb = _bitlen(v)
        if nb <= 61 and (0 < s <= 62 or (s <= 0 and nb - s <= 61)):
            return _cast_int64(v, s, f, seed, idx)
    return _cast_exact(v, s, f, seed, idx)


# ---------------------------------------------------------------- errors


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask)) if mask.any() else -1


def _where(a: np.ndarray, i: int):
    if a.ndim == 1:
        return i
    return tuple(int(j) for j in np.unravel_index(i, a.shape))


def _check_codes(name: str, a: np.ndarray, f: _Fmt) -> None:
    flat = a.reshape(-1)
    i = _first((flat < f.raw_min) | (flat > f.raw_max))
    if i >= 0:
        kind = "signed" if f.signed else "unsigned"
        raise ValueError(
            f"{name}: code {flat[i]} at index {_where(a, i)} lies outside the "
            f"{f.bits}-bit {kind} code range"
        )


def _check_float(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise TypeError("x: expected a float32 or float64 numpy.ndarray")
    return x


def _check_int(a: object, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.int64:
        raise TypeError(f"{name}: expected dtype int64, got {a.dtype}")
    return a


def _stats(c: np.ndarray, ovf: np.ndarray, nonzero_in: np.ndarray, f: _Fmt, near_rail):
    if near_rail is None:
        return None
    # in double, as the C kernel: |c| and max(hi, -lo) each as the nearest double
    thr = float(near_rail) * float(max(f.hi, -f.lo))
    near = np.abs(c.astype(np.float64)) >= thr
    return (int(ovf.sum()), int(near.sum()), int((nonzero_in & (c == 0)).sum()))


# ---------------------------------------------------------------- kernels


def _quantize_codes(x: np.ndarray, f: _Fmt, seed: int):
    """(codes, overflow flags) of float64 x (1-D), as lc_quantize_f64."""
    n = x.size
    idx = np.arange(n, dtype=np.uint64)
    codes = np.zeros(n, dtype=np.int64)
    ovf = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        y = x * f.scale
        ay = np.abs(y)
        finite = np.isfinite(x)
        fast = finite & (ay < 2.0**62) & ((y >= 0) | (y <= -0.5)) & ((ay >= _DBL_MIN) | (x == 0))
    # Fast path: every step exact (see quantize_one in lc_fixed.c).
    yf = y[fast]
    fl = np.floor(yf)
    fr = yf - fl

    def stoch():
        return _rng_unit53(seed, idx[fast]).astype(np.float64) < fr * 2.0**53

    up = _decide(f.rounding, fr, 0.5, yf < 0, np.fmod(fl, 2.0) != 0, stoch)
    codes[fast], ovf[fast] = _overflow(fl.astype(np.int64) + up, f)
    # Infinities saturate (WRAP was rejected by the caller).
    inf = np.isinf(x)
    codes[inf] = np.where(x[inf] > 0, f.hi, f.lo)
    ovf[inf] = True
    # Exact path: x = M * 2^E with integer M; code = cast(M * 2^(E + F)).
    slow = np.flatnonzero(finite & ~fast)
    if slow.size:
        ms, ss = [], []
        for xi in x[slow].tolist():
            m, e = math.frexp(xi)
            ms.append(int(m * 2.0**53))
            ss.append(-(e - 53 + f.frac))
        v = np.empty(len(ms), dtype=object)
        v[:] = ms
        s = np.empty(len(ss), dtype=object)
        s[:] = ss
        codes[slow], ovf[slow] = _cast_exact(v, s, f, seed, slow.astype(np.uint64))
    return codes, ovf


def fix_quantize(x, fmt, *, seed=0, codes=True, values=True, near_rail=None):
    """Quantize float32/float64 ``x`` (any shape) to ``fmt``.

    Returns (codes int64 or None, values float64 or None, (saturated, near_rail, underflow)
    counts or None when ``near_rail`` is None)."""
    _check_float(x)
    f = _Fmt(fmt, "fmt")
    xf = x.reshape(-1).astype(np.float64)
    bad = np.isnan(xf) | (np.isinf(xf) if f.overflow == _WRAP else False)
    i = _first(bad)
    if i >= 0:
        if np.isnan(xf[i]):
            raise ValueError(f"x: expected finite values, got NaN at index {_where(x, i)}")
        raise ValueError(
            f"x: got {x.reshape(-1)[i]} at index {_where(x, i)}, which has no "
            "wrapped code (overflow WRAP); use SAT or SAT_SYM"
        )
    c, ovf = _quantize_codes(xf, f, int(seed))
    stats = _stats(c, ovf, xf != 0, f, near_rail)
    v = (c.astype(np.float64) * f.lsb).reshape(x.shape) if values else None
    return (c.reshape(x.shape) if codes else None), v, stats


def fix_from_codes(codes, fmt):
    """codes * lsb as float64 (exact)."""
    _check_int(codes, "codes")
    f = _Fmt(fmt, "fmt")
    _check_codes("codes", codes, f)
    return codes.astype(np.float64) * f.lsb


def fix_requantize(codes, src, dst, *, seed=0, near_rail=None):
    """Codes of ``src`` cast to ``dst``; returns (codes, counts or None)."""
    _check_int(codes, "codes")
    fs, fd = _Fmt(src, "src_fmt"), _Fmt(dst, "dst_fmt")
    _check_codes("codes", codes, fs)
    flat = codes.reshape(-1)
    c, ovf = _cast(flat, fs.frac - fd.frac, fd, int(seed), np.arange(flat.size, dtype=np.uint64))
    return c.reshape(codes.shape), _stats(c, ovf, flat != 0, fd, near_rail)


def _pair(a, b) -> None:
    _check_int(a, "a")
    _check_int(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} (the shape of a), got {b.shape}")


def fix_add(a, b, fmt, out_fmt, *, seed=0):
    """cast_out(a + b) for codes a, b of ``fmt`` (same shape)."""
    _pair(a, b)
    f, fo = _Fmt(fmt, "fmt"), _Fmt(out_fmt, "out_fmt")
    _check_codes("a", a, f)
    _check_codes("b", b, f)
    if f.bits <= 62:
        v = a.reshape(-1) + b.reshape(-1)  # |a|, |b| <= 2^61: exact in int64
    else:
        v = a.reshape(-1).astype(object) + b.reshape(-1).astype(object)
    c, _ = _cast(v, f.frac - fo.frac, fo, int(seed), np.arange(v.size, dtype=np.uint64))
    return c.reshape(a.shape)


def _product(a: np.ndarray, b: np.ndarray, fa: _Fmt, fb: _Fmt) -> np.ndarray:
    """a * b exactly: int64 when max|a| * max|b| < 2^62, Python integers otherwise."""
    if fa.max_abs * fb.max_abs < (1 << 62):
        return a * b
    return a.astype(object) * b.astype(object)


def fix_mul(a, fa, b, fb, out_fmt, *, seed=0):
    """cast_out(a * b) for codes a of ``fa`` and b of ``fb`` (same shape)."""
    _pair(a, b)
    f1, f2, fo = _Fmt(fa, "a_fmt"), _Fmt(fb, "b_fmt"), _Fmt(out_fmt, "out_fmt")
    _check_codes("a", a, f1)
    _check_codes("b", b, f2)
    v = _product(a.reshape(-1), b.reshape(-1), f1, f2)
    c, _ = _cast(v, f1.frac + f2.frac - fo.frac, fo, int(seed), np.arange(v.size, dtype=np.uint64))
    return c.reshape(a.shape)


def fix_matmul(A, fa, B, fb, out_fmt, *, acc=None, seed=0):
    """C = A @ B on codes: A (n, k) of ``fa``, B (k, m) of ``fb``; exact sum when ``acc`` is
    None, else an accumulator register of format ``acc`` (see lc_fix_matmul)."""
    _check_int(A, "a_codes")
    _check_int(B, "b_codes")
    if A.ndim != 2:
        raise ValueError(f"a_codes: expected 2 dimensions, got shape {A.shape}")
    if B.ndim != 2 or B.shape[0] != A.shape[1]:
        raise ValueError(f"b_codes: expected shape ({A.shape[1]}, -1), got {B.shape}")
    f1, f2, fo = _Fmt(fa, "a_fmt"), _Fmt(fb, "b_fmt"), _Fmt(out_fmt, "out_fmt")
    fc = None if acc is None else _Fmt(acc, "accumulator")
    _check_codes("a_codes", A, f1)
    _check_codes("b_codes", B, f2)
    n, k = A.shape
    m = B.shape[1]
    seed = int(seed)
    out_idx = np.arange(n * m, dtype=np.uint64)
    F_prod = f1.frac + f2.frac
    if fc is None:
        if f1.max_abs * f2.max_abs * max(k, 1) < (1 << 63):
            s = A @ B  # every partial sum bounded by 2^63: exact
        else:
            s = A.astype(object) @ B.astype(object)
        c, _ = _cast(s.reshape(-1), F_prod - fo.frac, fo, seed, out_idx)
        return c.reshape(n, m)
    reg = np.zeros(n * m, dtype=np.int64)
    base = np.uint64(n * m) + out_idx * np.uint64(k)
    for p in range(k):
        prod = _product(A[:, p : p + 1], B[p : p + 1, :], f1, f2).reshape(-1)
        pc, _ = _cast(prod, F_prod - fc.frac, fc, seed, base + np.uint64(p))
        if fc.bits <= 62:
            reg, _ = _overflow(reg + pc, fc)  # |reg|, |pc| <= 2^61: exact in int64
        else:
            reg, _ = _overflow(reg.astype(object) + pc.astype(object), fc)
    c, _ = _cast(reg, fc.frac - fo.frac, fo, seed, out_idx)
    return c.reshape(n, m)
