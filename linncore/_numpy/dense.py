"""NumPy twins of csrc/lc_dense.c and csrc/lc_optim.c.

Written for clarity: each function states the mathematics its C twin implements, works in
the dtype of its inputs and returns what the compiled wrapper returns.
"""
from __future__ import annotations

import numpy as np

from .._util import codes
from .._util.codes import LOSSES, OPT_ADAM, STATUS_NONFINITE_LOSS, STATUS_NONFINITE_PARAMS
from .activations import lookup

__all__ = [
    "constants",
    "act_forward",
    "act_deriv",
    "dense_forward",
    "dense_backward",
    "loss_grad",
    "net_forward",
    "net_loss_grad",
    "optim_delta",
    "optim_step",
    "train_epoch",
]

def constants() -> dict[str, object]:
    """Every code this engine implements, as the compiled core's ``constants()`` names them."""
    return codes.constants()


def act_forward(act: int, z: np.ndarray) -> np.ndarray:
    """h = act(z) elementwise (the activation table's row ``act``)."""
    return lookup(act).forward(z)


def act_deriv(act: int, z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """d act / d z from the pre-activation z and h = act(z)."""
    return lookup(act).deriv(z, h)


def dense_forward(x, W, b, act: int, clip: bool):
    """(z, h, a): z = x W + b, h = act(z), a = clip(h, -1, 1) if clip else h."""
    z = x @ W
    if b is not None:
        z = z + b
    h = act_forward(act, z)
    a = np.clip(h, -1, 1) if clip else h.copy()
    return z, h, a


def dense_backward(x, W, z, h, da, act: int, clip: bool, need_bias: bool = True,
                   need_dx: bool = True):
    """(gW, gb, dx) for upstream da: dz = da * [|h| <= 1] * act'(z), gW = x^T dz,
    gb = sum of dz over samples, dx = dz W^T (None where not asked)."""
    dz = da * act_deriv(act, z, h)
    if clip:
        dz = np.where((h >= -1) & (h <= 1), dz, dz.dtype.type(0))
    gW = x.T @ dz
    gb = dz.sum(axis=0) if need_bias else None
    dx = dz @ W.T if need_dx else None
    return gW, gb, dx


def loss_grad(loss: int, f, y):
    """(value, dL/df) of a loss over predictions f and targets y, both (B, m).

    mse: sum r^2 / (B m); half_mse: sum r^2 / (2 B); mae: sum |r| / (B m), r = f - y.
    The value is accumulated in float64."""
    B, m = f.shape
    r = f - y
    r64 = r.astype(np.float64)
    dt = f.dtype.type
    if loss == LOSSES["mae"]:
        return float(np.abs(r64).sum() / (B * m)), dt(1.0 / (B * m)) * np.sign(r)
    if loss == LOSSES["half_mse"]:
        return float((r64 * r64).sum() / (2.0 * B)), dt(1.0 / B) * r
    if loss == LOSSES["mse"]:
        return float((r64 * r64).sum() / (B * m)), dt(2.0 / (B * m)) * r
    raise ValueError(f"loss: unknown loss code {loss}")


def _bn(spec, l: int) -> bool:
    bn = getattr(spec, "bn", None)
    return bn is not None and bool(bn[l])


def _layers(spec, theta):
    """(W, b) views of every layer in theta's layout (per layer: kernel, bias, then gamma and
    beta of a batch-normalised layer)."""
    out, p = [], 0
    for l in range(len(spec.acts)):
        n_in, n_out = int(spec.sizes[l]), int(spec.sizes[l + 1])
        W = theta[p:p + n_in * n_out].reshape(n_in, n_out)
        p += n_in * n_out
        b = None
        if spec.has_bias[l]:
            b = theta[p:p + n_out]
            p += n_out
        if _bn(spec, l):
            p += 2 * n_out
        out.append((W, b))
    return out


def _bn_params(spec, theta):
    """Per layer (gamma, beta) views into theta, or None without batch normalisation."""
    out, p = [], 0
    for l in range(len(spec.acts)):
        n_in, n_out = int(spec.sizes[l]), int(spec.sizes[l + 1])
        p += n_in * n_out + (n_out if spec.has_bias[l] else 0)
        if _bn(spec, l):
            out.append((theta[p:p + n_out], theta[p + n_out:p + 2 * n_out]))
            p += 2 * n_out
        else:
            out.append(None)
    return out


def _bn_state_views(spec, state):
    """Per layer (moving mean, moving variance) views into the state vector, or None."""
    out, p = [], 0
    for l in range(len(spec.acts)):
        n_out = int(spec.sizes[l + 1])
        if _bn(spec, l):
            out.append((state[p:p + n_out], state[p + n_out:p + 2 * n_out]))
            p += 2 * n_out
        else:
            out.append(None)
    return out


def _forward_full(spec, theta, X, bn_state=None):
    """Forward pass keeping (input, z, h) per layer and, for batch-normalised layers, (mean,
    var, inv, hat).  bn_state None: training (batch statistics); else inference."""
    states, caches, a = [], [], X
    bnp = _bn_params(spec, theta)
    stv = _bn_state_views(spec, bn_state) if bn_state is not None else None
    for l, (W, b) in enumerate(_layers(spec, theta)):
        z, h, a_next = dense_forward(a, W, b, int(spec.acts[l]), bool(spec.clip_out))
        states.append((a, z, h))
        cache = None
        if bnp[l] is not None:
            gamma, beta = bnp[l]
            if stv is None:  # y = gamma (a - mean) / sqrt(var + eps) + beta, biased variance
                mean = a_next.mean(axis=0)
                var = ((a_next - mean) ** 2).mean(axis=0)
            else:
                mean, var = stv[l]
            T = a_next.dtype.type
            inv = T(1) / np.sqrt(var + T(spec.bn_epsilon[l]))
            hat = (a_next - mean) * inv
            cache = (mean, var, inv, hat)
            a_next = gamma * hat + beta
        caches.append(cache)
        a = a_next
    return states, caches, a


def _forward_all(spec, theta, X):
    states, _, a = _forward_full(spec, theta, X)
    return states, a


def _bn_update(spec, caches, bn_state) -> None:
    """moving := moving * momentum + batch * (1 - momentum)."""
    for l, (views, cache) in enumerate(zip(_bn_state_views(spec, bn_state), caches)):
        if views is not None:
            T = bn_state.dtype.type
            mom = T(spec.bn_momentum[l])
            for moving, batch in zip(views, cache[:2]):
                moving[...] = moving * mom + batch * (T(1) - mom)


def net_forward(spec, theta, X, bn_state=None):
    """Y = net(X) (inference: batch normalisation with the moving statistics bn_state)."""
    if bn_state is None and any(_bn(spec, l) for l in range(len(spec.acts))):
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")
    return _forward_full(spec, theta, X, bn_state)[2]


def net_loss_grad(spec, theta, X, Y, loss: int, need_dx: bool = False, bn_state=None):
    """(loss, grad in theta's layout, dL/dX or None) over the whole set as one batch in
    training mode; bn_state, when given, takes this batch's moving-average update."""
    states, caches, out = _forward_full(spec, theta, X)
    value, da = loss_grad(loss, out, Y)
    grad = np.empty_like(theta)
    layers = _layers(spec, theta)
    gl = _layers(spec, grad)
    bnp, gbn = _bn_params(spec, theta), _bn_params(spec, grad)
    dx = None
    B = X.shape[0]
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        a_in, z, h = states[l]
        if caches[l] is not None:
            # dgamma = sum da hat; dbeta = sum da; dh = da gamma;
            # da_pre = inv / B (B dh - sum dh - hat sum dh hat)
            _, _, inv, hat = caches[l]
            gamma = bnp[l][0]
            gbn[l][0][...] = (da * hat).sum(axis=0)
            gbn[l][1][...] = da.sum(axis=0)
            dh = da * gamma
            T = da.dtype.type
            da = inv / T(B) * (T(B) * dh - dh.sum(axis=0) - hat * (dh * hat).sum(axis=0))
        gW, gb, dx = dense_backward(a_in, W, z, h, da, int(spec.acts[l]), bool(spec.clip_out),
                                    b is not None, l > 0 or need_dx)
        gl[l][0][...] = gW
        if b is not None:
            gl[l][1][...] = gb
        da = dx
    if bn_state is not None:
        _bn_update(spec, caches, bn_state)
    return value, grad, (dx if need_dx else None)


def optim_delta(opt: tuple, g, m, v, t: int):
    """The increment of step t (from 1) to add to theta; m and v are updated in place.

    opt = (kind, lr, beta_1, beta_2, epsilon, momentum, nesterov).  Adam (Keras 3):
    m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); alpha = lr sqrt(1 - b2^t) / (1 - b1^t);
    increment -m alpha / (sqrt(v) + eps).  SGD: -lr g; with momentum mu: m = mu m - lr g,
    increment m (Nesterov: mu m - lr g)."""
    kind, lr, b1, b2, eps, mu, nesterov = opt
    T = g.dtype.type
    lr = T(lr)
    if kind == OPT_ADAM:
        b1, b2, eps, tt = T(b1), T(b2), T(eps), T(t)
        alpha = lr * np.sqrt(T(1) - b2 ** tt) / (T(1) - b1 ** tt)
        m += (g - m) * (T(1) - b1)
        v += (g * g - v) * (T(1) - b2)
        return -((m * alpha) / (np.sqrt(v) + eps))
    if mu == 0.0:
        return -(g * lr)
    m[...] = -g * lr + m * T(mu)
    return (-g * lr + m * T(mu)) if nesterov else m.copy()


def optim_step(opt: tuple, theta, g, m, v, t: int) -> None:
    """theta += the increment of step t (the same bits as subtracting its magnitude)."""
    theta += optim_delta(opt, g, m, v, t)


def train_epoch(spec, theta, X, Y, perm, batch_size: int, loss: int, opt: tuple, m, v,
                step: int, clip_params: bool, bn_state=None):
    """One training epoch in place; returns (status, loss_sum, n_done, step) as the C kernel."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if bn_state is None and any(_bn(spec, l) for l in range(len(spec.acts))):
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")
    N = X.shape[0]
    order = np.arange(N) if perm is None else perm
    loss_sum, n_done = 0.0, 0
    for s in range(0, N, batch_size):
        idx = order[s:s + batch_size]
        batch_state = None if bn_state is None else bn_state.copy()
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by status
            value, grad, _ = net_loss_grad(spec, theta, X[idx], Y[idx], loss, bn_state=batch_state)
        if not np.isfinite(value):
            return STATUS_NONFINITE_LOSS, loss_sum, n_done, step
        backup = theta.copy()
        optim_step(opt, theta, grad, m, v, step + 1)
        if clip_params:
            np.clip(theta, -1, 1, out=theta)
        if not np.all(np.isfinite(theta)):
            theta[...] = backup
            return STATUS_NONFINITE_PARAMS, loss_sum, n_done, step
        if bn_state is not None:  # the moving statistics move only with a completed step
            bn_state[...] = batch_state
        step += 1
        loss_sum += value * len(idx)
        n_done += len(idx)
    return 0, loss_sum, n_done, step
