"""Fixed-point formats and kernels: hand-computed tables, an exact Fraction reference, and the
compiled core against its NumPy twin bit for bit."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
from _fixed_ref import ENGINES, C, K, needs_core, ref_cast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linncore.fixed.formats as fixed_mod
from linncore import _backend
from linncore.fixed.formats import (
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

# ------------------------------------------------------------------ strategies


@st.composite
def formats(draw, max_abs_int_bits=60):
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 32))
    int_bits = draw(
        st.one_of(st.integers(-8, 40), st.integers(-max_abs_int_bits, max_abs_int_bits))
    )
    return FixedFormat(
        bits,
        int_bits,
        signed,
        draw(st.sampled_from(list(Rounding))),
        draw(st.sampled_from(list(Overflow))),
    )


@st.composite
def values_for(draw, f: FixedFormat):
    """Doubles around f's grid: exact ties, rails and one lsb around them, huge, tiny, -0.0."""
    lsb = Fraction(2) ** -f.frac_bits
    code = draw(st.integers(f.code_min - 3, f.code_max + 3))
    offset = draw(
        st.sampled_from(
            [
                Fraction(0),
                Fraction(1, 2),
                Fraction(1, 4),
                Fraction(3, 4),
                Fraction(-1, 2),
                Fraction(1, 2**40),
            ]
        )
    )
    near_grid = float((code + offset) * lsb)
    return draw(
        st.one_of(
            st.just(near_grid),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(
                [
                    0.0,
                    -0.0,
                    5e-324,
                    -5e-324,
                    1e308,
                    -1e308,
                    float(f.hi),
                    float(f.lo),
                    2.0**-1074 * 3,
                    -(2.0**62) - 2048.0,
                ]
            ),
        )
    )


# ------------------------------------------------------------------ enums


def test_rounding_and_overflow_enums_match_both_engines():
    for module in [K] + ([C] if C is not None else []):
        consts = module.fixed_constants()
        assert consts["ROUNDING"] == {m.name: m.value for m in Rounding}
        assert consts["OVERFLOW"] == {m.name: m.value for m in Overflow}
        assert consts["MAX_ABS_INT_BITS"] == fixed_mod.MAX_ABS_INT_BITS
        assert consts["MAX_BITS"] == fixed_mod.MAX_BITS
        assert consts["MAX_BITS_UNSIGNED"] == fixed_mod.MAX_BITS_UNSIGNED
        assert consts["MAX_FRAC_BITS"] == fixed_mod.MAX_FRAC_BITS
        assert consts["STATUS"] == {"NAN": 16, "INF": 17, "CODE": 18, "FORMAT": 19}
        assert set(consts) == {
            "ROUNDING",
            "OVERFLOW",
            "STATUS",
            "MAX_ABS_INT_BITS",
            "MAX_FRAC_BITS",
            "MAX_BITS",
            "MAX_BITS_UNSIGNED",
        }


# ------------------------------------------------------------------ hand-computed tables

# fixed<4,2>: lsb 0.25, codes -8..7, rails [-2, 1.75].  Each x is y = x / lsb as noted.
TABLE_X = [
    0.125,
    0.375,
    -0.125,
    -0.375,
    0.3,
    -0.3,
    0.2,
    -0.2,
    1.75,
    1.8,
    1.875,
    2.0,
    -2.0,
    -2.125,
    -1.875,
]
#  y:         .5  1.5  -.5 -1.5 1.2 -1.2  .8  -.8   7  7.2 7.5   8   -8 -8.5 -7.5
ROUNDING_TABLE = {
    "TRN": [0, 1, -1, -2, 1, -2, 0, -1, 7, 7, 7, 7, -8, -8, -8],
    "TRN_ZERO": [0, 1, 0, -1, 1, -1, 0, 0, 7, 7, 7, 7, -8, -8, -7],
    "RND": [1, 2, 0, -1, 1, -1, 1, -1, 7, 7, 7, 7, -8, -8, -7],
    "RND_ZERO": [0, 1, 0, -1, 1, -1, 1, -1, 7, 7, 7, 7, -8, -8, -7],
    "RND_INF": [1, 2, -1, -2, 1, -1, 1, -1, 7, 7, 7, 7, -8, -8, -8],
    "RND_MIN_INF": [0, 1, -1, -2, 1, -1, 1, -1, 7, 7, 7, 7, -8, -8, -8],
    "RND_CONV": [0, 2, 0, -2, 1, -1, 1, -1, 7, 7, 7, 7, -8, -8, -8],
}


@pytest.mark.parametrize("mode", sorted(ROUNDING_TABLE))
def test_rounding_modes_match_hand_computed_codes(engine, mode):
    f = FixedFormat(4, 2, rounding=mode, overflow="SAT")
    assert f.to_codes(TABLE_X).tolist() == ROUNDING_TABLE[mode]


# fixed<4,2,RND_CONV,*>: y = 7, 8, 9, -8, -9, 16, -7, and huge values with known low bits.
OVF_X = [1.75, 2.0, 2.25, -2.0, -2.25, 4.0, -1.75, 1e300, -1e300, 2.0**40 + 1.0]
OVERFLOW_TABLE = {
    "SAT": [7, 7, 7, -8, -8, 7, -7, 7, -8, 7],
    "SAT_SYM": [7, 7, 7, -7, -7, 7, -7, 7, -7, 7],
    "WRAP": [7, -8, -7, -8, 7, 0, -7, 0, 0, 4],  # (2^40 + 1) * 4 = 2^42 + 4 -> 4
}


@pytest.mark.parametrize("mode", sorted(OVERFLOW_TABLE))
def test_overflow_modes_match_hand_computed_codes(engine, mode):
    f = FixedFormat(4, 2, rounding="RND_CONV", overflow=mode)
    assert f.to_codes(OVF_X).tolist() == OVERFLOW_TABLE[mode]


@pytest.mark.parametrize(
    "mode,expected",
    [("SAT", [0, 0, 7, 7, 6]), ("SAT_SYM", [0, 0, 7, 7, 6]), ("WRAP", [7, 0, 0, 7, 6])],
)
def test_unsigned_overflow_modes_match_hand_computed_codes(engine, mode, expected):
    # ufixed<3,1>: lsb 0.25, codes 0..7; y = -1, 0, 8, 7, 6
    f = FixedFormat(3, 1, signed=False, rounding="TRN", overflow=mode)
    assert f.to_codes([-0.25, 0.0, 2.0, 1.75, 1.5]).tolist() == expected


def test_infinities_saturate_to_the_rail_of_their_sign(engine):
    f = FixedFormat(8, 1, overflow="SAT_SYM")
    assert f.to_codes([np.inf, -np.inf]).tolist() == [127, -127]
    q, stats = quantize(np.array([np.inf, 0.5]), f, return_stats=True)
    assert q.tolist() == [f.hi, 0.5]
    assert stats.saturation_fraction == 0.5


def test_infinity_under_wrap_is_an_error_naming_x_and_the_index(engine):
    with pytest.raises(ValueError, match=r"x: got -inf at index 1.*WRAP"):
        quantize([0.0, -np.inf], "fixed<8,1,RND,WRAP>")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_is_an_error_naming_x_and_the_first_index(engine, dtype):
    x = np.zeros((2, 3), dtype=dtype)
    x[1, 1] = np.nan
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x: expected finite values, got NaN at index \(1, 1\)"):
        quantize(x, "fixed<8,1>")


def test_tiny_and_huge_magnitudes_round_exactly(engine):
    f = FixedFormat(8, 1, rounding="TRN")
    assert f.to_codes([5e-324, -5e-324, 1e-310, -1e308, 1.7e308]).tolist() == [0, -1, 0, -128, 127]
    g = FixedFormat(8, 1, rounding="RND_INF")
    assert g.to_codes([-5e-324, 2.0**-8, -(2.0**-8)]).tolist() == [0, 1, -1]


def test_negative_zero_quantizes_to_code_zero_and_is_not_underflow(engine):
    q, stats = quantize([-0.0], "fixed<8,1,TRN_ZERO,SAT>", return_stats=True)
    assert q.tolist() == [0.0] and stats.underflow_fraction == 0.0


def test_extreme_int_bits_follow_ap_fixed_semantics(engine):
    # fixed<4,8>: lsb 16, codes -8..7 -> values -128..112; fixed<4,-2>: lsb 2^-6, |x| < 2^-3
    assert FixedFormat(4, 8).to_codes([100.0, 24.0, 1000.0]).tolist() == [6, 2, 7]
    assert FixedFormat(4, -2).to_codes([2.0**-6 * 3, 1.0]).tolist() == [3, 7]
    assert FixedFormat(4, 8).lsb == 16.0 and FixedFormat(4, -2).hi == 7 * 2.0**-6


# ------------------------------------------------------------------ the exact reference


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_quantize_matches_exact_rational_reference(data):
    f = data.draw(formats(max_abs_int_bits=900))
    xs = data.draw(st.lists(values_for(f), min_size=1, max_size=8))
    seed = data.draw(st.integers(0, 2**64 - 1))
    expected = [ref_cast(Fraction(x), f, seed, i) for i, x in enumerate(xs)]
    for name in ENGINES:
        with _backend.use(name):
            assert f.to_codes(np.array(xs), seed=seed).tolist() == expected, name
            with np.errstate(over="ignore"):
                x32 = np.array(xs, dtype=np.float32)
            if np.all(np.isfinite(x32)):
                exp32 = [ref_cast(Fraction(float(v)), f, seed, i) for i, v in enumerate(x32)]
                assert f.to_codes(x32, seed=seed).tolist() == exp32, name


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_requantize_add_mul_match_exact_rational_reference(data):
    fs, fd, fo = data.draw(formats()), data.draw(formats()), data.draw(formats())
    n = data.draw(st.integers(1, 6))
    codes = st.integers(fs.code_min, fs.code_max)
    a = data.draw(st.lists(codes, min_size=n, max_size=n))
    b = data.draw(st.lists(st.integers(fd.code_min, fd.code_max), min_size=n, max_size=n))
    seed = data.draw(st.integers(0, 2**64 - 1))
    la, lb = Fraction(fs.lsb), Fraction(fd.lsb)
    want_rq = [ref_cast(c * la, fd, seed, i) for i, c in enumerate(a)]
    want_add = [ref_cast((c + d) * la, fo, seed, i) for i, (c, d) in enumerate(zip(a, a[::-1]))]
    want_mul = [ref_cast(c * la * d * lb, fo, seed, i) for i, (c, d) in enumerate(zip(a, b))]
    for name in ENGINES:
        with _backend.use(name):
            assert requantize(a, fs, fd, seed=seed).tolist() == want_rq, name
            assert sat_add(a, a[::-1], fs, fo, seed=seed).tolist() == want_add, name
            assert sat_mul(a, fs, b, fd, fo, seed=seed).tolist() == want_mul, name


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_matmul_matches_exact_rational_reference_in_both_modes(data):
    fa, fb, fo, fc = (data.draw(formats()) for _ in range(4))
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    A = [[data.draw(st.integers(fa.code_min, fa.code_max)) for _ in range(k)] for _ in range(n)]
    B = [[data.draw(st.integers(fb.code_min, fb.code_max)) for _ in range(m)] for _ in range(k)]
    seed = data.draw(st.integers(0, 2**64 - 1))
    la, lb, lc = Fraction(fa.lsb), Fraction(fb.lsb), Fraction(fc.lsb)
    exact, acc = [], []
    for i in range(n):
        exact.append([])
        acc.append([])
        for j in range(m):
            s = sum(A[i][p] * B[p][j] for p in range(k)) * la * lb
            exact[-1].append(ref_cast(s, fo, seed, i * m + j))
            reg = 0
            for p in range(k):
                pc = ref_cast(A[i][p] * B[p][j] * la * lb, fc, seed, n * m + (i * m + j) * k + p)
                reg = ref_cast((reg + pc) * lc, fc.with_modes(rounding="TRN"))
            acc[-1].append(ref_cast(reg * lc, fo, seed, i * m + j))
    for name in ENGINES:
        with _backend.use(name):
            assert fixed_matmul(A, fa, B, fb, fo, seed=seed).tolist() == exact, name
            assert fixed_matmul(A, fa, B, fb, fo, accumulator=fc, seed=seed).tolist() == acc, name


def test_accumulator_saturates_every_addition_in_order(engine):
    # integers in fixed<4,4> (-8..7): 5 + 5 saturates to 7, then 7 - 5 = 2; the exact sum is 5
    a, b = [[1, 1, 1]], [[5], [5], [-5]]
    f = FixedFormat(4, 4)
    assert fixed_matmul(a, f, b, f, "fixed<8,8>").tolist() == [[5]]
    assert fixed_matmul(a, f, b, f, "fixed<8,8>", accumulator=f).tolist() == [[2]]
    # the same register wrapping: 10 wraps to -6, -6 - 5 = -11 wraps to 5
    assert fixed_matmul(
        a, f, b, f, "fixed<8,8>", accumulator=f.with_modes(overflow="WRAP")
    ).tolist() == [[5]]


def test_exact_matmul_does_not_overflow_with_widest_unsigned_codes(engine):
    f = FixedFormat(32, 32, signed=False)
    big = np.full((1, 64), f.code_max, dtype=np.int64)
    out = FixedFormat(32, 32, signed=False, overflow="WRAP")
    total = 64 * f.code_max**2
    assert fixed_matmul(big, f, big.T.copy(), f, out).tolist() == [[total % 2**32]]


# ------------------------------------------------------------------ core vs twin


@needs_core
@pytest.mark.parametrize("trial", range(40))
def test_every_compiled_kernel_is_bit_exact_with_its_numpy_twin(trial):
    rng = np.random.default_rng(1000 + trial)

    def fmt():
        signed = bool(rng.integers(0, 2))
        bits = int(rng.integers(2 if signed else 1, 33))
        return (
            bits,
            int(rng.integers(-40, 60)),
            signed,
            int(rng.integers(0, 8)),
            int(rng.integers(0, 3)),
        )

    f, f2, f3, f4 = fmt(), fmt(), fmt(), fmt()
    x = rng.standard_normal(300) * 2.0 ** rng.integers(-70, 70, 300)
    grid = 2.0 ** -(f[0] - f[1])
    x = np.concatenate([x, (np.round(x / grid) + 0.5) * grid, [0.0, -0.0, 5e-324, -1e300]])
    x = x[np.isfinite(x)]
    seed = int(rng.integers(0, 2**63))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    for xx in (x, x32):
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
    e = C.fix_quantize(rng.standard_normal(c.size), f2, seed=0, codes=True, values=False)[0]
    assert np.array_equal(
        C.fix_mul(c, f, e, f2, f3, seed=seed), K.fix_mul(c, f, e, f2, f3, seed=seed)
    )
    A, B = c[:60].reshape(6, 10).copy(), e[:50].reshape(10, 5).copy()
    assert np.array_equal(
        C.fix_matmul(A, f, B, f2, f3, acc=None, seed=seed),
        K.fix_matmul(A, f, B, f2, f3, acc=None, seed=seed),
    )
    assert np.array_equal(
        C.fix_matmul(A, f, B, f2, f3, acc=f4, seed=seed),
        K.fix_matmul(A, f, B, f2, f3, acc=f4, seed=seed),
    )


@needs_core
def test_compiled_and_numpy_kernels_raise_the_same_messages():
    f = (8, 1, True, 6, 0)
    cases = [
        ("fix_quantize", (np.array([[0.0, np.nan]]), f)),
        ("fix_quantize", (np.array([np.inf]), (8, 1, True, 6, 2))),
        ("fix_from_codes", (np.array([0, 200], dtype=np.int64), f)),
        ("fix_requantize", (np.array([-129], dtype=np.int64), f, f)),
        ("fix_add", (np.zeros(2, np.int64), np.array([0, 128], dtype=np.int64), f, f)),
        ("fix_mul", (np.zeros(2, np.int64), f, np.zeros(3, np.int64), f, f)),
        ("fix_matmul", (np.zeros((2, 2), np.int64), f, np.full((2, 1), 999, np.int64), f, f)),
        ("fix_quantize", (np.zeros(2), (1, 1, True, 6, 0))),
    ]
    for name, args in cases:
        with pytest.raises(ValueError) as ec:
            getattr(C, name)(*args)
        with pytest.raises(ValueError) as en:
            getattr(K, name)(*args)
        assert str(ec.value) == str(en.value), name


# ------------------------------------------------------------------ stochastic rounding


def test_stochastic_rounding_is_reproducible_from_its_seed(engine):
    f = FixedFormat(8, 2, rounding="STOCH")
    x = np.linspace(-1.3, 1.3, 1001)
    assert np.array_equal(f.to_codes(x, seed=42), f.to_codes(x, seed=42))
    assert not np.array_equal(f.to_codes(x, seed=42), f.to_codes(x, seed=43))


def test_stochastic_rounding_is_unbiased_on_average(engine):
    f = FixedFormat(8, 2, rounding="STOCH")  # lsb 1/64
    for v in (0.3, -0.3, 1.0 / 192):
        n = 200_000
        q = quantize(np.full(n, v), f, seed=7)
        p = (v * 64) - math.floor(v * 64)
        sigma = math.sqrt(p * (1 - p) / n) * f.lsb
        assert abs(q.mean() - v) < 6 * sigma
        assert set(np.unique(q)) <= {math.floor(v * 64) / 64, math.ceil(v * 64) / 64}


def test_stochastic_rounding_keeps_grid_values(engine):
    f = FixedFormat(8, 2, rounding="STOCH")
    x = np.arange(-128, 128) * f.lsb
    assert np.array_equal(quantize(x, f, seed=3), x)


# ------------------------------------------------------------------ rail statistics


def test_rail_stats_follow_the_spec_definitions(engine):
    # fixed<8,1>: hi = 127/128, lo = -1; near-rail threshold 0.9 * 1 = 0.9
    x = [0.95, -1.0, 0.1, 2.0, -3.0, 0.001, 0.0, 0.5]
    st_ = rail_stats(x, "fixed<8,1>")
    assert st_ == RailStats(2 / 8, 4 / 8, 1 / 8, 8)  # sat: 2, -3; near: .95 -1 2 -3; under: .001
    assert rail_stats([], "fixed<8,1>") == RailStats(0.0, 0.0, 0.0, 0)


def test_rail_stats_do_not_count_values_that_round_onto_the_rail(engine):
    # hi = 127/128 = 0.9921875: 0.99219 lies just above it but truncates onto it (no overflow);
    # 0.999 rounds to nearest 128/128, which the overflow step clamps
    st_ = rail_stats([0.99219, 0.999], "fixed<8,1,TRN,SAT>")
    assert st_.saturation_fraction == 0.0 and st_.near_rail_fraction == 1.0
    assert rail_stats([0.999], "fixed<8,1,RND,SAT>").saturation_fraction == 1.0


# ------------------------------------------------------------------ the public API


def test_quantize_keeps_float32_only_when_every_value_is_a_float32(engine):
    x = np.array([0.1, 0.2], dtype=np.float32)
    assert quantize(x, "fixed<16,1>").dtype == np.float32
    assert quantize(x, "fixed<32,1>").dtype == np.float64
    assert quantize([0.1], "fixed<16,1>").dtype == np.float64


def test_from_codes_inverts_to_codes_on_the_grid(engine):
    f = FixedFormat(12, 3, signed=False)
    codes = np.arange(0, 4096, 7)
    assert np.array_equal(f.to_codes(f.from_codes(codes)), codes)


@settings(max_examples=200, deadline=None)
@given(formats(max_abs_int_bits=960))
def test_format_strings_round_trip_through_parse(f):
    assert FixedFormat.parse(str(f)) == f
    assert FixedFormat.from_dict(f.to_dict()) == f
    assert hash(FixedFormat.parse(str(f))) == hash(f)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("fixed<16,1>", FixedFormat(16, 1)),
        ("fixed<16,1,RND_CONV,SAT>", FixedFormat(16, 1)),
        (" ap_fixed< 8 , 3 , ap_trn , ap_wrap > ", FixedFormat(8, 3, True, "TRN", "WRAP")),
        ("ufixed<8,0>", FixedFormat(8, 0, signed=False)),
        ("fixed<8,-2,rnd>", FixedFormat(8, -2, rounding="RND")),
        ("Q1.15", FixedFormat(16, 1)),
        ("Q2.14", FixedFormat(16, 2)),
        ("UQ0.8", FixedFormat(8, 0, signed=False)),
    ],
)
def test_parse_reads_ap_fixed_and_q_notation(text, expected):
    assert FixedFormat.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "fixed<16>",
        "fixed<16,1,FOO>",
        "fixed<a,1>",
        "Q1",
        "float32",
        "fixed<16,1,RND,SAT,X>",
        "fixed<65,1>",
        "ufixed<64,1>",
        "Q0.1",
    ],
)
def test_parse_rejects_malformed_strings(text):
    with pytest.raises(ValueError):
        FixedFormat.parse(text)


def test_format_properties_give_rails_and_lsb():
    f = FixedFormat(8, 3)
    assert (f.frac_bits, f.lsb, f.code_min, f.code_max, f.lo, f.hi) == (
        5,
        1 / 32,
        -128,
        127,
        -4.0,
        127 / 32,
    )
    g = f.with_modes(overflow="sat_sym")
    assert (g.code_min, g.lo) == (-127, -127 / 32)
    u = FixedFormat(8, 0, signed=False)
    assert (u.code_min, u.code_max, u.lo, u.hi) == (0, 255, 0.0, 255 / 256)


def test_modes_are_accepted_in_any_case_and_unknown_names_list_the_valid_ones():
    assert FixedFormat(8, 1, rounding="rnd_conv", overflow="Sat_Sym").overflow == Overflow.SAT_SYM
    with pytest.raises(
        ValueError, match=r"rounding: expected one of TRN, TRN_ZERO, .*STOCH.*'nearest'"
    ):
        FixedFormat(8, 1, rounding="nearest")
    with pytest.raises(ValueError, match=r"overflow: expected one of SAT, SAT_SYM, WRAP"):
        FixedFormat(8, 1).with_modes(overflow="clip")


@pytest.mark.parametrize(
    "args,match",
    [
        ((1, 0, True), r"bits: expected an integer in \[2, 64\] for a signed format, got 1"),
        ((65, 0, True), r"bits: expected an integer in \[2, 64\] for a signed format, got 65"),
        (
            (64, 0, False),
            r"bits: expected an integer in \[1, 63\] for a unsigned format "
            r"\(codes are int64\), got 64",
        ),
        ((8, 961), r"int_bits: expected an integer in \[-960, 960\], got 961"),
        ((64, -930), r"int_bits: expected at most 992 fraction bits \(int_bits >= -928 for 64"),
    ],
)
def test_invalid_formats_are_rejected_with_the_argument_named(args, match):
    with pytest.raises(ValueError, match=match):
        FixedFormat(*args)


def test_format_is_immutable_and_hashable():
    f = FixedFormat(8, 1)
    with pytest.raises(AttributeError):
        f.bits = 9
    assert {f: 1}[FixedFormat.parse("fixed<8,1>")] == 1
    assert f != f.with_modes(rounding="TRN")


def test_kernel_arguments_are_checked_and_named(engine):
    with pytest.raises(
        ValueError, match=r"codes: code 128 at index 1 lies outside the 8-bit signed"
    ):
        requantize([0, 128], "fixed<8,1>", "fixed<4,1>")
    with pytest.raises(TypeError, match=r"codes: expected integer codes, got dtype float64"):
        requantize([0.5], "fixed<8,1>", "fixed<4,1>")
    with pytest.raises(ValueError, match=r"b_codes: expected a 2-D array \(3, m\)"):
        fixed_matmul(
            np.zeros((2, 3), int), "fixed<8,1>", np.zeros((2, 2), int), "fixed<8,1>", "fixed<8,1>"
        )
    with pytest.raises(ValueError, match=r"fmt: text: expected 'fixed<W,I>'"):
        quantize([0.0], "float16")
    with pytest.raises(ValueError, match=r"near_rail: expected a number in \[0, 1\], got 2"):
        rail_stats([0.0], "fixed<8,1>", near_rail=2)
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 2\*\*64 - 1\], got -"):
        quantize([0.0], "fixed<8,1,STOCH,SAT>", seed=-1)


def test_sat_add_and_sat_mul_saturate_once_after_exact_arithmetic(engine):
    f = FixedFormat(8, 8)
    assert sat_add([100, -100, 3], [100, -100, -5], f).tolist() == [127, -128, -2]
    # 0.75 * 0.75 = 0.5625 in fixed<4,1> (lsb 1/8): 4.5 -> 4 (ties to even)
    q = FixedFormat(4, 1)
    assert sat_mul([6], q, [6], q, q).tolist() == [4]
    assert sat_mul([-8], q, [-8], q, q).tolist() == [7]  # (-1) * (-1) = 1 saturates


def test_public_docstring_examples_run():
    from linncore.fixed import precision

    for module in (fixed_mod, precision):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
