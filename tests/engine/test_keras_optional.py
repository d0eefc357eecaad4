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
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, activation="tanh"),
                           keras.layers.BatchNormalization(), keras.layers.Dense(4, activation="relu"),
                           keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    net = Network([Dense((3, 5), "tanh"), BatchNormalization(), Dense((5, 4), "relu"), BatchNormalization(),
                   Dense((4, 2))], clip=False)
    net.set_weights(km.get_weights())
    hk = km.fit(X, Y, epochs=5, batch_size=16, shuffle=False, verbose=0, validation_data=(X[:32], Y[:32]))
    hl = net.fit(X, Y, epochs=5, batch_size=16, shuffle=False, verbose=0, optimizer=SGD(0.1),
                 validation_data=(X[:32], Y[:32]))
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(hl.history["val_loss"], hk.history["val_loss"], rtol=1e-4)
    for a, b in zip(net.get_weights(), km.get_weights()):  # float32 rounding over 30 steps
        np.testing.assert_allclose(a, b, atol=5e-6)
