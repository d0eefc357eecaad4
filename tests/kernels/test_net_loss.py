"""The validation loss in one kernel call, and the network description prepared once per fit.

``net_loss`` gives the value ``net_forward`` followed by ``loss_grad`` gives (bit for bit on
each engine; the engines agree within rounding), and ``prepare_net`` gives a description that
every kernel takes in place of the spec with the same results, checked once and the same way
on both engines.
"""

from __future__ import annotations

import numpy as np
import pytest

from linncore._util.codes import LOSSES, OPT_ADAM
from linncore._util.kernel_args import OptimizerConfig
from linncore.engine.network import NetSpec

ADAM = OptimizerConfig(
    OPT_ADAM, 0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, momentum=0.0, nesterov=False
)
# float32 sums of 40 x 2 residuals in different orders, float64 far below it
TOL = {"float32": 1e-5, "float64": 1e-12}


def _spec(bn=False, clip=True):
    sizes, acts, bias = (3, 8, 6, 2), (2, 1, 0), (1, 0, 1)
    extra = (
        dict(
            bn=np.array([1, 0, 0], np.int32),
            bn_momentum=np.full(3, 0.9),
            bn_epsilon=np.full(3, 1e-3),
        )
        if bn
        else {}
    )
    return NetSpec(
        np.array(sizes, np.int64), np.array(acts, np.int32), np.array(bias, np.int32), clip, **extra
    )


def _case(spec, dtype, engine, seed=3, n=40):
    rng = np.random.default_rng(seed)
    desc = engine.prepare_net(spec)
    theta = rng.uniform(-0.8, 0.8, desc.n_params).astype(dtype)
    X = rng.uniform(-1, 1, (n, 3)).astype(dtype)
    Y = rng.uniform(-1, 1, (n, 2)).astype(dtype)
    state = None
    if desc.n_state:
        state = np.concatenate([rng.uniform(-0.2, 0.2, 8), rng.uniform(0.5, 1.5, 8)]).astype(dtype)
    return theta, X, Y, state


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_net_loss_has_the_bits_of_forward_then_loss_on_each_engine(core, twin, dtype, loss, bn):
    spec = _spec(bn=bn)
    theta, X, Y, state = _case(spec, dtype, core)
    for engine in (core, twin):
        pieces = engine.loss_grad(LOSSES[loss], engine.net_forward(spec, theta, X, state), Y)[0]
        for given in (spec, engine.prepare_net(spec)):
            value = engine.net_loss(given, theta, X, Y, loss=LOSSES[loss], bn_state=state)
            assert isinstance(value, float)
            assert np.float64(value).tobytes() == np.float64(pieces).tobytes()


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_net_loss_equals_the_twins(core, twin, dtype, loss, bn):
    spec = _spec(bn=bn)
    theta, X, Y, state = _case(spec, dtype, core)
    got = core.net_loss(core.prepare_net(spec), theta, X, Y, loss=LOSSES[loss], bn_state=state)
    want = twin.net_loss(twin.prepare_net(spec), theta, X, Y, loss=LOSSES[loss], bn_state=state)
    assert got == pytest.approx(want, rel=TOL[dtype], abs=TOL[dtype])


def test_net_loss_refuses_what_the_other_kernels_refuse(engine):
    spec = _spec(bn=True)
    theta, X, Y, state = _case(spec, "float64", engine)
    with pytest.raises(ValueError, match="loss: unknown loss code 9"):
        engine.net_loss(spec, theta, X, Y, loss=9, bn_state=state)
    with pytest.raises(ValueError, match="bn_state: a network with batch normalisation"):
        engine.net_loss(spec, theta, X, Y, loss=LOSSES["mse"])
    with pytest.raises(ValueError, match="Y: expected shape"):
        engine.net_loss(spec, theta, X, Y[:, :1].copy(), loss=LOSSES["mse"], bn_state=state)


def test_prepared_descriptions_agree_between_engines_and_are_read_only(core, twin):
    for spec in (_spec(), _spec(bn=True)):
        a, b = core.prepare_net(spec), twin.prepare_net(spec)
        np.testing.assert_array_equal(a.layout, core.net_layout(spec))
        np.testing.assert_array_equal(a.layout, b.layout)
        assert (a.n_params, a.n_state) == (b.n_params, b.n_state)
        for name in ("sizes", "acts", "has_bias", "bn", "bn_momentum", "bn_epsilon"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert not getattr(a, name).flags.writeable
            assert not getattr(b, name).flags.writeable
        assert a.clip_out is b.clip_out is True
        assert core.prepare_net(a) is a and twin.prepare_net(b) is b
        assert spec.sizes.flags.writeable  # the spec's own arrays are left alone


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(sizes=np.array([3], np.int64)), "spec.sizes: expected at least two widths"),
        (dict(sizes=np.array([3, -1, 6, 2], np.int64)), "spec.sizes: widths must be >= 0"),
        (dict(acts=np.array([2, 1], np.int32)), "spec: acts and has_bias need one entry"),
        (dict(acts=np.array([2, 1, 99], np.int32)), r"spec.acts: codes must lie in \[0, "),
        (
            dict(bn=np.array([1, 0], np.int32), bn_momentum=np.ones(2), bn_epsilon=np.ones(2)),
            "spec: bn, bn_momentum and bn_epsilon need one entry per layer",
        ),
    ],
)
def test_both_engines_refuse_a_bad_spec_when_preparing_it(core, twin, bad, message):
    base = _spec()
    fields = dict(sizes=base.sizes, acts=base.acts, has_bias=base.has_bias, clip_out=base.clip_out)
    fields.update(bad)
    spec = NetSpec(**fields)
    for engine in (core, twin):
        with pytest.raises(ValueError, match=message):
            engine.prepare_net(spec)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_gives_the_same_bits_with_a_prepared_description(engine, dtype):
    spec = _spec(bn=True)
    desc = engine.prepare_net(spec)
    theta, X, Y, state = _case(spec, dtype, engine)
    np.testing.assert_array_equal(
        engine.net_forward(desc, theta, X, state), engine.net_forward(spec, theta, X, state)
    )
    a = engine.net_loss_grad(desc, theta, X, Y, LOSSES["mse"], need_dx=True)
    b = engine.net_loss_grad(spec, theta, X, Y, LOSSES["mse"], need_dx=True)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    runs = []
    for given in (desc, spec):
        t, m, v, s = theta.copy(), np.zeros_like(theta), np.zeros_like(theta), state.copy()
        out = engine.train_epoch(
            given,
            t,
            X,
            Y,
            perm=np.random.default_rng(1).permutation(len(X)).astype(np.int64),
            batch_size=8,
            loss=LOSSES["mse"],
            optimizer=ADAM,
            m=m,
            v=v,
            step=0,
            clip_params=True,
            bn_state=s,
        )
        runs.append((out, t, m, v, s))
    (out_a, *arrays_a), (out_b, *arrays_b) = runs
    assert out_a == out_b
    for p, q in zip(arrays_a, arrays_b, strict=True):
        np.testing.assert_array_equal(p, q)
