"""An interrupted or stopped fit leaves the network and its optimizer consistent, and resuming
gives the same bits as never stopping.

An epoch is applied wholly (weights, moments and step count) or not at all.  The cases: Ctrl-C
(``KeyboardInterrupt``) raised by a callback after an epoch, Ctrl-C arriving inside the epoch's
kernel call (before its results are committed), a callback's ``stop_training`` and another
thread's ``stop_training``.  Each is resumed with the same optimizer and shuffling generator and
compared bit for bit with an uninterrupted run, on both engines.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from linncore import SGD, Adam, Callback, Dense, Network

EPOCHS = 6


def _data():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (50, 3))
    return x, np.tanh(x @ rng.normal(size=(3, 2)))


def _net():
    return Network([Dense((3, 6), "tanh", seed=0), Dense((6, 2), seed=1)])


def _bits(net, opt):
    state = [net.theta.copy()]
    if getattr(opt, "_m", None) is not None:
        state.append(opt._m.copy())
    if getattr(opt, "_v", None) is not None:
        state.append(opt._v.copy())
    views = [s.view(np.uint32 if s.dtype == np.float32 else np.uint64) for s in state]
    return views, opt.iterations


def _same(a, b):
    (arrays_a, it_a), (arrays_b, it_b) = a, b
    return (
        it_a == it_b
        and len(arrays_a) == len(arrays_b)
        and all(np.array_equal(p, q) for p, q in zip(arrays_a, arrays_b, strict=True))
    )


def _uninterrupted(make_opt, epochs=EPOCHS):
    x, y = _data()
    net, opt = _net(), make_opt()
    net.fit(
        x, y, epochs=epochs, batch_size=8, optimizer=opt, seed=np.random.default_rng(11), verbose=0
    )
    return net, opt


OPTIMIZERS = {"adam": lambda: Adam(0.01), "sgd-momentum": lambda: SGD(0.05, momentum=0.9)}


class _InterruptAfter(Callback):
    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_ctrl_c_after_an_epoch_keeps_it_whole_and_resuming_gives_the_same_bits(engine, opt_name):
    make = OPTIMIZERS[opt_name]
    x, y = _data()
    net, opt, rng = _net(), make(), np.random.default_rng(11)
    with pytest.raises(KeyboardInterrupt):
        net.fit(
            x,
            y,
            epochs=EPOCHS,
            batch_size=8,
            optimizer=opt,
            seed=rng,
            verbose=0,
            callbacks=[_InterruptAfter(2)],
        )
    steps = int(np.ceil(50 / 8))
    assert opt.iterations == 3 * steps  # the third epoch is wholly applied, step count included
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make, 3)))
    net.fit(x, y, epochs=EPOCHS - 3, batch_size=8, optimizer=opt, seed=rng, verbose=0)
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make)))


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_ctrl_c_inside_an_epoch_undoes_it_and_resuming_gives_the_same_bits(
    engine, opt_name, monkeypatch
):
    make = OPTIMIZERS[opt_name]
    x, y = _data()
    net, opt, rng = _net(), make(), np.random.default_rng(11)
    real = engine.prepare_train
    calls = []

    class Interrupted:
        """The fit's run, with Ctrl-C arriving as its third epoch's kernel call returns."""

        def __init__(self, run):
            self.run = run

        def __getattr__(self, name):
            return getattr(self.run, name)

        def epoch(self, *args, **kwargs):
            out = self.run.epoch(*args, **kwargs)  # the kernel has changed the weights in place
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt  # ... but its results are not yet committed
            return out

    monkeypatch.setattr(engine, "prepare_train", lambda *a, **kw: Interrupted(real(*a, **kw)))
    with pytest.raises(KeyboardInterrupt):
        net.fit(x, y, epochs=EPOCHS, batch_size=8, optimizer=opt, seed=rng, verbose=0)
    monkeypatch.setattr(engine, "prepare_train", real)
    assert len(calls) == 3
    assert opt.iterations == 2 * int(np.ceil(50 / 8))  # the third epoch is wholly undone
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make, 2)))
    net.fit(x, y, epochs=EPOCHS - 2, batch_size=8, optimizer=opt, seed=rng, verbose=0)
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make)))


class _StopAfter(Callback):
    def __init__(self, epoch, from_thread=False):
        super().__init__()
        self.at, self.from_thread = epoch, from_thread

    def on_epoch_end(self, epoch, logs=None):
        if epoch != self.at:
            return
        if self.from_thread:  # another thread asks the network to stop
            t = threading.Thread(target=setattr, args=(self.model, "stop_training", True))
            t.start()
            t.join()
        else:
            self.model.stop_training = True


@pytest.mark.parametrize("from_thread", [False, True], ids=["callback", "thread"])
def test_stop_training_ends_after_a_whole_epoch_and_resuming_gives_the_same_bits(
    engine, from_thread
):
    make = OPTIMIZERS["adam"]
    x, y = _data()
    net, opt, rng = _net(), make(), np.random.default_rng(11)
    history = net.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=8,
        optimizer=opt,
        seed=rng,
        verbose=0,
        callbacks=[_StopAfter(1, from_thread)],
    )
    assert len(history.history["loss"]) == 2 and "stopped" in history.stop_reason
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make, 2)))
    net.fit(x, y, epochs=EPOCHS - 2, batch_size=8, optimizer=opt, seed=rng, verbose=0)
    assert _same(_bits(net, opt), _bits(*_uninterrupted(make)))
