"""Small things a user trips on: --version, summaries that print, sweep's "float" and
activation checks, argparse's % escaping, summary.csv's types, fit_model's missing call."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import linncore
from linncore import Dense, LinnModel, Network, QuantizedNetwork, sweep
from linncore.ablation.sweep import SweepResult
from linncore.cli import main

BASE = {"dataset": {"n": 32}, "train": {"epochs": 1, "batch_size": 16}}


def test_version_option_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"linncore {linncore.__version__}"


def test_quantized_network_summary_prints_like_network_summary(capsys):
    net = Network([Dense((2, 3), "tanh", seed=0), Dense((3, 1), seed=1)])
    assert net.summary() is None
    assert capsys.readouterr().out == net.summary_text() + "\n"
    qn = QuantizedNetwork(net)
    assert qn.summary() is None
    out = capsys.readouterr().out
    assert out == qn.summary_text() + "\n" and "dense0" in out and "ASSUMED" in out


def test_sweep_reads_float_as_no_precision_config():
    ex = ThreadPoolExecutor(1)
    words = sweep({"train.precision_dict": ["float", "None"]}, base=BASE, executor=ex)
    plain = sweep({"train.precision_dict": [None]}, base=BASE, executor=ex)
    assert [r["train.precision_dict"] for r in words.rows] == ["float", "None"]
    for row in words.rows:
        assert row["final_loss"] == plain.rows[0]["final_loss"]
    assert all(h.config["precision"] is None for h in words.histories.values())


def test_sweep_checks_the_activation_without_hidden_layers():
    with pytest.raises(ValueError, match=r"base: model\.activation: expected one of .* got 'tahn'"):
        sweep(
            [{}],
            base={**BASE, "model": {"num_hidden": [], "activation": "tahn"}},
            executor=ThreadPoolExecutor(1),
        )
    with pytest.raises(ValueError, match=r"grid point 1 .*model\.activation"):
        sweep({"model.activation": ["linear", "relux"]}, base=BASE, executor=ThreadPoolExecutor(1))


def test_demo_help_prints_a_single_percent_sign(capsys):
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "10% validation" in out and "%%" not in out


def test_summary_csv_writes_integers_and_booleans_as_such(tmp_path):
    res = sweep(
        {"train.use_controller": [False, True]},
        seeds=[3],
        base=BASE,
        executor=ThreadPoolExecutor(1),
    )
    assert isinstance(res.rows[0]["steps"], int) and isinstance(res.rows[0]["diverged"], bool)
    res.save(tmp_path)
    text = (tmp_path / "summary.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["train.use_controller"] for r in rows] == ["false", "true"]
    assert {r["seed"] for r in rows} == {"3"} and {r["steps"] for r in rows} == {"2"}
    assert {r["diverged"] for r in rows} == {"false"} and {r["silent_death"] for r in rows} == {
        "false"
    }
    assert float(rows[0]["final_loss"]) == res.rows[0]["final_loss"]  # floats exactly
    assert "True" not in text and "1.0," not in text
    one = SweepResult(
        rows=[{"run": "r", "x": None, "l": [1, 2], "n": np.int64(4), "b": np.bool_(True)}]
    )
    assert one.to_csv().splitlines()[1] == 'r,,"[1, 2]",4,true'


def test_fit_model_before_set_training_data_names_the_missing_calls():
    with pytest.raises(
        ValueError,
        match=r"fit_model: no training data; call set_training_data\(.*\) first, "
        r"then construct_model",
    ):
        LinnModel().fit_model(5)
    lm = LinnModel.from_network(Network([Dense((1, 1), seed=0)]))
    with pytest.raises(
        ValueError, match=r"call set_training_data\(training_inputs, training_outputs\) first$"
    ):
        lm.fit_model(5)
    lm = LinnModel()
    lm.set_training_data([[0.0], [1.0]], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="call construct_model first"):
        lm.fit_model(5)
