"""Every compiled dense/optimizer kernel against its NumPy twin."""

from __future__ import annotations

import numpy as np
import pytest

from linncore._util.codes import ACTIVATIONS, LOSSES, OPT_ADAM, OPT_SGD
from linncore._util.kernel_args import OptimizerConfig
from linncore.engine.network import NetSpec

# float64: within 1e-12 relative (summation order differs from BLAS). float32: a few ulps
# of the values involved, accumulated over at most ~40 terms.
TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}
DTYPES = [np.float64, np.float32]
ACTS = sorted(ACTIVATIONS.values())


def _close(a, b, dt):
    np.testing.assert_allclose(a, b, **TOL[dt])


def _spec(sizes, acts, has_bias, clip):
    return NetSpec(
        np.array(sizes, np.int64), np.array(acts, np.int32), np.array(has_bias, np.int32), clip
    )


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_act_forward_matches_twin(core, twin, rng, dt, act):
    z = (rng.normal(size=(7, 9)) * 3).astype(dt)
    _close(core.act_forward(act, z), twin.act_forward(act, z), dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_dense_forward_and_backward_match_twin(core, twin, rng, dt, act, clip, bias):
    x = rng.normal(size=(13, 5)).astype(dt)
    W = rng.normal(size=(5, 11)).astype(dt)
    b = rng.normal(size=11).astype(dt) if bias else None
    fc, ft = core.dense_forward(x, W, b, act, clip), twin.dense_forward(x, W, b, act, clip)
    for got, want in zip(fc, ft):
        _close(got, want, dt)
    z, h, _ = ft
    da = rng.normal(size=z.shape).astype(dt)
    bc = core.dense_backward(x, W, z, h, da, act, clip, bias, True)
    bt = twin.dense_backward(x, W, z, h, da, act, clip, bias, True)
    for got, want in zip(bc, bt):
        if want is None:
            assert got is None
        else:
            _close(got, want, dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("loss", sorted(LOSSES.values()))
def test_loss_grad_matches_twin(core, twin, rng, dt, loss):
    f = rng.normal(size=(17, 3)).astype(dt)
    y = rng.normal(size=(17, 3)).astype(dt)
    vc, dc = core.loss_grad(loss, f, y)
    vt, dtw = twin.loss_grad(loss, f, y)
    assert vc == pytest.approx(vt, rel=1e-12)
    _close(dc, dtw, dt)


def _random_net(rng, dt, clip, sizes=(3, 8, 6, 2), acts=(2, 1, 0), bias=(1, 0, 1)):
    spec = _spec(sizes, acts, bias, clip)
    P = sum(sizes[i] * sizes[i + 1] + (sizes[i + 1] if bias[i] else 0) for i in range(len(acts)))
    theta = (rng.normal(size=P) * 0.6).astype(dt)
    return spec, theta


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("clip", [False, True])
def test_net_forward_and_loss_grad_match_twin(core, twin, rng, dt, clip):
    spec, theta = _random_net(rng, dt, clip)
    X = rng.normal(size=(300, 3)).astype(dt)  # more than one 256-row chunk
    Y = rng.normal(size=(300, 2)).astype(dt)
    _close(core.net_forward(spec, theta, X), twin.net_forward(spec, theta, X), dt)
    for loss in LOSSES.values():
        vc, gc, dxc = core.net_loss_grad(spec, theta, X, Y, loss, True)
        vt, gt, dxt = twin.net_loss_grad(spec, theta, X, Y, loss, True)
        assert vc == pytest.approx(vt, rel=1e-12 if dt == np.float64 else 1e-5)
        _close(gc, gt, dt)
        _close(dxc, dxt, dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize(
    "opt",
    [
        OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False),
        OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.0, False),
        OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, False),
        OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, True),
    ],
)
def test_optim_step_matches_twin_bit_for_bit(core, twin, rng, dt, opt):
    P = 50
    states = []
    for mod in (core, twin):
        r = np.random.default_rng(1)
        theta, m, v = (r.normal(size=P).astype(dt) for _ in range(3))
        v = np.abs(v)
        for t in range(1, 6):
            g = r.normal(size=P).astype(dt)
            mod.optim_step(opt, theta, g, m, v, t)
        states.append((theta, m, v))
    for got, want in zip(*states):
        if dt == np.float64:
            _close(got, want, dt)
        else:  # elementwise float32 arithmetic in the same order: equal up to libm's sqrt/pow
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize(
    "opt",
    [
        OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False),
        OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, True),
    ],
)
def test_optim_delta_is_the_step_as_an_increment(core, twin, rng, dt, opt):
    theta, g = rng.normal(size=40).astype(dt), rng.normal(size=40).astype(dt)
    for mod in (core, twin):
        m1, v1 = np.full(40, 0.1, dt), np.full(40, 0.2, dt)
        m2, v2 = m1.copy(), v1.copy()
        stepped = theta.copy()
        mod.optim_step(opt, stepped, g, m1, v1, 3)
        np.testing.assert_array_equal(theta + mod.optim_delta(opt, g, m2, v2, 3), stepped)
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(v1, v2)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("clip", [False, True])
def test_train_epoch_matches_twin(core, twin, rng, dt, clip):
    spec, theta0 = _random_net(rng, dt, clip)
    X = rng.normal(size=(70, 3)).astype(dt)
    Y = rng.normal(size=(70, 2)).astype(dt)
    perm = rng.permutation(70).astype(np.int64)
    opt = OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False)
    out = []
    for mod in (core, twin):
        theta = theta0.copy()
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        status, loss_sum, n_done, step = mod.train_epoch(
            spec,
            theta,
            X,
            Y,
            perm=perm,
            batch_size=16,
            loss=LOSSES["mse"],
            optimizer=opt,
            m=m,
            v=v,
            step=0,
            clip_params=clip,
        )
        assert (status, n_done, step) == (0, 70, 5)
        out.append((theta, m, v, loss_sum))
    tol = dict(rtol=1e-10, atol=1e-12) if dt == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for got, want in zip(out[0][:3], out[1][:3]):
        np.testing.assert_allclose(got, want, **tol)
    assert out[0][3] == pytest.approx(out[1][3], rel=tol["rtol"])


def test_train_epoch_stops_at_nonfinite_loss_keeping_weights(engine, rng):
    spec, theta = _random_net(rng, np.float64, False, sizes=(1, 1), acts=(0,), bias=(1,))
    X = np.array([[1.0], [1e200], [1.0]])  # the second batch overflows the loss
    Y = np.zeros((3, 1))
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    opt = OptimizerConfig(OPT_SGD, 0.1, 0, 0, 0, 0.0, False)
    theta_before = theta.copy()
    status, _, n_done, step = engine.train_epoch(
        spec,
        theta,
        X,
        Y,
        perm=None,
        batch_size=1,
        loss=LOSSES["mse"],
        optimizer=opt,
        m=m,
        v=v,
        step=0,
        clip_params=False,
    )
    assert status == 1 and n_done == 1 and step == 1
    expected = theta_before.copy()
    engine.optim_step(
        opt, expected, engine.net_loss_grad(spec, theta_before, X[:1], Y[:1], 0)[1], m * 0, v * 0, 1
    )
    np.testing.assert_array_equal(theta, expected)
    assert np.all(np.isfinite(theta))


def test_wrapper_rejects_wrong_dtype_and_shape(core):
    W = np.zeros((2, 3))
    with pytest.raises(TypeError, match="x: expected dtype float64"):
        core.dense_forward(np.zeros((4, 2), np.float32), W, None, 0, False)
    with pytest.raises(ValueError, match="x: expected shape"):
        core.dense_forward(np.zeros((4, 5)), W, None, 0, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        core.dense_forward(np.zeros((2, 4)).T, W, None, 0, False)


def test_core_constants_match_python_codes(core):
    from linncore._util.codes import ACTIVATIONS

    assert core.constants()["N_ACTIVATIONS"] == len(ACTIVATIONS)
