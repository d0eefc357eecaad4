"""sweep as the ablate config reads it: "float", the activation without hidden layers, and
summary.csv's types."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from linncore import sweep
from linncore.ablation.sweep import SweepResult

BASE = {"dataset": {"n": 32}, "train": {"epochs": 1, "batch_size": 16}}


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
