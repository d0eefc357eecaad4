"""NumPy twins of csrc/lc_hessian.c: R-operator Hessian-vector products.

Notation (as in lc_hessian.h), layer l with input a_{l-1} (a_{-1} = X):
z = a_{l-1} W + b, h = act(z), a = clip(h) (identity without clipping; derivative 1 on
[-1, 1], 0 outside, second derivative 0).  Loss L = s sum r^2, r = a_{L-1} - Y, with
s = 1/(2N) (half_mse) or 1/(N m) (mse).

The state ``hvp_prepare`` returns has the C kernel's flat layout: X (N, n_0), then per layer
a, d1, d2, dz, each (N, n_l) row-major, where d1 = clip'(h) act'(z), d2 = clip'(h) act''(z) dL/da
and dz = dL/dz.  Written for clarity: one direction at a time, in matrix form.
"""
from __future__ import annotations

import numpy as np

from .._codes import LOSSES
from .dense import _forward_all, _layers, act_deriv, dense_backward, loss_grad

__all__ = ["act_deriv2", "hvp_state_len", "hvp_prepare", "hvp_apply", "net_hvp"]


def act_deriv2(act: int, z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """act''(z) from z and h = act(z); 0 for linear, relu and leaky_relu."""
    one = z.dtype.type(1)
    two = z.dtype.type(2)
    if act in (0, 1, 5):
        return np.zeros_like(z)
    if act == 2:  # tanh: -2 t (1 - t^2)
        return -two * h * (one - h * h)
    if act == 3:  # sigmoid: s (1 - s)(1 - 2 s)
        return h * (one - h) * (one - two * h)
    if act == 4:  # softsign: -2 sgn(z) / (1 + |z|)^3
        d = one + np.abs(z)
        return -np.sign(z) * (two / (d * d * d))
    if act == 6:  # softplus: s (1 - s), s = sigmoid(z)
        with np.errstate(over="ignore"):
            s = one / (one + np.exp(-z))
        return s * (one - s)
    raise ValueError(f"act: expected a code in [0, 7), got {act}")


def _check_loss(loss: int) -> None:
    if loss not in (LOSSES["mse"], LOSSES["half_mse"]):
        raise ValueError(f"loss: the Hessian kernels take mse (0) or half_mse (1), got code {loss}")


def hvp_state_len(spec, N: int) -> int:
    """N (n_0 + 4 (n_1 + ... + n_L))."""
    return int(N) * (int(spec.sizes[0]) + 4 * int(np.sum(spec.sizes[1:])))


def _state_views(spec, state, N):
    """X and per layer (a, d1, d2, dz), each (N, width), as views of the flat state."""
    n0 = int(spec.sizes[0])
    Xs = state[:n0 * N].reshape(N, n0)
    p, out = n0 * N, []
    for n in spec.sizes[1:]:
        n = int(n)
        out.append(tuple(state[p + q * n * N:p + (q + 1) * n * N].reshape(N, n) for q in range(4)))
        p += 4 * n * N
    return Xs, out


def hvp_prepare(spec, theta, X, Y, loss: int):
    """(state, loss value, grad): forward and backward pass at theta, kept for hvp_apply."""
    _check_loss(loss)
    N = X.shape[0]
    if N < 1:
        raise ValueError("X: expected at least one sample")
    clip = bool(spec.clip_out)
    states, out = _forward_all(spec, theta, X)
    value, da = loss_grad(loss, out, Y)
    state = np.empty(hvp_state_len(spec, N), dtype=theta.dtype)
    Xs, views = _state_views(spec, state, N)
    Xs[...] = X
    grad = np.empty_like(theta)
    layers, gl = _layers(spec, theta), _layers(spec, grad)
    zero = theta.dtype.type(0)
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        a_in, z, h = states[l]
        act = int(spec.acts[l])
        inside = (h >= -1) & (h <= 1) if clip else np.ones(h.shape, dtype=bool)
        A, D1, D2, DZ = views[l]
        A[...] = np.clip(h, -1, 1) if clip else h
        D1[...] = np.where(inside, act_deriv(act, z, h), zero)
        D2[...] = np.where(inside, act_deriv2(act, z, h) * da, zero)
        dz = da * act_deriv(act, z, h)
        if clip:
            dz = np.where(inside, dz, zero)
        DZ[...] = dz
        gW, gb, dx = dense_backward(a_in, W, z, h, da, act, clip, b is not None, l > 0)
        gl[l][0][...] = gW
        if b is not None:
            gl[l][1][...] = gb
        da = dx
    return state, value, grad


def hvp_apply(spec, theta, state, N: int, loss: int, V, gauss_newton: bool = False):
    """HV (P, k) = H V from a state of hvp_prepare, V (P, k).

    Per direction v = (V_l, vb_l):
    forward  Rz_l = Ra_{l-1} W_l + a_{l-1} V_l + vb_l,  Ra_l = d1 Rz_l  (Ra_{-1} = 0);
    backward Rda_{L-1} = 2 s Ra_{L-1};  Rdz = d1 Rda + d2 Rz;
             (Hv)_{W_l} = a_{l-1}^T Rdz + Ra_{l-1}^T dz,  (Hv)_{b_l} = sum_n Rdz,
             Rda_{l-1} = Rdz W_l^T + dz V_l^T.
    gauss_newton drops the terms in d2, Ra_{l-1}^T dz and dz V_l^T (J^T 2s J v)."""
    _check_loss(loss)
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    L = len(spec.acts)
    m = int(spec.sizes[-1])
    s2 = 1.0 / N if loss == LOSSES["half_mse"] else 2.0 / (N * m)
    s2 = theta.dtype.type(s2)
    Xs, views = _state_views(spec, state, N)
    inputs = [Xs] + [views[l][0] for l in range(L - 1)]  # a_{l-1}, (N, n_in)
    layers = _layers(spec, theta)
    HV = np.empty_like(V)
    for c in range(V.shape[1]):
        v = np.ascontiguousarray(V[:, c])
        vl = _layers(spec, v)
        Rz, Ra = [], []
        Ra_in = None
        for l in range(L):
            W, _ = layers[l]
            VW, vb = vl[l]
            rz = inputs[l] @ VW
            if vb is not None:
                rz = rz + vb
            if Ra_in is not None:
                rz = rz + Ra_in @ W
            Rz.append(rz)
            Ra_in = views[l][1] * rz
            Ra.append(Ra_in)
        hv = np.empty_like(v)
        hl = _layers(spec, hv)
        rda = s2 * Ra[L - 1]
        for l in range(L - 1, -1, -1):
            W, _ = layers[l]
            VW, _ = vl[l]
            _, D1, D2, DZ = views[l]
            rdz = D1 * rda
            if not gauss_newton:
                rdz = rdz + D2 * Rz[l]
            gW = inputs[l].T @ rdz
            if not gauss_newton and l > 0:
                gW = gW + Ra[l - 1].T @ DZ
            hl[l][0][...] = gW
            if hl[l][1] is not None:
                hl[l][1][...] = rdz.sum(axis=0)
            if l > 0:
                rda = rdz @ W.T
                if not gauss_newton:
                    rda = rda + DZ @ VW.T
        HV[:, c] = hv
    return HV


def net_hvp(spec, theta, X, Y, loss: int, V, gauss_newton: bool = False):
    """(loss value, grad, HV (P, k)): hvp_prepare then hvp_apply."""
    state, value, grad = hvp_prepare(spec, theta, X, Y, loss)
    return value, grad, hvp_apply(spec, theta, state, X.shape[0], loss, V, gauss_newton)
