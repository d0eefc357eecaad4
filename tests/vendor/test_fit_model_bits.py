"""LinnModel.fit_model trains exactly as Network.fit: the same seed gives the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import Adam, Callback, EarlyStopping, LinnModel


def _tutorial(n=120):
    x = np.linspace(0, 2 * np.pi, n)[:, None]
    return x, np.cos(5 * x)


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("es", [None, {"patience": 2, "restore": True}])
def test_fit_model_gives_the_bits_of_network_fit_for_the_same_seed(engine, dtype, es):
    x, y = _tutorial()
    lm = LinnModel()
    lm.set_training_data(x, y)
    lm.construct_model([(16, "relu"), (16, "tanh"), (1, "linear")], seed=0, dtype=dtype)
    net = lm.network.copy()
    got = lm.fit_model(epochs=25, es_config=es, validation_split=0.1, seed=4, verbose=0)
    callbacks = [] if es is None else [EarlyStopping(patience=2, restore_best_weights=True)]
    want = net.fit(
        lm.training_inputs,
        lm.training_outputs,
        epochs=25,
        optimizer=Adam(),
        loss="mse",
        validation_split=0.1,
        callbacks=callbacks,
        seed=4,
        verbose=0,
    )
    np.testing.assert_array_equal(_bits(lm.network.theta), _bits(net.theta))
    assert got.epoch == want.epoch
    assert set(got.history) == {"loss", "val_loss"}
    for key in ("loss", "val_loss"):
        assert np.array(got.history[key]).tobytes() == np.array(want.history[key]).tobytes()


class _Order(Callback):
    """Records every hook in the order fit calls it (the base class's empty hooks included)."""

    def __init__(self, log, name):
        self.log, self.name = log, name

    def on_train_begin(self, logs=None):
        self.log.append((self.name, "train_begin"))

    def on_epoch_begin(self, epoch, logs=None):
        self.log.append((self.name, "epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.log.append((self.name, "epoch_end", epoch, tuple(sorted(logs))))

    def on_train_end(self, logs=None):
        self.log.append((self.name, "train_end"))


class _EndOnly(Callback):
    """Overrides on_epoch_end alone: its other hooks are Callback's empty ones."""

    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, epoch, logs=None):
        self.log.append(("end-only", "epoch_end", epoch))


def test_callbacks_run_in_keras_order_with_the_empty_hooks_left_out(engine):
    x, y = _tutorial(40)
    lm = LinnModel()
    lm.set_training_data(x, y)
    lm.construct_model([(4, "tanh"), (1, "linear")], seed=0)
    log: list[tuple] = []
    lm.fit_model(
        epochs=2,
        validation_split=0.25,
        callbacks=[_Order(log, "a"), _EndOnly(log), _Order(log, "b")],
        seed=0,
        verbose=0,
    )
    keys = ("loss", "val_loss")
    assert log == [
        ("a", "train_begin"),
        ("b", "train_begin"),
        ("a", "epoch_begin", 0),
        ("b", "epoch_begin", 0),
        ("a", "epoch_end", 0, keys),
        ("end-only", "epoch_end", 0),
        ("b", "epoch_end", 0, keys),
        ("a", "epoch_begin", 1),
        ("b", "epoch_begin", 1),
        ("a", "epoch_end", 1, keys),
        ("end-only", "epoch_end", 1),
        ("b", "epoch_end", 1, keys),
        ("a", "train_end"),
        ("b", "train_end"),
    ]
