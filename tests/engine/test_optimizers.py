"""Single optimizer steps against values computed by hand from the Keras 3 rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linncore import SGD, Adam, Dense, Network
from linncore._util.codes import OPT_ADAM, OPT_SGD
from linncore._util.kernel_args import OptimizerConfig


def _one_param_net(w, dtype="float64"):
    # f(x) = w x, loss mse on one sample x = 1, y = 0: L = w^2, g = 2 w
    return Network([Dense((1, 1), weight=[[w]], has_bias=False)], clip=False, dtype=dtype)


def test_adam_matches_keras_update_rule(engine):
    net = _one_param_net(0.5)
    opt = Adam(learning_rate=0.1)
    net.fit([[1.0]], [[0.0]], epochs=2, batch_size=1, optimizer=opt, shuffle=False, verbose=0)
    # by hand, Keras 3: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    # a = lr sqrt(1 - b2^t) / (1 - b1^t); w -= a m / (sqrt(v) + eps)
    w, m, v = 0.5, 0.0, 0.0
    for t in (1, 2):
        g = 2 * w
        m += (g - m) * (1 - 0.9)
        v += (g * g - v) * (1 - 0.999)
        a = 0.1 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w -= a * m / (math.sqrt(v) + 1e-7)
    assert net.theta[0] == pytest.approx(w, rel=1e-14)
    assert opt.iterations == 2


def test_adam_first_step_moves_by_learning_rate(engine):
    # a known property of the rule: the first step has size lr * g/(|g| + eps/sqrt(1-b2)) ~ lr
    net = _one_param_net(0.5)
    net.fit([[1.0]], [[0.0]], epochs=1, batch_size=1, optimizer=Adam(learning_rate=0.01), verbose=0)
    assert net.theta[0] == pytest.approx(0.49, abs=1e-6)


def test_sgd_plain_matches_keras_update_rule(engine):
    net = _one_param_net(0.5)
    net.fit([[1.0]], [[0.0]], epochs=1, batch_size=1, optimizer=SGD(learning_rate=0.1), verbose=0)
    assert net.theta[0] == pytest.approx(0.5 - 0.1 * 1.0, rel=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_keras_update_rule(engine, nesterov):
    net = _one_param_net(0.5)
    net.fit(
        [[1.0]],
        [[0.0]],
        epochs=3,
        batch_size=1,
        shuffle=False,
        verbose=0,
        optimizer=SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov),
    )
    w, vel = 0.5, 0.0
    for _ in range(3):
        g = 2 * w
        vel = 0.9 * vel - 0.1 * g
        w = w + (0.9 * vel - 0.1 * g if nesterov else vel)
    assert net.theta[0] == pytest.approx(w, rel=1e-14)


def test_optimizer_state_carries_over_between_fit_calls(engine):
    a, b = _one_param_net(0.5), _one_param_net(0.5)
    opt_a, opt_b = Adam(0.05), Adam(0.05)
    a.fit([[1.0]], [[0.0]], epochs=4, batch_size=1, optimizer=opt_a, verbose=0)
    b.fit([[1.0]], [[0.0]], epochs=2, batch_size=1, optimizer=opt_b, verbose=0)
    b.fit([[1.0]], [[0.0]], epochs=2, batch_size=1, optimizer=opt_b, verbose=0)
    assert a.theta[0] == b.theta[0]


def test_keras_defaults():
    assert Adam().get_config() == {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
    }
    assert SGD().get_config() == {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": -1}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"beta_1": 1.0}, "beta_1"),
        ({"epsilon": 0}, "epsilon"),
        ({"amsgrad": True}, "amsgrad"),
    ],
)
def test_adam_rejects_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam(**kwargs)


def test_parameters_are_clipped_after_each_step(engine):
    net = Network([Dense((1, 1), weight=[[0.99]], has_bias=False)], clip=True, dtype="float64")
    net.fit([[1.0]], [[10.0]], epochs=1, batch_size=1, optimizer=SGD(learning_rate=1.0), verbose=0)
    assert net.theta[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_moments_of_a_dead_unit_decay_to_zero_not_to_subnormals(engine, dtype, momentum):
    # A parameter whose gradient stays zero (a dead relu unit): its moments decay geometrically,
    # and in IEEE arithmetic a decaying moment gets stuck a few units above zero in the
    # subnormal range, where every later step is slow on many x86 cores.  It must reach zero.
    opt = (
        OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False)
        if momentum is None
        else OptimizerConfig(OPT_SGD, 0.01, 0.0, 0.0, 0.0, momentum, False)
    )
    tiny = np.finfo(dtype).tiny
    theta = np.full(8, 0.5, dtype)
    m = np.array([tiny * 4, -tiny * 4, tiny * 2**-20, 5 * tiny * 2**-23, 0.1, 1e-3, 0, 0], dtype)
    v = np.array([tiny * 4, tiny * 2**-10, 0.1, 1e-3, 1e-3, 1e-5, 0, 0], dtype)
    g = np.zeros(8, dtype)
    g[6] = 0.25  # a live parameter keeps a normal moment
    steps = 7_500 if dtype == np.float64 else 1_200  # 0.1 * 0.9^t passes below tiny
    for t in range(1, steps):
        engine.optim_step(opt, theta, g, m, v, t)
    for arr in (m, v) if momentum is None else (m,):
        sub = (arr != 0) & (np.abs(arr) < tiny)
        assert not sub.any(), arr
    assert m[6] != 0 and np.all(m[:6] == 0)
    assert np.all(theta[[0, 1, 2, 3, 7]] == dtype(0.5))
