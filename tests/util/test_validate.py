"""The one validator family: one error type per kind of mistake, one message style, whether the
value comes as an API argument, a field of a model file or a fixed-point format."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from _nets import net_of

import linncore as lc
from linncore._util.validate import (
    choice,
    finite_float,
    flag,
    integer,
    items,
    kind,
    non_negative_int,
    positive_int,
    string,
)

#: "<what is checked>: expected <what>, got <what came>", and nothing else.
STYLE = re.compile(r"^(?P<name>[^:]+): expected (?P<expected>.+), got (?P<got>.+)$")


class FormatError(ValueError):
    """Stands for a file format's own error class."""


def test_values_of_the_right_kind_come_back_converted():
    assert integer(np.int64(3), "k", lo=0, hi=5) == 3 and type(integer(np.int64(3), "k")) is int
    assert positive_int(1, "k") == 1 and non_negative_int(0, "k") == 0
    assert flag(np.bool_(True), "k") is True
    assert finite_float(2, "k") == 2.0 and finite_float(np.float32(0.5), "k", lo=0.0) == 0.5
    assert choice("SGD", ["adam", "sgd"], "k") == "sgd"
    assert choice("relu", ["relu"], "k", any_case=False) == "relu"
    assert string("x", "k") == "x" and items((1, 2), "k", min_len=1) == [1, 2]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: integer(True, "n", error=e), "n: expected an integer, got the boolean true"),
        (
            lambda e: positive_int(1.0, "n", error=e),
            "n: expected a positive integer, got the number 1.0",
        ),
        (
            lambda e: non_negative_int("3", "n", error=e),
            "n: expected a non-negative integer, got the string '3'",
        ),
        (lambda e: flag(1, "scale", error=e), "scale: expected true or false, got the integer 1"),
        (
            lambda e: flag("false", "scale", error=e),
            "scale: expected true or false, got the string 'false'",
        ),
        (
            lambda e: finite_float("0.1", "lr", error=e),
            "lr: expected a finite number, got the string '0.1'",
        ),
        (
            lambda e: finite_float(None, "lr", lo=0, lo_open=True, error=e),
            "lr: expected a positive number, got null",
        ),
        (
            lambda e: choice(5, ["mse", "mae"], "loss", error=e),
            "loss: expected one of 'mse', 'mae', got the integer 5",
        ),
        (lambda e: string(5, "file", error=e), "file: expected a string, got the integer 5"),
        (lambda e: items("ab", "k", error=e), "k: expected a list, got the string 'ab'"),
    ],
)
def test_the_wrong_type_is_a_type_error_or_the_formats_error(call, message):
    with pytest.raises(TypeError) as exc:
        call(None)
    assert str(exc.value) == message and STYLE.match(message)
    with pytest.raises(FormatError) as exc:
        call(FormatError)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda e: integer(70, "n_in", lo=1, hi=64, error=e),
            "n_in: expected an integer in [1, 64], got 70",
        ),
        (
            lambda e: positive_int(0, "batch_size", error=e),
            "batch_size: expected a positive integer, got 0",
        ),
        (
            lambda e: non_negative_int(-1, "seed", error=e),
            "seed: expected a non-negative integer, got -1",
        ),
        (
            lambda e: integer(-1, "epochs", lo=0, hi=2**63 - 1, error=e),
            "epochs: expected an integer in [0, 2**63 - 1], got -1",
        ),
        (
            lambda e: integer(10**4000, "n", hi=10, error=e),
            "n: expected an integer <= 10, got an integer of 4001 digits",
        ),
        (lambda e: integer(-9, "k", lo=-8, error=e), "k: expected an integer >= -8, got -9"),
        (lambda e: finite_float(math.nan, "x", error=e), "x: expected a finite number, got nan"),
        (
            lambda e: finite_float(10**400, "x", lo=0, error=e),
            "x: expected a finite number, got an integer of 401 digits",
        ),
        (
            lambda e: finite_float(1.0, "split", lo=0.0, hi=1.0, hi_open=True, error=e),
            "split: expected a number in [0.0, 1.0), got 1.0",
        ),
        (
            lambda e: finite_float(0.0, "eps", lo=0, lo_open=True, error=e),
            "eps: expected a positive number, got 0.0",
        ),
        (
            lambda e: choice("huber", ["mse", "mae"], "loss", error=e),
            "loss: expected one of 'mse', 'mae', got 'huber'",
        ),
        (
            lambda e: choice("ReLU", ["relu"], "act", any_case=False, error=e),
            "act: expected one of 'relu', got 'ReLU'",
        ),
        (
            lambda e: items([], "k", min_len=1, error=e),
            "k: expected a non-empty list, got an empty list",
        ),
        (
            lambda e: items([1, 2, 3], "k", max_len=2, error=e),
            "k: expected a list of 0 to 2 items, got a list of 3 items",
        ),
    ],
)
def test_a_wrong_value_is_a_value_error_or_the_formats_error(call, message):
    with pytest.raises(ValueError) as exc:
        call(None)
    assert type(exc.value) is ValueError
    assert str(exc.value) == message and STYLE.match(message)
    with pytest.raises(FormatError) as exc:
        call(FormatError)
    assert str(exc.value) == message


def test_what_came_is_quoted_short_whatever_its_size():
    assert kind("x" * 10_000) == "a string of 10000 characters"
    assert kind({"a": 1, "b": 2}) == "an object of 2 keys" and kind({}) == "an empty object"
    with pytest.raises(ValueError) as exc:
        choice("y" * 10_000, ["a"], "k")
    assert len(str(exc.value)) < 120


# -- the same mistake through three entry points ----------------------------------------------
def _model_file(mutate):
    """from_json of a model document after ``mutate`` (1e400 written for the float 12345.5)."""
    doc = json.loads(lc.to_json(net_of()))  # a network of 3 inputs
    mutate(doc)
    return lambda: lc.from_json(json.dumps(doc).replace("12345.5", "1e400"))


def _fit(**kwargs):
    net = lc.Network([lc.Dense((2, 1), seed=0)])
    x = np.zeros((4, 2))
    return lambda: net.fit(x, x[:, :1], verbose=0, **kwargs)


def _layer(key, value):
    return lambda doc: doc["network"]["layers"][0].update({key: value})


def _scaling(hi):
    return lambda doc: doc.update(scaling={"inputs": {"lo": [0, 0, 0], "hi": [1, 1, hi]}})


MISTAKES = {
    "a boolean for an integer": [
        (_fit(epochs=True), TypeError, "epochs", "the boolean true"),
        (
            _model_file(_layer("n_in", True)),
            lc.ModelFileError,
            "network.layers[0].n_in",
            "the boolean true",
        ),
        (lambda: lc.FixedFormat(True, 1), TypeError, "bits", "the boolean true"),
    ],
    "a negative count": [
        (_fit(batch_size=-2), ValueError, "batch_size", "-2"),
        (_model_file(_layer("n_out", -2)), lc.ModelFileError, "network.layers[0].n_out", "-2"),
        (lambda: lc.quantize([0.5], "fixed<8,1,STOCH,SAT>", seed=-2), ValueError, "seed", "-2"),
    ],
    "a non-finite float": [
        (_fit(validation_split=math.inf), ValueError, "validation_split", "inf"),
        (_model_file(_scaling(12345.5)), lc.ModelFileError, "scaling.inputs.hi[2]", "inf"),
        (
            lambda: lc.rail_stats([0.5], "fixed<8,1>", near_rail=math.inf),
            ValueError,
            "near_rail",
            "inf",
        ),
    ],
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_one_mistake_is_refused_alike_by_an_argument_a_model_file_and_a_format(mistake):
    styles = []
    for call, error, name, got in MISTAKES[mistake]:
        with pytest.raises(error) as exc:
            call()
        assert isinstance(exc.value, TypeError) == (error is TypeError)
        m = STYLE.match(str(exc.value))
        assert m, str(exc.value)
        assert (m["name"], m["got"]) == (name, got), str(exc.value)
        styles.append("integer" in m["expected"] or "number" in m["expected"])
    assert all(styles)
