"""Quantization-aware training inside the fused epoch kernel."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import SGD, Dense, Network, _backend
from linncore._util.codes import RAIL_NAMES

FULL = {
    "default": {
        "input": "fixed<10,1>",
        "weight": "fixed<8,1>",
        "bias": "fixed<8,1>",
        "accumulator": "fixed<16,4>",
        "activation": "fixed<10,1>",
        "gradient": "fixed<12,2>",
        "update": "fixed<12,0,STOCH,SAT>",
    }
}


def _data(n=96, seed=0):
    r = np.random.default_rng(seed)
    X = r.uniform(-1, 1, (n, 3))
    return X, np.stack([np.sin(2 * X[:, 0]) * X[:, 1], X[:, 2] ** 2 - 0.3], axis=1)


def _net(dtype="float64", clip=True):
    return Network(
        [Dense((3, 8), "tanh", seed=1), Dense((8, 6), "relu", seed=2), Dense((6, 2), seed=3)],
        clip=clip,
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "sgd_nesterov"])
def test_qat_with_every_field_float_equals_plain_training_bit_for_bit(engine, dtype, optimizer):
    def opt():
        return {"adam": "adam", "sgd_momentum": SGD(0.1, 0.9), "sgd_nesterov": SGD(0.1, 0.9, True)}[
            optimizer
        ]

    X, Y = _data()
    a = _net(dtype)
    b = a.copy()
    ha = a.fit(X, Y, epochs=3, batch_size=16, optimizer=opt(), verbose=0, seed=5)
    hb = b.fit(
        X, Y, epochs=3, batch_size=16, optimizer=opt(), verbose=0, seed=5, precision={"default": {}}
    )
    np.testing.assert_array_equal(a.theta, b.theta)
    assert ha.history["loss"] == hb.history["loss"]
    assert (
        all(np.all(np.isnan(v)) for v in hb.rail.values())
        and len(hb.rail["update_underflow_fraction_max"]) == 18
    )


def test_compiled_qat_matches_its_numpy_twin(core):
    X, Y = _data()
    out = []
    for name in ("native", "numpy"):
        with _backend.use(name):
            net = _net()
            h = net.fit(
                X, Y, epochs=3, batch_size=16, optimizer=SGD(0.2), verbose=0, seed=9, precision=FULL
            )
            out.append((net.theta.copy(), h))
    (ta, ha), (tb, hb) = out
    np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-12)
    for k in RAIL_NAMES:
        np.testing.assert_array_equal(ha.rail[k], hb.rail[k])


def test_stored_parameters_sit_on_their_grids(engine):
    X, Y = _data()
    net = _net()
    h = net.fit(X, Y, epochs=2, batch_size=16, verbose=0, seed=1, precision=FULL)
    for layer in net.layers:
        for arr in (layer.weight, layer.bias):
            np.testing.assert_array_equal(arr * 128, np.round(arr * 128))
    for k in RAIL_NAMES:
        v = h.rail[k]
        assert v.shape == (12,) and np.all((v >= 0) & (v <= 1)), k


def test_stochastic_rounding_is_reproducible_from_the_seed(engine):
    X, Y = _data()
    runs = []
    pd = {
        "default": {"weight": "fixed<8,1>", "update": "fixed<8,1,STOCH,SAT>"}
    }  # updates below an lsb
    for seed in (3, 3, 4):
        net = _net()
        net.fit(
            X,
            Y,
            epochs=2,
            batch_size=16,
            verbose=0,
            seed=seed,
            shuffle=False,
            optimizer=SGD(0.02),
            precision=pd,
        )
        runs.append(net.theta.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_updates_below_half_an_lsb_underflow_and_are_reported(engine):
    X, Y = _data()
    net = _net()
    pd = {"default": {"weight": "fixed<8,1>", "update": "fixed<8,1>"}}
    net.fit(
        X, Y, epochs=1, batch_size=16, verbose=0, seed=0, optimizer=SGD(1e-4), precision=pd
    )  # onto the grid
    before = net.theta.copy()
    h = net.fit(X, Y, epochs=2, batch_size=16, verbose=0, seed=0, optimizer=SGD(1e-4), precision=pd)
    np.testing.assert_array_equal(net.theta, before)
    assert np.all(h.rail["update_underflow_fraction_max"] == 1.0)


def test_straight_through_estimator_stops_gradients_of_saturated_weights(engine):
    # fixed<4,1> holds [-1, 0.875]; a kernel entry of 0.95 is saturated in the forward pass, so
    # its gradient is zero and storage leaves it at the rail 0.875 rather than moving it
    net = Network(
        [Dense((1, 2), weight=[[0.95, 0.5]], has_bias=False)], clip=False, dtype="float64"
    )
    net.fit(
        [[1.0]],
        [[-1.0, -1.0]],
        epochs=1,
        batch_size=1,
        optimizer=SGD(0.25),
        verbose=0,
        precision={"default": {"weight": "fixed<4,1>"}},
    )
    assert net.layers[0].weight[0, 0] == 0.875
    # the unsaturated entry moved: 0.5 - 0.25 * (0.5 - (-1)) = 0.125 exactly on the grid
    assert net.layers[0].weight[0, 1] == 0.125


def test_precision_errors_come_before_training(engine):
    X, Y = _data()
    net = _net()
    before = net.theta.copy()
    with pytest.raises(ValueError, match="dense7"):
        net.fit(X, Y, verbose=0, precision={"dense7": {"weight": "fixed<8,1>"}})
    with pytest.raises(ValueError, match="'momentum' field"):
        net.fit(X, Y, verbose=0, precision={"default": {"momentum": "fixed<8,1>"}})
    np.testing.assert_array_equal(net.theta, before)
