"""Fixed-point formats of 33 to 64 bits: the exact Fraction reference for every rounding and
overflow mode, the 128- and 192-bit sums of the compiled core against the NumPy twin bit for
bit, doubles against grids finer than their 53 bits, the C header export, the two builds of
csrc/lc_int128.h, and apytypes (optional)."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _fixed_ref import ENGINES, C, K, needs_core, ref_cast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linncore import _backend
from linncore.fixed.formats import (
    FixedFormat,
    Overflow,
    Rounding,
    fixed_matmul,
    quantize,
    rail_stats,
    requantize,
    sat_add,
    sat_mul,
)

ROOT = Path(__file__).resolve().parents[2]


@st.composite
def wide_formats(draw, min_bits=33):
    signed = draw(st.booleans())
    bits = draw(st.integers(min_bits, 64 if signed else 63))
    int_bits = draw(st.one_of(st.integers(-8, 70), st.integers(-300, 300)))
    return FixedFormat(
        bits,
        int_bits,
        signed,
        draw(st.sampled_from(list(Rounding))),
        draw(st.sampled_from(list(Overflow))),
    )


def codes_of(f: FixedFormat):
    """Codes of f's width, the extremes and their neighbours drawn often."""
    lo, hi = -(1 << (f.bits - 1)) if f.signed else 0, f.code_max
    return st.one_of(
        st.integers(lo, hi), st.sampled_from([lo, lo + 1, hi, hi - 1, 0, 1, min(hi, (1 << 53) + 1)])
    )


# ------------------------------------------------------------------ formats


def test_widths_up_to_64_bits_signed_and_63_unsigned_are_accepted():
    assert FixedFormat(64, 1).code_min == -(1 << 63)
    assert FixedFormat(64, 1).code_max == (1 << 63) - 1
    assert FixedFormat(64, 1, overflow="SAT_SYM").code_min == -(1 << 63) + 1
    assert FixedFormat(63, 0, signed=False).code_max == (1 << 63) - 1
    assert str(FixedFormat.parse("fixed<48,16,TRN,WRAP>")) == "fixed<48,16,TRN,WRAP>"
    with pytest.raises(
        ValueError,
        match=r"bits: expected an integer in \[1, 63\] for a unsigned format "
        r"\(codes are int64\), got 64",
    ):
        FixedFormat.parse("ufixed<64,0>")


def test_kernels_refuse_the_formats_the_class_refuses(engine):
    for bad in [(65, 1, True, 6, 0), (64, 0, False, 6, 0), (64, -929, True, 6, 0)]:
        with pytest.raises(ValueError, match="fmt: invalid fixed-point format"):
            engine.fix_quantize(np.zeros(1), bad)
    engine.fix_quantize(np.zeros(1), (64, -928, True, 6, 0))  # 992 fraction bits: the limit


# ------------------------------------------------------------------ the exact reference


@st.composite
def doubles_for(draw, f: FixedFormat):
    lsb = Fraction(2) ** -f.frac_bits
    code = draw(codes_of(f))
    offset = draw(
        st.sampled_from(
            [Fraction(0), Fraction(1, 2), Fraction(-1, 2), Fraction(1, 4), Fraction(3, 1)]
        )
    )
    return draw(
        st.one_of(
            st.just(float((code + offset) * lsb)),
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(-(2.0**70), 2.0**70).map(lambda v: v * float(lsb) if abs(float(lsb)) else v),
            st.sampled_from([0.0, -0.0, 5e-324, 1e308, -1e308, f.hi, f.lo, 1 / 3, -0.1]),
        )
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wide_quantize_matches_exact_rational_reference(data):
    f = data.draw(wide_formats())
    xs = data.draw(st.lists(doubles_for(f), min_size=1, max_size=8))
    seed = data.draw(st.integers(0, 2**64 - 1))
    expected = [ref_cast(Fraction(x), f, seed, i) for i, x in enumerate(xs)]
    for name in ENGINES:
        with _backend.use(name):
            assert f.to_codes(np.array(xs), seed=seed).tolist() == expected, name
            vals = quantize(np.array(xs), f, seed=seed)
            # values: the nearest double to code * lsb (ties to even, exact up to 2^53)
            assert vals.tolist() == [float(c * Fraction(f.lsb)) for c in expected], name


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wide_requantize_add_mul_match_exact_rational_reference(data):
    fs = data.draw(wide_formats())
    fd = data.draw(st.one_of(wide_formats(), wide_formats(min_bits=2)))
    fo = data.draw(wide_formats())
    n = data.draw(st.integers(1, 6))
    a = data.draw(st.lists(codes_of(fs), min_size=n, max_size=n))
    b = data.draw(st.lists(codes_of(fd), min_size=n, max_size=n))
    seed = data.draw(st.integers(0, 2**64 - 1))
    la, lb = Fraction(fs.lsb), Fraction(fd.lsb)
    want_rq = [ref_cast(c * la, fd, seed, i) for i, c in enumerate(a)]
    pairs, mixed = zip(a, a[::-1], strict=True), zip(a, b, strict=True)
    want_add = [ref_cast((c + d) * la, fo, seed, i) for i, (c, d) in enumerate(pairs)]
    want_mul = [ref_cast(c * la * d * lb, fo, seed, i) for i, (c, d) in enumerate(mixed)]
    for name in ENGINES:
        with _backend.use(name):
            assert requantize(a, fs, fd, seed=seed).tolist() == want_rq, name
            assert sat_add(a, a[::-1], fs, fo, seed=seed).tolist() == want_add, name
            assert sat_mul(a, fs, b, fd, fo, seed=seed).tolist() == want_mul, name


def _ref_matmul(A, fa, B, fb, fo, fc, seed):
    n, k, m = len(A), len(B), len(B[0])
    la, lb = Fraction(fa.lsb), Fraction(fb.lsb)
    out = []
    for i in range(n):
        row = []
        for j in range(m):
            if fc is None:
                s = sum(A[i][p] * B[p][j] for p in range(k)) * la * lb
                row.append(ref_cast(s, fo, seed, i * m + j))
                continue
            lc, reg = Fraction(fc.lsb), 0
            for p in range(k):
                pc = ref_cast(A[i][p] * B[p][j] * la * lb, fc, seed, n * m + (i * m + j) * k + p)
                reg = ref_cast((reg + pc) * lc, fc.with_modes(rounding="TRN"))
            row.append(ref_cast(reg * lc, fo, seed, i * m + j))
        out.append(row)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wide_matmul_matches_exact_rational_reference_in_both_modes(data):
    fa, fb, fo, fc = (data.draw(wide_formats()) for _ in range(4))
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    A = [[data.draw(codes_of(fa)) for _ in range(k)] for _ in range(n)]
    B = [[data.draw(codes_of(fb)) for _ in range(m)] for _ in range(k)]
    seed = data.draw(st.integers(0, 2**64 - 1))
    exact = _ref_matmul(A, fa, B, fb, fo, None, seed)
    acc = _ref_matmul(A, fa, B, fb, fo, fc, seed)
    for name in ENGINES:
        with _backend.use(name):
            assert fixed_matmul(A, fa, B, fb, fo, seed=seed).tolist() == exact, name
            assert fixed_matmul(A, fa, B, fb, fo, accumulator=fc, seed=seed).tolist() == acc, name


# The exact sum of products of two 64-bit formats needs up to 126 + log2(k) bits: the core
# accumulates it in 192 bits and compresses it for the final cast.  s = F_a + F_b - F_out
# runs over every branch of that compression (left shifts, s <= 61, 62 <= s with the shifted
# distance below and above 128 bits, values beyond every rail and values that fit).
SHIFTS = [
    -70,
    -64,
    -1,
    0,
    1,
    30,
    61,
    62,
    63,
    100,
    124,
    125,
    126,
    127,
    128,
    129,
    150,
    186,
    187,
    188,
    189,
    190,
    191,
    250,
    400,
    1000,
]


@pytest.mark.parametrize("s", SHIFTS)
def test_192_bit_exact_sums_are_cast_exactly_at_every_shift(engine, s):
    fa = FixedFormat(64, 1)  # F = 63
    lo, hi = fa.code_min, fa.code_max
    A = [[lo, lo, lo, lo, hi, 3], [hi, hi, hi, hi, lo, -1], [lo, hi, 7, lo, lo, 12345]]
    B = [[lo, hi], [lo, lo], [lo, -5], [lo, 1 << 62], [hi, lo], [-(1 << 40) + 1, 99]]
    seed = 2024
    for signed in (True, False):
        bits = 64 if signed else 63
        for rounding in Rounding:
            for overflow in Overflow:
                fo = FixedFormat(bits, bits - (126 - s), signed, rounding, overflow)
                got = fixed_matmul(A, fa, B, fa, fo, seed=seed).tolist()
                assert got == _ref_matmul(A, fa, B, fa, fo, None, seed), (str(fo), s)


def test_accumulator_formats_up_to_64_bits_saturate_every_addition(engine):
    # a 48-bit register (a DSP slice's accumulator) fed products of 18- and 27-bit codes
    f18, f27 = FixedFormat(18, 18), FixedFormat(27, 27)
    acc = FixedFormat(48, 48)
    a = [[(1 << 17) - 1] * 20]
    b = [[(1 << 26) - 1]] * 20
    p = ((1 << 17) - 1) * ((1 << 26) - 1)  # about 2^43: twenty of them pass 2^47
    out = FixedFormat(64, 64)
    assert fixed_matmul(a, f18, b, f27, out).tolist() == [[20 * p]]
    assert fixed_matmul(a, f18, b, f27, out, accumulator=acc).tolist() == [[acc.code_max]]
    wrapped = (20 * p + (1 << 47)) % (1 << 48) - (1 << 47)
    assert fixed_matmul(
        a, f18, b, f27, out, accumulator=acc.with_modes(overflow="WRAP")
    ).tolist() == [[wrapped]]
    # a 64-bit register: its sums need 65 bits before the overflow step
    f64 = FixedFormat(64, 64)
    big = [[f64.code_max, f64.code_max]]
    ones = [[1], [1]]
    assert fixed_matmul(big, f64, ones, FixedFormat(2, 2), f64, accumulator=f64).tolist() == [
        [f64.code_max]
    ]
    assert fixed_matmul(
        big, f64, ones, FixedFormat(2, 2), f64, accumulator=f64.with_modes(overflow="WRAP")
    ).tolist() == [[-2]]


def test_training_refuses_formats_wider_than_32_bits_with_the_field_named():
    from linncore import Dense, Network

    net = Network([Dense((2, 1), "linear", weight=[[0.5], [0.25]], bias=[0.0])])
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(
        ValueError,
        match=r"'accumulator' format of dense0 is fixed<48,16.*up to "
        r"32 bits",
    ):
        net.fit(X, Y, epochs=1, verbose=0, precision={"default": {"accumulator": "fixed<48,16>"}})
    net.fit(X, Y, epochs=1, verbose=0, precision={"default": {"accumulator": "fixed<32,16>"}})


# ------------------------------------------------------------------ doubles and the grid


def test_values_of_codes_beyond_53_bits_are_the_nearest_doubles(engine):
    f = FixedFormat(64, 64)
    codes = [(1 << 53) + 1, (1 << 53) + 3, (1 << 63) - 1, -(1 << 63), -(1 << 53) - 1]
    assert f.from_codes(codes).tolist() == [2.0**53, 2.0**53 + 4, 2.0**63, -(2.0**63), -(2.0**53)]
    assert f.hi == 2.0**63 and f.lo == -(2.0**63)


def test_doubles_quantize_exactly_onto_grids_finer_than_53_bits(engine):
    # 0.1 is the double 3602879701896397 * 2^-55: on a 2^-60 grid its code is exact
    f = FixedFormat(64, 4)
    assert f.to_codes([0.1]).tolist() == [3602879701896397 << 5]
    assert f.to_codes([-0.1]).tolist() == [-(3602879701896397 << 5)]
    # one ulp of 2^62 is 2^10; 2^63 itself is one past the rail of fixed<64,64>
    g = FixedFormat(64, 64)
    assert g.to_codes([2.0**62 + 1024, 2.0**63, -(2.0**63)]).tolist() == [
        (1 << 62) + 1024,
        (1 << 63) - 1,
        -(1 << 63),
    ]
    assert g.with_modes(overflow="WRAP").to_codes([2.0**63]).tolist() == [-(1 << 63)]


def test_wide_rail_stats_compare_magnitudes_in_double(engine):
    f = FixedFormat(64, 64)
    x = [2.0**63, -(2.0**63), 2.0**62, 0.25, 1.0]
    st_ = rail_stats(x, f, near_rail=0.5)
    # saturated: 2^63 only; near: |c| >= 0.5 * 2^63 for the first three; underflow: 0.25 -> 0
    assert (st_.saturation_fraction, st_.near_rail_fraction, st_.underflow_fraction) == (
        1 / 5,
        3 / 5,
        1 / 5,
    )


# ------------------------------------------------------------------ core vs twin


@needs_core
@pytest.mark.parametrize("trial", range(30))
def test_every_compiled_kernel_is_bit_exact_with_its_numpy_twin_for_wide_formats(trial):
    rng = np.random.default_rng(5000 + trial)

    def fmt(min_bits=33):
        signed = bool(rng.integers(0, 2))
        bits = int(rng.integers(min_bits, 65 if signed else 64))
        return (
            bits,
            int(rng.integers(-40, 90)),
            signed,
            int(rng.integers(0, 8)),
            int(rng.integers(0, 3)),
        )

    f, f2, f3, f4 = fmt(), fmt(2), fmt(), fmt()
    x = rng.standard_normal(300) * 2.0 ** rng.integers(-90, 90, 300)
    grid = 2.0 ** -(f[0] - f[1])
    x = np.concatenate([x, (np.round(x / grid) + 0.5) * grid, [0.0, -0.0, 5e-324, -1e300]])
    x = x[np.isfinite(x)]
    seed = int(rng.integers(0, 2**63))
    for xx in (x, x.astype(np.float32)):
        xx = xx[np.isfinite(xx)]
        a, b = (
            C.fix_quantize(xx, f, seed=seed, codes=True, values=True, near_rail=0.8),
            K.fix_quantize(xx, f, seed=seed, codes=True, values=True, near_rail=0.8),
        )
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = a[0]
    assert np.array_equal(C.fix_from_codes(c, f), K.fix_from_codes(c, f))
    r1, r2 = (
        C.fix_requantize(c, f, f2, seed=seed, near_rail=0.5),
        K.fix_requantize(c, f, f2, seed=seed, near_rail=0.5),
    )
    assert np.array_equal(r1[0], r2[0]) and r1[1] == r2[1]
    d = rng.permutation(c)
    assert np.array_equal(C.fix_add(c, d, f, f3, seed=seed), K.fix_add(c, d, f, f3, seed=seed))
    e = C.fix_quantize(rng.standard_normal(c.size) * 2.0**30, f2, seed=0, codes=True, values=False)[
        0
    ]
    assert np.array_equal(
        C.fix_mul(c, f, e, f2, f3, seed=seed), K.fix_mul(c, f, e, f2, f3, seed=seed)
    )
    A, B = c[:60].reshape(6, 10).copy(), e[:50].reshape(10, 5).copy()
    for acc in (None, f4):
        assert np.array_equal(
            C.fix_matmul(A, f, B, f2, f3, acc=acc, seed=seed),
            K.fix_matmul(A, f, B, f2, f3, acc=acc, seed=seed),
        )
    # extreme codes of two 64-bit formats: the 192-bit path
    g = (64, int(rng.integers(-10, 70)), True, int(rng.integers(0, 8)), int(rng.integers(0, 3)))
    ext = np.array([-(1 << 63), (1 << 63) - 1, -(1 << 62), 1 << 62], dtype=np.int64)
    A2 = rng.choice(ext, (4, 9))
    B2 = rng.choice(ext, (9, 3))
    assert np.array_equal(
        C.fix_matmul(A2, g, B2, g, f3, acc=None, seed=seed),
        K.fix_matmul(A2, g, B2, g, f3, acc=None, seed=seed),
    )


# ------------------------------------------------------------------ the C header export


def test_c_header_export_accepts_wide_formats_with_int64_codes():
    from linncore import Dense, Network
    from linncore.io.export import export_c_header, export_format, predict_fixed

    net = Network([Dense((2, 1), "linear", weight=[[0.5], [0.25]], bias=[0.125])])
    # the int64 accumulator holds any input code (< 2^47) times the weight codes (< 2^8)
    f = export_format({"bits": 48, "frac_bits": 8})
    assert f.bits == 48
    text = export_c_header(net, None, name="w48", fixed=f)
    assert "static const int64_t w48_w0[2]" in text
    assert predict_fixed(net, [[0.5, 0.25]], f).tolist() == [[0.5 * 0.5 + 0.25 * 0.25 + 0.125]]
    with pytest.raises(ValueError, match=r"fixed\.bits: expected an integer in \[2, 64\], got 65"):
        export_format({"bits": 65, "frac_bits": 4})
    # a 64-bit format's accumulator needs more than the int64 of C99: refused, with the reason
    with pytest.raises(ValueError, match=r"accumulator of layer .*C99 has no wider integer"):
        export_c_header(net, None, fixed={"bits": 64, "frac_bits": 40})
    with pytest.raises(ValueError, match=r"frac_bits in \[0, 62\] for 64 bits"):
        export_format({"bits": 64, "frac_bits": 63})


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_wide_c_header_compiles_and_matches_predict_fixed(tmp_path):
    from linncore import Dense, Network
    from linncore.io.export import export_c_header, predict_fixed

    rng = np.random.default_rng(7)
    net = Network(
        [
            Dense((3, 4), "relu", weight=rng.uniform(-1, 1, (3, 4)), bias=rng.uniform(-1, 1, 4)),
            Dense((4, 2), "linear", weight=rng.uniform(-1, 1, (4, 2)), bias=None),
        ]
    )
    fixed = {"bits": 40, "frac_bits": 12}
    X = rng.uniform(-4, 4, (16, 3)).astype(np.float32)
    X[:3] = [[1e9, -1e9, 3.0], [2.0**27, -(2.0**27), 0.5], [-3e38, 1e-30, -0.0]]  # rails, tiny
    export_c_header(net, tmp_path / "net.h", name="net", fixed=fixed)
    rows = "\n".join("{" + ", ".join(float(v).hex() + "f" for v in r) + "}," for r in X)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "net.h"\n'
        f"static const float X[{len(X)}][3] = {{\n{rows}\n}};\n"
        "int main(void) { float y[2]; for (int i = 0; i < %d; i++) { net_predict(X[i], y);"
        ' printf("%%a %%a\\n", (double)y[0], (double)y[1]); } return 0; }\n' % len(X)
    )
    exe = tmp_path / "main"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-o", str(exe), str(tmp_path / "main.c"), "-lm"],
        check=True,
        cwd=tmp_path,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    got = np.array([float.fromhex(v) for v in out]).reshape(-1, 2)
    assert np.array_equal(got, predict_fixed(net, X, fixed).astype(np.float64))


# ------------------------------------------------------------------ lc_int128.h, both builds

_INT128_DRIVER = r"""
#include <inttypes.h>
#include <stdio.h>
#include "lc_int128.h"

static uint64_t state = 12345;
static uint64_t next(void) /* splitmix64 */
{
    uint64_t z = (state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
/* operands with long runs of zeros and ones, where carries and signs are decided */
static uint64_t operand(void)
{
    uint64_t r = next();
    switch (r & 7u) {
    case 0: return 0;
    case 1: return ~UINT64_C(0);
    case 2: return UINT64_C(1) << (r >> 58);
    case 3: return UINT64_C(0) - (UINT64_C(1) << (r >> 58));
    default: return next();
    }
}
static void put(lc_u128 x) { printf(" %016" PRIx64 "%016" PRIx64, lc_u128_hi(x), lc_u128_lo(x)); }

int main(void)
{
    for (int t = 0; t < 4000; t++) {
        uint64_t a1 = operand(), a0 = operand(), b1 = operand(), b0 = operand();
        lc_u128 a = lc_u128_make(a1, a0), b = lc_u128_make(b1, b0);
        int n = (int)(next() % 128u);
        put(a); put(b); printf(" %d", n);
        put(lc_u128_add(a, b)); put(lc_u128_sub(a, b)); put(lc_u128_neg(a));
        put(lc_u128_and(a, b)); put(lc_u128_or(a, b));
        put(lc_u128_shl(a, n)); put(lc_u128_shr(a, n)); put(lc_i128_sar(a, n));
        put(lc_u128_mul64(a0, b0)); put(lc_i128_mul64((int64_t)a0, (int64_t)b0));
        put(lc_u128_mul_lo(a, b0)); put(lc_i128_from_i64((int64_t)b0)); put(lc_u128_mask(n));
        printf(" %d %d %d %d %d %d", lc_u128_lt(a, b), lc_i128_lt(a, b), lc_u128_eq(a, a),
               lc_u128_is_zero(a), lc_i128_is_neg(a), lc_u128_bitlen(a));
        printf(" %" PRId64 " %" PRId64 "\n", lc_i64_of_bits(a0), lc_i64_sar((int64_t)b0, n % 64));
    }
    return 0;
}
"""


def _int128_expected(line: str) -> str:
    """The driver's line recomputed with Python integers."""
    f = line.split()
    a, b, n = int(f[0], 16), int(f[1], 16), int(f[2])
    M = (1 << 128) - 1
    a0, b0 = a & ((1 << 64) - 1), b & ((1 << 64) - 1)

    def s128(v):
        return v - (1 << 128) if v >> 127 else v

    def s64(v):
        return v - (1 << 64) if v >> 63 else v

    words = [a, b]
    words += [
        (a + b) & M,
        (a - b) & M,
        -a & M,
        a & b,
        a | b,
        (a << n) & M,
        a >> n,
        (s128(a) >> n) & M,
        a0 * b0,
        (s64(a0) * s64(b0)) & M,
        (a * b0) & M,
        s64(b0) & M,
        (1 << n) - 1,
    ]
    out = [f"{w:032x}" for w in words[:2]] + [str(n)] + [f"{w:032x}" for w in words[2:]]
    out += [
        str(int(a < b)),
        str(int(s128(a) < s128(b))),
        "1",
        str(int(a == 0)),
        str(a >> 127),
        str(a.bit_length()),
        str(s64(a0)),
        str(s64(b0) >> (n % 64)),
    ]
    return " ".join(out)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_int128_helpers_give_the_same_bits_native_and_portable(tmp_path):
    src = tmp_path / "drv.c"
    src.write_text(_INT128_DRIVER)
    outputs = {}
    for name, flags in (("native", []), ("portable", ["-DLC_INT128_PORTABLE"])):
        exe = tmp_path / name
        subprocess.run(
            [
                "gcc",
                "-std=c99",
                "-O2",
                "-Wall",
                "-Werror",
                *flags,
                "-I",
                str(ROOT / "csrc"),
                "-o",
                str(exe),
                str(src),
            ],
            check=True,
        )
        outputs[name] = subprocess.run(
            [str(exe)], check=True, capture_output=True, text=True
        ).stdout
    assert outputs["native"] == outputs["portable"]
    lines = outputs["portable"].splitlines()
    assert len(lines) == 4000
    for line in lines:
        assert line.strip() == _int128_expected(line), line


_KERNEL_DRIVER = r"""
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "lc_fixed.h"

/* Reads: nf formats (5 ints each), then n, k, m, seed, the doubles x[n*k], the codes B[k*m];
 * prints quantized codes of x in format 0, their product with B (formats 0 and 1, output 2)
 * exact and through accumulator 3, and requantize / add / mul of the codes. */
int main(void)
{
    lc_fixfmt f[4];
    for (int i = 0; i < 4; i++)
        if (scanf("%d %d %d %d %d", &f[i].bits, &f[i].int_bits, &f[i].is_signed,
                  &f[i].rounding, &f[i].overflow) != 5) return 2;
    long long n, k, m;
    unsigned long long seed;
    if (scanf("%lld %lld %lld %llu", &n, &k, &m, &seed) != 4) return 2;
    double *x = malloc(sizeof(double) * n * k);
    int64_t *A = malloc(sizeof(int64_t) * n * k), *B = malloc(sizeof(int64_t) * k * m);
    int64_t *C = malloc(sizeof(int64_t) * (n * m + n * k));
    for (long long i = 0; i < n * k; i++) if (scanf("%la", &x[i]) != 1) return 2;
    for (long long i = 0; i < k * m; i++) if (scanf("%" SCNd64, &B[i]) != 1) return 2;
    int st = lc_quantize_f64(&f[0], x, n * k, A, NULL, seed, NULL, 0.0, NULL);
    for (long long i = 0; i < n * k; i++) printf("%" PRId64 " ", A[i]);
    st |= lc_fix_matmul(&f[0], A, &f[1], B, n, k, m, NULL, &f[2], C, seed, NULL);
    for (long long i = 0; i < n * m; i++) printf("%" PRId64 " ", C[i]);
    st |= lc_fix_matmul(&f[0], A, &f[1], B, n, k, m, &f[3], &f[2], C, seed, NULL);
    for (long long i = 0; i < n * m; i++) printf("%" PRId64 " ", C[i]);
    st |= lc_requantize(&f[0], A, n * k, &f[2], C, seed, NULL, 0.0, NULL);
    for (long long i = 0; i < n * k; i++) printf("%" PRId64 " ", C[i]);
    st |= lc_fix_add(&f[0], A, A, n * k, &f[2], C, seed, NULL);
    for (long long i = 0; i < n * k; i++) printf("%" PRId64 " ", C[i]);
    st |= lc_fix_mul(&f[0], A, &f[0], A, n * k, &f[3], C, seed, NULL);
    for (long long i = 0; i < n * k; i++) printf("%" PRId64 " ", C[i]);
    printf("\n%d\n", st);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_fixed_kernels_built_with_portable_int128_match_the_numpy_twin(tmp_path):
    """lc_fixed.c compiled with the two-word lc_u128 (as on MSVC) gives the twin's bits."""
    src = tmp_path / "drv.c"
    src.write_text(_KERNEL_DRIVER)
    csrc = ROOT / "csrc"
    sources = sorted(str(p) for p in csrc.glob("*.c"))  # lc_fixed.c and what it links to
    builds = {}
    for name, flags in (("native", []), ("portable", ["-DLC_INT128_PORTABLE"])):
        exe = tmp_path / name
        proc = subprocess.run(
            [
                "gcc",
                "-std=c99",
                "-O1",
                "-pthread",
                "-ffp-contract=off",
                *flags,
                "-I",
                str(csrc),
                "-o",
                str(exe),
                str(src),
                *sources,
                "-lm",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.fail(f"the kernel driver does not build:\n{proc.stderr[-2000:]}")
        builds[name] = exe
    rng = np.random.default_rng(99)
    for trial in range(25):
        signed = [True] * 4 if trial % 2 == 0 else [bool(v) for v in rng.integers(0, 2, 4)]
        fmts = [
            (
                int(rng.integers(33, 65 if s else 64)) if trial % 5 else 64 if s else 63,
                int(rng.integers(-20, 70)),
                s,
                int(rng.integers(0, 8)),
                int(rng.integers(0, 3)),
            )
            for s in signed
        ]
        fmts[0] = (fmts[0][0], fmts[0][0] - int(rng.integers(0, 64)), *fmts[0][2:])
        n, k, m = 3, 7, 4
        seed = int(rng.integers(0, 2**63))
        x = rng.standard_normal(n * k) * 2.0 ** rng.integers(-5, 70, n * k)
        B = K.fix_quantize(
            rng.standard_normal(k * m) * 2.0**40, fmts[1], seed=0, codes=True, values=False
        )[0]
        text = " ".join(f"{b} {i} {int(s)} {r} {o}" for b, i, s, r, o in fmts)
        text += f"\n{n} {k} {m} {seed}\n" + " ".join(v.hex() for v in x) + "\n"
        text += " ".join(str(int(v)) for v in B) + "\n"
        outs = [
            subprocess.run(
                [str(exe)], input=text, check=True, capture_output=True, text=True
            ).stdout
            for exe in builds.values()
        ]
        assert outs[0] == outs[1], fmts
        vals, status = outs[0].split("\n")[:2]
        assert status == "0"
        got = [int(v) for v in vals.split()]
        A = K.fix_quantize(x, fmts[0], seed=seed, codes=True, values=False)[0]
        Bm = B.reshape(k, m)
        want = [
            A,
            K.fix_matmul(A.reshape(n, k), fmts[0], Bm, fmts[1], fmts[2], acc=None, seed=seed),
            K.fix_matmul(A.reshape(n, k), fmts[0], Bm, fmts[1], fmts[2], acc=fmts[3], seed=seed),
            K.fix_requantize(A, fmts[0], fmts[2], seed=seed)[0],
            K.fix_add(A, A, fmts[0], fmts[2], seed=seed),
            K.fix_mul(A, fmts[0], A, fmts[0], fmts[3], seed=seed),
        ]
        assert got == [int(v) for w in want for v in np.asarray(w).reshape(-1)], fmts


# ------------------------------------------------------------------ apytypes (optional)

APY_ROUNDING = {
    "TRN": "TO_NEG",
    "TRN_ZERO": "TO_ZERO",
    "RND": "TIES_POS",
    "RND_ZERO": "TIES_ZERO",
    "RND_INF": "TIES_AWAY",
    "RND_MIN_INF": "TIES_NEG",
    "RND_CONV": "TIES_EVEN",
}


def _apy_array(apy, codes, f: FixedFormat):
    bits = [int(c) % (1 << f.bits) for c in codes]  # apytypes takes two's complement patterns
    return apy.APyFixedArray(bits, int_bits=f.int_bits, frac_bits=f.frac_bits)


def _apy_cast(apy, a, f: FixedFormat, qm, om):
    """Codes of f from apytypes: round into a register 100 integer bits wider (no overflow
    possible), then apply the overflow with no rounding left.  apytypes 0.5.1 gives wrong
    codes for some one-step casts of wide values (a round-up carrying out of its 64-bit limb,
    saturation after long shifts; the exact reference of this file shows which side is off),
    while each of these two steps agrees with that reference."""
    wide = a.cast(
        int_bits=a.int_bits + 100,
        frac_bits=f.frac_bits,
        quantization=qm,
        overflow=apy.OverflowMode.WRAP,
    )
    return _apy_codes(
        wide.cast(
            int_bits=f.int_bits,
            frac_bits=f.frac_bits,
            quantization=apy.QuantizationMode.TO_NEG,
            overflow=om,
        ),
        f,
    )


def _apy_codes(a, f: FixedFormat) -> list[int]:
    out = []
    for b in np.asarray(a.to_bits(), dtype=object).reshape(-1).tolist():
        b = int(b)
        out.append(b - (1 << f.bits) if f.signed and b >> (f.bits - 1) else b)
    return out


@pytest.mark.optional
@pytest.mark.parametrize("rounding", sorted(APY_ROUNDING))
@pytest.mark.parametrize("overflow", ["SAT", "WRAP"])
def test_wide_casts_products_and_sums_match_apytypes(engine, rounding, overflow):
    apy = pytest.importorskip("apytypes")
    rng = np.random.default_rng(len(rounding) * 7 + len(overflow))
    qm = getattr(apy.QuantizationMode, APY_ROUNDING[rounding])
    om = getattr(apy.OverflowMode, overflow)
    for _ in range(12):
        # signed formats only: apytypes' fixed-point numbers are two's complement
        fs = FixedFormat(int(rng.integers(33, 65)), int(rng.integers(-10, 40)))
        fd = FixedFormat(
            int(rng.integers(33, 65)), int(rng.integers(-10, 40)), True, rounding, overflow
        )
        n = 24
        codes = [int(v) for v in rng.integers(fs.code_min, fs.code_max, n, endpoint=True)]
        codes[:4] = [fs.code_min, fs.code_max, 0, -1]
        a = _apy_array(apy, codes, fs)
        # cast (requantize)
        want = _apy_cast(apy, a, fd, qm, om)
        assert requantize(codes, fs, fd).tolist() == want, (str(fs), str(fd))
        # exact product, one cast
        other = [int(v) for v in rng.integers(fs.code_min, fs.code_max, n, endpoint=True)]
        prod = a * _apy_array(apy, other, fs)
        want = _apy_cast(apy, prod, fd, qm, om)
        assert sat_mul(codes, fs, other, fs, fd).tolist() == want, (str(fs), str(fd))
        # exact sum of products (a dot product), one cast
        A = np.array(codes[:12], dtype=np.int64).reshape(3, 4)
        B = np.array(other[:8], dtype=np.int64).reshape(4, 2)
        mm = _apy_array(apy, A.reshape(-1), fs).reshape((3, 4)) @ _apy_array(
            apy, B.reshape(-1), fs
        ).reshape((4, 2))
        want = _apy_cast(apy, mm, fd, qm, om)
        assert fixed_matmul(A, fs, B, fs, fd).reshape(-1).tolist() == want, (str(fs), str(fd))
        # doubles: apytypes reads them exactly onto a grid fine enough, then casts
        x = rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)
        exact = apy.APyFixedArray.from_float(x, int_bits=80, frac_bits=200)
        want = _apy_cast(apy, exact, fd, qm, om)
        assert fd.to_codes(x).tolist() == want, str(fd)
