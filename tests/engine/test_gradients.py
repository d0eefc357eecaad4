"""Gradients of every activation and loss against 4th-order central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from _numeric import fd_gradient

from linncore import Dense, Network

ACTS = ["linear", "relu", "tanh", "sigmoid", "softsign", "leaky_relu", "softplus"]


def _away_from_kinks(net, X):
    """True when no pre-activation lies within 1e-3 of a relu kink or a clip bound."""
    a = X
    for layer in net.layers:
        z = a @ layer.weight + (layer.bias if layer.has_bias else 0)
        h = layer(a)
        if np.min(np.abs(z)) < 1e-3 or (net.clip and np.min(np.abs(np.abs(h) - 1)) < 1e-3):
            return False
        a = np.clip(h, -1, 1) if net.clip else h
    return True


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("loss", ["mse", "half_mse"])
def test_gradient_matches_fourth_order_finite_differences(engine, act, clip, loss):
    for seed in range(20):
        r = np.random.default_rng(seed)
        net = Network(
            [
                Dense((3, 5), act, seed=r, bias_init="uniform_sqrt"),
                Dense((5, 4), act, seed=r, bias_init="uniform_sqrt"),
                Dense((4, 2), "linear", seed=r),
            ],
            clip=clip,
            dtype="float64",
        )
        net.set_theta(net.theta * 1.5)  # make clipping bite somewhere when it is on
        X = r.uniform(-1, 1, size=(9, 3))
        Y = r.uniform(-1, 1, size=(9, 2))
        if _away_from_kinks(net, X):
            break
    else:
        pytest.fail("no seed gave data away from kinks")
    _, grads = net.loss_and_grad(X, Y, loss)
    flat = np.concatenate([g.ravel() for g in grads])
    np.testing.assert_allclose(flat, fd_gradient(net, X, Y, loss), rtol=1e-7, atol=1e-9)


def test_mae_gradient_matches_finite_differences(engine):
    r = np.random.default_rng(3)
    net = Network(
        [Dense((2, 3), "tanh", seed=r), Dense((3, 2), seed=r)], clip=False, dtype="float64"
    )
    X, Y = r.normal(size=(6, 2)), r.normal(size=(6, 2)) * 3
    _, grads = net.loss_and_grad(X, Y, "mae")
    flat = np.concatenate([g.ravel() for g in grads])
    np.testing.assert_allclose(flat, fd_gradient(net, X, Y, "mae"), rtol=1e-7, atol=1e-9)


def test_clip_gradient_is_zero_outside_and_passes_on_the_bound(engine):
    # one linear unit: z = w x; with x = 2, w = 1 the output 2 is clipped to 1 (gradient 0);
    # with w = 0.5 it sits exactly on the bound 1 (gradient passes)
    for w, expected in ((1.0, 0.0), (0.5, 2 * (1.0 - 0.0) * 2.0)):
        net = Network([Dense((1, 1), weight=[[w]], has_bias=False)], clip=True, dtype="float64")
        _, (g,) = net.loss_and_grad([[2.0]], [[0.0]], "mse")
        assert g[0, 0] == expected
