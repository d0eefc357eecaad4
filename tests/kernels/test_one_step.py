"""The training step has one body, so its callers agree bit for bit.

The serial step, the row and parameter parts of the threaded step and the network's loss
gradient run the same functions on different ranges of rows and of theta.  These cases
complement tests/kernels/test_train_threads.py: batch sizes that stay serial (7) or leave a
short last row part (50, 100), a short last batch, SGD without parameter clipping, float64,
and the loss gradient of ``net_loss_grad`` against the training step's.
"""

from __future__ import annotations

import numpy as np
import pytest

from linncore._util.codes import LOSSES, OPT_SGD, QAT_FIELDS, RAIL_NAMES
from linncore._util.kernel_args import OptimizerConfig, QuantConfig
from linncore.engine.network import NetSpec

MOMENTUM = OptimizerConfig(
    OPT_SGD, 0.02, beta_1=0.0, beta_2=0.0, epsilon=0.0, momentum=0.8, nesterov=False
)
SIZES, ACTS = (100, 80, 64, 64, 32, 3), (1, 2, 3, 1, 0)  # relu, tanh, sigmoid, relu, linear
N = 230  # a short last batch for every batch size below
MSE = LOSSES["mse"]


def _case(dt, seed=3):
    spec = NetSpec(
        np.array(SIZES, np.int64),
        np.array(ACTS, np.int32),
        np.array([1, 0, 1, 1, 1], np.int32),
        False,
    )
    P = sum((a + b) * c for a, b, c in zip(SIZES[:-1], spec.has_bias, SIZES[1:]))
    r = np.random.default_rng(seed)
    theta = r.normal(0.0, 0.15, P).astype(dt)
    X = r.uniform(-1, 1, (N, SIZES[0])).astype(dt)
    Y = r.uniform(-0.5, 0.5, (N, SIZES[-1])).astype(dt)
    return spec, theta, X, Y, r.permutation(N).astype(np.int64)


def _per_row_fields(L):
    """Input, accumulator and activation on 14-bit nearest-rounding saturating formats."""
    on = np.zeros((L, len(QAT_FIELDS)), np.int32)
    fmts = np.zeros((L, len(QAT_FIELDS), 5), np.int32)
    for name in ("input", "accumulator", "activation"):
        k = QAT_FIELDS.index(name)
        on[:, k] = 1
        fmts[:, k] = (14, 3, 1, 2, 0)
    return QuantConfig(fmts, on, seed=5, near_rail=0.8)


@pytest.fixture
def threads(core):
    before = core.get_num_threads()
    yield core.set_num_threads
    core.set_num_threads(before)


@pytest.mark.parametrize("bs", [7, 50, 100])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("quantized", [False, True])
def test_epoch_is_the_serial_step_for_every_thread_count(core, threads, bs, dt, quantized):
    spec, theta0, X, Y, perm = _case(dt)
    quant = _per_row_fields(len(ACTS)) if quantized else None
    # the epoch's steps from the serial kernels: the gradient half (lc_train_loss_grad), the
    # optimizer increment and the update half (lc_train_apply)
    want, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    common = dict(quant=quant, rail=np.zeros(len(RAIL_NAMES)))
    losses = []
    for step, lo in enumerate(range(0, N, bs)):
        rows = perm[lo : lo + bs]
        status, value, grad = core.qat_loss_grad(
            spec, want, X[rows], Y[rows], loss=MSE, step=step, **common
        )
        assert status == 0
        delta = core.optim_delta(MOMENTUM, grad, m, v, step + 1)
        core.qat_apply(spec, want, delta, step=step, clip_params=False, **common)
        losses.append(value * len(rows))
    epoch = dict(batch_size=bs, loss=MSE, optimizer=MOMENTUM, clip_params=False, quant=quant)
    for t in (1, 2, 3):
        threads(t)
        got, gm, gv = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
        out = core.train_epoch(spec, got, X, Y, perm=perm, m=gm, v=gv, step=0, **epoch)
        assert out == (0, sum(losses), N, len(losses))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(gm, m)
    assert not np.array_equal(want, theta0)


@pytest.mark.parametrize("loss", ["mse", "half_mse", "mae"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_network_gradient_is_the_training_steps(core, loss, dt):
    spec, theta, X, Y, _ = _case(dt, seed=8)
    X, Y, code = X[:61], Y[:61], LOSSES[loss]
    value, grad, dX = core.net_loss_grad(spec, theta, X, Y, code, need_dx=True)
    rail = np.zeros(len(RAIL_NAMES))
    step = core.qat_loss_grad(spec, theta, X, Y, loss=code, quant=None, step=0, rail=rail)
    assert step[:2] == (0, value)
    np.testing.assert_array_equal(grad, step[2])
    plain = core.net_loss_grad(spec, theta, X, Y, code)
    np.testing.assert_array_equal(plain[1], grad)  # asking for dX changes no gradient bit
    assert dX.shape == X.shape and np.all(np.isfinite(dX)) and np.any(dX != 0)
