"""NumPy twins of csrc/lc_dense.c (layers, losses, the training step) and csrc/lc_optim.c.

Written for clarity: each function states the mathematics its C twin implements, works in
the dtype of its inputs and returns what the compiled wrapper returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._util import codes
from .._util.codes import LOSSES, OPT_ADAM, OPT_SGD, STATUS_NONFINITE_LOSS, STATUS_NONFINITE_PARAMS
from .._util.kernel_args import OptimizerConfig
from .activations import lookup
from .qat import ACC, ACT, BIAS, GRAD, INPUT, UPDATE, WEIGHT, qat_quantize, qat_seed

__all__ = [
    "constants",
    "act_forward",
    "act_deriv",
    "dense_forward",
    "dense_backward",
    "loss_grad",
    "net_forward",
    "net_layout",
    "net_loss_grad",
    "optim_delta",
    "optim_step",
    "train_epoch",
    "qat_loss_grad",
    "qat_apply",
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


def dense_backward(
    x, W, z, h, da, act: int, clip: bool, need_bias: bool = True, need_dx: bool = True
):
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
    r64 = r.astype(np.float64, copy=False)
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


def net_layout(spec) -> np.ndarray:
    """The layout table, int64 (layers, 4): per layer the offsets in theta of the kernel, the
    bias, gamma (beta follows it) and, in the batch-normalisation state, of the moving mean
    (the variance follows it); -1 where the layer has none.  The one walk over the layers."""
    L = len(spec.acts)
    out = np.full((L, 4), -1, dtype=np.int64)
    p = st = 0
    for l in range(L):
        n_in, n_out = int(spec.sizes[l]), int(spec.sizes[l + 1])
        out[l, 0] = p
        p += n_in * n_out
        if spec.has_bias[l]:
            out[l, 1] = p
            p += n_out
        if _bn(spec, l):
            out[l, 2], out[l, 3] = p, st
            p += 2 * n_out
            st += 2 * n_out
    return out


def _layers(spec, theta, table=None):
    """(W, b) views of every layer in theta's layout (b None without a bias); table is
    net_layout(spec) when the caller already has it."""
    out = []
    for l, (w, b, _, _) in enumerate(net_layout(spec) if table is None else table):
        n_in, n_out = int(spec.sizes[l]), int(spec.sizes[l + 1])
        W = theta[w : w + n_in * n_out].reshape(n_in, n_out)
        out.append((W, theta[b : b + n_out] if b >= 0 else None))
    return out


def _bn_params(spec, theta, table=None):
    """Per layer (gamma, beta) views into theta, or None without batch normalisation."""
    out = []
    for l, (_, _, g, _) in enumerate(net_layout(spec) if table is None else table):
        n_out = int(spec.sizes[l + 1])
        out.append((theta[g : g + n_out], theta[g + n_out : g + 2 * n_out]) if g >= 0 else None)
    return out


def _bn_state_views(spec, state, table=None):
    """Per layer (moving mean, moving variance) views into the state vector, or None."""
    out = []
    for l, (_, _, _, s) in enumerate(net_layout(spec) if table is None else table):
        n_out = int(spec.sizes[l + 1])
        out.append((state[s : s + n_out], state[s + n_out : s + 2 * n_out]) if s >= 0 else None)
    return out


# ---- The training step: one forward and one backward pass for float and QAT ----
#
# Quantization is a hook (linncore._numpy.qat): with quant None, or a field off, the step does
# exactly the float arithmetic, so float training is QAT with every field float by
# construction.  The compiled twin is csrc/lc_dense_impl.h.


class _Net:
    """What a pass needs of the network, read once per call (once per epoch in training): the
    layout table, each layer's activation row, its (W, b) and (gamma, beta) views into theta
    and, with grad, a gradient vector in theta's layout with the same views.  theta must then
    change only in place, so that the views stay its own."""

    def __init__(self, spec, theta, grad: bool = False) -> None:
        self.L = len(spec.acts)
        self.clip = bool(spec.clip_out)
        self.table = net_layout(spec)
        self.acts = [lookup(int(a)) for a in spec.acts]
        self.params = _layers(spec, theta, self.table)
        self.bn = _bn_params(spec, theta, self.table)
        if grad:
            self.grad = np.empty_like(theta)
            self.gparams = _layers(spec, self.grad, self.table)
            self.gbn = _bn_params(spec, self.grad, self.table)


class _Layer:
    """What the backward pass needs of one layer's forward pass."""

    __slots__ = ("W", "bn", "h", "hc", "m_acc", "m_act", "m_b", "m_in", "m_w", "x", "z")
    x: np.ndarray
    W: np.ndarray
    z: np.ndarray
    h: np.ndarray
    hc: np.ndarray  # clip(h, -1, 1), or h without clipping
    bn: Any
    m_in: Any
    m_w: Any
    m_b: Any
    m_acc: Any
    m_act: Any

    def __init__(self) -> None:
        self.bn = self.m_in = self.m_w = self.m_b = self.m_acc = self.m_act = None


def _forward(spec, theta, X, quant=None, step=0, bn_state=None, net=None):
    """(per-layer state, output) of the forward pass.  bn_state None: training (batch
    statistics); else inference.  Quantized: z = q_acc(q_in(x) q_w(W)) + q_b(b),
    a = q_act(clip(act(z))).  net: theta's _Net, when the caller keeps one."""
    net = _Net(spec, theta) if net is None else net
    L = net.L
    stv = _bn_state_views(spec, bn_state, net.table) if bn_state is not None else None

    def q(l, f, x):
        """(x through field f's format, its straight-through mask), or (x, None) where the
        field is float (or x is None)."""
        if x is None or not quant.on[l][f]:
            return x, None
        seed = qat_seed(int(quant.seed), step, L, l, f, 0)
        return qat_quantize(x, quant.fmts[l][f], seed, quant.near_rail, True)[:2]

    layers, a = [], X
    for l, (W, b) in enumerate(net.params):
        st = _Layer()
        if quant is not None:
            a, st.m_in = q(l, INPUT, a)
            W, st.m_w = q(l, WEIGHT, W)
            b, st.m_b = q(l, BIAS, b)
        z = a @ W
        if quant is not None:
            z, st.m_acc = q(l, ACC, z)
        if b is not None:
            z += b  # z is this layer's own array (the product or its quantized copy)
        h = net.acts[l].forward(z)
        out = h.clip(-1, 1) if net.clip else h  # h is never written to: no copy needed
        st.x, st.W, st.z, st.h, st.hc = a, W, z, h, out
        if quant is not None:
            out, st.m_act = q(l, ACT, out)
        if net.bn[l] is not None:
            gamma, beta = net.bn[l]
            if stv is None:  # y = gamma (a - mean) / sqrt(var + eps) + beta, biased variance
                mean = out.mean(axis=0)
                var = ((out - mean) ** 2).mean(axis=0)
            else:
                mean, var = stv[l]
            T = out.dtype.type
            inv = T(1) / np.sqrt(var + T(spec.bn_epsilon[l]))
            hat = (out - mean) * inv
            st.bn = (mean, var, inv, hat)
            out = gamma * hat + beta
        layers.append(st)
        a = out
    return layers, a


def _forward_full(spec, theta, X, bn_state=None):
    """Forward pass keeping (input, z, h) per layer and the batch-normalisation caches."""
    layers, out = _forward(spec, theta, X, bn_state=bn_state)
    return [(st.x, st.z, st.h) for st in layers], [st.bn for st in layers], out


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


def _backward(spec, theta, layers, da, need_dx=False, quant=None, step=0, net=None):
    """(grad in theta's layout, dL/dX or None, gradient rail statistics or None) from
    da = dL/d(output): straight-through gates where a field is quantized, then the gradients
    quantized with the gradient formats.  net: theta's _Net with a gradient vector, which
    receives the result (the caller's to keep or reuse), when the caller keeps one."""
    net = _Net(spec, theta, grad=True) if net is None else net
    L, clip = net.L, net.clip
    grad, gl = net.grad, net.gparams
    bnp, gbn = net.bn, net.gbn
    zero = theta.dtype.type(0)
    B = da.shape[0]
    dx = None
    for l in range(L - 1, -1, -1):
        st = layers[l]
        if st.bn is not None:
            # dgamma = sum da hat; dbeta = sum da; dh = da gamma;
            # da_pre = inv / B (B dh - sum dh - hat sum dh hat)
            _, _, inv, hat = st.bn
            gamma = bnp[l][0]
            gbn[l][0][...] = (da * hat).sum(axis=0)
            gbn[l][1][...] = da.sum(axis=0)
            dh = da * gamma
            T = da.dtype.type
            da = inv / T(B) * (T(B) * dh - dh.sum(axis=0) - hat * (dh * hat).sum(axis=0))
        if st.m_act is not None:
            da = np.where(st.m_act, da, zero)
        dz = net.acts[l].chain(st.z, st.h, da)  # da * act'(z)
        if clip:  # h == clip(h) exactly where -1 <= h <= 1 (so never where h is NaN)
            inside = st.h == st.hc
            if not inside.all():  # (tanh, sigmoid and softsign leave only as NaN)
                dz = np.where(inside, dz, zero)
        dacc = np.where(st.m_acc, dz, zero) if st.m_acc is not None else dz
        gW, gb = gl[l]
        if st.m_w is None:
            np.matmul(st.x.T, dacc, out=gW)
        else:
            gW[...] = np.where(st.m_w, st.x.T @ dacc, zero)
        if gb is not None:
            if st.m_b is None:
                np.add.reduce(dz, axis=0, out=gb)
            else:
                gb[...] = np.where(st.m_b, dz.sum(axis=0), zero)
        if l > 0 or need_dx:
            dx = dacc @ st.W.T
            if st.m_in is not None:
                dx = np.where(st.m_in, dx, zero)
        da = dx
    rail_g = None
    if quant is not None:
        parts = ((l, GRAD, part, arr) for l in range(L) for part, arr in enumerate(gl[l]))
        rail_g = _quantize_fields(quant, step, L, parts, _NEAR)
    return grad, (dx if need_dx else None), rail_g


_SAT, _NEAR, _UNDER = range(3)  # the counts qat_quantize returns, in its order


def _quantize_fields(quant, step, L, parts, second):
    """Quantize in place every (layer, field, part, array) of parts whose field has a format,
    each with its own stream (qat_seed); arrays that are None or whose field is float stay.
    Returns the rail statistics (2,): the largest saturated fraction and the largest fraction
    of the count ``second`` (_NEAR or _UNDER) over the arrays quantized, NaN when none was."""
    r, any_q = np.zeros(2), False
    for l, field, part, arr in parts:
        if arr is None or not quant.on[l][field]:
            continue
        seed = qat_seed(int(quant.seed), step, L, l, field, part)
        qv, _, counts = qat_quantize(arr, quant.fmts[l][field], seed, quant.near_rail, False)
        arr[...] = qv
        any_q = True
        r[0] = max(r[0], counts[_SAT] / arr.size)
        r[1] = max(r[1], counts[second] / arr.size)
    return r if any_q else np.full(2, np.nan)


def _check_loss(loss: int) -> None:
    if loss not in LOSSES.values():
        raise ValueError(f"loss: unknown loss code {loss}")


def net_forward(spec, theta, X, bn_state=None):
    """Y = net(X) (inference: batch normalisation with the moving statistics bn_state)."""
    if bn_state is None and any(_bn(spec, l) for l in range(len(spec.acts))):
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")
    return _forward(spec, theta, X, bn_state=bn_state)[1]


def net_loss_grad(spec, theta, X, Y, loss: int, need_dx: bool = False, bn_state=None):
    """(loss, grad in theta's layout, dL/dX or None) over the whole set as one batch in
    training mode; bn_state, when given, takes this batch's moving-average update."""
    _check_loss(loss)
    layers, out = _forward(spec, theta, X)
    value, da = loss_grad(loss, out, Y)
    grad, dx, _ = _backward(spec, theta, layers, da, need_dx)
    if bn_state is not None:
        _bn_update(spec, [st.bn for st in layers], bn_state)
    return value, grad, dx


def _step_grad(spec, theta, X, Y, loss, quant, step, net):
    """(status, loss, grad, gradient rail, layers) of the gradient half of one step; grad is
    net's gradient vector."""
    layers, out = _forward(spec, theta, X, quant, step, net=net)
    value, da = loss_grad(loss, out, Y)
    if not math.isfinite(value):  # value is a Python float
        return STATUS_NONFINITE_LOSS, value, None, None, layers
    grad, _, rail_g = _backward(spec, theta, layers, da, False, quant, step, net=net)
    return 0, value, grad, rail_g, layers


def _step_apply(spec, theta, delta, clip_params, quant, step, own_delta=False):
    """(status, next parameters or None, weight rail, update rail) of the update half:
    update quantization, next = clip(theta + delta) when finite, storage quantization.
    own_delta: delta is the caller's scratch, which may become the result."""
    L = len(spec.acts)
    table = net_layout(spec) if quant is not None else None
    rail_w = rail_u = None
    if quant is not None:
        delta = delta if own_delta else delta.copy()
        parts = (
            (l, UPDATE, part, arr)
            for l, arrs in enumerate(_layers(spec, delta, table))
            for part, arr in enumerate(arrs)
        )
        rail_u = _quantize_fields(quant, step, L, parts, _UNDER)
    nxt = np.add(theta, delta, out=delta) if own_delta else theta + delta
    if clip_params:
        nxt.clip(-1, 1, out=nxt)
    if not np.isfinite(nxt).all():
        return STATUS_NONFINITE_PARAMS, None, None, None
    if quant is not None:  # storage: part 1 of the kernel's and the bias's streams
        parts = (
            (l, field, 1, arr)
            for l, (W, b) in enumerate(_layers(spec, nxt, table))
            for field, arr in ((WEIGHT, W), (BIAS, b))
        )
        rail_w = _quantize_fields(quant, step, L, parts, _NEAR)
    return 0, nxt, rail_w, rail_u


_NO_QUANT_BN = "quant: quantization-aware training of batch-normalised networks is not supported"


def _refuse_bn(spec) -> None:
    if any(_bn(spec, l) for l in range(len(spec.acts))):
        raise ValueError(_NO_QUANT_BN)


def _check_step_args(spec, quant, bn_state, loss, optimizer=None):
    _check_loss(loss)
    if optimizer is not None and not all(hasattr(optimizer, f) for f in OptimizerConfig._fields):
        raise TypeError(f"optimizer: expected an OptimizerConfig, got {type(optimizer).__name__}")
    if optimizer is not None and optimizer.kind not in (OPT_SGD, OPT_ADAM):
        raise ValueError(
            f"optimizer.kind: expected {OPT_SGD} (SGD) or {OPT_ADAM} (Adam), got {optimizer.kind}"
        )
    has_bn = any(_bn(spec, l) for l in range(len(spec.acts)))
    if quant is not None and has_bn:
        raise ValueError(_NO_QUANT_BN)
    if bn_state is None and has_bn:
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")


def train_epoch(
    spec,
    theta,
    X,
    Y,
    *,
    perm,
    batch_size: int,
    loss: int,
    optimizer,
    m,
    v,
    step: int,
    clip_params: bool,
    bn_state=None,
    quant=None,
    rail=None,
):
    """One training epoch in place, float (quant None) or quantization-aware; returns (status,
    loss_sum, n_done, step) as the C kernel.  rail (steps, 6), when given, receives each
    step's rail statistics."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    _check_step_args(spec, quant, bn_state, loss, optimizer)
    N = X.shape[0]
    if perm is not None and N and (perm.min() < 0 or perm.max() >= N):
        raise ValueError(
            f"perm: expected indices in [0, {N}), got values in [{perm.min()}, {perm.max()}]"
        )
    order = np.arange(N) if perm is None else perm
    # Once per epoch: the views of theta and of one gradient vector that every step reuses,
    # and the optimizer's scratch.  theta changes only in place below.
    net = _Net(spec, theta, grad=True)
    work = _OptimWork(theta)
    loss_sum, n_done = 0.0, 0
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by status
        for row, s in enumerate(range(0, N, batch_size)):
            idx = order[s : s + batch_size]
            status, value, grad, rail_g, layers = _step_grad(
                spec, theta, X[idx], Y[idx], loss, quant, step, net
            )
            if status:
                return status, loss_sum, n_done, step
            delta = _optim_delta(optimizer, grad, m, v, step + 1, work)
            status, nxt, rail_w, rail_u = _step_apply(
                spec, theta, delta, clip_params, quant, step, own_delta=True
            )
            if status:
                return status, loss_sum, n_done, step
            theta[...] = nxt
            if bn_state is not None:  # the moving statistics move only with a completed step
                _bn_update(spec, [st.bn for st in layers], bn_state)
            if rail is not None and quant is not None:
                rail[row] = np.concatenate([rail_w, rail_g, rail_u])
            step += 1
            loss_sum += value * len(idx)
            n_done += len(idx)
    return 0, loss_sum, n_done, step


def qat_loss_grad(spec, theta, X, Y, *, loss: int, quant, step: int, rail):
    """The gradient half of a step on the batch X, Y: (status, loss, grad); the gradient
    columns of rail (6,) are filled.  status 1 for a non-finite loss."""
    _refuse_bn(spec)
    _check_step_args(spec, quant, None, loss)
    with np.errstate(over="ignore", invalid="ignore"):
        net = _Net(spec, theta, grad=True)
        status, value, grad, rail_g, _ = _step_grad(spec, theta, X, Y, loss, quant, step, net)
    if not status:
        rail[2:4] = rail_g if quant is not None else np.nan
    return status, value, grad


def qat_apply(spec, theta, delta, *, quant, step: int, clip_params: bool, rail):
    """The update half of a step, in place: theta += q_update(delta), clipped and stored
    through the weight/bias formats; the weight and update columns of rail (6,) are filled.
    Returns the status (2 when a parameter became non-finite; theta is then unchanged)."""
    _refuse_bn(spec)
    with np.errstate(over="ignore", invalid="ignore"):
        status, nxt, rail_w, rail_u = _step_apply(spec, theta, delta, clip_params, quant, step)
    if status:
        return status
    theta[...] = nxt
    rail[0:2] = rail_w if quant is not None else np.nan
    rail[4:6] = rail_u if quant is not None else np.nan
    return 0


def optim_delta(opt, g, m, v, t: int):
    """The increment of step t (from 1) to add to theta; m and v are updated in place.

    opt: an OptimizerConfig (linncore._util.kernel_args).  Adam (Keras 3):
    m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); alpha = lr sqrt(1 - b2^t) / (1 - b1^t);
    increment -m alpha / (sqrt(v) + eps).  SGD: -lr g; with momentum mu: m = mu m - lr g,
    increment m (Nesterov: mu m - lr g).  Moments below the smallest normal number are
    stored as zero (see _flush)."""
    return _optim_delta(opt, g, m, v, t, _OptimWork(g))


class _OptimWork:
    """Scratch of _optim_delta in the shape and dtype of the parameters: the increment it
    returns, two temporaries and a mask (allocated once per epoch in training), and the
    smallest normal number of the dtype."""

    def __init__(self, like: np.ndarray) -> None:
        self.tiny = np.finfo(like.dtype).tiny
        self.delta = np.empty_like(like)
        self.tmp = np.empty_like(like)
        self.tmp2 = np.empty_like(like)
        self.mask = np.empty(like.shape, dtype=bool)


def _optim_delta(opt, g, m, v, t: int, work: _OptimWork):
    """optim_delta with in-place arithmetic on work: the same operations in the same order,
    so the same bits; returns work.delta."""
    kind, lr, b1, b2, eps, mu, nesterov = (
        opt.kind,
        opt.learning_rate,
        opt.beta_1,
        opt.beta_2,
        opt.epsilon,
        opt.momentum,
        opt.nesterov,
    )
    T = g.dtype.type
    lr = T(lr)
    d, tmp = work.delta, work.tmp
    if kind == OPT_ADAM:
        b1, b2, eps, tt = T(b1), T(b2), T(eps), T(t)
        alpha = lr * np.sqrt(T(1) - b2**tt) / (T(1) - b1**tt)
        np.subtract(g, m, out=tmp)  # m := m + (g - m)(1 - b1)
        tmp *= T(1) - b1
        m += tmp
        _flush(m, work)
        np.multiply(g, g, out=tmp)  # v := v + (g g - v)(1 - b2)
        tmp -= v
        tmp *= T(1) - b2
        v += tmp
        _flush(v, work)
        np.multiply(m, alpha, out=d)  # -(m alpha) / (sqrt(v) + eps)
        np.sqrt(v, out=tmp)
        tmp += eps
        d /= tmp
        return np.negative(d, out=d)
    if mu == 0.0:
        np.multiply(g, lr, out=d)  # -(g lr)
        return np.negative(d, out=d)
    np.negative(g, out=tmp)  # m := -g lr + m mu
    tmp *= lr
    np.multiply(m, T(mu), out=d)
    np.add(tmp, d, out=m)
    _flush(m, work)
    if nesterov:  # -g lr + m mu with the new m
        np.multiply(m, T(mu), out=d)
        return np.add(tmp, d, out=d)
    np.copyto(d, m)
    return d


def _flush(x, work: _OptimWork) -> None:
    """Replace in x every value below the smallest normal number by zero: a moment that would
    otherwise decay into the subnormal range and stay there (a dead relu unit's), where each
    later step computes on subnormal numbers.  NaN stays NaN."""
    np.abs(x, out=work.tmp2)
    np.less(work.tmp2, work.tiny, out=work.mask)
    np.copyto(x, x.dtype.type(0), where=work.mask)


def optim_step(opt, theta, g, m, v, t: int) -> None:
    """theta += the increment of step t (the same bits as subtracting its magnitude)."""
    theta += optim_delta(opt, g, m, v, t)


# -- a network description prepared once, and the validation loss -------------------------------

__all__ += ["prepare_net", "net_loss"]


class PreparedNet:
    """A NetSpec checked once, with its layout table: what :func:`prepare_net` returns.

    It reads like a NetSpec (``sizes``, ``acts``, ``has_bias``, ``clip_out``, ``bn``,
    ``bn_momentum``, ``bn_epsilon``), so every kernel takes it in place of one, and adds
    ``layout`` (:func:`net_layout`), ``n_params`` and ``n_state``.  Its arrays are read-only.
    """

    __slots__ = (
        "acts",
        "bn",
        "bn_epsilon",
        "bn_momentum",
        "clip_out",
        "has_bias",
        "layout",
        "n_params",
        "n_state",
        "sizes",
    )

    def __init__(self, spec: Any) -> None:
        sizes = np.array(spec.sizes, dtype=np.int64, ndmin=1)
        acts = np.array(spec.acts, dtype=np.int32, ndmin=1)
        has_bias = np.array(spec.has_bias, dtype=np.int32, ndmin=1)
        if sizes.ndim != 1 or sizes.shape[0] < 2:
            raise ValueError("spec.sizes: expected at least two widths")
        if np.any(sizes < 0):
            raise ValueError(f"spec.sizes: widths must be >= 0, got {sizes.tolist()}")
        if acts.shape[0] != sizes.shape[0] - 1 or has_bias.shape[0] != acts.shape[0]:
            raise ValueError("spec: acts and has_bias need one entry per layer")
        n_act = len(codes.ACTIVATIONS)
        if np.any(acts < 0) or np.any(acts >= n_act):
            raise ValueError(f"spec.acts: codes must lie in [0, {n_act})")
        L = acts.shape[0]
        bn = getattr(spec, "bn", None)
        self.bn = np.array(np.zeros(L) if bn is None else bn, dtype=np.int32, ndmin=1)
        self.bn_momentum = np.array(
            getattr(spec, "bn_momentum", None) if bn is not None else np.zeros(L),
            dtype=np.float64,
            ndmin=1,
        )
        self.bn_epsilon = np.array(
            getattr(spec, "bn_epsilon", None) if bn is not None else np.zeros(L),
            dtype=np.float64,
            ndmin=1,
        )
        if self.bn.shape != (L,) or self.bn_momentum.shape != (L,) or self.bn_epsilon.shape != (L,):
            raise ValueError("spec: bn, bn_momentum and bn_epsilon need one entry per layer")
        self.sizes, self.acts, self.has_bias = sizes, acts, has_bias
        self.clip_out = bool(spec.clip_out)
        self.layout = net_layout(self)
        n_out = sizes[1:]
        self.n_params = int(
            np.sum(sizes[:-1] * n_out + has_bias * n_out + 2 * (self.bn != 0) * n_out)
        )
        self.n_state = int(np.sum(2 * (self.bn != 0) * n_out))
        for arr in (sizes, acts, has_bias, self.bn, self.bn_momentum, self.bn_epsilon, self.layout):
            arr.flags.writeable = False


def prepare_net(spec):
    """A NetSpec checked once and turned into the description every kernel reads, with its
    layout table (``.layout``), ``.n_params`` and ``.n_state``: a :class:`PreparedNet`."""
    return spec if isinstance(spec, PreparedNet) else PreparedNet(spec)


def net_loss(spec, theta, X, Y, *, loss: int, bn_state=None) -> float:
    """The loss of net(X) against Y over all samples in inference mode (batch normalisation
    with the moving statistics bn_state), without a gradient: :func:`net_forward` followed by
    :func:`loss_grad`'s value."""
    _check_loss(loss)
    out = net_forward(spec, theta, X, bn_state)
    if Y.shape != out.shape:
        raise ValueError(f"Y: expected shape {out.shape}, got {Y.shape}")
    return loss_grad(loss, out, Y)[0]
