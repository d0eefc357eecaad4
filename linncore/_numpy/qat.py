"""NumPy twin of csrc/lc_qat.c: quantization-aware training epochs.

Per layer and field (input, weight, bias, accumulator, activation, gradient, update) a format
or none.  Forward: z = q_acc(q_in(x) q_w(W)) + q_b(b); a = q_act(clip(act(z))).  Backward:
the straight-through estimator (the gradient passes where the value lay inside [lo, hi] of
its format, else 0), then the gradient quantized.  Update: delta = q_upd(optimizer
increment), theta += delta, clip, kernels and biases stored through q_w and q_b.
"""
from __future__ import annotations

import math

import numpy as np

from .._util.codes import STATUS_NONFINITE_LOSS, STATUS_NONFINITE_PARAMS
from .dense import _layers, act_deriv, act_forward, loss_grad, optim_delta
from .fixed import fix_quantize

__all__ = ["qat_seed", "qat_loss_grad", "qat_apply", "train_epoch_qat"]

INPUT, WEIGHT, BIAS, ACC, ACT, GRAD, UPDATE = range(7)
_M64 = (1 << 64) - 1

def qat_seed(seed: int, step: int, n_layers: int, layer: int, field: int, part: int) -> int:
    """seed + golden * (slot + 1) mod 2^64, slot = ((step L + layer) 7 + field) 2 + part."""
    slot = (((step * n_layers + layer) * 7 + field) * 2 + part) & _M64
    return (seed + 0x9E3779B97F4A7C15 * (slot + 1)) & _M64

def _q(x, fmt, seed, near_rail, want_mask):
    """(q(x) in x's dtype, STE mask or None, (saturated, near_rail, underflow) counts)."""
    f = tuple(int(v) for v in fmt)
    _, vals, counts = fix_quantize(np.ascontiguousarray(x), f, seed=seed, codes=False, values=True, near_rail=near_rail)
    mask = None
    if want_mask:
        bits, int_bits, signed, _, overflow = f
        lsb = math.ldexp(1.0, int_bits - bits)
        cmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        cmin = (-cmax if overflow == 1 else -(1 << (bits - 1))) if signed else 0
        xd = x.astype(np.float64)
        mask = (xd >= cmin * lsb) & (xd <= cmax * lsb)
    return vals.astype(x.dtype), mask, counts

def _grad(spec, theta, xb, yb, loss, step, fmts, on, seed, near_rail, rail):
    """Forward, straight-through backward and gradient quantization: (status, loss, grad);
    rail[2:4] receives the gradient statistics."""
    L = len(spec.acts)
    clip = bool(spec.clip_out)
    params = _layers(spec, theta)
    rail_g = np.zeros(2)
    any_g = False

    def qs(l, field, part):
        return qat_seed(seed, step, L, l, field, part)

    cache, a = [], xb
    for l, (W, b) in enumerate(params):
        F, o = fmts[l], on[l]
        m_in = m_w = m_b = m_acc = m_act = None
        if o[INPUT]:
            a, m_in, _ = _q(a, F[INPUT], qs(l, INPUT, 0), near_rail, True)
        Wu = W
        if o[WEIGHT]:
            Wu, m_w, _ = _q(W, F[WEIGHT], qs(l, WEIGHT, 0), near_rail, True)
        bu = b
        if b is not None and o[BIAS]:
            bu, m_b, _ = _q(b, F[BIAS], qs(l, BIAS, 0), near_rail, True)
        z = a @ Wu
        if o[ACC]:
            z, m_acc, _ = _q(z, F[ACC], qs(l, ACC, 0), near_rail, True)
        if bu is not None:
            z = z + bu
        code = int(spec.acts[l])
        h = act_forward(code, z)
        out = np.clip(h, -1, 1) if clip else h.copy()
        if o[ACT]:
            out, m_act, _ = _q(out, F[ACT], qs(l, ACT, 0), near_rail, True)
        cache.append((a, Wu, z, h, m_in, m_w, m_b, m_acc, m_act, code))
        a = out
    value, da = loss_grad(loss, a, yb)
    if not math.isfinite(value):
        return STATUS_NONFINITE_LOSS, value, None
    grad = np.empty_like(theta)
    gl = _layers(spec, grad)
    zero = theta.dtype.type(0)
    for l in range(L - 1, -1, -1):
        a_in, Wu, z, h, m_in, m_w, m_b, m_acc, m_act, code = cache[l]
        if m_act is not None:
            da = np.where(m_act, da, zero)
        dz = da * act_deriv(code, z, h)
        if clip:
            dz = np.where((h >= -1) & (h <= 1), dz, zero)
        dacc = np.where(m_acc, dz, zero) if m_acc is not None else dz
        gW = a_in.T @ dacc
        gl[l][0][...] = np.where(m_w, gW, zero) if m_w is not None else gW
        if gl[l][1] is not None:
            gb = dz.sum(axis=0)
            gl[l][1][...] = np.where(m_b, gb, zero) if m_b is not None else gb
        if l > 0:
            da = dacc @ Wu.T
            if m_in is not None:
                da = np.where(m_in, da, zero)
    for l in range(L):
        if not on[l][GRAD]:
            continue
        for part, arr in enumerate(gl[l]):
            if arr is None:
                continue
            q, _, (sat, near, _u) = _q(arr, fmts[l][GRAD], qs(l, GRAD, part), near_rail, False)
            arr[...] = q
            any_g = True
            rail_g[0], rail_g[1] = max(rail_g[0], sat / arr.size), max(rail_g[1], near / arr.size)
    rail[2:4] = rail_g if any_g else np.nan
    return 0, value, grad

def _apply(spec, theta, delta, step, clip_params, fmts, on, seed, near_rail, rail):
    """theta += q_update(delta); clip; storage quantization: the status; rail[0:2] and
    rail[4:6] receive the weight and update statistics."""
    L = len(spec.acts)
    delta = delta.copy()

    def qs(l, field, part):
        return qat_seed(seed, step, L, l, field, part)

    r = np.zeros(6)
    any_w = any_u = False
    dl = _layers(spec, delta)
    for l in range(L):
        if not on[l][UPDATE]:
            continue
        for part, arr in enumerate(dl[l]):
            if arr is None:
                continue
            q, _, (sat, _n, under) = _q(arr, fmts[l][UPDATE], qs(l, UPDATE, part), near_rail, False)
            arr[...] = q
            any_u = True
            r[4], r[5] = max(r[4], sat / arr.size), max(r[5], under / arr.size)
    backup = theta.copy()
    theta += delta
    if clip_params:
        np.clip(theta, -1, 1, out=theta)
    if not np.all(np.isfinite(theta)):
        theta[...] = backup
        return STATUS_NONFINITE_PARAMS
    for l, (W, b) in enumerate(_layers(spec, theta)):
        for part, (field, arr) in enumerate(((WEIGHT, W), (BIAS, b))):
            if arr is None or not on[l][field]:
                continue
            q, _, (sat, near, _u) = _q(arr, fmts[l][field], qs(l, field, 1), near_rail, False)
            arr[...] = q
            any_w = True
            r[0], r[1] = max(r[0], sat / arr.size), max(r[1], near / arr.size)
    rail[0:2] = r[0:2] if any_w else np.nan
    rail[4:6] = r[4:6] if any_u else np.nan
    return 0

def _step(spec, theta, xb, yb, loss, opt, m, v, step, clip_params, fmts, on, seed, near_rail):
    """One QAT step: the two halves around the optimizer's increment."""
    rail = np.full(6, np.nan)
    status, value, grad = _grad(spec, theta, xb, yb, loss, step, fmts, on, seed, near_rail, rail)
    if status:
        return status, value, None
    status = _apply(spec, theta, optim_delta(opt, grad, m, v, step + 1), step, clip_params, fmts, on, seed,
                    near_rail, rail)
    return (status, value, None) if status else (0, value, rail)

def qat_loss_grad(spec, theta, X, Y, loss, fmts, on, seed, near_rail, step, rail):
    """The first half of a QAT step (see the compiled twin): (status, loss, grad)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _grad(spec, theta, X, Y, loss, step, fmts, on, int(seed), near_rail, rail)

def qat_apply(spec, theta, delta, fmts, on, seed, near_rail, step, clip_params, rail):
    """The second half of a QAT step, in place; returns the status."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _apply(spec, theta, delta, step, clip_params, fmts, on, int(seed), near_rail, rail)

def train_epoch_qat(spec, theta, X, Y, perm, batch_size, loss, opt, m, v, step, clip_params, fmts, on,
                    seed, near_rail, rail):
    """One QAT epoch in place; returns (status, loss_sum, n_done, step) as the C kernel."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    N = X.shape[0]
    order = np.arange(N) if perm is None else perm
    loss_sum, n_done = 0.0, 0
    for row, s in enumerate(range(0, N, batch_size)):
        idx = order[s:s + batch_size]
        with np.errstate(over="ignore", invalid="ignore"):
            status, value, r = _step(spec, theta, X[idx], Y[idx], loss, opt, m, v, step, clip_params,
                                     fmts, on, int(seed), near_rail)
        if status:
            return status, loss_sum, n_done, step
        if rail is not None:
            rail[row] = r
        step += 1
        loss_sum += value * len(idx)
        n_done += len(idx)
    return 0, loss_sum, n_done, step
