"""PrecisionDict: lookups with defaults, validation, JSON round trips and atomic saves."""

from __future__ import annotations

import json
import os

import pytest

from linncore.fixed.formats import FixedFormat
from linncore.fixed.precision import FIELDS, PrecisionDict, ensure_precision_dict

CONFIG = {
    "default": {"weight": "fixed<16,1>", "gradient": "Q4.12", "activation": "fixed<8,3,TRN,WRAP>"},
    "dense1": {"activation": "Q2.14", "gradient": None, "adam_m": {"bits": 12, "int_bits": 2}},
}


def test_fields_are_those_of_the_spec():
    assert FIELDS == (
        "input",
        "weight",
        "bias",
        "accumulator",
        "activation",
        "gradient",
        "update",
        "momentum",
        "adam_m",
        "adam_v",
    )


def test_layer_entries_override_defaults_field_by_field():
    pd = PrecisionDict(CONFIG)
    assert pd.dtype("dense0", "weight") == FixedFormat(16, 1)
    assert pd.dtype("dense1", "weight") == FixedFormat(16, 1)
    assert pd.dtype("dense1", "activation") == FixedFormat(16, 2)
    assert pd.dtype("dense7", "activation") == FixedFormat(8, 3, True, "TRN", "WRAP")
    assert pd.dtype("dense1", "adam_m") == FixedFormat(12, 2)
    assert pd.dtype("dense0", "adam_m") is None


def test_explicit_none_forces_floating_point_over_the_default():
    pd = PrecisionDict(CONFIG)
    assert pd.dtype("dense0", "gradient") == FixedFormat(16, 4)
    assert pd.dtype("dense1", "gradient") is None


def test_unknown_field_is_an_error_at_construction_naming_it():
    with pytest.raises(ValueError, match=r"config\['dense0'\]: unknown field 'weights'"):
        PrecisionDict({"dense0": {"weights": "Q1.15"}})


def test_unknown_layer_key_is_an_error_at_construction_naming_it():
    with pytest.raises(ValueError, match=r"config: expected 'default' or a layer name .*'conv0'"):
        PrecisionDict({"conv0": {"weight": "Q1.15"}})
    with pytest.raises(ValueError, match=r"'dense01'"):
        PrecisionDict({"dense01": {"weight": "Q1.15"}})


def test_bad_format_string_is_an_error_naming_layer_and_field():
    with pytest.raises(ValueError, match=r"config\['default'\]\['bias'\]: .*'fixed<8>'"):
        PrecisionDict({"default": {"bias": "fixed<8>"}})


def test_dtype_rejects_unknown_fields_and_layer_names():
    pd = PrecisionDict(CONFIG)
    with pytest.raises(ValueError, match=r"field: unknown field 'value'"):
        pd.dtype("dense0", "value")
    with pytest.raises(ValueError, match=r"layer: expected .*'output'"):
        pd.dtype("output", "weight")


def test_validate_names_a_configured_layer_missing_from_the_network():
    pd = PrecisionDict(CONFIG)
    pd.validate(["dense0", "dense1"])
    with pytest.raises(
        ValueError, match=r"layer 'dense1' is not in the network \(layers: dense0\)"
    ):
        pd.validate(["dense0"])


def test_json_round_trip_preserves_every_entry():
    pd = PrecisionDict(CONFIG)
    text = pd.to_json()
    assert PrecisionDict.from_json(text) == pd
    assert json.loads(text)["dense1"]["gradient"] is None
    assert json.loads(text)["default"]["weight"] == "fixed<16,1,RND_CONV,SAT>"


def test_from_json_rejects_invalid_text():
    with pytest.raises(ValueError, match=r"text: not valid JSON"):
        PrecisionDict.from_json("{nope")


def test_save_and_load_round_trip_and_leave_no_temporary_file(tmp_path):
    pd = PrecisionDict(CONFIG)
    path = tmp_path / "precision.json"
    pd.save(path)
    pd2 = PrecisionDict({"default": {"bias": "Q3.5"}})
    pd2.save(path)  # replaces the first file
    assert PrecisionDict.load(path) == pd2
    assert os.listdir(tmp_path) == ["precision.json"]


def test_summary_lists_every_configured_entry():
    text = PrecisionDict(CONFIG).summary()
    assert "dense1   activation  fixed<16,2,RND_CONV,SAT>" in text
    assert "dense1   gradient    float" in text
    assert len(text.splitlines()) == 1 + 3 + 3


def test_ensure_precision_dict_accepts_none_dicts_and_instances():
    assert ensure_precision_dict(None) is None
    pd = PrecisionDict(CONFIG)
    assert ensure_precision_dict(pd) is pd
    assert ensure_precision_dict(CONFIG) == pd
    with pytest.raises(
        TypeError, match=r"precision_dict: expected None, a dict or a PrecisionDict"
    ):
        ensure_precision_dict("fixed<8,1>")
