"""Deviation reports: extreme targets, impossible reports, one-sample inputs."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import Dense, Network
from linncore.evaluation.report import deviations


def test_deviations_survive_a_target_range_beyond_the_largest_float():
    d, floor = deviations(np.array([[0.0], [0.0], [np.nan]]), np.array([[1e308], [-1e308], [5.0]]))
    assert np.isfinite(floor).all()
    np.testing.assert_array_equal(d.ravel(), [100.0, 100.0, np.inf])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"buckets": []}, "buckets: expected an object"),
        ({"buckets": {"0-10%": 5}}, "buckets: expected an object"),
        (
            {"deviations": "first", "value": 10**400},
            r"deviations\[0\]: expected a finite number, got an integer of 401",
        ),
        ({"deviations": "first", "value": -50.0}, "deviations: expected non-negative"),
        ({"combine": "bogus"}, "combine: expected one of 'max', 'mean', got 'bogus'"),
        ({"column": "x"}, "column: expected null or a column index"),
        ({"score": 3.0}, "score: stored 3.0"),
    ],
)
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
