"""Tests of linncore.hessian and of the Hessian kernels (compiled core and NumPy twin).

Oracles: 4th-order central differences of the engine's gradient in float64, the closed form
kron(X^T X / N, I_m), numpy.linalg.eigvalsh, and (optional) torch.func.hessian."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import Dense, Network, _backend
from linncore import hessian as hs
from linncore._numpy import kernels as numpy_kernels
from linncore._numpy.dense import _forward_all
from linncore._util.codes import ACTIVATIONS

ACTS = ["linear", "relu", "tanh", "sigmoid", "softsign", "leaky_relu", "softplus"]
LOSS_CODE = {"mse": 0, "half_mse": 1}
FD_STEP = 1e-5
MARGIN = 1e-3  # distance kept between any pre-activation and a kink, any output and a clip bound


def _core():
    try:
        from linncore import _core
    except ImportError:
        return None
    return _core


ENGINES = ["numpy"] + (["native"] if _core() is not None else [])


def _margins(net: Network, theta: np.ndarray, X: np.ndarray) -> tuple[float, float, float]:
    """(min |z|, min | |h| - 1 |, fraction of outputs beyond the clip bounds) over all layers."""
    states, _ = _forward_all(net.spec, theta, X)
    z_min = min(float(np.abs(z).min()) for _, z, _ in states)
    h_gap = min(float(np.abs(np.abs(h) - 1).min()) for _, _, h in states)
    clipped = float(np.mean(np.concatenate([(np.abs(h) > 1).ravel() for _, _, h in states])))
    return z_min, h_gap, clipped


def _smooth_case(act: str, clip: bool, bias_last: bool = False):
    """A 3 -> 5 act -> 4 tanh -> 2 act network and data in float64 whose pre-activations stay
    MARGIN away from 0 and whose outputs stay MARGIN away from +-1, with some outputs clipped
    when clipping can act (linear, relu, leaky_relu, softplus).  Searched over seeds, the same
    every run."""
    can_clip = clip and act in ("linear", "relu", "leaky_relu", "softplus")
    for seed in range(400):
        rng = np.random.default_rng(seed)
        net = Network(
            [
                Dense((3, 5), act, seed=seed),
                Dense((5, 4), "tanh", seed=seed + 1),
                Dense((4, 2), act, has_bias=bias_last, seed=seed + 2),
            ],
            clip=clip,
            dtype="float64",
        )
        net.set_theta(np.clip(net.theta * 2.5, -1, 1))
        X = rng.uniform(-1, 1, size=(20, 3))
        Y = rng.normal(size=(20, 2))
        z_min, h_gap, clipped = _margins(net, net.theta, X)
        if z_min > MARGIN and h_gap > MARGIN and (clipped > 0.05 or not can_clip):
            return net, X, Y
    raise AssertionError(f"no smooth case found for {act}, clip={clip}")


def _fd_hessian_columns(net, X, Y, loss, V):
    """4th-order central differences of the gradient along the columns of V."""
    spec, theta = net.spec, np.array(net.theta, dtype=np.float64)
    code = LOSS_CODE[loss]
    grad = lambda t: numpy_kernels.net_loss_grad(spec, t, X, Y, code)[1]  # noqa: E731
    h = FD_STEP
    cols = []
    for c in range(V.shape[1]):
        v = V[:, c]
        cols.append(
            (
                -grad(theta + 2 * h * v)
                + 8 * grad(theta + h * v)
                - 8 * grad(theta - h * v)
                + grad(theta - 2 * h * v)
            )
            / (12 * h)
        )
    return np.stack(cols, axis=1)


def _rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# -- Hessian-vector products against finite differences ---------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("act", ACTS)
def test_hvp_matches_fourth_order_finite_differences_of_the_gradient(act, clip, engine):
    net, X, Y = _smooth_case(act, clip)
    V = np.random.default_rng(1).normal(size=(net.n_params, 3))
    V /= np.linalg.norm(V, axis=0)
    for loss in ("half_mse", "mse"):
        with _backend.use(engine):
            HV = hs.hvp(net, X, Y, V, loss=loss)
        assert _rel_err(HV, _fd_hessian_columns(net, X, Y, loss, V)) < 1e-7, (act, clip, loss)


@pytest.mark.parametrize("engine", ENGINES)
def test_full_hessian_is_symmetric_and_equals_the_finite_difference_hessian(engine):
    net, X, Y = _smooth_case("softplus", clip=True, bias_last=True)
    with _backend.use(engine):
        H = hs.full_hessian(net, X, Y, loss="mse")
    assert np.array_equal(H, H.T)
    fd = _fd_hessian_columns(net, X, Y, "mse", np.eye(net.n_params))
    assert _rel_err(H, 0.5 * (fd + fd.T)) < 1e-7


def _kernels(engine):
    return numpy_kernels if engine == "numpy" else _core()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act", ACTS)
def test_assembled_hessian_equals_the_one_built_from_products(act, dtype, engine):
    # four layers (Jacobians chained over three), a middle layer without bias, clip on and off,
    # both losses, the Gauss-Newton option, and more samples than one chunk of the C kernel
    K = _kernels(engine)
    tol = 1e-13 if dtype == "float64" else 2e-5
    for clip in (False, True):
        rng = np.random.default_rng(ACTS.index(act))
        net = Network(
            [
                Dense((3, 17), act, seed=1),
                Dense((17, 4), "tanh", has_bias=False, seed=2),
                Dense((4, 6), act, seed=3),
                Dense((6, 2), act, seed=4),
            ],
            clip=clip,
            dtype=dtype,
        )
        net.set_theta(np.clip(net.theta * 2.5, -1, 1))
        X = rng.uniform(-1, 1, size=(700, 3)).astype(dtype)
        Y = rng.normal(size=(700, 2)).astype(dtype)
        theta = np.array(net.theta)
        for loss in (0, 1):
            state, _, _ = K.hvp_prepare(net.spec, theta, X, Y, loss)
            for gn in (False, True):
                H = K.hvp_dense(net.spec, theta, state, 700, loss, gn)
                cols = K.hvp_apply(
                    net.spec, theta, state, 700, loss, np.eye(net.n_params, dtype=dtype), gn
                )
                assert H.dtype == np.dtype(dtype) and np.array_equal(H, H.T)
                assert _rel_err(H, cols) < tol, (clip, loss, gn)


def test_compiled_assembled_hessian_matches_its_numpy_twin(core):
    rng = np.random.default_rng(5)
    net = Network(
        [
            Dense((2, 9), "softsign", seed=0),
            Dense((9, 9), "sigmoid", seed=1),
            Dense((9, 3), "softplus", seed=2),
        ],
        clip=True,
        dtype="float64",
    )
    X, Y = rng.uniform(-1, 1, size=(333, 2)), rng.normal(size=(333, 3))
    theta = np.array(net.theta)
    for loss in (0, 1):
        state, _, _ = core.hvp_prepare(net.spec, theta, X, Y, loss)
        for gn in (False, True):
            np.testing.assert_allclose(
                core.hvp_dense(net.spec, theta, state, 333, loss, gn),
                numpy_kernels.hvp_dense(net.spec, theta, state, 333, loss, gn),
                rtol=0,
                atol=1e-14,
            )
    with pytest.raises(ValueError, match="state"):
        core.hvp_dense(net.spec, theta, state[:-1], 333, 1)
    with pytest.raises(ValueError, match="loss"):
        core.hvp_dense(net.spec, theta, state, 333, 2)


def test_hessian_of_clipped_outputs_ignores_units_beyond_the_bounds():
    # one linear layer, clip on: only samples whose output lies in [-1, 1] contribute
    X = np.array([[0.2, 0.1], [3.0, 2.0], [-0.5, 0.4]])
    net = Network(
        [Dense((2, 1), weight=[[0.5], [0.5]], has_bias=False)], clip=True, dtype="float64"
    )
    H = hs.full_hessian(net, X, np.zeros((3, 1)))
    inside = X[[0, 2]]
    np.testing.assert_allclose(H, inside.T @ inside / 3, rtol=1e-14)


def test_float32_network_is_differentiated_in_float64():
    net64, X, Y = _smooth_case("tanh", clip=False)
    net32 = Network([layer.copy() for layer in net64.layers], clip=False, dtype="float32")
    theta32 = net32.theta.astype(np.float64)
    net64.set_theta(theta32)
    H32 = hs.full_hessian(net32, X, Y)
    assert H32.dtype == np.float64
    np.testing.assert_allclose(H32, hs.full_hessian(net64, X, Y), rtol=0, atol=1e-14)


def test_hvp_keeps_the_shape_of_a_single_vector_and_of_a_block():
    net, X, Y = _smooth_case("tanh", clip=False)
    v = np.random.default_rng(2).normal(size=(net.n_params, 4))
    block = hs.hvp(net, X, Y, v)
    assert block.shape == v.shape
    np.testing.assert_allclose(hs.hvp(net, X, Y, v[:, 1]), block[:, 1], rtol=1e-13, atol=1e-15)


# -- closed form -------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss", ["half_mse", "mse"])
def test_closed_form_equals_the_hessian_built_from_hvps(bias, loss):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 4))
    net = Network([Dense((4, 3), has_bias=bias, seed=4)], clip=False, dtype="float64")
    H = hs.full_hessian(net, X, rng.normal(size=(30, 3)), loss=loss)
    closed = hs.single_dense_hessian(X, 3, bias=bias, loss=loss)
    np.testing.assert_allclose(H, closed, rtol=1e-13, atol=1e-14)


def test_closed_form_places_the_bias_after_the_whole_kernel():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    H = hs.single_dense_hessian(X, 2, bias=True)
    # theta = (W00, W01, W10, W11, b0, b1); d2L / dW10 db0 = mean(x_1) = 3
    assert H[2, 4] == 3.0 and H[2, 5] == 0.0 and H[3, 5] == 3.0 and H[4, 4] == 1.0


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss", ["half_mse", "mse"])
def test_closed_form_eigenvalues_equal_eigvalsh_of_the_kronecker_product(bias, loss):
    X = np.random.default_rng(5).normal(size=(12, 3))
    ev = hs.single_dense_eigenvalues(X, 4, bias, loss=loss)
    np.testing.assert_allclose(
        ev,
        np.linalg.eigvalsh(hs.single_dense_hessian(X, 4, bias=bias, loss=loss)),
        rtol=1e-12,
        atol=1e-13,
    )


def test_lambda_max_uses_the_closed_form_only_when_clipping_is_inactive():
    X = np.array([[2.0, 0.0], [0.0, 1.0]])
    Y = np.zeros((2, 1))
    inactive = Network([Dense((2, 1), weight=[[0.1], [0.1]], has_bias=False)], clip=True)
    assert hs.lambda_max(inactive, X, Y, method="closed_form") == 2.0
    active = Network(
        [Dense((2, 1), weight=[[1.0], [0.1]], has_bias=False)], clip=True
    )  # 2.0 > 1 clipped
    with pytest.raises(ValueError, match="method"):
        hs.lambda_max(active, X, Y, method="closed_form")
    assert hs.lambda_max(active, X, Y) == pytest.approx(0.5, rel=1e-14)


# -- spectra -----------------------------------------------------------------------------------
def _sine_like_net(P_big: bool):
    widths = [1, 24, 24, 1] if P_big else [1, 6, 6, 1]
    acts = ["tanh", "softplus", "linear"]
    layers = [Dense((widths[i], widths[i + 1]), acts[i], seed=10 + i) for i in range(3)]
    net = Network(layers, clip=False, dtype="float64")
    x = np.linspace(-1, 1, 50)[:, None]
    return net, x, np.cos(3 * x)


def test_eigenvalues_from_dense_and_lanczos_match_eigvalsh_of_the_full_hessian():
    net, X, Y = _sine_like_net(P_big=True)
    ev = np.linalg.eigvalsh(hs.full_hessian(net, X, Y))
    top = hs.top_eigenvalues(net, X, Y, k=3, method="lanczos")
    np.testing.assert_allclose(top, ev[::-1][:3], rtol=1e-8)
    np.testing.assert_allclose(
        hs.top_eigenvalues(net, X, Y, k=3, method="dense"), ev[::-1][:3], rtol=1e-12
    )
    assert hs.lambda_max(net, X, Y, method="lanczos") == pytest.approx(ev[-1], rel=1e-8)
    assert hs.lambda_min(net, X, Y, method="lanczos") == pytest.approx(
        ev[0], rel=1e-6, abs=1e-9 * ev[-1]
    )
    assert hs.lambda_min(net, X, Y, method="dense") == pytest.approx(ev[0], rel=1e-12, abs=1e-14)


def test_hutchinson_trace_is_reproducible_and_near_the_trace():
    net, X, Y = _sine_like_net(P_big=False)
    tr = float(np.trace(hs.full_hessian(net, X, Y)))
    a = hs.hutchinson_trace(net, X, Y, n_samples=2000, seed=7)
    assert a == hs.hutchinson_trace(net, X, Y, n_samples=2000, seed=7)
    assert a != hs.hutchinson_trace(net, X, Y, n_samples=2000, seed=8)
    assert abs(a - tr) < 0.1 * abs(tr)


def test_gauss_newton_equals_the_hessian_for_a_linear_network_under_half_mse():
    rng = np.random.default_rng(8)
    net = Network([Dense((3, 4), seed=1), Dense((4, 2), seed=2)], clip=False, dtype="float64")
    X, Y = rng.normal(size=(15, 3)), rng.normal(size=(15, 2))
    # a single linear layer: no second-order term at all
    one = Network([Dense((3, 2), seed=1)], clip=False, dtype="float64")
    np.testing.assert_allclose(
        hs.full_hessian(one, X, Y, gauss_newton=True),
        hs.full_hessian(one, X, Y),
        rtol=1e-14,
        atol=1e-15,
    )
    # two linear layers: Gauss-Newton differs by the residual term, and equals it at a zero residual
    assert not np.allclose(
        hs.full_hessian(net, X, Y, gauss_newton=True), hs.full_hessian(net, X, Y)
    )
    Yfit = net.predict(X).astype(np.float64)
    np.testing.assert_allclose(
        hs.full_hessian(net, X, Yfit, gauss_newton=True),
        hs.full_hessian(net, X, Yfit),
        rtol=1e-12,
        atol=1e-14,
    )


def test_gauss_newton_is_positive_semidefinite_and_matches_jacobian_product():
    net, X, Y = _smooth_case("sigmoid", clip=False)
    G = hs.full_hessian(net, X, Y, gauss_newton=True)
    assert np.linalg.eigvalsh(G)[0] > -1e-12 * np.abs(G).max()
    # J by finite differences of the outputs, then J^T J / N for half_mse
    theta = net.theta.copy()
    h = FD_STEP
    cols = []
    for p in range(net.n_params):
        e = np.zeros_like(theta)
        e[p] = h
        f = lambda t: numpy_kernels.net_forward(net.spec, t, X).ravel()  # noqa: E731
        cols.append(
            (-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (12 * h)
        )
    J = np.stack(cols, axis=1)
    np.testing.assert_allclose(G, J.T @ J / X.shape[0], rtol=1e-7, atol=1e-10)


def test_layer_blocks_are_the_diagonal_blocks_of_the_full_hessian():
    net, X, Y = _smooth_case("tanh", clip=False)
    H = hs.full_hessian(net, X, Y)
    blocks = hs.full_hessian(net, X, Y, blocks=True)
    sizes = [layer.n_params for layer in net.layers]
    assert [b.shape for b in blocks] == [(s, s) for s in sizes]
    np.testing.assert_array_equal(
        blocks[1], H[sizes[0] : sizes[0] + sizes[1], sizes[0] : sizes[0] + sizes[1]]
    )


# -- compiled kernels against their NumPy twins ------------------------------------------------
@pytest.mark.skipif(_core() is None, reason="compiled core not built")
@pytest.mark.parametrize("gauss_newton", [False, True])
@pytest.mark.parametrize("act", ACTS)
def test_compiled_hvp_equals_numpy_twin_in_float64(act, gauss_newton):
    core = _core()
    rng = np.random.default_rng(9)
    net = Network(
        [
            Dense((3, 7), act, seed=1),
            Dense((7, 5), act, has_bias=False, seed=2),
            Dense((5, 2), act, seed=3),
        ],
        clip=True,
        dtype="float64",
    )
    theta = net.theta * 3
    X, Y = rng.normal(size=(150, 3)), rng.normal(size=(150, 2))  # more samples than one C chunk
    V = rng.normal(size=(net.n_params, 5))
    V[:, 0] = 0.0
    V[: net.n_params // 2, 1] = 0.0  # directions confined to later layers take the sparse paths
    for loss in (0, 1):
        v1, g1, H1 = core.net_hvp(net.spec, theta, X, Y, loss, V, gauss_newton)
        v2, g2, H2 = numpy_kernels.net_hvp(net.spec, theta, X, Y, loss, V, gauss_newton)
        assert v1 == pytest.approx(v2, rel=1e-14)
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-12 * np.abs(g2).max())
        np.testing.assert_allclose(H1, H2, rtol=1e-12, atol=1e-12 * np.abs(H2).max())
        assert not H1[:, 0].any()
        s1 = core.hvp_prepare(net.spec, theta, X, Y, loss)[0]
        s2 = numpy_kernels.hvp_prepare(net.spec, theta, X, Y, loss)[0]
        np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(_core() is None, reason="compiled core not built")
@pytest.mark.parametrize("kernel", ["act_deriv", "act_deriv2"])
@pytest.mark.parametrize("act", ACTS)
def test_compiled_derivatives_equal_numpy_twin(act, kernel):
    core = _core()
    z = np.linspace(-4, 4, 81)
    code = ACTIVATIONS[act]
    h = core.act_forward(code, z)
    np.testing.assert_allclose(
        getattr(core, kernel)(code, z, h),
        getattr(numpy_kernels, kernel)(code, z, h),
        rtol=1e-14,
        atol=1e-16,
    )


# -- stability metrics -------------------------------------------------------------------------
def test_stability_metrics_follow_the_spec_definitions():
    ev = np.array([-0.5, 0.2, 3.0])
    m = hs.stability_metrics(0.4, ev, alpha=0.25)
    assert m["stability_margin_lambda_raw"] == pytest.approx(1.2)
    assert m["stability_margin_lambda_ctrl"] == pytest.approx(0.3)
    assert m["spectral_radius_raw"] == pytest.approx(np.abs(1 - 0.4 * ev).max())
    assert m["spectral_radius_ctrl"] == pytest.approx(np.abs(1 - 0.1 * ev).max())
    only_max = hs.stability_metrics(0.4, lambda_max=3.0)
    assert only_max["stability_margin_lambda_raw"] == pytest.approx(1.2)
    assert np.isnan(only_max["spectral_radius_raw"])
    both = hs.stability_metrics(0.4, lambda_max=3.0, lambda_min=-0.5, alpha=0.25)
    assert both["spectral_radius_raw"] == m["spectral_radius_raw"]


def test_forward_gain_is_the_product_of_kernel_spectral_norms():
    net = Network([Dense((3, 4), seed=1), Dense((4, 2), seed=2)])
    expected = np.prod(
        [np.linalg.svd(l.weight.astype(np.float64), compute_uv=False)[0] for l in net.layers]
    )
    assert hs.forward_gain_spectral(net) == pytest.approx(expected, rel=1e-12)


# -- bad input ---------------------------------------------------------------------------------
def test_bad_inputs_raise_errors_naming_the_argument():
    net = Network([Dense((2, 1), seed=0)])
    X, Y = np.zeros((3, 2)), np.zeros((3, 1))
    with pytest.raises(TypeError, match="net"):
        hs.hvp("not a net", X, Y, np.zeros(3))
    with pytest.raises(ValueError, match="loss"):
        hs.hvp(net, X, Y, np.zeros(3), loss="mae")
    with pytest.raises(ValueError, match="v"):
        hs.hvp(net, X, Y, np.zeros(4))
    with pytest.raises(ValueError, match="X"):
        hs.full_hessian(net, np.zeros((3, 5)), Y)
    with pytest.raises(ValueError, match="Y"):
        hs.full_hessian(net, X, np.zeros((4, 1)))
    with pytest.raises(ValueError, match="X"):
        hs.full_hessian(net, [[np.nan, 0.0]], [[0.0]])
    with pytest.raises(ValueError, match="method"):
        hs.lambda_max(net, X, Y, method="power")
    with pytest.raises(ValueError, match="k"):
        hs.top_eigenvalues(net, X, Y, k=4)
    with pytest.raises(ValueError, match="n_samples"):
        hs.hutchinson_trace(net, X, Y, n_samples=0)
    with pytest.raises(ValueError, match="m"):
        hs.single_dense_hessian(X, 0)
    with pytest.raises(ValueError, match="eta"):
        hs.stability_metrics(-1.0, [1.0])
    with pytest.raises(ValueError, match="lambda_max"):
        hs.stability_metrics(0.1)
    with pytest.raises(ValueError, match="lambda_min"):
        hs.stability_metrics(0.1, lambda_max=1.0, lambda_min=2.0)
    with pytest.raises(ValueError, match="H"):
        hs.layer_blocks(net, np.eye(2))


@pytest.mark.parametrize("engine", ENGINES)
def test_kernels_reject_losses_without_a_hessian(engine):
    net = Network([Dense((2, 1), seed=0)], dtype="float64")
    X, Y = np.zeros((3, 2)), np.zeros((3, 1))
    with _backend.use(engine) as k:
        with pytest.raises(ValueError, match="loss"):
            k.hvp_prepare(net.spec, net.theta, X, Y, 2)


# -- optional oracle: PyTorch ------------------------------------------------------------------
def test_full_hessian_matches_torch_func_hessian():
    torch = pytest.importorskip("torch")
    from torch.func import hessian

    act_fn = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "softplus": torch.nn.functional.softplus,
        "linear": lambda z: z,
    }
    net = Network(
        [
            Dense((2, 6), "tanh", seed=1),
            Dense((6, 4), "sigmoid", seed=2),
            Dense((4, 2), "softplus", seed=3),
        ],
        clip=False,
        dtype="float64",
    )
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(25, 2)), rng.normal(size=(25, 2))
    shapes = [(l.size_in, l.size_out, l.has_bias, l.activation) for l in net.layers]

    def loss(theta, x, y):
        p, a = 0, x
        for n_in, n_out, has_b, act in shapes:
            z = a @ theta[p : p + n_in * n_out].reshape(n_in, n_out)
            p += n_in * n_out
            if has_b:
                z = z + theta[p : p + n_out]
                p += n_out
            a = act_fn[act](z)
        return ((a - y) ** 2).sum() / (x.shape[0] * y.shape[1])

    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    Ht = hessian(loss)(t(np.array(net.theta)), t(X), t(Y)).numpy()
    np.testing.assert_allclose(hs.full_hessian(net, X, Y, loss="mse"), Ht, rtol=1e-10, atol=1e-13)


# -- parts, threads and the Lanczos kernel -----------------------------------------------------
def _wide_case(n_samples=629):
    """A Simple_sine-sized network (2209 parameters) on enough samples that the compiled
    products split into several parts."""
    rng = np.random.default_rng(11)
    net = Network(
        [
            Dense((1, 32), "relu", seed=0),
            Dense((32, 32), "softplus", seed=1),
            Dense((32, 32), "tanh", seed=2),
            Dense((32, 1), seed=3),
        ],
        clip=True,
        dtype="float64",
    )
    X = rng.uniform(-1, 1, size=(n_samples, 1))
    return net, X, np.cos(4 * X)


@pytest.fixture
def threads():
    import linncore

    saved = linncore.get_num_threads()
    yield linncore.set_num_threads
    linncore.set_num_threads(saved)


def test_compiled_products_give_the_same_bits_for_any_thread_count(core, threads):
    net, X, Y = _wide_case()
    theta = np.array(net.theta)
    V = np.random.default_rng(3).normal(size=(net.n_params, 4))
    v0 = V[:, 0] / np.linalg.norm(V[:, 0])
    # a network whose assembled Hessian splits into eight parts
    rng = np.random.default_rng(8)
    small = Network(
        [
            Dense((3, 20), "tanh", seed=5),
            Dense((20, 20), "sigmoid", seed=6),
            Dense((20, 2), seed=7),
        ],
        clip=False,
        dtype="float64",
    )
    Xs, Ys = rng.uniform(-1, 1, size=(300, 3)), rng.normal(size=(300, 2))
    ts = np.array(small.theta)
    runs = []
    for n in (1, 2, 3, 8):
        threads(n)
        state, value, grad = core.hvp_prepare(net.spec, theta, X, Y, 1)
        sstate = core.hvp_prepare(small.spec, ts, Xs, Ys, 0)[0]
        runs.append(
            (
                state,
                value,
                grad,
                core.hvp_apply(net.spec, theta, state, len(X), 1, V),
                core.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "LA", 1e-10, 60),
                core.hvp_dense(small.spec, ts, sstate, len(Xs), 0),
            )
        )
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b)
            else:
                assert a == b


def test_compiled_products_over_several_parts_match_the_numpy_twin(core):
    net, X, Y = _wide_case(1500)
    theta = np.array(net.theta)
    V = np.random.default_rng(4).normal(size=(net.n_params, 3))
    rng = np.random.default_rng(9)
    mid = Network(
        [
            Dense((3, 20), "softsign", seed=5),
            Dense((20, 20), "tanh", seed=6),
            Dense((20, 2), "sigmoid", seed=7),
        ],
        clip=True,
        dtype="float64",
    )
    Xm, Ym = rng.uniform(-1, 1, size=(300, 3)), rng.normal(size=(300, 2))
    tm = np.array(mid.theta)
    sm = core.hvp_prepare(mid.spec, tm, Xm, Ym, 0)[0]
    for gn in (False, True):
        assert (
            _rel_err(
                core.hvp_dense(mid.spec, tm, sm, 300, 0, gn),
                numpy_kernels.hvp_dense(mid.spec, tm, sm, 300, 0, gn),
            )
            < 1e-12
        )
    for loss in (0, 1):
        state, value, grad = core.hvp_prepare(net.spec, theta, X, Y, loss)
        tstate, tvalue, tgrad = numpy_kernels.hvp_prepare(net.spec, theta, X, Y, loss)
        assert value == pytest.approx(tvalue, rel=1e-13)
        assert _rel_err(grad, tgrad) < 1e-12
        assert _rel_err(state, tstate) < 1e-12
        for gn in (False, True):
            assert (
                _rel_err(
                    core.hvp_apply(net.spec, theta, state, len(X), loss, V, gn),
                    numpy_kernels.hvp_apply(net.spec, theta, tstate, len(X), loss, V, gn),
                )
                < 1e-12
            )


@pytest.mark.parametrize("engine", ENGINES)
def test_lanczos_kernel_finds_both_ends_of_the_spectrum(engine):
    K = _kernels(engine)
    net, X, Y = _wide_case(200)
    theta = np.array(net.theta)
    state = K.hvp_prepare(net.spec, theta, X, Y, 1)[0]
    ev = np.linalg.eigvalsh(K.hvp_dense(net.spec, theta, state, len(X), 1))
    v0 = np.random.default_rng(0).normal(size=net.n_params)
    v0 /= np.linalg.norm(v0)
    top, steps, ok = K.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "LA", 1e-10, 200)
    assert ok and 2 <= steps < 200
    assert top == pytest.approx(ev[-1], rel=1e-9)
    gn_top = K.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "LA", 1e-10, 200, True)[0]
    gn_ev = np.linalg.eigvalsh(K.hvp_dense(net.spec, theta, state, len(X), 1, True))
    assert gn_top == pytest.approx(gn_ev[-1], rel=1e-9)
    # the bottom end converges slowly: the run stops unconverged, then succeeds with room
    low, steps, ok = K.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "SA", 1e-10, 3)
    assert not ok and steps == 3 and low > ev[0]
    low, _, ok = K.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "SA", 1e-8, net.n_params)
    assert ok and low == pytest.approx(ev[0], abs=1e-6 * ev[-1])


def test_lanczos_kernel_stops_when_the_krylov_space_is_exhausted():
    # one linear layer without bias: H = kron(X^T X / N, I_2) has two distinct eigenvalues, so
    # the Krylov space from any start is exhausted (r = 0) within two steps
    for K in [numpy_kernels] + ([_core()] if _core() is not None else []):
        net = Network([Dense((2, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
        X = np.array([[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
        Y = np.zeros((3, 2))
        theta = np.array(net.theta)
        state = K.hvp_prepare(net.spec, theta, X, Y, 1)[0]
        v0 = np.full(4, 0.5)
        value, steps, ok = K.hvp_lanczos(net.spec, theta, state, 3, 1, v0, "LA", 0.0, 4)
        assert ok and steps <= 3 and value == pytest.approx(3.0, rel=1e-14)


def test_compiled_lanczos_matches_its_numpy_twin_and_checks_its_arguments(core):
    net, X, Y = _wide_case(300)
    theta = np.array(net.theta)
    state = core.hvp_prepare(net.spec, theta, X, Y, 0)[0]
    v0 = np.random.default_rng(1).normal(size=net.n_params)
    v0 /= np.linalg.norm(v0)
    for which in ("LA", "SA"):
        c = core.hvp_lanczos(net.spec, theta, state, 300, 0, v0, which, 1e-8, 40)
        t = numpy_kernels.hvp_lanczos(net.spec, theta, state, 300, 0, v0, which, 1e-8, 40)
        assert c[1:] == t[1:] and c[0] == pytest.approx(t[0], rel=1e-10)
    for bad, match in [
        (dict(which="LM"), "which"),
        (dict(max_steps=0), "max_steps"),
        (dict(max_steps=net.n_params + 1), "max_steps"),
        (dict(tol=float("nan")), "tol"),
        (dict(v0=v0[:-1]), "v0"),
    ]:
        args = dict(v0=v0, which="LA", tol=1e-8, max_steps=10) | bad
        with pytest.raises(ValueError, match=match):
            core.hvp_lanczos(
                net.spec,
                theta,
                state,
                300,
                0,
                args["v0"],
                args["which"],
                args["tol"],
                args["max_steps"],
            )


def test_set_num_threads_checks_its_argument_and_reads_the_environment(threads, monkeypatch):
    import linncore
    from linncore import _backend as backend_module

    threads(3)
    assert linncore.get_num_threads() == 3
    if _core() is not None:
        assert _core().get_num_threads() == 3
    for bad, err in [
        (0, ValueError),
        (-2, ValueError),
        (1.5, TypeError),
        ("2", TypeError),
        (True, TypeError),
    ]:
        with pytest.raises(err, match="n:"):
            linncore.set_num_threads(bad)
    assert linncore.get_num_threads() == 3
    monkeypatch.setenv("LINNCORE_NUM_THREADS", "5")
    assert backend_module._default_threads() == 5
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("LINNCORE_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="LINNCORE_NUM_THREADS"):
            backend_module._default_threads()
    monkeypatch.delenv("LINNCORE_NUM_THREADS")
    assert backend_module._default_threads() >= 1


def test_products_run_concurrently_from_python_threads(threads):
    # each call makes its own helpers; calls from several Python threads at once (the GIL is
    # released) give the values of a lone call
    from concurrent.futures import ThreadPoolExecutor

    threads(2)
    net, X, Y = _wide_case()
    alone = hs.lambda_max(net, X, Y)
    H_alone = hs.full_hessian(net, X[:40], Y[:40])
    with ThreadPoolExecutor(4) as ex:
        tops = list(ex.map(lambda _: hs.lambda_max(net, X, Y), range(8)))
        Hs = list(ex.map(lambda _: hs.full_hessian(net, X[:40], Y[:40]), range(4)))
    assert tops == [alone] * 8
    assert all(np.array_equal(H, H_alone) for H in Hs)


@pytest.mark.parametrize("engine", ENGINES)
def test_assembled_hessian_of_a_wide_input_layer_needs_only_its_blocks_workspace(engine):
    # 256 inputs: workspace sized by the widest layer to the fourth power would be 34 GB
    K = _kernels(engine)
    rng = np.random.default_rng(12)
    net = Network(
        [Dense((256, 4), "tanh", seed=0), Dense((4, 1), seed=1)], clip=False, dtype="float64"
    )
    X, Y = rng.normal(size=(40, 256)) / 16, rng.normal(size=(40, 1))
    theta = np.array(net.theta)
    state = K.hvp_prepare(net.spec, theta, X, Y, 1)[0]
    H = K.hvp_dense(net.spec, theta, state, 40, 1)
    cols = K.hvp_apply(net.spec, theta, state, 40, 1, np.eye(net.n_params))
    assert _rel_err(H, cols) < 1e-13


def test_kernels_refuse_malformed_specs_and_start_vectors(core):
    from types import SimpleNamespace

    spec = SimpleNamespace(sizes=[-1, 2], acts=[0], has_bias=[1], clip_out=False)
    with pytest.raises(ValueError, match="widths"):
        core.hvp_prepare(spec, np.zeros(0), np.zeros((1, 0)), np.zeros((1, 2)), 1)
    net, X, Y = _smooth_case("tanh", clip=False)
    theta = np.array(net.theta, dtype=np.float64)
    for K in (core, numpy_kernels):
        state = K.hvp_prepare(net.spec, theta, X, Y, 1)[0]
        for v0 in (np.zeros(net.n_params), np.full(net.n_params, 3.0 / np.sqrt(net.n_params))):
            with pytest.raises(ValueError, match="v0: expected a unit vector"):
                K.hvp_lanczos(net.spec, theta, state, len(X), 1, v0, "LA", 1e-8, 5)


def test_get_num_threads_reads_the_core(core, threads):
    import linncore

    threads(2)
    core.set_num_threads(4)
    assert linncore.get_num_threads() == 4


def test_a_prepared_operator_gives_the_products_of_hvp(engine):
    rng = np.random.default_rng(3)
    net = Network(
        [Dense((3, 8), "tanh", seed=0), Dense((8, 2), seed=1)], clip=False, dtype="float64"
    )
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    H = hs.HessianOperator(net, X, Y, loss="mse")
    V = rng.standard_normal((net.n_params, 3))
    np.testing.assert_array_equal(H @ V, hs.hvp(net, X, Y, V, loss="mse"))
    np.testing.assert_array_equal(H.matvec(V[:, 0]), hs.hvp(net, X, Y, V[:, 0], loss="mse"))
    np.testing.assert_array_equal(H.dense(), hs.full_hessian(net, X, Y, loss="mse"))
    np.testing.assert_allclose(H.as_linear_operator() @ V[:, 1], H @ V[:, 1], rtol=0, atol=0)
    assert H.loss_value == pytest.approx(net.loss(X, Y, loss="mse"))
    before = H @ V
    weights = net.get_weights()
    net.set_weights([np.zeros_like(w) for w in weights])  # the operator keeps its own point
    np.testing.assert_array_equal(H @ V, before)
    net.set_weights(weights)
    gn = hs.HessianOperator(net, X, Y, gauss_newton=True)
    assert np.all(np.linalg.eigvalsh(gn.dense()) > -1e-12)


def test_a_prepared_operator_refuses_a_wrong_direction(engine):
    net = Network([Dense((2, 1), has_bias=False)], clip=False)
    H = hs.HessianOperator(net, [[1.0, 0.0]], [[0.0]])
    with pytest.raises(ValueError, match=r"v: expected shape \(2,\) or \(2, k\), got \(3,\)"):
        H @ np.ones(3)
    with pytest.raises(ValueError, match="v: expected finite"):
        H @ np.array([np.nan, 0.0])


# -- the fused product, the kernels' tanh, the automatic choice of method ---------------------
def test_fused_hvp_gives_the_bits_of_prepare_then_apply(core, threads):
    rng = np.random.default_rng(12)
    wide, Xw, Yw = _wide_case(1500)  # several parts, clipping, relu / softplus / tanh
    small = Network(
        [
            Dense((3, 7), "sigmoid", seed=1),
            Dense((7, 5), "softsign", has_bias=False, seed=2),
            Dense((5, 2), "tanh", seed=3),
        ],
        clip=False,
        dtype="float64",
    )
    Xs, Ys = rng.normal(size=(300, 3)), rng.normal(size=(300, 2))
    for net, X, Y in ((wide, Xw, Yw), (small, Xs, Ys)):
        theta = np.array(net.theta)
        V = rng.normal(size=(net.n_params, 3))
        V[: net.n_params // 2, 1] = 0.0  # a direction confined to later layers
        runs = []
        for n in (1, 3):
            threads(n)
            for loss in (0, 1):
                for gn in (False, True):
                    value, grad, HV = core.net_hvp(net.spec, theta, X, Y, loss, V, gn)
                    state, pvalue, pgrad = core.hvp_prepare(net.spec, theta, X, Y, loss)
                    stored = core.hvp_apply(net.spec, theta, state, len(X), loss, V, gn)
                    assert np.array_equal(HV, stored)
                    assert value == pytest.approx(pvalue, rel=1e-14)
                    assert _rel_err(grad, pgrad) < 1e-13
                    runs.append((value, grad, HV))
        for a, b in zip(runs[: len(runs) // 2], runs[len(runs) // 2 :]):
            assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        value, none, HV = core.net_hvp(net.spec, theta, X, Y, 1, V, False, with_grad=False)
        twin = numpy_kernels.net_hvp(net.spec, theta, X, Y, 1, V, False, with_grad=False)
        assert none is None and twin[1] is None and np.array_equal(HV, runs[2][2])
        # a zero direction still gives the loss and the gradient
        value, grad, HV = core.net_hvp(net.spec, theta, X, Y, 1, np.zeros((net.n_params, 1)))
        state, pvalue, pgrad = core.hvp_prepare(net.spec, theta, X, Y, 1)
        assert not HV.any() and value == pvalue and np.array_equal(grad, pgrad)


def test_compiled_tanh_is_within_two_ulps_of_the_exact_value(core):
    net = Network(
        [Dense((1, 1), "tanh", weight=[[1.0]], has_bias=False)], clip=False, dtype="float64"
    )
    rng = np.random.default_rng(0)
    special = [
        0.0,
        -0.0,
        5e-324,
        -1e-300,
        1e-9,
        0.17,
        0.3465,
        0.3467,
        19.0,
        22.0,
        -23.0,
        700.0,
        -1e300,
    ]
    x = np.concatenate(
        [
            special,
            rng.uniform(-25, 25, 20000),
            rng.uniform(-1, 1, 20000),
            10.0 ** rng.uniform(-20, 1.5, 20000),
        ]
    )
    N = len(x)
    state = core.hvp_prepare(net.spec, np.array(net.theta), x[:, None], np.zeros((N, 1)), 1)[0]
    a = state[N : 2 * N]  # the state holds X, then the layer's a = tanh(X)
    exact = np.tanh(x.astype(np.longdouble)).astype(np.float64)
    ulps = np.abs(a - exact) / np.spacing(np.maximum(np.abs(exact), 5e-324))
    assert ulps.max() <= 2.0
    assert np.array_equal(np.sign(a), np.sign(x))  # (z = 0 + x W: -0 becomes +0 before tanh)
    nan = core.hvp_prepare(
        net.spec, np.array(net.theta), np.array([[np.nan]]), np.zeros((1, 1)), 1
    )[0]
    assert np.isnan(nan[1])


def test_lambda_max_at_a_loose_tolerance_runs_lanczos_and_stays_within_it(engine):
    rng = np.random.default_rng(5)
    net = Network(
        [Dense((4, 16), "tanh", seed=0), Dense((16, 2), seed=1)], clip=False, dtype="float64"
    )
    X, Y = rng.normal(size=(200, 4)), rng.normal(size=(200, 2))
    assert net.n_params <= hs.DENSE_MAX_PARAMS
    ev = np.linalg.eigvalsh(hs.full_hessian(net, X, Y))
    loose = hs.lambda_max(net, X, Y, tol=1e-6)
    assert loose == hs.lambda_max(net, X, Y, tol=1e-6, method="lanczos")
    assert loose == pytest.approx(ev[-1], rel=1e-6)
    assert hs.lambda_max(net, X, Y) == hs.lambda_max(net, X, Y, method="dense")
    low = hs.lambda_min(net, X, Y, tol=1e-6)
    assert low == hs.lambda_min(net, X, Y, tol=1e-6, method="lanczos")
    assert hs.hessian_extremes(net, X, Y, "half_mse", 0, tol=1e-6) == (low, loose)
    assert hs.hessian_extremes(net, X, Y) == (
        hs.lambda_min(net, X, Y, method="dense"),
        hs.lambda_max(net, X, Y, method="dense"),
    )


def test_kernels_take_a_network_description_built_once_in_place_of_the_spec(engine):
    rng = np.random.default_rng(6)
    net = Network(
        [Dense((3, 6), "tanh", seed=0), Dense((6, 2), "sigmoid", seed=1)],
        clip=True,
        dtype="float64",
    )
    X, Y = rng.uniform(-1, 1, size=(90, 3)), rng.normal(size=(90, 2))
    theta = np.array(net.theta)
    V = rng.normal(size=(net.n_params, 2))
    v0 = V[:, 0] / np.linalg.norm(V[:, 0])
    K = engine  # the engine the fixture made active
    hnet = K.hessian_net(net.spec)
    assert K.hvp_state_len(hnet, 90) == K.hvp_state_len(net.spec, 90)
    runs = []
    for desc in (net.spec, hnet):
        state, value, grad = K.hvp_prepare(desc, theta, X, Y, 0)
        runs.append(
            [
                state,
                value,
                grad,
                K.hvp_apply(desc, theta, state, 90, 0, V, True),
                K.hvp_dense(desc, theta, state, 90, 0),
                *K.hvp_lanczos(desc, theta, state, 90, 0, v0, "SA", 1e-8, 20),
                *K.net_hvp(desc, theta, X, Y, 0, V),
            ]
        )
    for a, b in zip(*runs):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="loss"):
        K.net_hvp(hnet, theta, X, Y, 2, V)


def test_layer_blocks_follow_the_kernels_layout_table(engine):
    net = Network(
        [Dense((2, 3), "tanh", seed=0), Dense((3, 2), has_bias=False, seed=1), Dense((2, 1))],
        clip=False,
    )
    H = np.arange(float(net.n_params**2)).reshape(net.n_params, net.n_params)
    layout = engine.net_layout(net.spec)
    blocks = hs.layer_blocks(net, H)
    ends = [6 + 3, 9 + 6, 15 + 2 + 1]
    assert [int(w) for w in layout[:, 0]] == [0, 9, 15]
    for (w, _, _, _), end, block in zip(layout, ends, blocks):
        np.testing.assert_array_equal(block, H[w:end, w:end])
