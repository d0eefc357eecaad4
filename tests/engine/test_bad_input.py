"""Every bad input raises an error naming the argument, what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import Dense, Network


@pytest.fixture
def net():
    return Network([Dense((2, 3), "tanh", seed=0), Dense((3, 1), seed=1)])


X = np.zeros((4, 2))
Y = np.zeros((4, 1))


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.array([[np.nan, 0]] * 4), Y, r"X: expected finite values, got nan at index \(0, 0\)"),
        (
            X,
            np.array([[0.0], [np.inf], [0.0], [0.0]]),
            r"Y: expected finite values, got inf at index \(1, 0\)",
        ),
        (np.zeros((4, 3)), Y, r"X: expected 2 column\(s\), got 3"),
        (X, np.zeros((4, 2)), r"Y: expected 1 column\(s\), got 2"),
        (X, np.zeros((5, 1)), r"Y: expected 4 samples \(as many as X\), got 5"),
        (np.zeros((0, 2)), np.zeros((0, 1)), "X: expected at least one sample"),
        (np.zeros((2, 2, 2)), Y, "X: expected a 2-D array"),
        ([["a", "b"]], Y, "X: expected a numeric array"),
    ],
)
def test_fit_rejects_bad_data(net, x, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"optimizer": "rmsprop"},
            "optimizer: expected 'adam', 'sgd' or an Optimizer object, got 'rmsprop'",
        ),
        ({"loss": "huber"}, "loss: expected one of .*got 'huber'"),
        ({"batch_size": 0}, "batch_size: expected a positive integer, got 0"),
        ({"epochs": -1}, r"epochs: expected an integer in \[0, 2\*\*63 - 1\], got -1"),
        (
            {"validation_split": 1.0},
            r"validation_split: expected a number in \[0.0, 1.0\), got 1.0",
        ),
        (
            {"validation_split": 0.9},
            "validation_split: 0.9 of 4 samples leaves 0 for training and 4",
        ),
        ({"validation_data": (X,)}, "validation_data: expected a pair"),
        (
            {"validation_data": (np.zeros((2, 5)), Y[:2])},
            r"validation_data\[0\]: expected 2 column",
        ),
        (
            {"callbacks": [object()]},
            r"callbacks\[0\]: expected an object with Keras callback hooks",
        ),
    ],
)
def test_fit_rejects_bad_arguments(net, kwargs, match):
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(X, Y, verbose=0, **kwargs)


def test_predict_rejects_nan(net):
    with pytest.raises(ValueError, match="X: expected finite values"):
        net.predict([[0.0, np.nan]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (2, 3), "activation": "swish"}, "activation: expected one of .*got 'swish'"),
        ({"shape": (2,)}, r"shape: expected a pair \(n_in, n_out\), got \(2,\)"),
        ({"shape": (0, 3)}, r"shape\[0\] \(n_in\): expected a positive integer, got 0"),
        (
            {"shape": (2, 3), "weight": np.zeros((3, 2))},
            r"weight: expected shape \(2, 3\), got \(3, 2\)",
        ),
        ({"shape": (2, 3), "bias": np.zeros(2)}, r"bias: expected shape \(3,\), got \(2,\)"),
        ({"shape": (2, 3), "weight": [[np.nan] * 3] * 2}, "weight: expected finite values"),
        (
            {"shape": (2, 3), "has_bias": False, "bias": np.zeros(3)},
            "bias: a layer with has_bias=False takes no bias",
        ),
        (
            {"shape": (2, 3), "weight_init": "orthogonal"},
            "weight_init: expected a callable or one of",
        ),
    ],
)
def test_dense_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Dense(**kwargs)


def test_network_rejects_mismatched_layers():
    with pytest.raises(
        ValueError,
        match=r"layers\[1\]: expected 3 inputs \(the outputs of layers\[0\]\), got shape \(4, 1\)",
    ):
        Network([Dense((2, 3)), Dense((4, 1))])
    with pytest.raises(ValueError, match="layers: expected a non-empty sequence"):
        Network([])
    with pytest.raises(TypeError, match=r"layers\[0\]: expected a Dense layer, got str"):
        Network(["dense"])
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64', got 'float16'"):
        Network([Dense((1, 1))], dtype="float16")


def test_set_weights_rejects_wrong_shapes_and_changes_nothing(net):
    before = net.theta.copy()
    w = net.get_weights()
    with pytest.raises(ValueError, match=r"weights: expected 4 arrays .*got 3"):
        net.set_weights(w[:3])
    bad = list(w)
    bad[2] = np.zeros((1, 3))
    with pytest.raises(
        ValueError, match=r"weights\[2\] \(dense1 kernel\): expected shape \(3, 1\), got \(1, 3\)"
    ):
        net.set_weights(bad)
    bad = list(w)
    bad[3] = np.array([np.nan])
    with pytest.raises(ValueError, match=r"weights\[3\] \(dense1 bias\): expected finite values"):
        net.set_weights(bad)
    np.testing.assert_array_equal(net.theta, before)


def test_loss_and_grad_rejects_unknown_loss(net):
    with pytest.raises(ValueError, match="loss: expected one of"):
        net.loss_and_grad(X, Y, loss="cross_entropy")
