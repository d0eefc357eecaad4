"""Behaviour a review found wrong, held in place: model files, histories, exports, deviations."""
from __future__ import annotations

import numpy as np
import pytest

from linncore import Dense, FitHistory, LinnModel, Network, export_codes, from_json, load_model, save_model, to_json
from linncore.io import model_files as files
from linncore.evaluation.report import deviations
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
        from_json(to_json(Network([Dense((1, 1))]), training={"note": "SURROGATE"}).replace("SURROGATE", "\\ud800"))
    with pytest.raises(ModelFileError, match="lone UTF-16 surrogate"):
        to_json(Network([Dense((1, 1))]), training={"note": "\ud800"})


def test_the_size_limit_counts_utf8_bytes_of_text(monkeypatch):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    text = '{"x": "' + "\u20ac" * 400 + '"}'  # 409 characters, 1209 bytes
    with pytest.raises(ModelFileError, match="larger than the limit of 1000 bytes"):
        from_json(text)


def test_history_metrics_may_use_any_name_and_numpy_metadata(tmp_path):
    h = FitHistory({"file": np.arange(3.0), "allow_pickle": np.ones(3), "step": np.arange(3)},
                   config={"lr": np.float32(0.25), "sizes": np.array([1, 2])}, seed=np.int64(3))
    h.save(tmp_path / "h.npz")
    back = FitHistory.load(tmp_path / "h.npz")
    assert sorted(back) == ["allow_pickle", "file", "step"] and back.seed == 3
    assert back.config == {"lr": 0.25, "sizes": [1, 2]}
    np.testing.assert_array_equal(back["file"], h["file"])
    with pytest.raises(TypeError, match=r"metrics\['x'\]: expected numbers"):
        FitHistory({"x": np.array([object()])})


def test_codes_of_subnormal_parameters_are_refused_rather_than_lost():
    net = Network([Dense((1, 2), weight=[[5e-324, -5e-324]], bias=[0.0, 0.0])], dtype="float64")
    with pytest.raises(ValueError, match="below the smallest normal float"):
        export_codes(net, "int8")


def test_deviations_survive_a_target_range_beyond_the_largest_float():
    d, floor = deviations(np.array([[0.0], [0.0], [np.nan]]), np.array([[1e308], [-1e308], [5.0]]))
    assert np.isfinite(floor).all()
    np.testing.assert_array_equal(d.ravel(), [100.0, 100.0, np.inf])


def test_atomic_writes_work_for_the_longest_file_names(tmp_path):
    from linncore._util.atomic import write_text_atomic

    path = tmp_path / ("n" * 250 + ".json")
    write_text_atomic(path, "{}")
    assert path.read_text() == "{}"


@pytest.mark.parametrize("change, message", [
    ({"buckets": []}, "buckets: expected an object"),
    ({"buckets": {"0-10%": 5}}, "buckets: expected an object"),
    ({"deviations": "first", "value": 10 ** 400}, r"deviations\[0\]: expected a finite number, got an integer of 401"),
    ({"deviations": "first", "value": -50.0}, "deviations: expected non-negative"),
    ({"combine": "bogus"}, "combine: expected 'max' or 'mean'"),
    ({"column": "x"}, "column: expected null or a column index"),
    ({"score": 3.0}, "score: stored 3.0"),
])
def test_a_report_that_cannot_be_true_is_refused_cleanly(change, message):
    import json

    from linncore import DeviationReport, evaluate

    net = Network([Dense((1, 1), weight=[[0.5]], bias=[0.0])], dtype="float64")
    x = np.linspace(-1, 1, 10)[:, None]
    doc = json.loads(evaluate(net, x, 0.6 * x).to_json())
    if change.get("deviations") == "first":
        doc["deviations"][0] = change["value"]
    else:
        doc.update(change)
    with pytest.raises(ValueError, match=message):
        DeviationReport.from_dict(doc)


def test_evaluate_reads_a_one_dimensional_single_sample_as_predict_does():
    from linncore import evaluate

    net = Network([Dense((3, 2), seed=0)], dtype="float64")
    x = [0.1, 0.2, 0.3]
    report = evaluate(net, x, net.predict([x])[0])
    assert report.n_samples == 1 and report.score == 100.0
    assert evaluate(Network([Dense((3, 1), seed=0)], dtype="float64"), x, [0.5]).n_samples == 1
