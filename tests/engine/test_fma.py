"""linncore.set_fma: the opt-in fused multiply-add products, through the public API.

Training with them gives other bits than the default products (one rounding per term instead
of two), the same bits for 1, 2 and 3 threads and from run to run, and weights close to the
default ones; turned off, the default bits come back.  The kernels' own test
(tests/kernels/test_products.py) pins the products to the C library's fused sums."""

from __future__ import annotations

import numpy as np
import pytest

import linncore as lc


@pytest.fixture
def fma(core):
    if not lc.fma_available():
        pytest.skip("no FMA products in this build or on this CPU")
    threads = lc.get_num_threads()
    yield
    lc.set_fma(False)
    lc.set_num_threads(threads)


def _fit(dtype, threads, fused, epochs=3):
    lc.set_num_threads(threads)
    lc.set_fma(fused)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (256, 5)).astype(dtype)
    Y = np.stack([np.sin(X.sum(1)), np.cos(X[:, 0] * X[:, 1])], 1).astype(dtype)
    net = lc.Network(
        [
            lc.Dense((5, 70), "relu", seed=0),
            lc.Dense((70, 40), "tanh", seed=1),
            lc.Dense((40, 2), "linear", seed=2),
        ],
        dtype=dtype,
    )
    h = net.fit(X, Y, epochs=epochs, batch_size=32, verbose=0, seed=0, validation_split=0.25)
    return net.theta.copy(), net.predict(X), h.history["val_loss"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_training_is_the_same_for_any_thread_count(fma, dtype):
    default = _fit(dtype, 1, False)
    fused = [_fit(dtype, t, True) for t in (1, 2, 3, 1)]
    for theta, pred, val in fused[1:]:
        assert theta.tobytes() == fused[0][0].tobytes()
        assert pred.tobytes() == fused[0][1].tobytes()
        assert val == fused[0][2]
    assert fused[0][0].tobytes() != default[0].tobytes()  # other bits ...
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(fused[0][0], default[0], rtol=tol, atol=tol)  # ... close ones
    again = _fit(dtype, 2, False)
    assert again[0].tobytes() == default[0].tobytes()  # off: the default bits again


def test_set_fma_checks_its_argument(core):
    for bad in ("yes", 0.5, None, 2, np.array([1, 0]), [True]):
        with pytest.raises(TypeError, match="on: expected True or False"):
            lc.set_fma(bad)
    assert lc.get_fma() is False
    lc.set_fma(np.False_)
    lc.set_fma(0)
    assert lc.get_fma() is False


def test_without_the_compiled_core_there_are_no_fma_products(monkeypatch):
    from linncore import _backend

    monkeypatch.setattr(_backend, "_native", lambda: None)
    assert lc.fma_available() is False and lc.get_fma() is False
    with pytest.raises(ValueError, match="compiled core"):
        lc.set_fma(True)
    lc.set_fma(False)  # nothing to turn off: fine
