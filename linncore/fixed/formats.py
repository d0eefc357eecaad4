"""Fixed-point formats and quantization (ap_fixed conventions).

One object, :class:`FixedFormat`, describes a format everywhere in linncore: ``fixed<W,I>``
holds ``W`` bits of which ``I`` are integer bits, the sign bit counted in ``I``; values are
stored as integer codes ``c`` meaning ``c * 2^-(W - I)``.  Every conversion is "round, then
overflow": the exact value is rounded to the grid with the format's :class:`Rounding` mode,
then brought into range with its :class:`Overflow` mode.  The defaults (``RND_CONV``,
``SAT``) live in :data:`DEFAULT_ROUNDING` and :data:`DEFAULT_OVERFLOW` and nowhere else.

Widths go up to 64 bits for signed formats and 63 bits for unsigned ones, so that every code
fits an int64 (DSP-slice accumulators of 40 or 48 bits, ``ap_fixed<64,...>``).  Products and
sums of codes are formed exactly (in 128-bit, or for the widest exact sums 192-bit, integers
in the compiled core; in Python integers in the NumPy engine).

A float64 holds 53 significant bits, so a format wider than 53 bits has codes whose value is
not a double.  Conversions *from* doubles stay exact: a double is an exact rational, and
:func:`quantize` / :meth:`FixedFormat.to_codes` round that exact value once onto the grid
(``to_codes`` is the exact result for any width).  Conversions *to* doubles (the values
returned by :func:`quantize`, :meth:`FixedFormat.from_codes`, :attr:`FixedFormat.hi`) give the
nearest double to ``code * lsb``, ties to even, which is exact whenever ``|code| <= 2^53``.

The arithmetic runs in the kernels of the engine in use (``linncore._backend.kernels()``):
the compiled core or its bit-exact NumPy twin.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import _backend
from .._util import validate as _v
from .._util.codes import NEAR_RAIL

__all__ = [
    "Rounding",
    "Overflow",
    "DEFAULT_ROUNDING",
    "DEFAULT_OVERFLOW",
    "FixedFormat",
    "RailStats",
    "quantize",
    "rail_stats",
    "requantize",
    "sat_add",
    "sat_mul",
    "fixed_matmul",
]

MAX_BITS = 64  # signed formats: 2..64 bits
MAX_BITS_UNSIGNED = 63  # unsigned formats: 1..63 bits (every code fits an int64)
MAX_ABS_INT_BITS = 960  # with MAX_FRAC_BITS, keeps lsb and the rails finite normal doubles
MAX_FRAC_BITS = 992  # (lc_fixed.h)


class Rounding(enum.IntEnum):
    """Rounding modes; the values are those of ``lc_rounding`` in csrc/lc_fixed.h."""

    TRN = 0  #: toward -inf (floor)
    TRN_ZERO = 1  #: toward zero
    RND = 2  #: to nearest, ties toward +inf
    RND_ZERO = 3  #: to nearest, ties toward zero
    RND_INF = 4  #: to nearest, ties away from zero
    RND_MIN_INF = 5  #: to nearest, ties toward -inf
    RND_CONV = 6  #: to nearest, ties to the even code
    STOCH = 7  #: up with probability equal to the fractional part (seeded, reproducible)


class Overflow(enum.IntEnum):
    """Overflow modes, applied after rounding; the values are those of ``lc_overflow``."""

    SAT = 0  #: clamp to [code_min, code_max]
    SAT_SYM = 1  #: signed: clamp to [-code_max, code_max]; unsigned: as SAT
    WRAP = 2  #: keep the low W bits (two's complement when signed)


DEFAULT_ROUNDING = Rounding.RND_CONV
DEFAULT_OVERFLOW = Overflow.SAT

_E = type[enum.IntEnum]


def _mode(value: Any, kind: _E, name: str) -> Any:
    """A member of ``kind`` from a member, its name (any case) or its value."""
    if isinstance(value, kind):
        return value
    valid = ", ".join(m.name for m in kind)
    if isinstance(value, str):
        key = value.strip().upper()
        if key.startswith("AP_"):
            key = key[3:]
        if key in kind.__members__:
            return kind[key]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if int(value) in {m.value for m in kind}:
            return kind(int(value))
    raise ValueError(f"{name}: expected one of {valid} (any case), got {value!r}")


_FIXED_RE = re.compile(r"^\s*(?:ap_)?(u?)fixed\s*<([^>]*)>\s*$", re.IGNORECASE)
_Q_RE = re.compile(r"^\s*(u?)q\s*(-?\d+)\s*\.\s*(-?\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format ``fixed<bits, int_bits>`` with its rounding and overflow modes.

    Parameters
    ----------
    bits : int
        Total width W: 2..64 for a signed format, 1..63 for an unsigned one (codes are int64).
    int_bits : int
        Integer bits I, the sign bit included when signed (ap_fixed convention).  Any integer
        in [-960, 960] with at most 992 fraction bits ``W - I``: I > W and I < 0 are allowed
        (ap_fixed semantics).
    signed : bool
        Two's complement codes when True.
    rounding : Rounding or str
        Rounding mode (names in any case); default ``RND_CONV``.
    overflow : Overflow or str
        Overflow mode (names in any case); default ``SAT``.

    Examples
    --------
    >>> f = FixedFormat(16, 1)
    >>> str(f), f.frac_bits, f.lsb, f.hi
    ('fixed<16,1,RND_CONV,SAT>', 15, 3.0517578125e-05, 0.999969482421875)
    >>> FixedFormat.parse("Q1.15") == f
    True
    >>> f.to_codes([0.5, -1.0, 2.0]).tolist()
    [16384, -32768, 32767]
    >>> FixedFormat(48, 16).to_codes([0.1]).tolist()  # the double 0.1, exactly, onto 2^-32
    [429496730]
    """

    bits: int
    int_bits: int
    signed: bool = True
    rounding: Rounding = DEFAULT_ROUNDING
    overflow: Overflow = DEFAULT_OVERFLOW

    def __post_init__(self) -> None:
        bits = _v.integer(self.bits, "bits")
        int_bits = _v.integer(self.int_bits, "int_bits")
        signed = _v.flag(self.signed, "signed")
        low, high = (2, MAX_BITS) if signed else (1, MAX_BITS_UNSIGNED)
        if not low <= bits <= high:
            kind = "signed" if signed else "unsigned"
            why = "" if signed or bits <= high else " (codes are int64)"
            raise ValueError(
                f"bits: expected an integer in [{low}, {high}] for a {kind} format{why}, got {bits}"
            )
        if not -MAX_ABS_INT_BITS <= int_bits <= MAX_ABS_INT_BITS:
            raise ValueError(
                f"int_bits: expected an integer in [-{MAX_ABS_INT_BITS}, {MAX_ABS_INT_BITS}], "
                f"got {int_bits}"
            )
        if bits - int_bits > MAX_FRAC_BITS:
            raise ValueError(
                f"int_bits: expected at most {MAX_FRAC_BITS} fraction bits "
                f"(int_bits >= {bits - MAX_FRAC_BITS} for {bits} bits), "
                f"got {int_bits}"
            )
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "int_bits", int_bits)
        object.__setattr__(self, "signed", signed)
        object.__setattr__(self, "rounding", _mode(self.rounding, Rounding, "rounding"))
        object.__setattr__(self, "overflow", _mode(self.overflow, Overflow, "overflow"))

    # ------------------------------------------------------------ text forms

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """A format from ``fixed<W,I>``, ``fixed<W,I,ROUNDING,OVERFLOW>``, ``ufixed<W,I>``
        (``ap_`` prefixes accepted) or ``Qm.n`` / ``UQm.n`` (m counts the sign bit:
        ``Q1.15`` is ``fixed<16,1>``).

        Raises
        ------
        ValueError
            When ``text`` matches none of these forms; the message quotes it.

        Examples
        --------
        >>> FixedFormat.parse("ufixed<8,0,TRN,WRAP>")  # doctest: +NORMALIZE_WHITESPACE
        FixedFormat(bits=8, int_bits=0, signed=False, rounding=<Rounding.TRN: 0>,
                    overflow=<Overflow.WRAP: 2>)
        >>> str(FixedFormat.parse("Q2.14"))
        'fixed<16,2,RND_CONV,SAT>'
        """
        if isinstance(text, FixedFormat):
            return text
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        m = _FIXED_RE.match(text)
        if m:
            parts = [p.strip() for p in m.group(2).split(",")]
            if len(parts) not in (2, 3, 4) or not all(parts):
                raise ValueError(f"text: expected fixed<W,I[,ROUNDING[,OVERFLOW]]>, got {text!r}")
            try:
                bits, int_bits = int(parts[0]), int(parts[1])
            except ValueError:
                raise ValueError(f"text: W and I must be integers in {text!r}") from None
            # a name or a member: __post_init__ converts it (after checking the widths)
            rounding: Any = parts[2] if len(parts) > 2 else DEFAULT_ROUNDING
            overflow: Any = parts[3] if len(parts) > 3 else DEFAULT_OVERFLOW
            return cls(bits, int_bits, not m.group(1), rounding, overflow)
        m = _Q_RE.match(text)
        if m:
            ib, fb = int(m.group(2)), int(m.group(3))
            return cls(ib + fb, ib, not m.group(1))
        raise ValueError(
            f"text: expected 'fixed<W,I>', 'fixed<W,I,ROUNDING,OVERFLOW>', 'ufixed<W,I>' or "
            f"'Qm.n', got {text!r}"
        )

    def __str__(self) -> str:
        u = "" if self.signed else "u"
        return f"{u}fixed<{self.bits},{self.int_bits},{self.rounding.name},{self.overflow.name}>"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back.

        Examples
        --------
        >>> FixedFormat.from_dict(FixedFormat(8, 3).to_dict()) == FixedFormat(8, 3)
        True
        """
        return {
            "bits": self.bits,
            "int_bits": self.int_bits,
            "signed": self.signed,
            "rounding": self.rounding.name,
            "overflow": self.overflow.name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FixedFormat:
        """The format of a :meth:`to_dict` mapping; unknown or missing keys are errors."""
        if not isinstance(d, Mapping):
            raise TypeError(f"d: expected a mapping, got {type(d).__name__}")
        keys = {"bits", "int_bits", "signed", "rounding", "overflow"}
        extra = set(d) - keys
        if extra:
            raise ValueError(f"d: unknown keys {sorted(extra)}; expected {sorted(keys)}")
        if not {"bits", "int_bits"} <= set(d):
            raise ValueError(f"d: expected at least 'bits' and 'int_bits', got {sorted(d)}")
        return cls(
            d["bits"],
            d["int_bits"],
            d.get("signed", True),
            d.get("rounding", DEFAULT_ROUNDING),
            d.get("overflow", DEFAULT_OVERFLOW),
        )

    def with_modes(
        self, rounding: Rounding | str | None = None, overflow: Overflow | str | None = None
    ) -> FixedFormat:
        """The same width and binary point with other modes (None keeps the current one).

        Examples
        --------
        >>> str(FixedFormat(8, 1).with_modes(rounding="trn", overflow="wrap"))
        'fixed<8,1,TRN,WRAP>'
        """
        return FixedFormat(
            self.bits,
            self.int_bits,
            self.signed,
            self.rounding if rounding is None else _mode(rounding, Rounding, "rounding"),
            self.overflow if overflow is None else _mode(overflow, Overflow, "overflow"),
        )

    def as_tuple(self) -> tuple[int, int, bool, int, int]:
        """``(bits, int_bits, signed, rounding, overflow)``: how kernels receive a format."""
        return (self.bits, self.int_bits, self.signed, int(self.rounding), int(self.overflow))

    # ------------------------------------------------------------ derived numbers

    @property
    def frac_bits(self) -> int:
        """Fraction bits F = W - I (negative when I > W)."""
        return self.bits - self.int_bits

    @property
    def lsb(self) -> float:
        """The step 2^-F between neighbouring values."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def code_max(self) -> int:
        """The largest code: 2^(W-1) - 1 signed, 2^W - 1 unsigned."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def code_min(self) -> int:
        """The smallest code a cast produces: -2^(W-1), or -code_max under SAT_SYM; 0
        unsigned."""
        if not self.signed:
            return 0
        return -self.code_max if self.overflow == Overflow.SAT_SYM else -self.code_max - 1

    @property
    def lo(self) -> float:
        """The lower rail, ``code_min * lsb`` (the nearest double when ``|code_min| > 2^53``)."""
        return math.ldexp(float(self.code_min), -self.frac_bits)

    @property
    def hi(self) -> float:
        """The upper rail, code_max * lsb (the nearest double when code_max > 2^53)."""
        return math.ldexp(float(self.code_max), -self.frac_bits)

    # ------------------------------------------------------------ conversions

    def to_codes(self, x: ArrayLike, *, seed: int = 0) -> np.ndarray:
        """Integer codes (int64) of ``x`` cast to this format; see :func:`quantize`.

        The codes are exact for every width: each double of ``x`` is an exact rational,
        rounded once onto the grid (with 64-bit formats, finer than a double's 53 bits).

        Examples
        --------
        >>> FixedFormat(64, 1).to_codes([1/3]).tolist()  # the double nearest 1/3, to 2^-63
        [3074457345618258432]
        """
        xa = _float_input(x)
        codes, _, _ = _backend.kernels().fix_quantize(
            xa, self.as_tuple(), seed=_seed(seed), codes=True, values=False
        )
        return codes

    def from_codes(self, codes: ArrayLike) -> np.ndarray:
        """The values (float64) of integer ``codes`` of this format: exact when
        ``|code| <= 2^53``, else the nearest double (ties to even).

        Examples
        --------
        >>> FixedFormat(8, 4).from_codes([1, -16]).tolist()
        [0.0625, -1.0]
        """
        return _backend.kernels().fix_from_codes(_codes(codes, "codes"), self.as_tuple())

    def quantize(self, x: ArrayLike, *, seed: int = 0) -> np.ndarray:
        """``quantize(x, self)``."""
        return quantize(x, self, seed=seed)


FormatLike = FixedFormat | str


def _fmt(f: Any, name: str) -> FixedFormat:
    if isinstance(f, FixedFormat):
        return f
    if isinstance(f, str):
        try:
            return FixedFormat.parse(f)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    raise TypeError(f"{name}: expected a FixedFormat or a format string, got {type(f).__name__}")


def _seed(seed: Any) -> int:
    return _v.integer(seed, "seed", lo=0, hi=(1 << 64) - 1)


def _float_input(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"x: expected real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def _codes(c: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(c)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer codes, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) >= 1 << 63:
        raise ValueError(f"{name}: code {int(a.max())} does not fit int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _near(near_rail: Any) -> float:
    return _v.finite_float(near_rail, "near_rail", lo=0, hi=1)


def _exact_in_float32(f: FixedFormat) -> bool:
    """Every value of f is a float32: at most 24 significant bits, lsb >= 2^-149, and the
    largest magnitude below 2^128."""
    return f.bits <= 24 and f.frac_bits <= 149 and f.int_bits <= 127


@dataclass(frozen=True)
class RailStats:
    """Rail statistics of one quantization (:ref:`rail-statistics` in the documentation).

    Attributes
    ----------
    saturation_fraction : float
        Fraction of elements whose rounded value lay outside [lo, hi], so that the overflow
        mode acted (+-inf included).
    near_rail_fraction : float
        Fraction of elements whose quantized value ``q`` has
        ``|q| >= near_rail * max(|lo|, hi)``, compared in double precision on codes: ``|c|``
        and ``max(|code_min|, code_max)`` each as the nearest double, their comparison after
        one multiplication by ``near_rail`` (exact rails below 2^53; a 64-bit format's rail
        counts as 2^63).
    underflow_fraction : float
        Fraction of elements nonzero before quantization and zero after.
    count : int
        Number of elements (all fractions are 0.0 when it is 0).
    """

    saturation_fraction: float
    near_rail_fraction: float
    underflow_fraction: float
    count: int

    @classmethod
    def from_counts(cls, counts: tuple[int, int, int], n: int) -> RailStats:
        if n == 0:
            return cls(0.0, 0.0, 0.0, 0)
        return cls(counts[0] / n, counts[1] / n, counts[2] / n, int(n))


def quantize(
    x: ArrayLike,
    fmt: FormatLike,
    *,
    seed: int = 0,
    return_stats: bool = False,
    near_rail: float = NEAR_RAIL,
):
    """Round ``x`` onto the grid of ``fmt`` ("round, then overflow").

    Parameters
    ----------
    x : array_like
        Real values (any shape).  float32 and float64 are read as they are, other real types
        are converted to float64.
    fmt : FixedFormat or str
        The format (strings go through :meth:`FixedFormat.parse`).
    seed : int
        Seed of the counter-based generator used by ``STOCH`` rounding: element ``i`` (flat
        position) rounds up iff ``splitmix64(seed, i) >> 11 < frac * 2^53``.  Ignored by the
        other modes.
    return_stats : bool
        Also return the :class:`RailStats` of this quantization.
    near_rail : float
        Threshold of the near-rail count, a fraction of the larger rail magnitude.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, RailStats)
        The quantized values, float64; float32 when ``x`` is float32 and every value of the
        format is exactly a float32 (W <= 24, F <= 149, I <= 127).  The rounding onto the
        grid is exact for every width; for W > 53 a grid value may need more than a double's
        53 bits, and is then returned as the nearest double (ties to even): use
        :meth:`FixedFormat.to_codes` for the exact result.

    Raises
    ------
    ValueError
        ``x`` holds NaN (the message gives the index of the first), or +-inf under ``WRAP``
        (+-inf saturates to the rail of its sign under ``SAT`` and ``SAT_SYM``).

    Examples
    --------
    >>> quantize([0.3, -0.75, 5.0], "fixed<4,1>").tolist()
    [0.25, -0.75, 0.875]
    >>> q, st = quantize([0.3, 5.0, 0.01], "fixed<4,1>", return_stats=True)
    >>> st.saturation_fraction, st.underflow_fraction
    (0.3333333333333333, 0.3333333333333333)
    """
    f = _fmt(fmt, "fmt")
    xa = _float_input(x)
    nr = _near(near_rail) if return_stats else None
    _, values, counts = _backend.kernels().fix_quantize(
        xa, f.as_tuple(), seed=_seed(seed), codes=False, values=True, near_rail=nr
    )
    if xa.dtype == np.float32 and _exact_in_float32(f):
        values = values.astype(np.float32)
    if return_stats:
        return values, RailStats.from_counts(counts, xa.size)
    return values


def rail_stats(
    x: ArrayLike, fmt: FormatLike, near_rail: float = NEAR_RAIL, *, seed: int = 0
) -> RailStats:
    """The :class:`RailStats` of quantizing ``x`` to ``fmt`` (values are not kept).

    Examples
    --------
    >>> rail_stats([0.95, -1.0, 0.1, 2.0], "fixed<8,1>").near_rail_fraction
    0.75
    """
    f = _fmt(fmt, "fmt")
    xa = _float_input(x)
    _, _, counts = _backend.kernels().fix_quantize(
        xa, f.as_tuple(), seed=_seed(seed), codes=False, values=False, near_rail=_near(near_rail)
    )
    return RailStats.from_counts(counts, xa.size)


def requantize(
    codes: ArrayLike, src_fmt: FormatLike, dst_fmt: FormatLike, *, seed: int = 0
) -> np.ndarray:
    """Cast codes of ``src_fmt`` to codes of ``dst_fmt`` (exact shift, dst's rounding, then
    dst's overflow).

    Raises
    ------
    ValueError
        A code lies outside the width of ``src_fmt`` (the message gives its index).

    Examples
    --------
    >>> requantize([5, -5, 6, 127], "fixed<8,4>", "fixed<6,4,RND_CONV,SAT>").tolist()
    [1, -1, 2, 31]
    """
    fs, fd = _fmt(src_fmt, "src_fmt"), _fmt(dst_fmt, "dst_fmt")
    out, _ = _backend.kernels().fix_requantize(
        _codes(codes, "codes"), fs.as_tuple(), fd.as_tuple(), seed=_seed(seed)
    )
    return out


def sat_add(
    a: ArrayLike, b: ArrayLike, fmt: FormatLike, out_fmt: FormatLike | None = None, *, seed: int = 0
) -> np.ndarray:
    """Codes of ``a + b`` for codes ``a``, ``b`` of ``fmt`` (broadcast), cast to ``out_fmt``
    (default ``fmt``): the sum is exact, then rounded and saturated (or wrapped) once.

    Examples
    --------
    >>> sat_add([100, -100], [100, -100], "fixed<8,8>").tolist()
    [127, -128]
    """
    f = _fmt(fmt, "fmt")
    fo = f if out_fmt is None else _fmt(out_fmt, "out_fmt")
    aa, bb = np.broadcast_arrays(_codes(a, "a"), _codes(b, "b"))
    return _backend.kernels().fix_add(
        np.ascontiguousarray(aa),
        np.ascontiguousarray(bb),
        f.as_tuple(),
        fo.as_tuple(),
        seed=_seed(seed),
    )


def sat_mul(
    a: ArrayLike,
    a_fmt: FormatLike,
    b: ArrayLike,
    b_fmt: FormatLike,
    out_fmt: FormatLike,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Codes of ``a * b`` (codes of ``a_fmt`` and ``b_fmt``, broadcast) cast to ``out_fmt``:
    the product is exact, then rounded and saturated (or wrapped) once.

    Examples
    --------
    >>> sat_mul([64], "fixed<8,1>", [64], "fixed<8,1>", "fixed<8,1>").tolist()  # 0.5 * 0.5
    [32]
    """
    fa, fb, fo = _fmt(a_fmt, "a_fmt"), _fmt(b_fmt, "b_fmt"), _fmt(out_fmt, "out_fmt")
    aa, bb = np.broadcast_arrays(_codes(a, "a"), _codes(b, "b"))
    return _backend.kernels().fix_mul(
        np.ascontiguousarray(aa),
        fa.as_tuple(),
        np.ascontiguousarray(bb),
        fb.as_tuple(),
        fo.as_tuple(),
        seed=_seed(seed),
    )


def fixed_matmul(
    a_codes: ArrayLike,
    a_fmt: FormatLike,
    b_codes: ArrayLike,
    b_fmt: FormatLike,
    out_fmt: FormatLike,
    accumulator: FormatLike | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Codes of ``C = A @ B`` in ``out_fmt``, for codes A (n, k) of ``a_fmt`` and B (k, m)
    of ``b_fmt``.

    With ``accumulator=None`` the sums are exact and rounded once.  With an accumulator
    format, each product is cast to it (its rounding and overflow), each addition saturates
    (or wraps, per its overflow mode) at its width, in the order p = 0..k-1, and the final
    sum is cast to ``out_fmt``.

    Examples
    --------
    >>> a = [[64, 64]]          # fixed<8,1>: [0.5, 0.5]
    >>> b = [[127], [127]]      # fixed<8,1>: [0.9921875, 0.9921875]
    >>> fixed_matmul(a, "fixed<8,1>", b, "fixed<8,1>", "fixed<8,1>").tolist()
    [[127]]
    >>> fixed_matmul(a, "fixed<8,1>", b, "fixed<8,1>", "fixed<8,1>",
    ...              accumulator="fixed<8,1,TRN,SAT>").tolist()
    [[126]]
    """
    fa, fb, fo = _fmt(a_fmt, "a_fmt"), _fmt(b_fmt, "b_fmt"), _fmt(out_fmt, "out_fmt")
    fc = None if accumulator is None else _fmt(accumulator, "accumulator").as_tuple()
    A, B = _codes(a_codes, "a_codes"), _codes(b_codes, "b_codes")
    if A.ndim != 2:
        raise ValueError(f"a_codes: expected a 2-D array (n, k), got shape {A.shape}")
    if B.ndim != 2 or B.shape[0] != A.shape[1]:
        raise ValueError(f"b_codes: expected a 2-D array ({A.shape[1]}, m), got shape {B.shape}")
    return _backend.kernels().fix_matmul(
        A, fa.as_tuple(), B, fb.as_tuple(), fo.as_tuple(), acc=fc, seed=_seed(seed)
    )
