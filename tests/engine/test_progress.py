"""The progress display of fit, train_instrumented and sweep: lines, bars, the final epoch's
line, the early-stopping message, and silence (no display object at all) at verbose=0."""

from __future__ import annotations

import io
import re
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from linncore import Dense, EarlyStopping, LinearTeacherDataset, Network, sweep, train_instrumented
from linncore._util import progress as progress_mod
from linncore.engine import callbacks as callbacks_mod
from linncore.engine import network as network_mod

LINE = re.compile(r"^Epoch (\d+)/(\d+) - [0-9.]+ (us|ms|s)/epoch - loss: \S+( - val_loss: \S+)?$")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _net(seed: int = 0) -> Network:
    return Network([Dense((1, 8), "tanh", seed=seed), Dense((8, 1), seed=seed + 1)])


def _data(n: int = 64):
    x = np.linspace(-1, 1, n)[:, None]
    return x, x**2


def _epoch_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("Epoch ")]


def test_lines_outside_a_terminal_come_every_tenth_with_the_first_and_last(capsys):
    _net().fit(*_data(), epochs=100, verbose=1, seed=0)
    out = capsys.readouterr().out
    lines = _epoch_lines(out)
    assert all(LINE.match(ln) for ln in lines), lines
    assert [int(LINE.match(ln).group(1)) for ln in lines] == [1, *range(10, 101, 10)]
    assert re.search(
        r"^trained 100 epochs in [0-9.]+ (ms|s) \([0-9.]+ (us|ms|s)/epoch\)$", out, re.M
    )
    assert "\r" not in out


def test_level_two_prints_every_epoch_with_its_time_and_val_loss(capsys):
    _net().fit(*_data(), epochs=7, verbose=2, validation_split=0.25, seed=0)
    lines = _epoch_lines(capsys.readouterr().out)
    assert [int(LINE.match(ln).group(1)) for ln in lines] == list(range(1, 8))
    assert all(LINE.match(ln).group(4) for ln in lines)  # val_loss on every line


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_prints_the_stopped_epoch_line_and_says_why(capsys, restore):
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=restore)
    h = _net().fit(*_data(), epochs=1000, verbose=1, validation_split=0.25, seed=0, callbacks=[es])
    out = capsys.readouterr().out
    ran = len(h.epoch)
    assert ran < 1000
    last = _epoch_lines(out)[-1]
    assert last.startswith(f"Epoch {ran}/1000 - ")  # the final epoch, though not on the interval
    word = "restored" if restore else "not restored"
    assert (
        f"stopped early at epoch {ran} (best epoch {es.best_epoch + 1}, its weights {word})" in out
    )
    assert f"trained {ran} epochs in" in out


def test_a_callback_that_stops_training_is_reported(capsys):
    class StopAtThree(callbacks_mod.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                self.model.stop_training = True

    _net().fit(*_data(), epochs=50, verbose=1, seed=0, callbacks=[StopAtThree()])
    out = capsys.readouterr().out
    assert _epoch_lines(out)[-1].startswith("Epoch 3/50 - ")
    assert "stopped by a callback after epoch 3" in out


def test_built_in_bar_on_a_terminal_shows_elapsed_eta_and_rate(monkeypatch):
    monkeypatch.setenv("LINNCORE_NO_TQDM", "1")  # the built-in bar, tqdm or not
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    _net().fit(*_data(), epochs=30, verbose=1, seed=0)
    out = term.getvalue()
    bars = [b for b in out.split("\r") if b.startswith("[")]
    assert bars, out
    final = bars[-1].split("\n")[0].rstrip()
    assert re.match(
        r"^\[=+\] 30/30 epochs - \d\d:\d\d<\d\d:\d\d - [0-9.]+ epochs/s - loss: \S+$", final
    ), final
    assert out.rstrip().splitlines()[-1].startswith("trained 30 epochs in")


def test_built_in_bar_after_early_stopping_draws_the_last_epoch(monkeypatch):
    monkeypatch.setenv("LINNCORE_NO_TQDM", "1")  # the built-in bar, tqdm or not
    monkeypatch.setattr(progress_mod, "BAR_SECONDS", 1e9)  # only the forced draws
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    es = EarlyStopping(monitor="val_loss", patience=1)
    h = _net().fit(*_data(), epochs=1000, verbose=1, validation_split=0.25, seed=0, callbacks=[es])
    out = term.getvalue()
    assert f"] {len(h.epoch)}/1000 epochs - " in out.split("\r")[-1]
    assert "stopped early at epoch" in out


@pytest.mark.optional
def test_tqdm_draws_the_bar_when_installed(monkeypatch):
    pytest.importorskip("tqdm")
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.delenv("LINNCORE_NO_TQDM", raising=False)
    _net().fit(*_data(), epochs=20, verbose=1, seed=0)
    out = term.getvalue()
    assert "20/20" in out and "epoch/s" in out and "loss: " in out
    assert "trained 20 epochs in" in out


def test_silent_training_creates_no_display_and_prints_nothing(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a progress display was created at verbose=0")

    monkeypatch.setattr(network_mod, "ProgressLogger", refuse)
    monkeypatch.setattr(progress_mod.Progress, "__init__", refuse)
    _net().fit(*_data(), epochs=5, verbose=0, seed=0)
    ds = LinearTeacherDataset(64, 2, 1, seed=0)
    train_instrumented(
        Network([Dense((2, 1), has_bias=False, seed=0)], clip=False), ds.X, ds.Y, epochs=2
    )
    assert capsys.readouterr().out == ""


def test_train_instrumented_prints_epochs_and_the_divergence_that_ends_it(capsys):
    ds = LinearTeacherDataset(128, 4, 2, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    train_instrumented(net, ds.X, ds.Y, epochs=3, learning_rate=0.1, seed=0, verbose=2)
    out = capsys.readouterr().out
    lines = _epoch_lines(out)
    assert [ln.split(" - ")[0] for ln in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("ms/epoch" in ln or "us/epoch" in ln for ln in lines)
    assert all("hessian_lambda_max: " in ln for ln in lines)
    assert "trained 12 step(s) of 12 in" in out
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = train_instrumented(net, ds.X, ds.Y, epochs=50, learning_rate=50.0, seed=0, verbose=1)
    out = capsys.readouterr().out
    assert h.stop_reason and f"stopped: {h.stop_reason}" in out
    assert _epoch_lines(out)[-1].startswith(f"Epoch {int(h.epoch[-1]) + 1}/50 - ")


def test_sweep_reports_each_run_and_the_total(capsys):
    res = sweep(
        {"train.learning_rate": [0.05, 0.1]},
        seeds=[0, 1],
        verbose=2,
        base={"dataset": {"n": 32}, "train": {"epochs": 1}},
        executor=ThreadPoolExecutor(1),
    )
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("Run ")]
    assert [ln.split(" - ")[0] for ln in lines] == [f"Run {i}/4" for i in range(1, 5)]
    assert sorted(ln.split(" - ")[2] for ln in lines) == sorted(r["run"] for r in res.rows)
    assert all(ln.endswith((" - ok", " - DIVERGED", " - SILENT-DEATH")) for ln in lines)
    assert "swept 4 run(s) of 4 in" in out


def test_sweep_refuses_verbose_in_a_run_config():
    with pytest.raises(ValueError, match=r"train\.verbose: unknown key"):
        sweep([{}], base={"train": {"verbose": 1}}, executor=ThreadPoolExecutor(1))


@pytest.mark.optional
def test_sweep_bar_uses_tqdm_over_runs(monkeypatch):
    pytest.importorskip("tqdm")
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.delenv("LINNCORE_NO_TQDM", raising=False)
    sweep(
        {"train.learning_rate": [0.05, 0.1, 0.2]},
        seeds=[0],
        verbose=1,
        base={"dataset": {"n": 32}, "train": {"epochs": 1}},
        executor=ThreadPoolExecutor(1),
    )
    out = term.getvalue()
    assert "sweep" in out and "3/3" in out and "run/s" in out


def test_progress_shows_the_pending_last_unit_when_closed():
    out = io.StringIO()
    p = progress_mod.Progress(100, verbose=1, unit="epoch", stream=out)
    for done in range(1, 8):
        p.update(done, lambda d=done: f"loss: {d}")
    p.close(["bye"])
    assert [ln.split(" - ")[0] for ln in out.getvalue().splitlines()[:-1]] == [
        "Epoch 1/100",
        "Epoch 7/100",
    ]
    assert out.getvalue().splitlines()[-2].endswith("loss: 7") and out.getvalue().endswith("bye\n")


def test_time_formats():
    assert progress_mod.per_unit(0.00042, "epoch") == "0.42 ms/epoch"
    assert progress_mod.per_unit(3.0e-5, "epoch") == "30.0 us/epoch"
    assert progress_mod.per_unit(125.0, "run") == "125 s/run"
    assert progress_mod.duration(3725) == "1:02:05" and progress_mod.duration(65) == "01:05"
    assert progress_mod.seconds(0.0042) == "4.2 ms" and progress_mod.seconds(1.5) == "1.50 s"
    assert progress_mod.metric(1e-5) == "1.0000e-05" and progress_mod.metric(0.5) == "0.5000"
