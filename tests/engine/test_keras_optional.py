"""Optional: linncore against Keras 3 itself (skipped unless Keras is installed)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from linncore import SGD, BatchNormalization, Dense, Network

pytestmark = pytest.mark.optional
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")


def test_batch_normalisation_tracks_keras_epoch_by_epoch():
    r = np.random.default_rng(0)
    X = r.uniform(-1, 1, (96, 3)).astype(np.float32)
    Y = np.stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]], 1).astype(np.float32)
    km = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    net = Network(
        [
            Dense((3, 5), "tanh"),
            BatchNormalization(),
            Dense((5, 4), "relu"),
            BatchNormalization(),
            Dense((4, 2)),
        ],
        clip=False,
    )
    net.set_weights(km.get_weights())
    hk = km.fit(
        X, Y, epochs=5, batch_size=16, shuffle=False, verbose=0, validation_data=(X[:32], Y[:32])
    )
    hl = net.fit(
        X,
        Y,
        epochs=5,
        batch_size=16,
        shuffle=False,
        verbose=0,
        optimizer=SGD(0.1),
        validation_data=(X[:32], Y[:32]),
    )
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(hl.history["val_loss"], hk.history["val_loss"], rtol=1e-4)
    for a, b in zip(net.get_weights(), km.get_weights()):  # float32 rounding over 30 steps
        np.testing.assert_allclose(a, b, atol=5e-6)


# -- EarlyStopping against Keras's own --------------------------------------------------------
_STOP_CASES = [
    ([1.0, 0.9, 0.95, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dict(monitor="loss", patience=3)),
    ([0.9, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5], dict(monitor="loss", patience=2, baseline=0.1)),
    ([0.9, 0.05, 0.06, 0.07, 0.08, 0.09], dict(monitor="loss", patience=2, baseline=0.1)),
    ([0.9, 0.9, 0.9, 0.9], dict(monitor="loss", patience=2, baseline=0.1)),
    (
        [0.1, 0.2, 0.25, 0.26, 0.27, 0.28, 0.2],
        dict(monitor="score", mode="max", patience=1, min_delta=-0.02),
    ),
    ([0.1, 0.2, 0.3, 0.3, 0.3, 0.3], dict(monitor="score", mode="max", patience=1, baseline=0.5)),
    ([1.0, 0.9, 0.89, 0.88, 0.2], dict(monitor="loss", mode="min", patience=1, min_delta=0.05)),
    ([1.0, 2.0, 0.5, 0.6, 0.7, 0.8], dict(monitor="loss", patience=1, start_from_epoch=2)),
    ([0.5, 0.1, 0.3, 0.4, 0.2], dict(monitor="loss", patience=2, restore_best_weights=True)),
]


def _keras_stop(values, kwargs):
    km = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    km.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    es = keras.callbacks.EarlyStopping(**kwargs)
    it = iter(values)
    inject = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: logs.__setitem__(es.monitor, next(it))
    )
    x = np.zeros((4, 2), np.float32)
    h = km.fit(x, x[:, :1], epochs=len(values), verbose=0, callbacks=[inject, es])
    return es.stopped_epoch, len(h.epoch), es.best, es.best_epoch, es.wait


@pytest.mark.parametrize("values, kwargs", _STOP_CASES)
def test_early_stopping_stops_where_keras_stops(values, kwargs):
    from linncore import EarlyStopping, LambdaCallback

    net = Network([Dense((2, 1), seed=0)], clip=False)
    es = EarlyStopping(**kwargs)
    it = iter(values)
    inject = LambdaCallback(on_epoch_end=lambda e, logs: logs.__setitem__(es.monitor, next(it)))
    x = np.zeros((4, 2), np.float32)
    h = net.fit(x, x[:, :1], epochs=len(values), verbose=0, callbacks=[inject, es])
    ours = (es.stopped_epoch, len(h.epoch), es.best, es.best_epoch, es.wait)
    theirs = _keras_stop(values, kwargs)
    assert ours[:2] == theirs[:2] and ours[3:] == theirs[3:]
    assert ours[2] == pytest.approx(float(theirs[2]))


def test_early_stopping_on_a_missing_metric_warns_and_trains_on_like_keras():
    from linncore import EarlyStopping

    x = np.zeros((4, 2), np.float32)
    km = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    km.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match=r"val_loss.*not available.*loss"):
        hk = km.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[keras.callbacks.EarlyStopping()])
    net = Network([Dense((2, 1), seed=0)], clip=False)
    with pytest.warns(UserWarning, match=r"'val_loss', which is not logged \(available: loss\)"):
        hl = net.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[EarlyStopping()])
    assert len(hl.epoch) == len(hk.epoch) == 3
