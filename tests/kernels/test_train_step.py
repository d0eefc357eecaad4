"""The one training step (float and quantization-aware) and the arguments it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from linncore._util.codes import LOSSES, OPT_ADAM, OPT_SGD, QAT_FIELDS, RAIL_NAMES
from linncore._util.kernel_args import OptimizerConfig, QuantConfig
from linncore.engine.network import NetSpec

ADAM = OptimizerConfig(
    OPT_ADAM, 0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, momentum=0.0, nesterov=False
)
MOMENTUM = OptimizerConfig(
    OPT_SGD, 0.05, beta_1=0.0, beta_2=0.0, epsilon=0.0, momentum=0.9, nesterov=True
)


def _spec(sizes=(3, 8, 6, 2), acts=(2, 1, 0), bias=(1, 0, 1), clip=False, bn=None):
    extra = (
        {}
        if bn is None
        else dict(
            bn=np.array(bn, np.int32),
            bn_momentum=np.full(len(acts), 0.9),
            bn_epsilon=np.full(len(acts), 1e-3),
        )
    )
    return NetSpec(
        np.array(sizes, np.int64), np.array(acts, np.int32), np.array(bias, np.int32), clip, **extra
    )


def _n_params(spec):
    L = len(spec.acts)
    return sum(int(spec.sizes[l] + spec.has_bias[l]) * int(spec.sizes[l + 1]) for l in range(L))


def _float_quant(L):
    """Quantization with every field float: the hook is there, nothing is quantized."""
    n = len(QAT_FIELDS)
    return QuantConfig(
        np.zeros((L, n, 5), np.int32), np.zeros((L, n), np.int32), seed=7, near_rail=0.9
    )


def _epoch(engine, spec, theta, X, Y, **kw):
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    args = dict(
        perm=None,
        batch_size=16,
        loss=LOSSES["mse"],
        optimizer=ADAM,
        m=m,
        v=v,
        step=0,
        clip_params=False,
    )
    args.update(kw)
    out = engine.train_epoch(spec, theta, X, Y, **args)
    return out, m, v


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("opt", [ADAM, MOMENTUM])
def test_step_with_every_field_float_is_the_float_step_bit_for_bit(engine, rng, dt, clip, opt):
    spec = _spec(clip=clip)
    theta0 = (rng.normal(size=_n_params(spec)) * 0.6).astype(dt)
    X, Y = rng.normal(size=(70, 3)).astype(dt), rng.normal(size=(70, 2)).astype(dt)
    perm = rng.permutation(70).astype(np.int64)
    a, b = theta0.copy(), theta0.copy()
    rail = np.zeros((5, len(RAIL_NAMES)))
    ra, ma, va = _epoch(engine, spec, a, X, Y, perm=perm, optimizer=opt, clip_params=clip)
    rb, mb, vb = _epoch(
        engine,
        spec,
        b,
        X,
        Y,
        perm=perm,
        optimizer=opt,
        clip_params=clip,
        quant=_float_quant(3),
        rail=rail,
    )
    assert ra == rb and ra[0] == 0 and ra[2:] == (70, 5)
    for x, y in ((a, b), (ma, mb), (va, vb)):
        np.testing.assert_array_equal(x, y)
    assert np.all(np.isnan(rail))  # no role is quantized
    assert not np.array_equal(a, theta0)


def test_layout_table_matches_twin(core, twin):
    spec = _spec(sizes=(3, 5, 4, 2), acts=(2, 1, 0), bias=(1, 0, 1), bn=(1, 0, 1))
    table = core.net_layout(spec)
    np.testing.assert_array_equal(table, twin.net_layout(spec))
    # kernel, bias, gamma/beta per layer; the moving statistics in their own vector
    np.testing.assert_array_equal(table, [[0, 15, 20, 0], [30, -1, -1, -1], [50, 58, 60, 10]])


def test_unknown_loss_code_is_refused_by_both_engines(engine, rng):
    spec = _spec()
    theta = rng.normal(size=_n_params(spec))
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="loss: unknown loss code 9"):
        _epoch(engine, spec, theta, X, Y, loss=9)
    with pytest.raises(ValueError, match="loss: unknown loss code -1"):
        engine.net_loss_grad(spec, theta, X, Y, -1)
    with pytest.raises(ValueError, match="loss: unknown loss code 3"):
        engine.loss_grad(3, X[:, :2], Y)


@pytest.mark.parametrize("bad", [70, -1])
def test_perm_out_of_range_is_refused_by_both_engines(engine, rng, bad):
    spec = _spec()
    theta = rng.normal(size=_n_params(spec))
    X, Y = rng.normal(size=(70, 3)), rng.normal(size=(70, 2))
    perm = np.arange(70, dtype=np.int64)
    perm[5] = bad
    before = theta.copy()
    with pytest.raises(ValueError, match=r"perm: expected indices in \[0, 70\)"):
        _epoch(engine, spec, theta, X, Y, perm=perm)
    np.testing.assert_array_equal(theta, before)


def test_optimizer_must_be_named(engine, rng):
    spec = _spec()
    theta = rng.normal(size=_n_params(spec))
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    with pytest.raises(TypeError, match="optimizer: expected an OptimizerConfig, got tuple"):
        _epoch(engine, spec, theta, X, Y, optimizer=tuple(ADAM))
    with pytest.raises(ValueError, match=r"optimizer\.kind"):
        _epoch(engine, spec, theta, X, Y, optimizer=ADAM._replace(kind=5))


def test_training_arguments_are_keyword_only(engine, rng):
    spec = _spec()
    theta = rng.normal(size=_n_params(spec))
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    with pytest.raises(TypeError):
        engine.train_epoch(spec, theta, X, Y, None, 16, 0, ADAM, m, v, 0, False)


def test_quantized_batchnorm_is_refused_by_both_engines(engine, rng):
    spec = _spec(sizes=(3, 4, 2), acts=(2, 0), bias=(1, 1), bn=(1, 0))
    theta = rng.normal(size=_n_params(spec) + 8)
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="quant: quantization-aware training of batch-normalised"):
        _epoch(engine, spec, theta, X, Y, quant=_float_quant(2), bn_state=np.zeros(8))
