"""Exact loss Hessians of dense networks, their spectra, and stability metrics.

Everything here follows the definitions of :doc:`/ablation_metrics`: parameters in ``theta``'s order
(per layer the kernel ``(n_in, n_out)`` row-major, then the bias), losses ``half_mse``
(``0.5 / B * sum ||r||^2``) and ``mse`` (``sum r^2 / (B m)``, Keras's), the whole ``(X, Y)``
taken as one batch.

Hessian-vector products are exact: the R-operator (Pearlmutter 1994) runs a forward pass of
the directional derivative and a backward pass, in the engine in use
(:func:`linncore._backend.kernels`: the compiled core or its NumPy twin).  Networks are float32
by default; **every function here computes in float64** on float64 copies of ``theta``, ``X`` and
``Y``, and returns float64.  Output clipping to ``[-1, 1]`` is differentiated as the engine's
backward pass does: derivative 1 on ``[-1, 1]`` (bounds included), 0 outside, second
derivative 0; relu and leaky_relu have second derivative 0 (their kinks have measure zero).

The full Hessian is assembled block by block from per-sample second derivatives rather than
from ``P`` products, and ``lambda_max`` / ``lambda_min`` run their whole Lanczos iteration in
one kernel call.  One :func:`hvp` call is one fused kernel pass: each chunk of samples gets its
forward and backward pass just before its products, so no state of the whole batch is stored;
:class:`HessianOperator` keeps that state for many products at one point (the same bits).  In
the compiled core, float64 tanh is the kernel's own vector routine (within two ulps).

The compiled kernels split the samples into parts fixed by the problem's size and run them on
:func:`linncore.get_num_threads` threads; the parts' sums are added in a fixed order, so every
result is the same bits for any thread count.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np

from .. import _backend
from .._util.codes import LOSSES as _LOSS_CODES
from .._util.validate import (
    as_float_array,
    as_samples,
    check_finite,
    choice,
    finite_float,
    positive_int,
)
from ..engine import losses as _losses
from ..engine.network import Network

__all__ = [
    "HessianOperator",
    "single_dense_hessian",
    "single_dense_eigenvalues",
    "hvp",
    "full_hessian",
    "layer_blocks",
    "lambda_max",
    "lambda_min",
    "hessian_extremes",
    "top_eigenvalues",
    "hutchinson_trace",
    "stability_metrics",
    "forward_gain_spectral",
]

_METHODS = ["auto", "closed_form", "dense", "lanczos"]
#: Largest parameter count for which ``method="auto"`` forms the dense Hessian.
DENSE_MAX_PARAMS = 300
#: From this ``tol`` up, ``method="auto"`` finds one extreme eigenvalue by Lanczos at every
#: size (the dense Hessian only if Lanczos does not converge): on the 4-16-2 tanh network
#: (114 parameters, 1000 samples) Lanczos reaches ``tol=1e-6`` in a third of the time that
#: forming the Hessian and its ``eigvalsh`` take.
LANCZOS_AUTO_TOL = 1e-8


# -- input checks ------------------------------------------------------------------------------
def _loss_name(loss: Any) -> str:
    name = _losses.get(loss, "loss")
    if name not in ("half_mse", "mse"):
        raise ValueError(
            f"loss: the Hessian is defined here for 'half_mse' and 'mse', got {loss!r}"
        )
    return name


def _check_net(net: Any) -> Network:
    if not isinstance(net, Network):
        raise TypeError(f"net: expected a linncore.Network, got {type(net).__name__}")
    net._refuse_batchnorm("the exact Hessian")
    return net


def _samples(value: Any, width: int, name: str) -> np.ndarray:
    """``as_samples(value, width, name)`` in float64, with the same errors.  A float64,
    C-contiguous ``(n, width)`` ndarray (n >= 1) whose sum of squares is finite is returned as
    it is, which is what ``as_samples`` returns for it: the sum is finite only when every term
    is, so one dot product checks it (half the time of ``sum``, which NumPy reduces pairwise;
    a sum that overflows takes the full check)."""
    if (
        type(value) is np.ndarray
        and value.dtype == np.float64
        and value.ndim == 2
        and value.shape[1] == width
        and value.shape[0] > 0
        and value.flags.c_contiguous
        and math.isfinite((flat := value.ravel()).dot(flat))
    ):
        return value
    return as_samples(value, width, name, dtype=np.float64)


def _data(net: Network, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = _samples(X, net.input_size, "X")
    y = _samples(Y, net.output_size, "Y")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"Y: expected {x.shape[0]} samples (as many as X), got {y.shape[0]}")
    return x, y


def _directions(v: Any, P: int) -> np.ndarray:
    """``v`` as a float64 array of shape ``(P,)`` or ``(P, k)``, finite (checked as in
    ``_samples``)."""
    if (
        type(v) is np.ndarray
        and v.dtype == np.float64
        and v.ndim in (1, 2)
        and v.shape[0] == P
        and v.flags.c_contiguous
        and math.isfinite((flat := v.ravel()).dot(flat))
    ):
        return v
    arr = as_float_array(v, "v")
    if arr.ndim not in (1, 2) or arr.shape[0] != P:
        raise ValueError(f"v: expected shape ({P},) or ({P}, k), got {arr.shape}")
    check_finite(arr, "v")
    return arr


#: The kernels' description of recently used networks, by the identity of their NetSpec (a
#: network's spec is made once, with the network, and never changes): building it checks
#: and converts the spec, which costs as much as the whole Python side of a product.
_KERNEL_NETS: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
_KERNEL_NETS_MAX = 16
_KERNEL_NETS_LOCK = threading.Lock()


def _kernel_net(kernels: Any, spec: Any) -> Any:
    """``kernels.prepare_net(spec)``, made once per spec and engine."""
    key = (id(kernels), id(spec))
    hit = _KERNEL_NETS.get(key)
    if hit is not None and hit[0] is spec and hit[1] is kernels:
        return hit[2]
    hnet = kernels.prepare_net(spec)
    with _KERNEL_NETS_LOCK:
        if len(_KERNEL_NETS) >= _KERNEL_NETS_MAX:
            _KERNEL_NETS.pop(next(iter(_KERNEL_NETS)))
        _KERNEL_NETS[key] = (spec, kernels, hnet)  # keeps spec alive: its id is not reused
    return hnet


class _Curvature:
    """One forward/backward pass of ``net`` on ``(X, Y)`` kept for many Hessian products."""

    def __init__(self, net: Network, X: Any, Y: Any, loss: Any) -> None:
        self.net = _check_net(net)
        self.loss = _loss_name(loss)
        self.code = _losses.code(self.loss)
        self.x, self.y = _data(net, X, Y)
        self.N = self.x.shape[0]
        self.theta = np.array(net.theta, dtype=np.float64)
        self.P = self.theta.shape[0]
        self.kernels = _backend.kernels()
        self.hnet = _kernel_net(self.kernels, net.spec)
        self.state, self.value, self.grad = self.kernels.hvp_prepare(
            self.hnet, self.theta, self.x, self.y, self.code
        )

    def apply(self, V: np.ndarray, gauss_newton: bool = False) -> np.ndarray:
        """H V for V of shape (P, k), float64 and C-contiguous (as every caller makes it)."""
        return self.kernels.hvp_apply(
            self.hnet, self.theta, self.state, self.N, self.code, V, gauss_newton
        )

    def dense(self, gauss_newton: bool = False) -> np.ndarray:
        """The whole (P, P) matrix, assembled from per-sample second derivatives (exactly
        symmetric)."""
        return self.kernels.hvp_dense(
            self.hnet, self.theta, self.state, self.N, self.code, bool(gauss_newton)
        )

    def lanczos(self, which: str, tol: float, seed: int) -> tuple[float, int, bool]:
        """(value, steps, converged) of the kernel's Lanczos run (see _lanczos_extreme)."""
        return self.kernels.hvp_lanczos(
            self.hnet,
            self.theta,
            self.state,
            self.N,
            self.code,
            _start_vector(seed, self.P),
            which,
            tol,
            min(self.P, LANCZOS_MAX_STEPS),
        )

    def operator(self, gauss_newton: bool = False):
        from scipy.sparse.linalg import LinearOperator

        def matmat(V: np.ndarray) -> np.ndarray:
            return self.apply(np.ascontiguousarray(V, dtype=np.float64), gauss_newton)

        return LinearOperator(
            (self.P, self.P),
            dtype=np.float64,
            matvec=lambda v: matmat(np.reshape(v, (self.P, 1)))[:, 0],
            matmat=matmat,
        )


class HessianOperator:
    """The loss Hessian at one point, prepared once for many exact products.

    The forward and backward pass over ``(X, Y)`` runs once, when the operator is made; each
    product then costs one pass of second-order arithmetic, without re-checking the data or
    re-deriving the network's state.  Use it to apply many products at one point (iterative
    solvers, your own eigenvalue or trace estimators); :func:`hvp` makes one for one call.

    Parameters
    ----------
    net : Network
        The network, at the parameters the Hessian is taken at.  The operator keeps a copy of
        them: later changes to ``net`` do not change it.
    X, Y : array_like
        Inputs ``(N, n_in)`` and targets ``(N, n_out)``.
    loss : {"half_mse", "mse"}
    gauss_newton : bool
        Products with the Gauss-Newton matrix ``J^T H_loss J`` instead.

    Attributes
    ----------
    shape : (int, int)
        ``(P, P)``, ``P`` the parameter count.
    loss_value : float
        The loss at the point.
    gradient : numpy.ndarray
        The loss gradient at the point, float64, in ``theta``'s order.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> from linncore.hessian import HessianOperator
    >>> net = Network([Dense((2, 1), weight=[[0.5], [-0.5]], has_bias=False)], clip=False)
    >>> H = HessianOperator(net, [[1.0, 0.0], [0.0, 2.0]], [[0.0], [0.0]])
    >>> (H @ np.array([1.0, 0.0])).tolist(), H.matvec([0.0, 1.0]).tolist()
    ([0.5, 0.0], [0.0, 2.0])
    """

    def __init__(
        self, net: Network, X: Any, Y: Any, loss: str = "half_mse", gauss_newton: bool = False
    ) -> None:
        self._cur = _Curvature(net, X, Y, loss)
        self.gauss_newton = bool(gauss_newton)
        self.shape = (self._cur.P, self._cur.P)
        self.dtype = np.dtype(np.float64)
        self.loss_value = float(self._cur.value)
        self.gradient = np.array(self._cur.grad, dtype=np.float64)
        self.gradient.flags.writeable = False

    def matvec(self, v: Any) -> np.ndarray:
        """``H v`` for ``v`` of shape ``(P,)``, or ``H V`` for ``V`` of shape ``(P, k)``."""
        arr = _directions(v, self.shape[0])
        V = np.ascontiguousarray(arr.reshape(self.shape[0], -1))
        return self._cur.apply(V, self.gauss_newton).reshape(arr.shape)

    def __matmul__(self, v: Any) -> np.ndarray:
        return self.matvec(v)

    def dense(self) -> np.ndarray:
        """The whole ``(P, P)`` matrix (as :func:`full_hessian`)."""
        return self._cur.dense(self.gauss_newton)

    def as_linear_operator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` of the same products."""
        return self._cur.operator(self.gauss_newton)

    def __repr__(self) -> str:
        kind = "Gauss-Newton" if self.gauss_newton else "Hessian"
        return f"HessianOperator({kind}, P={self.shape[0]}, loss={self._cur.loss!r})"


# -- closed form for one dense layer -----------------------------------------------------------
def _design(X: Any, bias: bool) -> np.ndarray:
    x = as_float_array(X, "X")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"X: expected a non-empty 2-D array (samples, inputs), got shape {x.shape}"
        )
    check_finite(x, "X")
    if bias:
        x = np.hstack([x, np.ones((x.shape[0], 1))])
    return x


def _loss_scale(loss: str, m: int) -> float:
    return 1.0 if loss == "half_mse" else 2.0 / m


def single_dense_hessian(
    X: Any, m: int, *, bias: bool = False, loss: str = "half_mse"
) -> np.ndarray:
    """Closed-form loss Hessian of one dense linear layer ``f(x) = x W (+ b)``.

    ``H = kron(G, I_m)`` with ``G = X^T X / N``, in ``theta``'s order: the kernel ``W`` of
    shape ``(n, m)`` row-major (entry ``W[i, j]`` at ``i * m + j``), then the bias.  The bias is
    handled by appending a column of ones to ``X``: its row of ``G`` is the last, so its
    entries land at ``n * m + j``, which is where ``theta`` keeps ``b[j]`` (after the whole
    kernel); no further permutation is needed.  The Hessian does not depend on ``W`` or ``Y``.

    Parameters
    ----------
    X : array_like, shape (N, n)
        The batch inputs.
    m : int
        Number of outputs.
    bias : bool
        Whether the layer has a bias (default False).
    loss : {"half_mse", "mse"}
        ``mse`` scales the ``half_mse`` Hessian by ``2 / m``.

    Returns
    -------
    numpy.ndarray, shape (n m + bias m, n m + bias m)
        float64.

    Examples
    --------
    >>> import numpy as np
    >>> single_dense_hessian(np.array([[1.0, 2.0], [3.0, 0.0]]), 2).tolist()[0]
    [5.0, 0.0, 1.0, 0.0]
    """
    m = positive_int(m, "m")
    scale = _loss_scale(_loss_name(loss), m)
    x = _design(X, bool(bias))
    G = (x.T @ x) / x.shape[0]
    return np.kron(scale * G, np.eye(m))


def single_dense_eigenvalues(
    X: Any, m: int, bias: bool = False, *, loss: str = "half_mse"
) -> np.ndarray:
    """Eigenvalues of :func:`single_dense_hessian` without forming the Kronecker product.

    They are the eigenvalues of ``X^T X / N`` (``X`` with a ones column when ``bias``), each
    repeated ``m`` times, scaled by ``2 / m`` for ``mse``.

    Returns
    -------
    numpy.ndarray
        Ascending, float64, of length ``(n + bias) * m``.

    Examples
    --------
    >>> import numpy as np
    >>> single_dense_eigenvalues(np.array([[2.0, 0.0], [0.0, 1.0]]), 2).tolist()
    [0.5, 0.5, 2.0, 2.0]
    """
    m = positive_int(m, "m")
    scale = _loss_scale(_loss_name(loss), m)
    x = _design(X, bool(bias))
    ev = np.linalg.eigvalsh((x.T @ x) / x.shape[0]) * scale
    return np.repeat(ev, m)


def _closed_form_applies(net: Network, x: np.ndarray) -> bool:
    """One dense linear layer whose output clipping is off or inactive on every sample."""
    if len(net.layers) != 1 or net.layers[0].activation != "linear":
        return False
    if not net.clip:
        return True
    out = _backend.kernels().net_forward(
        _unclipped_spec(net), np.array(net.theta, dtype=np.float64), x
    )
    return bool(np.all(np.abs(out) <= 1.0))


def _unclipped_spec(net: Network):
    from ..engine.network import NetSpec

    s = net.spec
    return NetSpec(sizes=s.sizes, acts=s.acts, has_bias=s.has_bias, clip_out=False)


# -- Hessian products and matrices -------------------------------------------------------------
def hvp(
    net: Network, X: Any, Y: Any, v: Any, loss: str = "half_mse", gauss_newton: bool = False
) -> np.ndarray:
    """Exact Hessian-vector product ``H v`` of the loss over ``(X, Y)`` at ``net``'s parameters.

    Parameters
    ----------
    net : Network
    X, Y : array_like
        Inputs ``(N, n_in)`` and targets ``(N, n_out)``, one batch.
    v : array_like, shape (P,) or (P, k)
        Direction(s) in ``theta``'s order; ``k`` columns are multiplied in one pass.
    loss : {"half_mse", "mse"}
    gauss_newton : bool
        Return the Gauss-Newton product ``J^T H_loss J v`` instead (positive semi-definite).

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``v``.  Computed in float64 whatever ``net.dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), weight=[[0.5], [-0.5]], has_bias=False)], clip=False)
    >>> hvp(net, [[1.0, 0.0], [0.0, 2.0]], [[0.0], [0.0]], [1.0, 0.0]).tolist()
    [0.5, 0.0]
    """
    _check_net(net)
    code = _LOSS_CODES[_loss_name(loss)]  # _losses.code would check the name again
    x, y = _data(net, X, Y)
    arr = _directions(v, net.n_params)
    # one fused kernel call: each chunk of samples is prepared just before its products, so no
    # state of the whole batch is stored; the same bits as HessianOperator's products
    K = _backend.kernels()
    theta = np.array(net.theta, dtype=np.float64)
    V = np.ascontiguousarray(arr.reshape(arr.shape[0], -1))
    out = K.net_hvp(_kernel_net(K, net.spec), theta, x, y, code, V, bool(gauss_newton), False)[2]
    return out.reshape(arr.shape)


def full_hessian(
    net: Network,
    X: Any,
    Y: Any,
    loss: str = "half_mse",
    gauss_newton: bool = False,
    blocks: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """The exact ``(P, P)`` loss Hessian in ``theta``'s order.

    It is assembled block by block (layer ``l`` against layer ``k``) from per-sample second
    derivatives: the Hessian ``G_l`` of the loss in each layer's pre-activations and the
    Jacobians ``dz_l / dz_k`` between layers, each block one product over the samples (see
    ``csrc/lc_hessian.h``).  That costs about ``N P^2`` multiply-adds, where ``P``
    Hessian-vector products would cost about ten times as many.  The lower blocks are
    computed and mirrored, so ``H`` is exactly symmetric.

    Parameters
    ----------
    net, X, Y, loss, gauss_newton
        As in :func:`hvp`.
    blocks : bool
        Return :func:`layer_blocks` of the Hessian instead of the matrix.

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        float64, computed in float64 whatever ``net.dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((1, 2), "tanh", seed=0), Dense((2, 1), seed=1)], clip=False)
    >>> H = full_hessian(net, [[0.5], [-0.5]], [[1.0], [0.0]])
    >>> H.shape, bool(np.array_equal(H, H.T))
    ((7, 7), True)
    """
    H = _Curvature(net, X, Y, loss).dense(gauss_newton)
    return layer_blocks(net, H) if blocks else H


def layer_blocks(net: Network, H: Any) -> list[np.ndarray]:
    """The diagonal blocks of a ``(P, P)`` Hessian, one per layer (its kernel then its bias).

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((1, 2)), Dense((2, 1))])
    >>> [b.shape for b in layer_blocks(net, np.eye(net.n_params))]
    [(4, 4), (3, 3)]
    """
    _check_net(net)
    Hm = as_float_array(H, "H")
    P = net.n_params
    if Hm.shape != (P, P):
        raise ValueError(f"H: expected shape ({P}, {P}), got {Hm.shape}")
    # the kernels' layout table: per layer the offsets of its kernel and its bias (-1: none)
    out = []
    for (w, b, _, _), layer in zip(_backend.kernels().net_layout(net.spec), net.layers):
        end = b + layer.size_out if b >= 0 else w + layer.size_in * layer.size_out
        out.append(Hm[w:end, w:end].copy())
    return out


# -- spectra -----------------------------------------------------------------------------------
def _spectrum(
    net: Network, X: Any, Y: Any, loss: Any, k: int, which: str, method: str, tol: float, seed: int
) -> np.ndarray:
    """k extreme eigenvalues, descending for "LA", ascending for "SA"."""
    _check_net(net)
    name = _loss_name(loss)
    method = choice(method, _METHODS, "method")
    tol = finite_float(tol, "tol", lo=0.0)
    x, y = _data(net, X, Y)
    P = net.n_params
    if k > P:
        raise ValueError(f"k: expected at most {P} (the parameter count), got {k}")
    closed = _closed_form_applies(net, x)
    if method == "closed_form" and not closed:
        raise ValueError(
            "method: 'closed_form' needs one dense linear layer whose output clipping is off "
            "or inactive on the data"
        )
    if method == "closed_form" or (method == "auto" and closed):
        ev = single_dense_eigenvalues(x, net.output_size, net.layers[0].has_bias, loss=name)
    else:
        cur = _Curvature(net, x, y, name)
        lanczos_first = method == "auto" and k == 1 and tol >= LANCZOS_AUTO_TOL
        if lanczos_first and (lam := _lanczos_extreme(cur, which, tol, seed)) is not None:
            ev = np.array([lam])
        elif method == "dense" or (method == "auto" and (P <= DENSE_MAX_PARAMS or k >= P - 1)):
            ev = np.linalg.eigvalsh(cur.dense())
        elif (
            k == 1
            and not lanczos_first
            and (lam := _lanczos_extreme(cur, which, tol, seed)) is not None
        ):
            ev = np.array([lam])
        else:
            if k >= P - 1:
                raise ValueError(
                    f"k: Lanczos finds at most {P - 2} eigenvalues of a {P}-parameter Hessian; "
                    f"use method='dense'"
                )
            ev = _arpack_end(cur, which, tol, seed, k=k)
    ev = np.sort(np.asarray(ev, dtype=np.float64))
    return ev[::-1][:k].copy() if which == "LA" else ev[:k].copy()


#: Most Lanczos steps :func:`_lanczos_extreme` takes before handing over to ARPACK.
LANCZOS_MAX_STEPS = 200


def _lanczos_extreme(cur: _Curvature, which: str, tol: float, seed: int) -> float | None:
    """The largest ("LA") or smallest ("SA") eigenvalue by Lanczos with full reorthogonalization.

    One Hessian product per step, from the start vector ``default_rng(seed)``, the whole run in
    one kernel call.  Stops when the Ritz value ``theta`` (its residual ``r = beta_j |s_j|``,
    ``gap`` the distance to the next Ritz value) satisfies both ``r^2 / gap <= tol |theta|``
    (the eigenvalue error estimate of Kato-Temple / Saad) and ``r <= sqrt(tol) |theta|`` (which
    bounds the error by Weyl's bound even if ``gap`` is overestimated), or when the Krylov space
    is invariant (``r = 0``).  That needs fewer products than ARPACK's test
    ``r <= tol |theta|``, which asks the eigenvalue for ``tol^2``.  Returns None if it has not
    converged after ``LANCZOS_MAX_STEPS`` steps (the caller then uses ARPACK).
    """
    value, _, converged = cur.lanczos(which, tol, seed)
    return value if converged else None


def _arpack_end(cur: _Curvature, which: str, tol: float, seed: int, *, k: int = 1) -> np.ndarray:
    """The ``k`` eigenvalues at one end ("LA" largest, "SA" smallest) by ARPACK's ``eigsh``
    on the prepared products, relative tolerance ``tol``, from ``default_rng(seed)`` normals
    (unsorted).  The fallback of every Lanczos path here (``k <= P - 2``)."""
    from scipy.sparse.linalg import eigsh

    v0 = np.random.default_rng(seed).standard_normal(cur.P)
    # a short Lanczos basis (ARPACK's default is 20): on the spectra of small networks it
    # converges in about half the products, to the same tolerance
    ncv = min(cur.P - 1, max(2 * k + 2, 10))
    ev = eigsh(cur.operator(), k=k, which=which, tol=tol, ncv=ncv, v0=v0, return_eigenvectors=False)
    return np.asarray(ev, dtype=np.float64)


def hessian_extremes(
    net: Network, X: Any, Y: Any, loss: str = "half_mse", seed: int = 0, tol: float = 1e-10
) -> tuple[float, float]:
    """``(lambda_min, lambda_max)`` of the loss Hessian, from one pass over the data.

    The values :func:`lambda_min` and :func:`lambda_max` return with ``method="auto"`` (the
    same bits), computed together: the closed form's small ``eigvalsh`` once, one dense
    ``eigvalsh`` up to ``DENSE_MAX_PARAMS`` parameters (below ``tol=LANCZOS_AUTO_TOL``), or one
    prepared pass for the two Lanczos runs (the dense ``eigvalsh``, or ARPACK's ``eigsh``
    above ``DENSE_MAX_PARAMS``, for an end that does not converge).  The instrumented training
    loop calls it at every step it measures.

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), has_bias=False)], clip=False)
    >>> hessian_extremes(net, [[2.0, 0.0], [0.0, 1.0]], [[0.0], [0.0]])
    (0.5, 2.0)
    """
    _check_net(net)
    tol = finite_float(tol, "tol", lo=0.0)
    name = _loss_name(loss)
    x, y = _data(net, X, Y)
    if _closed_form_applies(net, x):
        ev = single_dense_eigenvalues(x, net.output_size, net.layers[0].has_bias, loss=name)
        return float(ev[0]), float(ev[-1])
    cur = _Curvature(net, x, y, name)
    dense = None
    if cur.P <= DENSE_MAX_PARAMS and tol < LANCZOS_AUTO_TOL:
        dense = np.linalg.eigvalsh(cur.dense())
        return float(dense[0]), float(dense[-1])
    ends = []
    for which in ("SA", "LA"):  # each end as lambda_min / lambda_max would find it
        value = _lanczos_extreme(cur, which, tol, seed)
        if value is None and cur.P <= DENSE_MAX_PARAMS:
            dense = np.linalg.eigvalsh(cur.dense()) if dense is None else dense
            value = float(dense[0] if which == "SA" else dense[-1])
        elif value is None:
            value = float(_arpack_end(cur, which, tol, seed)[0])
        ends.append(value)
    return ends[0], ends[1]


@functools.lru_cache(maxsize=8)
def _unit_start(seed: int, P: int) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal(P)
    q /= np.linalg.norm(q)
    q.flags.writeable = False
    return q


def _start_vector(seed: int, P: int) -> np.ndarray:
    """The unit start vector of a Lanczos run: ``default_rng(seed)`` normals, normalised
    (cached: making a generator costs more than a small network's product)."""
    return _unit_start(int(seed), int(P))


def top_eigenvalues(
    net: Network,
    X: Any,
    Y: Any,
    k: int = 6,
    loss: str = "half_mse",
    method: str = "auto",
    tol: float = 1e-10,
    seed: int = 0,
) -> np.ndarray:
    """The ``k`` largest eigenvalues of the loss Hessian, in descending order (float64).

    ``method``: ``"closed_form"`` (one dense linear layer, clipping off or inactive on the
    data), ``"dense"`` (``numpy.linalg.eigvalsh`` of :func:`full_hessian`), ``"lanczos"``
    (``scipy.sparse.linalg.eigsh`` on Hessian-vector products, relative tolerance ``tol``,
    start vector from ``seed``), or ``"auto"``: the closed form when it applies, dense up to
    ``DENSE_MAX_PARAMS`` parameters, Lanczos above.  For one eigenvalue (:func:`lambda_max`,
    :func:`lambda_min`) with ``tol >= LANCZOS_AUTO_TOL`` (1e-8), ``"auto"`` runs Lanczos first
    at any size: it then returns an estimate within ``tol`` (relative), where the dense
    method's is exact to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), has_bias=False)], clip=False)
    >>> top_eigenvalues(net, [[2.0, 0.0], [0.0, 1.0]], [[0.0], [0.0]], k=2).tolist()
    [2.0, 0.5]
    """
    k = positive_int(k, "k")
    return _spectrum(net, X, Y, loss, k, "LA", method, tol, seed)


def lambda_max(
    net: Network,
    X: Any,
    Y: Any,
    loss: str = "half_mse",
    method: str = "auto",
    tol: float = 1e-10,
    seed: int = 0,
) -> float:
    """The largest eigenvalue of the loss Hessian (see :func:`top_eigenvalues` for ``method``).

    With the Lanczos method, ``tol`` bounds the estimated relative error of the eigenvalue
    (not of its vector, as ARPACK's ``tol`` does): see ``_lanczos_extreme``.  On the
    Simple_sine network ``tol=1e-10`` takes 8 products and ``1e-6`` takes 7.  With
    ``method="auto"``, ``tol >= 1e-8`` chooses Lanczos at every size (see
    :func:`top_eigenvalues`); the default ``1e-10`` keeps the dense method up to
    ``DENSE_MAX_PARAMS`` parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), has_bias=False)], clip=False)
    >>> lambda_max(net, [[2.0, 0.0], [0.0, 1.0]], [[0.0], [0.0]])
    2.0
    """
    return float(_spectrum(net, X, Y, loss, 1, "LA", method, tol, seed)[0])


def lambda_min(
    net: Network,
    X: Any,
    Y: Any,
    loss: str = "half_mse",
    method: str = "auto",
    tol: float = 1e-10,
    seed: int = 0,
) -> float:
    """The smallest (most negative) eigenvalue of the loss Hessian.

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), has_bias=False)], clip=False)
    >>> lambda_min(net, [[2.0, 0.0], [0.0, 1.0]], [[0.0], [0.0]])
    0.5
    """
    return float(_spectrum(net, X, Y, loss, 1, "SA", method, tol, seed)[0])


def hutchinson_trace(
    net: Network,
    X: Any,
    Y: Any,
    n_samples: int = 64,
    loss: str = "half_mse",
    seed: int = 0,
    gauss_newton: bool = False,
) -> float:
    """Hutchinson's estimate ``mean_i z_i^T H z_i`` of ``trace(H)``, ``z_i`` Rademacher.

    The probes come from ``numpy.random.default_rng(seed)``, so the same seed gives the same
    estimate; the products run in blocks of columns.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), has_bias=False)], clip=False)
    >>> hutchinson_trace(net, [[2.0, 0.0], [0.0, 1.0]], [[0.0], [0.0]], n_samples=8)
    2.5
    """
    n_samples = positive_int(n_samples, "n_samples")
    cur = _Curvature(net, X, Y, loss)
    rng = np.random.default_rng(seed)
    total, block = 0.0, 64
    for start in range(0, n_samples, block):
        kk = min(block, n_samples - start)
        Z = rng.integers(0, 2, size=(cur.P, kk)).astype(np.float64) * 2.0 - 1.0
        total += float(np.sum(Z * cur.apply(Z, gauss_newton)))
    return total / n_samples


# -- stability ---------------------------------------------------------------------------------
def stability_metrics(
    eta: float,
    eigenvalues: Any = None,
    *,
    lambda_max: float | None = None,
    lambda_min: float | None = None,
    alpha: float = 1.0,
) -> dict[str, float]:
    """Stability of gradient descent with step ``eta`` on a quadratic with this curvature.

    ``stability_margin_lambda_raw = eta * lambda_max`` and ``..._ctrl = alpha * eta *
    lambda_max`` (stable below 2); ``spectral_radius_raw = max_i |1 - eta * lambda_i|`` and
    ``..._ctrl`` the same with ``eta_eff = alpha * eta`` (contracting below 1).

    Parameters
    ----------
    eta : float
        Base learning rate, finite and non-negative.
    eigenvalues : array_like, optional
        The Hessian's eigenvalues (all, or at least its extreme ones); gives ``lambda_max``
        and ``lambda_min`` when they are not passed.
    lambda_max, lambda_min : float, optional
        Extreme eigenvalues.  Without ``lambda_min`` (and ``eigenvalues``) the spectral radii
        are NaN: ``|1 - eta * lambda_min|`` may be the larger term.
    alpha : float
        Controller factor, ``eta_eff = alpha * eta`` (default 1).

    Returns
    -------
    dict
        ``eta_eff``, ``lambda_max``, ``lambda_min``, ``stability_margin_lambda_raw``,
        ``stability_margin_lambda_ctrl``, ``spectral_radius_raw``, ``spectral_radius_ctrl``.

    Examples
    --------
    >>> m = stability_metrics(0.5, [1.0, 3.0], alpha=0.5)
    >>> m["stability_margin_lambda_raw"], m["spectral_radius_raw"], m["spectral_radius_ctrl"]
    (1.5, 0.5, 0.75)
    """
    eta = finite_float(eta, "eta", lo=0.0)
    alpha = finite_float(alpha, "alpha", lo=0.0)
    lmax = None if lambda_max is None else finite_float(lambda_max, "lambda_max")
    lmin = None if lambda_min is None else finite_float(lambda_min, "lambda_min")
    if eigenvalues is not None:
        ev = as_float_array(eigenvalues, "eigenvalues").ravel()
        if ev.size == 0:
            raise ValueError("eigenvalues: expected at least one value")
        check_finite(ev, "eigenvalues")
        lmax = float(ev.max()) if lmax is None else lmax
        lmin = float(ev.min()) if lmin is None else lmin
    if lmax is None:
        raise ValueError("lambda_max: pass eigenvalues or lambda_max")
    if lmin is not None and lmin > lmax:
        raise ValueError(f"lambda_min: expected at most lambda_max ({lmax}), got {lmin}")
    eta_eff = alpha * eta

    def radius(step: float) -> float:
        if lmin is None:
            return math.nan
        return max(abs(1.0 - step * lmin), abs(1.0 - step * lmax))

    return {
        "eta_eff": eta_eff,
        "lambda_max": lmax,
        "lambda_min": math.nan if lmin is None else lmin,
        "stability_margin_lambda_raw": eta * lmax,
        "stability_margin_lambda_ctrl": eta_eff * lmax,
        "spectral_radius_raw": radius(eta),
        "spectral_radius_ctrl": radius(eta_eff),
    }


def _spectral_gain(net: Network) -> float:
    """The product of the kernels' largest singular values, unchecked (the instrumented loop
    calls it every step): the SVD directly, what numpy.linalg.norm(W, 2) computes without its
    axis bookkeeping, which costs more than the SVD of a small kernel."""
    gain = 1.0
    for layer in net.layers:
        gain *= float(
            np.max(np.linalg.svd(np.asarray(layer.weight, dtype=np.float64), compute_uv=False))
        )
    return gain


def forward_gain_spectral(net: Network) -> float:
    """The product over layers of the largest singular value of each kernel (in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 2), weight=np.diag([3.0, 1.0])),
    ...                Dense((2, 1), weight=[[0.0], [2.0]])])
    >>> forward_gain_spectral(net)
    6.0
    """
    _check_net(net)
    return _spectral_gain(net)
