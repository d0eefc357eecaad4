"""The NumPy engine's training step is its plain statement, bit for bit.

The twin keeps the layout views, the gradient vector and the optimizer's scratch for a whole
epoch and works in place; these tests write the step out the plain way (fresh arrays, the
formulas as the docstrings state them) and require the same bits: the faster twin is still
the specification.
"""

from __future__ import annotations

import numpy as np
import pytest

from linncore._numpy import kernels as twin
from linncore._util.codes import ACTIVATIONS, LOSSES, OPT_ADAM, OPT_SGD
from linncore._util.kernel_args import OptimizerConfig
from linncore.engine.network import NetSpec

OPTIMIZERS = {
    "adam": OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False),
    "sgd": OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.0, False),
    "momentum": OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, False),
    "nesterov": OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, True),
}


def _one(z):
    return z.dtype.type(1)


def _zero(z):
    return z.dtype.type(0)


# The plain (forward, derivative) of the activations below, as the table first stated them.
PLAIN_ACTS = {
    ACTIVATIONS["relu"]: (
        lambda z: np.where(z > 0, z, _zero(z)),
        lambda z, h: np.where(z > 0, _one(z), _zero(z)),
    ),
    ACTIVATIONS["tanh"]: (np.tanh, lambda z, h: _one(z) - h * h),
    ACTIVATIONS["linear"]: (lambda z: z.copy(), lambda z, h: np.ones_like(z)),
    ACTIVATIONS["sigmoid"]: (
        lambda z: _one(z) / (_one(z) + np.exp(-z)),
        lambda z, h: h * (_one(z) - h),
    ),
}


def _flush(x):
    return np.where(np.abs(x) < np.finfo(x.dtype).tiny, x.dtype.type(0), x)


def _plain_delta(opt, g, m, v, t):
    """The optimizer increment as optim_delta's docstring states it, out of place."""
    T = g.dtype.type
    lr = T(opt.learning_rate)
    if opt.kind == OPT_ADAM:
        b1, b2, eps, tt = T(opt.beta_1), T(opt.beta_2), T(opt.epsilon), T(t)
        alpha = lr * np.sqrt(T(1) - b2**tt) / (T(1) - b1**tt)
        m[...] = _flush(m + (g - m) * (T(1) - b1))
        v[...] = _flush(v + (g * g - v) * (T(1) - b2))
        return -((m * alpha) / (np.sqrt(v) + eps))
    if opt.momentum == 0.0:
        return -(g * lr)
    mu = T(opt.momentum)
    m[...] = _flush(-g * lr + m * mu)
    return (-g * lr + m * mu) if opt.nesterov else m.copy()


def _plain_epoch(spec, theta, X, Y, perm, batch_size, opt, m, v, clip_params):
    """One epoch of float training (MSE), every step written out with fresh arrays."""
    L = len(spec.acts)
    clip = bool(spec.clip_out)
    table = twin.net_layout(spec)
    T = theta.dtype.type
    loss_sum, step = 0.0, 0
    for s in range(0, X.shape[0], batch_size):
        idx = perm[s : s + batch_size]
        a, cache = X[idx], []
        for l in range(L):
            n_in, n_out = int(spec.sizes[l]), int(spec.sizes[l + 1])
            w, b = int(table[l, 0]), int(table[l, 1])
            W = theta[w : w + n_in * n_out].reshape(n_in, n_out)
            z = a @ W
            if b >= 0:
                z = z + theta[b : b + n_out]
            h = PLAIN_ACTS[int(spec.acts[l])][0](z)
            cache.append((a, W, z, h))
            a = np.clip(h, -1, 1) if clip else h.copy()
        B, n = a.shape
        r = a - Y[idx]
        r64 = r.astype(np.float64)
        loss_sum += float((r64 * r64).sum() / (B * n)) * len(idx)
        da = T(2.0 / (B * n)) * r
        grad = np.empty_like(theta)
        for l in range(L - 1, -1, -1):
            x, W, z, h = cache[l]
            dz = da * PLAIN_ACTS[int(spec.acts[l])][1](z, h)
            if clip:
                dz = np.where((h >= -1) & (h <= 1), dz, T(0))
            w, b = int(table[l, 0]), int(table[l, 1])
            grad[w : w + W.size] = (x.T @ dz).reshape(-1)
            if b >= 0:
                grad[b : b + W.shape[1]] = dz.sum(axis=0)
            da = dz @ W.T
        nxt = theta + _plain_delta(opt, grad, m, v, step + 1)
        if clip_params:
            np.clip(nxt, -1, 1, out=nxt)
        assert np.all(np.isfinite(nxt))
        theta[...] = nxt
        step += 1
    return loss_sum


def _spec(sizes, acts, bias, clip):
    return NetSpec(
        np.array(sizes, np.int64),
        np.array([ACTIVATIONS[a] for a in acts], np.int32),
        np.array(bias, np.int32),
        clip,
    )


NETS = [
    ((3, 9, 7, 2), ("relu", "tanh", "linear"), (1, 1, 1)),
    ((4, 12, 12, 3), ("relu", "relu", "linear"), (1, 0, 1)),
    ((1, 16, 16, 1), ("tanh", "sigmoid", "linear"), (0, 1, 1)),
]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("net", range(len(NETS)))
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_train_epoch_is_the_plain_step_bit_for_bit(rng, dt, net, clip, opt):
    sizes, acts, bias = NETS[net]
    spec = _spec(sizes, acts, bias, clip)
    n = sum((sizes[l] + bias[l]) * sizes[l + 1] for l in range(len(acts)))
    theta0 = (rng.normal(size=n) * 0.7).astype(dt)
    X = rng.normal(size=(75, sizes[0])).astype(dt)
    Y = (rng.normal(size=(75, sizes[-1])) * 0.8).astype(dt)
    perm = rng.permutation(75).astype(np.int64)
    got, want = theta0.copy(), theta0.copy()
    mg, vg = np.zeros_like(got), np.zeros_like(got)
    mw, vw = np.zeros_like(got), np.zeros_like(got)
    status, loss_sum, n_done, step = twin.train_epoch(
        spec,
        got,
        X,
        Y,
        perm=perm,
        batch_size=16,
        loss=LOSSES["mse"],
        optimizer=OPTIMIZERS[opt],
        m=mg,
        v=vg,
        step=0,
        clip_params=clip,
    )
    want_loss = _plain_epoch(spec, want, X, Y, perm, 16, OPTIMIZERS[opt], mw, vw, clip)
    assert (status, n_done, step) == (0, 75, 5)
    assert loss_sum == want_loss
    for a, b in ((got, want), (mg, mw), (vg, vw)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
    assert not np.array_equal(got, theta0)


def _awkward(dt, n, rng):
    """Values a moment or a gradient can hold: normal, subnormal, signed zeros, NaN."""
    tiny = np.finfo(dt).tiny
    special = np.array(
        [0.0, -0.0, tiny, -tiny, tiny / 4, -tiny / 4, tiny * 2, np.nan, 1.0, -1.0], dt
    )
    return np.concatenate([special, rng.normal(size=n).astype(dt) * dt(1e-3)])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_optim_delta_is_the_plain_formula_bit_for_bit(rng, dt, opt):
    g, m0, v0 = (_awkward(dt, 30, rng) for _ in range(3))
    v0 = np.abs(v0)
    with np.errstate(invalid="ignore"):
        for t in (1, 2, 7):
            m1, v1, m2, v2 = m0.copy(), v0.copy(), m0.copy(), v0.copy()
            got = twin.optim_delta(OPTIMIZERS[opt], g, m1, v1, t)
            want = _plain_delta(OPTIMIZERS[opt], g, m2, v2, t)
            for a, b in ((got, want), (m1, m2), (v1, v2)):
                np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
