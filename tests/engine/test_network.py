"""Network and fit: Keras 3 semantics, reproducibility, early stopping, divergence."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import linncore
from linncore import SGD, Dense, EarlyStopping, LambdaCallback, Network, TrainingDivergedWarning


def _net(seed=0, dtype="float64", clip=True, acts=("tanh", "linear")):
    r = np.random.default_rng(seed)
    return Network(
        [Dense((2, 6), acts[0], seed=r), Dense((6, 1), acts[1], seed=r)], clip=clip, dtype=dtype
    )


def _data(n=50, seed=1):
    r = np.random.default_rng(seed)
    X = r.uniform(-1, 1, size=(n, 2))
    return X, (0.5 * X[:, :1] - 0.3 * X[:, 1:] ** 2)


def _reference_fit(weights, X, Y, epochs, batch_size, lr, clip):
    """Keras 3 semantics written out plainly: plain SGD, mse, no shuffling; returns per-epoch
    losses (mean of the batch losses weighted by batch size) and the final weights."""
    W0, b0, W1, b1 = (w.astype(np.float64).copy() for w in weights)
    cl = (lambda a: np.clip(a, -1, 1)) if clip else (lambda a: a)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for s in range(0, len(X), batch_size):
            x, y = X[s : s + batch_size], Y[s : s + batch_size]
            h0 = np.tanh(x @ W0 + b0)
            a0 = cl(h0)
            h1 = a0 @ W1 + b1
            out = cl(h1)
            B, m = y.shape
            total += np.mean((out - y) ** 2) * B
            d1 = 2 * (out - y) / (B * m) * ((np.abs(h1) <= 1) if clip else 1)
            gW1, gb1 = a0.T @ d1, d1.sum(0)
            d0 = (d1 @ W1.T) * ((np.abs(h0) <= 1) if clip else 1) * (1 - h0**2)
            gW0, gb0 = x.T @ d0, d0.sum(0)
            for p, g in ((W0, gW0), (b0, gb0), (W1, gW1), (b1, gb1)):
                p -= lr * g
                if clip:
                    np.clip(p, -1, 1, out=p)
        losses.append(total / len(X))
    return losses, [W0, b0, W1, b1]


@pytest.mark.parametrize("clip", [False, True])
def test_fit_matches_plain_keras_semantics(engine, clip):
    net = _net(clip=clip)
    X, Y = _data(53)  # 53 = 3 full batches of 16 and a partial one of 5
    w0 = net.get_weights()
    h = net.fit(X, Y, epochs=3, batch_size=16, optimizer=SGD(0.3), shuffle=False, verbose=0)
    losses, weights = _reference_fit(w0, X, Y, 3, 16, 0.3, clip)
    np.testing.assert_allclose(h.history["loss"], losses, rtol=1e-12)
    for got, want in zip(net.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    assert h.params["steps"] == 4 and h.epoch == [0, 1, 2]


def test_validation_split_takes_the_last_samples_before_shuffling(engine):
    X, Y = _data(10)
    net = _net()
    seen = []
    cb = LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs["val_loss"]))
    h = net.fit(X, Y, epochs=1, validation_split=0.25, verbose=0, callbacks=[cb], seed=0)
    # floor(10 * 0.75) = 7 training samples, the last 3 for validation
    assert h.params["samples"] == 7
    assert seen[0] == pytest.approx(net.loss(X[7:], Y[7:]), rel=1e-12)
    assert h.history["val_loss"][0] == seen[0]


def test_validation_data_gives_val_loss_with_final_weights(engine):
    X, Y = _data(40)
    net = _net()
    h = net.fit(X[:30], Y[:30], epochs=2, validation_data=(X[30:], Y[30:]), verbose=0, seed=0)
    assert h.history["val_loss"][-1] == pytest.approx(net.loss(X[30:], Y[30:]), rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_weights(engine, dtype):
    X, Y = _data(100)
    runs = []
    for _ in range(2):
        net = _net(seed=5, dtype=dtype)
        h = net.fit(X, Y, epochs=4, batch_size=8, seed=42, verbose=0)
        runs.append((net.theta.copy(), h.history["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_different_shuffle_seeds_give_different_weights(engine):
    X, Y = _data(100)
    a, b = _net(seed=5), _net(seed=5)
    a.fit(X, Y, epochs=2, batch_size=8, seed=1, verbose=0)
    b.fit(X, Y, epochs=2, batch_size=8, seed=2, verbose=0)
    assert not np.array_equal(a.theta, b.theta)


def test_engines_agree_on_a_training_run(core):
    from linncore import _backend

    X, Y = _data(64)
    out = []
    for name in ("native", "numpy"):
        with _backend.use(name):
            net = _net(seed=3)
            net.fit(X, Y, epochs=5, batch_size=8, seed=7, verbose=0)
            out.append(net.theta.copy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-9, atol=1e-12)


def test_early_stopping_follows_keras_counter_rules(engine):
    net = _net()
    X, Y = _data(20)
    # feed fixed val_loss values through a callback placed before EarlyStopping
    values = iter([1.0, 0.9, 0.95, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    es = EarlyStopping(monitor="loss", patience=3)

    def inject(epoch, logs):
        logs["loss"] = next(values)

    h = net.fit(
        X, Y, epochs=10, verbose=0, callbacks=[LambdaCallback(on_epoch_end=inject), es], seed=0
    )
    # improvements at epochs 0, 1 and 4 (the counter reset after two misses); three epochs
    # without improvement after 4 -> stop at 7
    assert es.stopped_epoch == 7 and len(h.epoch) == 8
    assert es.best == 0.5 and es.best_epoch == 4


def test_early_stopping_restores_best_weights_even_without_stopping(engine):
    net = _net()
    X, Y = _data(20)
    snapshots = []
    values = iter([0.5, 0.1, 0.3])

    def inject(epoch, logs):
        logs["loss"] = next(values)

    es = EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    net.fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        seed=0,
        optimizer=SGD(0.1),
        callbacks=[
            LambdaCallback(on_epoch_end=inject),
            LambdaCallback(on_epoch_end=lambda e, l: snapshots.append(net.get_weights())),
            es,
        ],
    )
    assert es.stopped_epoch == 0
    for got, want in zip(net.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(got, want)


def test_monitoring_val_loss_without_validation_data_warns_and_trains_on_as_keras(engine):
    net = _net()
    es = EarlyStopping(patience=0)
    with pytest.warns(UserWarning, match=r"'val_loss', which is not logged \(available: loss\)"):
        h = net.fit(*_data(10), epochs=3, callbacks=[es], verbose=0)
    assert len(h.epoch) == 3 and es.stopped_epoch == 0


def _stop_with(values, **kwargs):
    """Run EarlyStopping over fixed monitored values; (stopped_epoch, epochs run, callback)."""
    net = _net()
    it = iter(values)
    es = EarlyStopping(**kwargs)

    def inject(epoch, logs):
        logs[es.monitor] = next(it)

    h = net.fit(
        *_data(10),
        epochs=len(values),
        verbose=0,
        seed=0,
        callbacks=[LambdaCallback(on_epoch_end=inject), es],
    )
    return es.stopped_epoch, len(h.epoch), es


def test_early_stopping_baseline_never_beaten_stops_after_patience(engine):
    # improving every epoch, but never below the baseline: the counter is never reset, and
    # the first epoch without improvement after patience epochs stops (Keras's order of checks)
    stopped, run, es = _stop_with(
        [0.9, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5], monitor="loss", patience=2, baseline=0.1
    )
    assert (stopped, run) == (3, 4) and es.best == 0.7


def test_early_stopping_baseline_beaten_resets_the_counter(engine):
    stopped, run, _ = _stop_with(
        [0.9, 0.05, 0.06, 0.07, 0.08, 0.09], monitor="loss", patience=2, baseline=0.1
    )
    assert (stopped, run) == (3, 4)
    # without a beaten baseline the first epoch already counts towards patience
    stopped, run, _ = _stop_with([0.9, 0.9, 0.9, 0.9], monitor="loss", patience=2, baseline=0.1)
    assert (stopped, run) == (1, 2)


def test_early_stopping_max_mode_and_min_delta_sign(engine):
    # mode "max": rises are improvements; min_delta's sign is ignored in both modes
    stopped, run, es = _stop_with(
        [0.1, 0.2, 0.25, 0.26, 0.27, 0.28], monitor="accuracy", patience=1, min_delta=-0.02
    )
    assert es.mode == "max" and (stopped, run) == (3, 4) and es.best == 0.25
    stopped, run, es = _stop_with(
        [1.0, 0.9, 0.89, 0.88], monitor="loss", mode="min", patience=1, min_delta=0.05
    )
    assert (stopped, run) == (2, 3) and es.best == 0.9


def test_early_stopping_auto_mode_follows_keras_metric_directions():
    assert EarlyStopping(monitor="val_loss").mode == "min"
    assert EarlyStopping(monitor="val_mean_absolute_error").mode == "min"
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="auc").mode == "max"
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        EarlyStopping(monitor="my_score")
    assert EarlyStopping(monitor="my_score", mode="max").mode == "max"
    with pytest.warns(UserWarning, match="mode 'lowest' is unknown"):
        assert EarlyStopping(monitor="loss", mode="lowest").mode == "min"


def test_divergence_stops_with_a_warning_and_keeps_finite_weights(engine):
    net = Network([Dense((1, 1), weight=[[1.0]], bias=[0.0])], clip=False, dtype="float64")
    X = np.linspace(1, 2, 8)[:, None]
    with pytest.warns(TrainingDivergedWarning, match="non-finite"):
        h = net.fit(X, 3 * X, epochs=500, batch_size=8, optimizer=SGD(10.0), verbose=0)
    assert h.diverged and "non-finite" in h.stop_reason
    assert np.all(np.isfinite(net.theta))
    assert len(h.history["loss"]) < 500 and all(math.isfinite(v) for v in h.history["loss"])


def test_training_in_a_background_thread_gives_the_same_weights(engine):
    X, Y = _data(200)
    serial = _net(seed=9)
    serial.fit(X, Y, epochs=3, seed=4, verbose=0)
    nets = [_net(seed=9) for _ in range(2)]
    threads = [
        threading.Thread(target=n.fit, args=(X, Y), kwargs=dict(epochs=3, seed=4, verbose=0))
        for n in nets
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in nets:
        np.testing.assert_array_equal(n.theta, serial.theta)


def test_verbose_prints_one_line_per_epoch_at_level_two(engine, capsys):
    _net().fit(*_data(10), epochs=3, verbose=2, validation_split=0.2, seed=0)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and "val_loss:" in out and "loss:" in out


def test_weights_round_trip_in_keras_layout(engine):
    net = _net()
    w = net.get_weights()
    assert [a.shape for a in w] == [(2, 6), (6,), (6, 1), (1,)]
    other = _net(seed=99)
    other.set_weights(w)
    np.testing.assert_array_equal(other.theta, net.theta)
    # the layers view the flat vector
    net.layers[0].weight[0, 0] = 0.25
    assert net.theta[0] == 0.25


def test_predict_accepts_one_dimensional_input_for_one_input_networks(engine):
    net = Network([Dense((1, 3), "tanh", seed=0), Dense((3, 1), seed=1)])
    x = np.linspace(-1, 1, 7)
    np.testing.assert_array_equal(net.predict(x), net.predict(x[:, None]))
    assert net.predict(x).dtype == np.float32


def test_layer_already_in_a_network_is_copied():
    d = Dense((2, 2), seed=0)
    a = Network([d])
    b = Network([d])
    b.theta[:] = 0.5
    assert not np.array_equal(a.theta, b.theta)


def test_dense_initialisers_are_reproducible_and_bounded():
    a, b = Dense((4, 5), seed=3), Dense((4, 5), seed=3)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert np.all(np.abs(a.weight) <= math.sqrt(6 / 9)) and np.all(a.bias == 0)
    k = Dense((4, 5), weight_init="kaiming", bias_init="uniform_sqrt", seed=0)
    assert np.all(np.abs(k.weight) <= math.sqrt(6 / 4)) and np.all(
        np.abs(k.bias) <= math.sqrt(1 / 5)
    )
    c = Dense((2, 2), weight_init=lambda s: np.full(s, 0.1))
    assert np.all(c.weight == 0.1)


def test_backend_reports_its_engine():
    assert linncore.backend() in ("native", "numpy")


def test_compiled_core_is_in_use_when_required():
    """CI sets LINNCORE_REQUIRE_NATIVE=1: an install that silently lost the core fails here."""
    import os

    if os.environ.get("LINNCORE_REQUIRE_NATIVE") != "1":
        pytest.skip("LINNCORE_REQUIRE_NATIVE is not set")
    assert linncore.backend() == "native"


def test_a_pickled_network_comes_back_whole_with_its_layers_viewing_its_parameters():
    import pickle

    from linncore import BatchNormalization

    net = Network(
        [Dense((2, 3), "tanh", seed=0), BatchNormalization(), Dense((3, 1), seed=1)],
        clip=False,
        dtype="float64",
    )
    back = pickle.loads(pickle.dumps(net))
    assert (back.clip, back.dtype) == (False, np.float64)
    np.testing.assert_array_equal(back.theta, net.theta)
    back.layers[0].weight[...] = 0.0  # a layer's arrays are views of the network's parameters
    assert not back.theta[:6].any()
    x = np.ones((2, 2))
    assert not np.array_equal(back.predict(x), net.predict(x))
