"""Every rule of the .linn converter (one failing case each, message checked) and malformed
documents giving clean errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import linncore.vendor.linn_document as linn_doc
from linncore import Dense, LinnError, Network, get_linn, load_linn, save_linn
from linncore.vendor.linn_model import MAX_FILE_BYTES, describe_linn


def net_of(*widths, act="linear", seed=0):
    return Network(
        [Dense((widths[i], widths[i + 1]), act, seed=seed + i) for i in range(len(widths) - 1)]
    )


def doc_of(*widths, in_ch=1, out_ch=1, value=0.25):
    return {
        "version": "0.1",
        "num_input_channels": in_ch,
        "num_output_channels": out_ch,
        "layers": [
            {
                "activation": "tanh",
                "weights": [[value] * widths[i]] * widths[i + 1],
                "biases": [0.0] * widths[i + 1],
            }
            for i in range(len(widths) - 1)
        ],
    }


def rule_error(rule, match, fn, *args, **kwargs):
    with pytest.raises(LinnError, match=match) as info:
        fn(*args, **kwargs)
    assert info.value.rule == rule, str(info.value)
    assert str(info.value).startswith(f"[rule: {rule}]")
    return info.value


# -- converter rules (get_linn / save_linn) -------------------------------------------------
def test_rule_layer_count():
    rule_error(
        "layer count",
        r"expected 1 to 5 dense layers, got 6",
        get_linn,
        net_of(2, 2, 2, 2, 2, 2, 1),
        1,
        1,
    )


def test_rule_activation_the_instrument_runs():
    net = Network([Dense((2, 2), "leaky_relu", seed=0), Dense((2, 1), seed=1)])
    rule_error(
        "activation",
        r"layer 0: the instrument runs relu, tanh, sigmoid, softsign, linear; got 'leaky_relu'",
        get_linn,
        net,
        1,
        1,
    )


def test_rule_outputs_per_layer():
    rule_error(
        "outputs per layer",
        r"layer 0: expected 1 to 100 outputs \(the converter\), got 101",
        get_linn,
        net_of(3, 101, 1),
        1,
        1,
    )


def test_rule_inputs_of_the_first_layer():
    rule_error(
        "inputs of the first layer",
        r"layer 0: expected 1 to 100 inputs \(the converter\), got 101",
        get_linn,
        net_of(101, 1),
        1,
        1,
    )


def test_rule_chaining():
    doc = doc_of(3, 4, 1)
    doc["layers"][1]["weights"] = [[0.1] * 5]
    rule_error(
        "chaining", r"layer 1: expected 4 inputs \(the outputs of layer 0\), got 5", load_linn, doc
    )


def test_rule_column_depth(monkeypatch):
    # cannot break with today's limits (5 layers of 100 inputs give 515); the rule stays for
    # new devices
    monkeypatch.setattr(linn_doc, "MAX_COLUMN_DEPTH", 100)
    rule_error(
        "column depth",
        r"sum over layers of \(inputs \+ 3\) is 109, more than 100",
        get_linn,
        net_of(1, 32, 32, 32, 1),
        1,
        1,
    )


@pytest.mark.parametrize(
    "mapping, match",
    [
        ([], "expected a non-empty list of integers, got an empty list"),
        ([0, 1, 2, 0], r"layer 0: 4 entries for 3 outputs; expected at most 3"),
        ([3], r"entry 0: expected an index in \[0, 3\) \(outputs of layer 0\), got 3"),
        ([-1], r"entry 0: expected an index in \[0, 3\) \(outputs of layer 0\), got -1"),
        ([1.0], "entry 0: expected an integer, got the number 1.0"),
        ([True], "entry 0: expected an integer, got the boolean true"),
        ("0", "expected a list of integers, got str"),
    ],
)
def test_rule_output_mapping(mapping, match):
    rule_error("output mapping", match, get_linn, net_of(2, 3), 1, 1, output_mapping=mapping)


def test_output_mapping_keeps_rows_in_the_listed_order():
    net = Network(
        [Dense((2, 3), weight=[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], bias=[0.01, 0.02, 0.03])]
    )
    doc = get_linn(net, 2, 2, output_mapping=[2, 0])
    assert doc["layers"][0]["weights"] == np.float32([[0.3, 0.6], [0.1, 0.4]]).tolist()
    assert doc["layers"][0]["biases"] == np.float32([0.03, 0.01]).tolist()


def test_rule_input_channels_serial_only_above_four_inputs():
    rule_error(
        "input channels",
        r"the first layer has 5 inputs, more than 4: only serial mode \(num_input_channels=1\) "
        r"is possible, got 5",
        get_linn,
        net_of(5, 1),
        5,
        1,
    )


def test_rule_input_channels_one_or_all():
    rule_error(
        "input channels",
        r"the first layer has 3 input\(s\): expected num_input_channels 1 \(serial\) or 3 "
        r"\(parallel\), got 2",
        get_linn,
        net_of(3, 1),
        2,
        1,
    )


def test_rule_output_channels_after_output_mapping():
    rule_error(
        "output channels",
        r"the last layer after output mapping has 1 output\(s\): expected "
        r"num_output_channels 1, got 3",
        get_linn,
        net_of(2, 3),
        1,
        3,
        output_mapping=[1],
    )


def test_rule_channels_must_be_integers():
    rule_error(
        "input channels",
        r"num_input_channels: expected an integer, got the number 1.0",
        get_linn,
        net_of(1, 1),
        1.0,
        1,
    )


def test_rule_parameter_range_names_layer_field_and_worst_value():
    first = Dense((2, 2), weight=[[0.5, 0.0], [0.0, 0.5]], bias=[0.0, 0.0])
    rule_error(
        "parameter range",
        r"layer 1 weights\[0, 1\] = 1.25 is outside \[-1, 1\]",
        get_linn,
        Network([first, Dense((2, 1), weight=[[0.0], [1.25]], bias=[0.0])]),
        1,
        1,
    )
    rule_error(
        "parameter range",
        r"layer 1 biases\[0\] = -1.5 is outside \[-1, 1\] \(1 value\(s\) outside",
        get_linn,
        Network([first, Dense((2, 1), weight=[[0.0], [0.5]], bias=[-1.5])]),
        1,
        1,
    )


def test_clip_true_clips_out_of_range_parameters():
    net = Network([Dense((1, 1), weight=[[3.0]], bias=[-2.0])])
    doc = get_linn(net, 1, 1, clip=True)
    assert doc["layers"][0] == {"activation": "linear", "weights": [[1.0]], "biases": [-1.0]}


def test_rule_finite_parameters():
    net = net_of(1, 1)
    net.theta[0] = np.nan
    rule_error(
        "finite parameters",
        r"layer 0 weights\[0, 0\]: expected a finite value, got nan",
        get_linn,
        net,
        1,
        1,
    )


def test_rule_device_neuron_limit():
    rule_error(
        "device neuron limit",
        r"layer 0: expected 1 to 80 outputs \(Moku:Go with 2 slots\), got 81",
        get_linn,
        net_of(4, 81, 1),
        1,
        1,
        device="Moku:Go",
        slots=2,
    )
    rule_error(
        "device neuron limit",
        r"layer 0: expected 1 to 50 inputs \(Moku:Lab with 3 slots\), got 51",
        get_linn,
        net_of(51, 1),
        1,
        1,
        device="moku:lab",
        slots=3,
    )
    get_linn(net_of(4, 100, 1), 1, 1, device="Moku:Delta")  # 100 allowed there


def test_device_naming_errors_say_what_to_pass():
    with pytest.raises(
        ValueError,
        match=r"slots: Moku:Go runs the instrument with 2 or 3 instrument slots; pass slots=2 "
        r"\(80 neurons per layer\) or slots=3 \(50 neurons per layer\), got None",
    ):
        get_linn(net_of(1, 1), 1, 1, device="Moku:Go")
    with pytest.raises(
        ValueError, match=r"slots: Moku:Pro runs the instrument in one configuration"
    ):
        get_linn(net_of(1, 1), 1, 1, device="Pro", slots=2)
    with pytest.raises(ValueError, match=r"device: expected one of 'Moku:Pro', .* got 'Moku:Max'"):
        get_linn(net_of(1, 1), 1, 1, device="Moku:Max")


def test_get_linn_refuses_other_objects():
    with pytest.raises(
        TypeError, match="model: expected a LinnModel, its .model or a Network, got dict"
    ):
        get_linn({}, 1, 1)


def test_unconverted_save_writes_nothing(tmp_path):
    with pytest.raises(LinnError):
        save_linn(net_of(101, 1), 1, 1, tmp_path / "x.linn")
    assert list(tmp_path.iterdir()) == []


# -- untrusted documents (load_linn) --------------------------------------------------------
def write(tmp_path, text, name="m.linn"):
    p = tmp_path / name
    p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
    return p


def test_truncated_json_names_line_and_column(tmp_path):
    text = json.dumps(doc_of(2, 1))
    err = rule_error(
        "JSON",
        r"m.linn: not valid JSON: .* at line 1 column \d+",
        load_linn,
        write(tmp_path, text[:40]),
    )
    assert "Traceback" not in str(err)


def test_non_utf8_bytes(tmp_path):
    rule_error("JSON", "not UTF-8 text", load_linn, write(tmp_path, b"\xff\xfe{}"))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals(tmp_path, literal):
    text = json.dumps(doc_of(2, 1)).replace("0.25", literal, 1)
    rule_error(
        "finite parameters", f"{literal} is not a JSON number", load_linn, write(tmp_path, text)
    )


def test_overflowing_number_is_not_finite(tmp_path):
    text = json.dumps(doc_of(2, 1)).replace("0.25", "1e999", 1)
    rule_error(
        "finite parameters",
        r"layers\[0\].weights\[0\]\[0\]: expected a finite number, got inf",
        load_linn,
        write(tmp_path, text),
    )


def test_huge_integer_literal(tmp_path):
    text = json.dumps(doc_of(2, 1)).replace("0.25", "9" * 5000, 1)
    rule_error("JSON", "unreadable JSON value", load_linn, write(tmp_path, text))


def test_deep_nesting(tmp_path):
    rule_error(
        "JSON",
        "nested 100000 deep, more than the limit of 16",
        load_linn,
        write(tmp_path, "[" * 100000 + "]" * 100000),
    )


def test_file_over_the_size_limit(tmp_path):
    p = tmp_path / "big.linn"
    with open(p, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    rule_error(
        "file",
        rf"{MAX_FILE_BYTES + 1} bytes, more than the limit of {MAX_FILE_BYTES}",
        load_linn,
        p,
    )


def test_huge_arrays_are_refused_before_they_are_walked():
    doc = doc_of(2, 1)
    doc["layers"][0]["weights"] = [[0.0] * 2] * 100000
    rule_error(
        "outputs per layer",
        r"layers\[0\]: expected 1 to 100 outputs \(the converter\), got 100000 weight rows",
        load_linn,
        doc,
    )
    doc = doc_of(2, 1)
    doc["layers"][0]["weights"] = [[0.0] * 100000]
    rule_error(
        "size limit",
        r"layers\[0\].weights\[0\]: expected at most 100 numbers, got 100000",
        load_linn,
        doc,
    )


@pytest.mark.parametrize("key", ["version", "num_input_channels", "num_output_channels", "layers"])
def test_missing_top_level_key(key):
    doc = doc_of(2, 1)
    del doc[key]
    rule_error("document structure", rf"document: missing key\(s\) \['{key}'\]", load_linn, doc)


@pytest.mark.parametrize("key", ["activation", "weights", "biases"])
def test_missing_layer_key(key):
    doc = doc_of(2, 1)
    del doc["layers"][0][key]
    rule_error("document structure", rf"layers\[0\]: missing key\(s\) \['{key}'\]", load_linn, doc)


def test_unknown_keys_are_refused():
    doc = doc_of(2, 1)
    doc["comment"] = "x"
    rule_error("document structure", r"unknown key\(s\) \['comment'\]", load_linn, doc)
    doc = doc_of(2, 1)
    doc["layers"][0]["kernel"] = []
    rule_error("document structure", r"layers\[0\]: unknown key\(s\) \['kernel'\]", load_linn, doc)


def test_duplicate_keys_are_refused(tmp_path):
    text = json.dumps(doc_of(2, 1)).replace(
        '"version": "0.1"', '"version": "0.1", "version": "0.1"'
    )
    rule_error("document structure", "duplicate key 'version'", load_linn, write(tmp_path, text))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (
            lambda d: d.update(num_input_channels="1"),
            r"num_input_channels: expected an integer, got the string '1'",
        ),
        (
            lambda d: d.update(num_output_channels=True),
            r"num_output_channels: expected an integer, got the boolean true",
        ),
        (
            lambda d: d.update(layers={"a": 1}),
            r"layers: expected a list of layer objects, got dict",
        ),
        (
            lambda d: d["layers"].__setitem__(0, [1, 2]),
            r"layers\[0\]: expected an object .* got list",
        ),
        (
            lambda d: d["layers"][0].update(activation=1),
            r"layers\[0\].activation: expected a string, got int",
        ),
        (
            lambda d: d["layers"][0].update(weights="0.1"),
            r"layers\[0\].weights: expected a non-empty list of rows",
        ),
        (lambda d: d["layers"][0].update(weights=[]), r"layers\[0\].weights: .*got an empty list"),
        (
            lambda d: d["layers"][0].update(weights=[["0.1", 0.2]]),
            r"layers\[0\].weights\[0\]\[0\]: expected a number, got str",
        ),
        (
            lambda d: d["layers"][0].update(weights=[[0.1, None]]),
            r"layers\[0\].weights\[0\]\[1\]: expected a number, got NoneType",
        ),
        (
            lambda d: d["layers"][0].update(weights=[[0.1, False]]),
            r"layers\[0\].weights\[0\]\[1\]: expected a number, got bool",
        ),
        (
            lambda d: d["layers"][0].update(weights=[[0.1, 0.2], [0.3]]),
            r"layers\[0\].weights\[1\]: expected 2 values like row 0, got 1",
        ),
        (
            lambda d: d["layers"][0].update(biases=[0.0, 0.0]),
            r"layers\[0\].biases: expected 1 values \(one per weight row\), got 2",
        ),
        (
            lambda d: d["layers"][0].update(biases=0.0),
            r"layers\[0\].biases: expected a list of numbers, got float",
        ),
    ],
)
def test_wrong_types_and_shapes(mutate, match):
    doc = doc_of(2, 1)
    mutate(doc)
    rule_error("document structure", match, load_linn, doc)


def test_top_level_must_be_an_object(tmp_path):
    rule_error(
        "document structure",
        "document: expected a JSON object, got list",
        load_linn,
        write(tmp_path, "[1, 2]"),
    )


def test_wrong_version():
    doc = doc_of(2, 1)
    doc["version"] = "0.2"
    rule_error("version", r"version: expected '0.1', got '0.2'", load_linn, doc)


def test_document_activation_must_be_lower_case_instrument_name():
    doc = doc_of(2, 1)
    doc["layers"][0]["activation"] = "Tanh"
    rule_error(
        "activation",
        r"layers\[0\].activation: expected one of relu, tanh, sigmoid, softsign, linear, got "
        r"'Tanh'",
        load_linn,
        doc,
    )


def test_document_layer_count_and_channels():
    rule_error(
        "layer count",
        r"layers: expected 1 to 5 dense layers, got 0",
        load_linn,
        {**doc_of(2, 1), "layers": []},
    )
    rule_error("layer count", "got 6", load_linn, doc_of(2, 2, 2, 2, 2, 2, 1))
    rule_error(
        "input channels",
        r"expected num_input_channels 1 \(serial\) or 2 \(parallel\), got 3",
        load_linn,
        doc_of(2, 1, in_ch=3),
    )
    rule_error("output channels", "got 2", load_linn, doc_of(2, 1, out_ch=2))


def test_document_parameter_range():
    rule_error(
        "parameter range",
        r"layers\[0\].weights\[0, 0\] = 1.5 is outside \[-1, 1\]",
        load_linn,
        doc_of(2, 1, value=1.5),
    )
    rule_error(
        "parameter range",
        r"layers\[0\].weights\[0\]\[0\] = 2 is outside \[-1, 1\]",
        load_linn,
        doc_of(2, 1, value=2),
    )


def test_document_device_limit():
    rule_error(
        "device neuron limit",
        r"expected 1 to 50 outputs \(Moku:Go with 3 slots\), got 64",
        load_linn,
        doc_of(4, 64, 1),
        device="Moku:Go",
        slots=3,
    )


def test_errors_in_files_name_the_file(tmp_path):
    p = write(tmp_path, json.dumps(doc_of(2, 1, in_ch=3)))
    err = rule_error("input channels", "got 3", describe_linn, p)
    assert str(p) in str(err)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_linn(tmp_path / "none.linn")
    rule_error("file", "is a folder", load_linn, tmp_path)


def test_load_linn_refuses_other_argument_types():
    with pytest.raises(
        TypeError, match="path_or_dict: expected a path to a .linn file or a dict, got bytes"
    ):
        load_linn(b"{}")


def test_valid_document_is_not_modified_by_loading():
    doc = doc_of(3, 2, 1)
    before = copy.deepcopy(doc)
    load_linn(doc)
    assert doc == before
