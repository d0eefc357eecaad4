"""The model-file writer and reader agree: scaling travels, what one refuses the other does."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import Dense, LinnModel, Network, from_json, load_model, save_model, to_json
from linncore.io import model_files as files
from linncore.io.model_files import ModelFileError


def test_a_linn_model_saves_with_its_scaling_and_comes_back_predicting_in_data_units(tmp_path):
    r = np.random.default_rng(0)
    X = r.uniform(0, 50, (80, 2))
    lm = LinnModel()
    lm.set_training_data(X, X.sum(axis=1, keepdims=True))
    lm.construct_model([(8, "relu"), (1, "linear")], seed=0)
    lm.fit_model(5, verbose=0)
    save_model(lm, tmp_path / "m.json")
    mf = load_model(tmp_path / "m.json")
    assert mf.scaling == lm.scaling()
    np.testing.assert_array_equal(mf.linn_model().predict(X[:5]), lm.predict(X[:5]))


@pytest.mark.parametrize("name", ["x" * 200, "tab\tname"])
def test_the_writer_refuses_what_the_reader_would_refuse(tmp_path, name):
    path = tmp_path / "m.json"
    with pytest.raises(ModelFileError, match="cannot be written in a form load_model reads back"):
        save_model(Network([Dense((1, 1), name=name)]), path)
    assert not path.exists()


def test_lone_surrogates_are_refused_on_reading_and_writing():
    with pytest.raises(ModelFileError, match="lone UTF-16 surrogate"):
        from_json(
            to_json(Network([Dense((1, 1))]), training={"note": "SURROGATE"}).replace(
                "SURROGATE", "\\ud800"
            )
        )
    with pytest.raises(ModelFileError, match="lone UTF-16 surrogate"):
        to_json(Network([Dense((1, 1))]), training={"note": "\ud800"})


def test_the_size_limit_counts_utf8_bytes_of_text(monkeypatch):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    text = '{"x": "' + "\u20ac" * 400 + '"}'  # 409 characters, 1209 bytes
    with pytest.raises(ModelFileError, match="1209 bytes as UTF-8, more than the limit of 1000"):
        from_json(text)
