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

from .._util.codes import LOSSES
from .activations import lookup
from .dense import _forward_all, _layers, act_deriv, dense_backward, loss_grad

__all__ = [
    "hessian_net",
    "act_deriv2",
    "hvp_state_len",
    "hvp_prepare",
    "hvp_apply",
    "hvp_dense",
    "hvp_lanczos",
    "net_hvp",
]


def act_deriv2(act: int, z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """act''(z) from z and h = act(z) (the activation table's row ``act``)."""
    return lookup(act).deriv2(z, h)


def _check_loss(loss: int) -> None:
    if loss not in (LOSSES["mse"], LOSSES["half_mse"]):
        raise ValueError(f"loss: the Hessian kernels take mse (0) or half_mse (1), got code {loss}")


def hessian_net(spec):
    """The network description the Hessian kernels read, built once for many calls: the twin
    reads the spec itself, so it is ``spec`` (the compiled core checks and converts it)."""
    return spec


def hvp_state_len(spec, N: int) -> int:
    """N (n_0 + 4 (n_1 + ... + n_L))."""
    return int(N) * (int(spec.sizes[0]) + 4 * int(np.sum(spec.sizes[1:])))


def _state_views(spec, state, N):
    """X and per layer (a, d1, d2, dz), each (N, width), as views of the flat state."""
    n0 = int(spec.sizes[0])
    Xs = state[: n0 * N].reshape(N, n0)
    p, out = n0 * N, []
    for n in spec.sizes[1:]:
        n = int(n)
        out.append(
            tuple(state[p + q * n * N : p + (q + 1) * n * N].reshape(N, n) for q in range(4))
        )
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


def hvp_dense(spec, theta, state, N: int, loss: int, gauss_newton: bool = False):
    """The whole (P, P) Hessian (or Gauss-Newton matrix) from a state of hvp_prepare, assembled
    block by block from per-sample second derivatives instead of P products.

    Per sample n and layer l, with the augmented input abar_l = (a_{l-1}, 1) (the 1 only when
    the layer has a bias; its kernel and bias then form one (n_in + 1, n_out) block of theta):
    G_l = d2L/dz_l^2 (n_out, n_out) by  G_{L-1} = diag(2 s d1^2 + d2),
                                        G_l = d1 (W_{l+1} G_{l+1} W_{l+1}^T) d1 + diag(d2);
    J_{l,k} = dz_l/dz_k (k <= l) by  J_{k,k} = I,  J_{l,k} = W_l^T diag(d1_{l-1}) J_{l-1,k}.
    The block of layers l >= k, indices (i, j) of layer l and (p, q) of layer k, is
        H[(i, j), (p, q)] = sum_n abar_k[p] abar_l[i] (G_l J_{l,k})[j, q]
                          + [k < l, i < n_in] sum_n abar_k[p] dz_l[j] d1_{l-1}[i] J_{l-1,k}[i, q],
    the second term being the change of layer l's input with layer k's weights.  gauss_newton
    drops d2 from G and the second term (J^T 2 s J).  Blocks with k > l are the transposes."""
    _check_loss(loss)
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    L = len(spec.acts)
    m = int(spec.sizes[-1])
    dt = theta.dtype
    s2 = dt.type(1.0 / N if loss == LOSSES["half_mse"] else 2.0 / (N * m))
    Xs, views = _state_views(spec, state, N)
    layers = _layers(spec, theta)
    one = np.ones((N, 1), dtype=dt)
    abar = []
    for l in range(L):
        a_in = Xs if l == 0 else views[l - 1][0]
        abar.append(np.hstack([a_in, one]) if spec.has_bias[l] else a_in)
    G: dict[int, np.ndarray] = {}  # filled from the last layer down
    for l in range(L - 1, -1, -1):
        _, D1, D2, _ = views[l]
        d2 = np.zeros_like(D2) if gauss_newton else D2
        if l == L - 1:
            g = np.zeros((N, m, m), dtype=dt)
            idx = np.arange(m)
            g[:, idx, idx] = s2 * D1 * D1 + d2
        else:
            W = layers[l + 1][0]
            g = D1[:, :, None] * np.einsum("jm,nmr,qr->njq", W, G[l + 1], W) * D1[:, None, :]
            idx = np.arange(g.shape[1])
            g[:, idx, idx] += d2
        G[l] = g
    offsets, p = [], 0
    for l in range(L):
        offsets.append(p)
        p += abar[l].shape[1] * int(spec.sizes[l + 1])
    H = np.zeros((p, p), dtype=dt)
    for k in range(L):
        n_out_k = int(spec.sizes[k + 1])
        J = np.broadcast_to(np.eye(n_out_k, dtype=dt), (N, n_out_k, n_out_k))
        for l in range(k, L):
            if l > k:
                S = views[l - 1][1][:, :, None] * J  # d1_{l-1} J_{l-1,k}
                J = np.einsum("ij,niq->njq", layers[l][0], S)
            T = np.einsum("njr,nrq->njq", G[l], J)
            blk = np.einsum("np,ni,njq->ijpq", abar[k], abar[l], T)
            if l > k and not gauss_newton:
                n_in = int(spec.sizes[l])
                blk[:n_in] += np.einsum("np,nj,niq->ijpq", abar[k], views[l][3], S)
            rows, cols = blk.shape[0] * blk.shape[1], blk.shape[2] * blk.shape[3]
            H[offsets[l] : offsets[l] + rows, offsets[k] : offsets[k] + cols] = blk.reshape(
                rows, cols
            )
    lower = np.tril(H, -1)
    return np.tril(H) + lower.T


def hvp_lanczos(
    spec,
    theta,
    state,
    N: int,
    loss: int,
    v0,
    which: str,
    tol: float,
    max_steps: int,
    gauss_newton: bool = False,
):
    """(value, steps, converged): the largest ("LA") or smallest ("SA") eigenvalue by Lanczos
    with full reorthogonalization (twice, classical Gram-Schmidt), one product per step from
    the unit start vector v0.  With theta the extreme Ritz value, r = beta_j |s_j| its
    residual and gap the distance to the next Ritz value, it stops when r <= sqrt(tol) |theta|
    and r^2 / gap <= tol |theta|, or when r = 0; converged is False if that did not happen
    within max_steps products (value is then the last Ritz value)."""
    _check_loss(loss)
    P = theta.shape[0]
    if which not in ("LA", "SA"):
        raise ValueError(f"which: expected 'LA' or 'SA', got {which!r}")
    if not 1 <= max_steps <= P:
        raise ValueError(f"max_steps: expected 1 to {P}, got {max_steps}")
    norm = float(np.linalg.norm(v0))
    if not abs(norm - 1.0) <= 1e-8:
        raise ValueError(
            f"v0: expected a unit vector (Lanczos starts from it), got norm {norm:.6g}"
        )
    Q = np.empty((max_steps + 1, P))
    alpha, beta = np.empty(max_steps), np.empty(max_steps)
    Q[0] = v0
    pick = -1 if which == "LA" else 0
    root_tol = np.sqrt(tol)
    th = 0.0
    for j in range(max_steps):
        w = hvp_apply(spec, theta, state, N, loss, Q[j][:, None], gauss_newton)[:, 0]
        alpha[j] = Q[j] @ w
        B = Q[: j + 1]
        w -= B.T @ (B @ w)
        w -= B.T @ (B @ w)  # twice is enough (Kahan, Parlett)
        b = float(np.sqrt(w @ w))
        beta[j] = b
        T = np.diag(alpha[: j + 1]) + np.diag(beta[:j], 1) + np.diag(beta[:j], -1)
        ritz, S = np.linalg.eigh(T)
        th = float(ritz[pick])
        r = b * abs(float(S[-1, pick]))
        if r == 0.0:
            return th, j + 1, True
        if j > 0:
            gap = abs(th - float(ritz[-2 if which == "LA" else 1]))
            if r <= root_tol * abs(th) and r * r <= tol * abs(th) * gap:
                return th, j + 1, True
        if j + 1 < max_steps:
            Q[j + 1] = w / b
    return th, max_steps, False


def net_hvp(spec, theta, X, Y, loss: int, V, gauss_newton: bool = False, with_grad: bool = True):
    """(loss value, grad, HV (P, k)): hvp_prepare then hvp_apply; grad None unless with_grad."""
    state, value, grad = hvp_prepare(spec, theta, X, Y, loss)
    HV = hvp_apply(spec, theta, state, X.shape[0], loss, V, gauss_newton)
    return value, grad if with_grad else None, HV
