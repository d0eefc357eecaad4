"""The instrumented loop against an independent NumPy implementation of ablation-metrics.md."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import (
    Dense,
    FitHistory,
    LinearBlockModel,
    LinearTeacherDataset,
    Network,
    train_instrumented,
)
from linncore.engine.network import TrainingDivergedWarning


def reference_run(
    W0,
    X,
    Y,
    *,
    epochs,
    batch_size,
    eta,
    rho,
    chi,
    eps,
    use_controller,
    loss_mode,
    A,
    seed,
    hessian=True,
):
    """A one-layer, no-bias, linear network trained by the spec, written out plainly."""
    W = W0.copy()
    n, m = X.shape[0], Y.shape[1]
    rng = np.random.default_rng(seed)
    out = {
        k: []
        for k in (
            "loss",
            "rmse",
            "grad_norm",
            "theta_norm",
            "curvature_proxy",
            "curvature_ema",
            "alpha",
            "alpha_would",
            "eta_eff",
            "raw_update_norm",
            "actual_update_norm",
            "update_cosine",
            "update_angle_rad",
            "update_radius_ratio",
            "hessian_lambda_max",
            "hessian_lambda_min",
            "stability_margin_lambda_raw",
            "stability_margin_lambda_ctrl",
            "spectral_radius_raw",
            "spectral_radius_ctrl",
            "weight_error_fro",
            "forward_gain_spectral",
        )
    }
    prev_g = prev_t = None
    E = 0.0
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            x, y = X[idx], Y[idx]
            B = len(idx)
            r = x @ W - y
            if loss_mode == "half_mse":
                L, G = 0.5 / B * np.sum(r * r), x.T @ r / B
            else:
                L, G = np.sum(r * r) / (B * m), 2 * x.T @ r / (B * m)
            g, theta = G.ravel(), W.ravel().copy()
            C = (
                0.0
                if prev_g is None
                else np.linalg.norm(g - prev_g) / (np.linalg.norm(theta - prev_t) + eps)
            )
            E = C if prev_g is None else (1 - rho) * E + rho * C
            ctl = max(C, E)
            aw = 1.0 if ctl == 0 else min(1.0, chi / (eta * (ctl + eps)))
            al = aw if use_controller else 1.0
            ee = al * eta
            u = -ee * g
            W = W + u.reshape(W.shape)
            a = W.ravel() - theta
            un, an = np.linalg.norm(u), np.linalg.norm(a)
            cos = a @ u / (an * un) if an > 0 and un > 0 else 0.0
            lam = np.linalg.eigvalsh(x.T @ x / B) * (1.0 if loss_mode == "half_mse" else 2.0 / m)
            lmin, lmax = lam[0], lam[-1]
            vals = dict(
                loss=L,
                rmse=np.sqrt(np.mean(r * r)),
                grad_norm=np.linalg.norm(g),
                theta_norm=np.linalg.norm(W),
                curvature_proxy=C,
                curvature_ema=E,
                alpha=al,
                alpha_would=aw,
                eta_eff=ee,
                raw_update_norm=un,
                actual_update_norm=an,
                update_cosine=cos,
                update_angle_rad=np.arccos(np.clip(cos, -1, 1)),
                update_radius_ratio=an / (un + eps),
                hessian_lambda_max=lmax,
                hessian_lambda_min=lmin,
                stability_margin_lambda_raw=eta * lmax,
                stability_margin_lambda_ctrl=ee * lmax,
                spectral_radius_raw=max(abs(1 - eta * lmin), abs(1 - eta * lmax)),
                spectral_radius_ctrl=max(abs(1 - ee * lmin), abs(1 - ee * lmax)),
                weight_error_fro=np.linalg.norm(W - A),
                forward_gain_spectral=np.linalg.norm(W, 2),
            )
            for k, v in vals.items():
                out[k].append(float(v))
            prev_g, prev_t = g, theta
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("use_controller", [False, True])
@pytest.mark.parametrize("loss_mode", ["half_mse", "keras_mse"])
def test_every_metric_matches_the_independent_reference(engine, use_controller, loss_mode):
    ds = LinearTeacherDataset(200, 4, 3, noise=0.01, seed=1)
    net = Network([Dense((4, 3), has_bias=False, seed=2)], clip=False, dtype="float64")
    W0 = net.layers[0].weight.copy()
    # a large rate makes the controller act
    kw = dict(epochs=3, batch_size=16, eta=1.2, rho=0.05, chi=1.5, eps=1e-12)
    h = train_instrumented(
        net,
        ds.X,
        ds.Y,
        epochs=3,
        batch_size=16,
        learning_rate=1.2,
        loss_mode=loss_mode,
        use_controller=use_controller,
        reference_A=ds.A,
        seed=7,
    )
    ref = reference_run(
        W0, ds.X, ds.Y, use_controller=use_controller, loss_mode=loss_mode, A=ds.A, seed=7, **kw
    )
    assert len(h) == 3 * 13
    for k, v in ref.items():
        # arccos near 1 turns a cosine that is 1 up to rounding (1e-16) into an angle of about
        # sqrt(2e-16) ~ 1.5e-8: compare that one series at the square root of float64 epsilon
        atol = 5e-8 if k == "update_angle_rad" else 1e-12
        np.testing.assert_allclose(h[k], v, rtol=1e-9, atol=atol, err_msg=k)
    if use_controller:
        assert np.min(h.alpha) < 1.0  # the controller acted
    assert np.all(h.finite == 1) and np.all(h.diverged == 0)
    np.testing.assert_array_equal(h.epoch, np.repeat([0, 1, 2], 13))


def test_controller_off_still_logs_would_be_alpha(engine):
    ds = LinearTeacherDataset(128, 4, 2, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    h = train_instrumented(
        net,
        ds.X,
        ds.Y,
        epochs=2,
        learning_rate=3.0,
        chi=0.5,
        compute_analytic_hessian=False,
        seed=0,
    )
    assert np.all(h.alpha == 1.0) and np.min(h.alpha_would) < 1.0
    assert np.all(np.isnan(h.hessian_lambda_max))


def test_hessian_every_leaves_nan_between_computations(engine):
    ds = LinearTeacherDataset(128, 4, 2, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    h = train_instrumented(net, ds.X, ds.Y, epochs=1, batch_size=16, hessian_every=3, seed=0)
    computed = ~np.isnan(h.hessian_lambda_max)
    np.testing.assert_array_equal(computed, np.arange(8) % 3 == 0)
    assert np.all(np.isnan(h.stability_margin_lambda_raw[~computed]))


def test_divergence_stops_the_run_and_keeps_the_history(engine):
    ds = LinearTeacherDataset(256, 4, 2, input_scale=3.0, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    with pytest.warns(TrainingDivergedWarning, match="diverged at step"):
        h = train_instrumented(
            net, ds.X, ds.Y, epochs=50, learning_rate=5.0, compute_analytic_hessian=False, seed=0
        )
    assert h.diverged[-1] == 1 and np.all(h.diverged[:-1] == 0)
    assert len(h) < 50 * 8 and "diverged" in h.stop_reason
    assert h.summary()["diverged"] == 1.0


def test_same_seed_same_history_and_reinitialized_models_start_equal(engine):
    ds = LinearTeacherDataset(128, 4, 2, seed=3)
    model = LinearBlockModel(ds, num_hidden=[], use_bias=False, seed=5)
    a = model.train_instrumented(epochs=2, seed=11)
    model.reinitialize_weights()
    b = model.train_instrumented(epochs=2, seed=11, use_controller=True, learning_rate=0.05)
    for k in a:
        np.testing.assert_array_equal(
            np.nan_to_num(a[k], nan=-7.0), np.nan_to_num(b[k], nan=-7.0), err_msg=k
        )


def test_fit_history_saves_and_loads_without_loss(engine, tmp_path):
    ds = LinearTeacherDataset(64, 3, 2, seed=0)
    net = Network([Dense((3, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    h = train_instrumented(net, ds.X, ds.Y, epochs=1, reference_A=ds.A, seed=4, hessian_every=2)
    path = tmp_path / "run.npz"
    h.save(path)
    back = FitHistory.load(path)
    assert back.keys() == h.keys() and back.config == h.config and back.seed == 4
    for k in h:
        np.testing.assert_array_equal(back[k], h[k])
    assert h["loss"] is h.loss and h.compare(back)["final_loss"]["diff"] == 0.0


def test_bad_arguments_are_named(engine):
    ds = LinearTeacherDataset(16, 2, 1, seed=0)
    net = Network([Dense((2, 1), seed=0)], clip=False, dtype="float64")
    with pytest.raises(ValueError, match="loss_mode: expected 'half_mse' or 'keras_mse'"):
        train_instrumented(net, ds.X, ds.Y, loss_mode="l1")
    with pytest.raises(ValueError, match=r"reference_A: expected shape \(2, 1\)"):
        train_instrumented(net, ds.X, ds.Y, reference_A=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="learning_rate"):
        train_instrumented(net, ds.X, ds.Y, learning_rate=0.0)
    with pytest.raises(TypeError, match="net: expected a linncore.Network"):
        train_instrumented(object(), ds.X, ds.Y)


def _on_grid_net(ds, fmt, seed=0):
    from linncore.fixed.formats import quantize

    net = Network(
        [Dense((ds.X.shape[1], ds.Y.shape[1]), has_bias=False, seed=seed)],
        clip=False,
        dtype="float64",
    )
    net.layers[0].weight[...] = quantize(net.layers[0].weight, fmt)
    return net


def test_updates_that_underflow_are_reported_as_silent_death(engine):
    from linncore.fixed.formats import FixedFormat

    ds = LinearTeacherDataset(256, 4, 2, seed=0)
    fmt = FixedFormat.parse("fixed<8,1>")  # lsb 2^-7; every update below is under half an lsb
    pd = {"default": {"weight": str(fmt), "update": str(fmt)}}
    net = _on_grid_net(ds, fmt)
    before = net.theta.copy()
    h = train_instrumented(
        net,
        ds.X,
        ds.Y,
        epochs=4,
        learning_rate=0.01,
        precision_dict=pd,
        compute_analytic_hessian=False,
        seed=0,
    )
    assert np.all(h.actual_update_norm == 0) and np.all(h.raw_update_norm > 0)
    assert np.min(h.update_underflow_fraction_max) == 1.0
    np.testing.assert_array_equal(net.theta, before)
    assert np.all(h.update_cosine == 0)
    s = h.summary()
    assert (
        s["silent_death"] == 1.0
        and s["diverged"] == 0.0
        and s["max_update_underflow_fraction"] == 1.0
    )


def test_stochastic_rounding_of_updates_keeps_learning(engine):
    from linncore.fixed.formats import FixedFormat

    ds = LinearTeacherDataset(256, 4, 2, seed=0)
    fmt = FixedFormat.parse("fixed<8,1>")
    pd = {"default": {"weight": str(fmt), "update": "fixed<8,1,STOCH,SAT>"}}
    net = _on_grid_net(ds, fmt)
    h = train_instrumented(
        net,
        ds.X,
        ds.Y,
        epochs=20,
        learning_rate=0.01,
        precision_dict=pd,
        compute_analytic_hessian=False,
        reference_A=ds.A,
        seed=0,
    )
    assert np.max(h.raw_update_norm) < fmt.lsb  # the same regime as the silent-death case
    assert np.mean(h.actual_update_norm > 0) > 0.3
    assert h.weight_error_fro[-1] < 0.7 * h.weight_error_fro[0]
    assert h.summary()["silent_death"] == 0.0
    assert 0 < np.max(h.update_underflow_fraction_max) <= 1


def test_quantized_run_logs_rail_pressure(engine):
    ds = LinearTeacherDataset(128, 4, 2, teacher_scale=0.9, seed=1)
    pd = {
        "default": {
            "weight": "fixed<8,1>",
            "gradient": "fixed<8,0>",
            "update": "fixed<16,0>",
            "input": "fixed<8,1>",
            "accumulator": "fixed<16,2>",
            "activation": "fixed<12,2>",
        }
    }
    net = Network(
        [Dense((4, 8), "tanh", seed=1), Dense((8, 2), seed=2)], clip=True, dtype="float64"
    )
    h = train_instrumented(net, ds.X, ds.Y, epochs=2, learning_rate=0.5, precision_dict=pd, seed=3)
    for k in (
        "weight_saturation_fraction_max",
        "weight_near_rail_fraction_max",
        "gradient_saturation_fraction_max",
        "gradient_near_rail_fraction_max",
        "update_saturation_fraction_max",
        "update_underflow_fraction_max",
    ):
        assert np.all((h[k] >= 0) & (h[k] <= 1)), k
    # stored kernels stay on the fixed<8,1> grid (the config gives biases no format)
    for layer in net.layers:
        codes = layer.weight * 2**7
        np.testing.assert_array_equal(codes, np.round(codes))
    assert not np.array_equal(net.layers[0].bias * 2**7, np.round(net.layers[0].bias * 2**7))
    assert np.all(np.isfinite(h.hessian_lambda_max))


def test_precision_dict_with_a_missing_layer_or_field_fails_before_training(engine):
    ds = LinearTeacherDataset(32, 2, 1, seed=0)
    net = Network([Dense((2, 1), seed=0)], clip=False, dtype="float64")
    before = net.theta.copy()
    with pytest.raises(ValueError, match="dense3"):
        train_instrumented(net, ds.X, ds.Y, precision_dict={"dense3": {"weight": "fixed<8,1>"}})
    with pytest.raises(ValueError, match="unknown field 'weights'"):
        train_instrumented(net, ds.X, ds.Y, precision_dict={"dense0": {"weights": "fixed<8,1>"}})
    np.testing.assert_array_equal(net.theta, before)


def test_both_hessian_ends_of_a_deep_net_are_the_librarys(engine):
    """The loop's per-step extremes are lambda_min and lambda_max bit for bit (one Lanczos)."""
    from linncore import hessian as hs

    ds = LinearTeacherDataset(96, 4, 2, seed=0)
    net = Network(
        [Dense((4, 16), "tanh", seed=0), Dense((16, 16), "tanh", seed=1), Dense((16, 2), seed=2)],
        clip=False,
        dtype="float64",
    )
    assert net.n_params > hs.DENSE_MAX_PARAMS  # the Lanczos branch
    for s in range(0, 96, 32):
        x, y = ds.X[s : s + 32], ds.Y[s : s + 32]
        lo, hi = hs.hessian_extremes(net, x, y, "half_mse", s)
        assert lo == hs.lambda_min(net, x, y, seed=s)
        assert hi == hs.lambda_max(net, x, y, seed=s)
        ev = np.linalg.eigvalsh(hs.full_hessian(net, x, y))
        assert lo == pytest.approx(ev[0], rel=1e-6, abs=1e-9) and hi == pytest.approx(
            ev[-1], rel=1e-9
        )
