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
