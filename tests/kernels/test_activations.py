"""The activation table: each row's derivatives are those of its forward function, and every
list of activations in the API is read from it."""

from __future__ import annotations

import numpy as np
import pytest

import linncore
from linncore._numpy.activations import BY_NAME, INSTRUMENT, TABLE, lookup
from linncore._util.codes import ACTIVATIONS

Z = np.concatenate([np.linspace(-3, 3, 61), [-0.25, 0.25]])
Z = Z[np.abs(Z) > 1e-3]  # away from relu's kink


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_derivatives_are_those_of_the_forward_function(name):
    row = BY_NAME[name]
    eps = 1e-5
    f = row.forward
    h = f(Z)
    d1 = (f(Z + eps) - f(Z - eps)) / (2 * eps)
    d2 = (f(Z + eps) - 2 * h + f(Z - eps)) / (eps * eps)
    np.testing.assert_allclose(row.deriv(Z, h), d1, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(row.deriv2(Z, h), d2, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_row_keeps_the_dtype(dtype):
    z = Z.astype(dtype)
    for row in TABLE.values():
        h = row.forward(z)
        assert (
            h.dtype == dtype and row.deriv(z, h).dtype == dtype and row.deriv2(z, h).dtype == dtype
        )


def test_the_lists_of_the_api_come_from_the_table():
    assert linncore.all_activations() == list(BY_NAME)
    assert set(BY_NAME) == set(ACTIVATIONS)
    assert linncore.list_activations() == list(INSTRUMENT)
    assert INSTRUMENT == ("relu", "tanh", "sigmoid", "softsign", "linear")


def test_an_unknown_code_is_refused_by_both_engines(engine):
    with pytest.raises(ValueError, match="act"):
        lookup(len(TABLE))
    with pytest.raises(ValueError, match="act"):
        engine.act_forward(len(TABLE), np.zeros(3))


def _awkward(dtype):
    """Every kind of value a pre-activation or an upstream gradient can hold."""
    tiny = np.finfo(dtype).tiny
    big = np.finfo(dtype).max
    special = [0.0, -0.0, tiny, -tiny, tiny / 8, -tiny / 8, big, -big, np.inf, -np.inf, np.nan]
    return np.concatenate([special, Z, -Z]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_is_z_where_positive_else_plus_zero_bit_for_bit(dtype):
    z = _awkward(dtype)
    want = np.where(z > 0, z, dtype(0))  # NaN, -0 and every z <= 0 give +0
    got = BY_NAME["relu"].forward(z)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    d = BY_NAME["relu"].deriv(z, got)
    np.testing.assert_array_equal(d, np.where(z > 0, dtype(1), dtype(0)))
    assert d.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_chain_is_upstream_times_the_derivative_bit_for_bit(dtype, name):
    row = BY_NAME[name]
    z = _awkward(dtype)
    with np.errstate(all="ignore"):
        h = row.forward(z)
        for da in (np.roll(z, 3), np.full_like(z, -0.0), np.full_like(z, 0.5)):
            got, want = row.chain(z, h, da), da * row.deriv(z, h)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
            assert got.dtype == dtype


def _ulps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float64 values lie between a and b (same sign, both finite)."""
    ia, ib = a.view(np.int64), b.view(np.int64)
    return np.abs(ia - ib)


def test_float64_tanh_of_the_core_is_within_two_ulps_of_the_twin(core, twin, rng):
    # The core's float64 tanh is its own (csrc/lc_vmath.h: within 0.7 ulp of the exact value,
    # the same bits on every machine); the twin keeps np.tanh (within about 2 ulps).  Two
    # ulps apart is the sum of what each may be off by, rounded down: measured, 1 at most.
    z = np.concatenate(
        [
            rng.standard_normal(200_000) * 3.0,
            np.linspace(0.0, 0.8, 100_001),  # the polynomial, the switch at 0.4, the exponential
            np.geomspace(1e-300, 20.0, 20_001),
            rng.uniform(18.0, 23.0, 1_000),  # where tanh reaches 1
        ]
    )
    z = np.concatenate([z, -z])
    code = BY_NAME["tanh"].code
    got, want = core.act_forward(code, z), twin.act_forward(code, z)
    assert np.all(np.signbit(got) == np.signbit(z))
    assert _ulps_apart(got, want).max() <= 2


def test_float64_tanh_of_the_core_on_special_values(core):
    tiny = np.finfo(np.float64).tiny
    z = np.array([0.0, -0.0, 5e-324, -5e-324, tiny, -tiny, 1e-200, 22.0, 1e300, np.inf, -np.inf])
    got = core.act_forward(BY_NAME["tanh"].code, z)
    want = np.array([0.0, -0.0, 5e-324, -5e-324, tiny, -tiny, 1e-200, 1.0, 1.0, 1.0, -1.0])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    assert np.isnan(core.act_forward(BY_NAME["tanh"].code, np.array([np.nan, -np.nan]))).all()


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_float32_tanh_and_sigmoid_of_the_core_are_the_double_values_rounded(core, name, rng):
    # Each float32 value is the double computation rounded once: so within half a float ulp
    # (plus the double's own error, far below) of float64 NumPy's value rounded.
    z = (rng.standard_normal(100_000) * 4.0).astype(np.float32)
    code = BY_NAME[name].code
    got = core.act_forward(code, z)
    exact = BY_NAME[name].forward(z.astype(np.float64))
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got.astype(np.float64) - exact) <= 0.5 * spacing + 1e-15 * np.abs(exact))
