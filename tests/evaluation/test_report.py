"""Deviation reports: bucket boundaries, the score, near-zero targets, several outputs,
empty and constant data, JSON round trips, the training callback and the plots."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from linncore import Dense, Network
from linncore.evaluation.report import (
    BUCKETS,
    DeviationReport,
    EvaluationCallback,
    deviations,
    evaluate,
    plot_buckets,
    plot_history,
    plot_predictions,
)


class Fixed:
    """A model-like object returning preset predictions (duck-typed ``predict``)."""

    def __init__(self, pred):
        self.pred = np.asarray(pred, dtype=np.float64)

    def predict(self, X):
        return self.pred


def suptitle(fig):
    """The figure's title, through the public list of figure texts (it holds only the title)."""
    (title,) = fig.texts
    return title.get_text()


def report_of(pred, target=10.0, **kw):
    pred = np.atleast_1d(np.asarray(pred, dtype=np.float64))
    return DeviationReport.from_predictions(pred, np.full(pred.shape, target), floor=1.0, **kw)


def bucket_label(d_pred, target=10.0):
    r = report_of([d_pred], target)
    (label,) = [k for k, v in r.counts.items() if v]
    return label, r.deviations[0]


# With target 10 a prediction 10 + k is a deviation of exactly 10 k percent (100 k / 10 is exact).
@pytest.mark.parametrize(
    "pred, label",
    [
        (10.0, "0-10%"),
        (np.nextafter(11.0, 0.0), "0-10%"),
        (11.0, "10-20%"),
        (np.nextafter(12.0, 0.0), "10-20%"),
        (12.0, "20-30%"),
        (np.nextafter(13.0, 0.0), "20-30%"),
        (13.0, "30-40%"),
        (np.nextafter(14.0, 0.0), "30-40%"),
        (14.0, "40-50%"),
        (np.nextafter(15.0, 0.0), "40-50%"),
        (15.0, "50-100%"),
        (20.0, "50-100%"),  # exactly 100 % is not yet a failure
        (0.0, "50-100%"),  # a prediction of zero for a positive target: exactly 100 %
        (np.nextafter(20.0, 30.0), "100%+"),
        (1e300, "100%+"),
        (np.inf, "100%+"),
        (np.nan, "100%+"),
    ],
)
def test_every_bucket_boundary_lands_in_the_documented_bucket(pred, label):
    got, d = bucket_label(pred)
    assert got == label, (pred, d)


def test_boundary_deviations_are_exact_percentages():
    r = report_of([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 20.0, 9.0, 5.0])
    assert r.deviations.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 10.0, 50.0]


def test_buckets_partition_the_samples_and_list_their_indices():
    r = report_of([10.0, 30.0, 11.5, 10.2, 17.0, 13.3])
    b = r.buckets
    assert list(b) == [label for label, _, _ in BUCKETS]
    assert b["0-10%"].tolist() == [0, 3]
    assert b["10-20%"].tolist() == [2]
    assert b["30-40%"].tolist() == [5]
    assert b["50-100%"].tolist() == [4]
    assert b["100%+"].tolist() == [1]
    assert sorted(np.concatenate(list(b.values())).tolist()) == list(range(6))
    assert r.samples_in("100%+").tolist() == [1]
    assert r.failures == 1
    with pytest.raises(ValueError, match="label"):
        r.samples_in("0-5%")


def test_score_is_the_mean_of_100_minus_deviation_floored_at_zero():
    # deviations 0, 25, 100, 300  ->  per-sample scores 100, 75, 0, 0
    r = report_of([10.0, 12.5, 20.0, 40.0])
    assert r.deviations.tolist() == [0.0, 25.0, 100.0, 300.0]
    assert r.score == 43.75
    assert r.average_deviation == 106.25
    assert r.failures == 1
    assert r.failure_rate == 0.25
    assert report_of([10.0, 10.0]).score == 100.0
    assert report_of([30.0, -50.0]).score == 0.0


def test_worst_samples_are_sorted_by_deviation_then_index():
    r = report_of([12.0, 40.0, 10.0, 40.0, 11.0], worst_n=3)
    worst = r.worst
    assert [w.index for w in worst] == [1, 3, 0]
    assert worst[0].deviation == 300.0
    assert worst[0].expected == (10.0,) and worst[0].predicted == (40.0,)
    assert len(report_of([12.0], worst_n=5).worst) == 1
    assert report_of([12.0], worst_n=0).worst == ()


def test_near_zero_targets_use_the_default_floor_of_five_percent_of_the_range():
    # column range 2 -> floor 0.1: a target of 0 judged against 0.1
    dev, floor = deviations([[0.05], [1.0], [-1.0]], [[0.0], [1.0], [-1.0]])
    assert floor.tolist() == [0.1]
    assert dev[:, 0].tolist() == [50.0, 0.0, 0.0]
    # large targets are relative as usual
    dev, _ = deviations([[0.0], [1.1]], [[0.0], [1.0]])
    assert dev[1, 0] == pytest.approx(10.0)


def test_explicit_floor_and_floor_fraction():
    dev, floor = deviations([[0.5]], [[0.0]], floor=2.0)
    assert floor.tolist() == [2.0] and dev[0, 0] == 25.0
    dev, floor = deviations([[0.5], [4.0]], [[0.0], [4.0]], floor_fraction=0.5)
    assert floor.tolist() == [2.0] and dev[0, 0] == 25.0
    with pytest.raises(ValueError, match="floor"):
        deviations([[0.5]], [[0.0]], floor=0.0)
    with pytest.raises(ValueError, match="floor"):
        deviations([[0.5, 1]], [[0.0, 1]], floor=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="floor_fraction"):
        deviations([[0.5]], [[0.0]], floor_fraction=0.0)


def test_constant_targets_take_the_floor_from_their_magnitude_or_one():
    dev, floor = deviations([[3.3], [3.0]], [[3.0], [3.0]])
    assert floor.tolist() == [pytest.approx(0.15)]
    assert dev[:, 0].tolist() == [pytest.approx(10.0), 0.0]
    dev, floor = deviations([[0.01], [0.0]], [[0.0], [0.0]])
    assert floor.tolist() == [0.05]
    assert dev[:, 0].tolist() == [20.0, 0.0]


def test_constant_inputs_give_a_clean_report():
    net = Network([Dense((2, 1), weight=[[0.25], [0.25]], bias=[0.0])], dtype="float64")
    r = evaluate(net, np.ones((4, 2)), np.full(4, 0.5))
    assert r.n_samples == 4 and r.score == 100.0 and r.failures == 0
    assert r.counts["0-10%"] == 4


def test_empty_data_gives_an_empty_report_with_nan_score():
    net = Network([Dense((2, 3), seed=0)])
    r = evaluate(net, np.zeros((0, 2)), np.zeros((0, 3)))
    assert r.n_samples == 0 and r.failures == 0
    assert math.isnan(r.score) and math.isnan(r.average_deviation)
    assert all(v == 0 for v in r.counts.values())
    assert r.worst == ()
    assert len(r.columns) == 3
    assert "No samples" in r.summary_text()
    back = DeviationReport.from_json(r.to_json())
    assert back.n_samples == 0 and math.isnan(back.score)
    r1 = evaluate(net, np.zeros((0, 2)), [])
    assert r1.n_samples == 0
    with pytest.raises(ValueError, match="Y: expected 0 samples"):
        evaluate(net, np.zeros((0, 2)), np.zeros((2, 3)))


def test_multi_output_reports_each_column_and_aggregates_by_max_or_mean():
    y = np.array([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
    p = np.array([[10.0, 11.0], [13.0, 10.0], [10.0, 30.0]])
    r = DeviationReport.from_predictions(p, y, floor=1.0)
    assert r.column is None and [c.column for c in r.columns] == [0, 1]
    assert r.columns[0].deviations.tolist() == [0.0, 30.0, 0.0]
    assert r.columns[1].deviations.tolist() == [10.0, 0.0, 200.0]
    assert r.deviations.tolist() == [10.0, 30.0, 200.0]
    assert r.failures == 1 and r.columns[0].failures == 0
    assert r.worst[0].index == 2 and r.worst[0].predicted == (10.0, 30.0)
    mean = DeviationReport.from_predictions(p, y, floor=1.0, combine="mean")
    assert mean.deviations.tolist() == [5.0, 15.0, 100.0]
    assert mean.failures == 0
    assert "Per column" in r.summary_text()
    with pytest.raises(ValueError, match="combine"):
        DeviationReport.from_predictions(p, y, combine="min")


def test_evaluate_runs_a_network_and_a_duck_typed_model():
    net = Network([Dense((1, 1), weight=[[0.5]], bias=[0.0])], dtype="float64")
    r = evaluate(net, [[1.0], [1.0]], [[0.5], [1.0]])
    assert r.deviations.tolist() == [0.0, 50.0]
    r2 = evaluate(Fixed([[0.5], [1.0]]), np.zeros((2, 7)), [0.5, 1.0])
    assert r2.score == 100.0
    with pytest.raises(TypeError, match="model"):
        evaluate(object(), [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="Y: expected the shape"):
        evaluate(Fixed([[0.5], [1.0]]), np.zeros((2, 1)), [[0.5, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="Y: expected finite"):
        evaluate(Fixed([[0.5]]), np.zeros((1, 1)), [[np.nan]])


def test_summary_has_a_bar_per_bucket_proportional_to_its_share():
    r = report_of([10.0] * 3 + [30.0])
    text = r.summary_text(width=20, bar="#")
    lines = {
        ln.split()[0]: ln for ln in text.splitlines() if ln.strip().split()[0] in dict(r.counts)
    }
    assert set(lines) == set(r.counts)
    assert lines["0-10%"].endswith("#" * 15) and "#" * 16 not in lines["0-10%"]
    assert lines["100%+"].endswith(" " + "#" * 5)
    assert "#" not in lines["10-20%"]
    assert "Quality score: 75.00/100" in text
    assert "Failures (deviation > 100%): 1 (25.0%)" in text


def test_summary_prints(capsys):
    report_of([10.0, 12.0]).summary()
    assert "Deviation buckets" in capsys.readouterr().out


def test_json_round_trip_is_exact_including_infinite_deviations(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 3))
    p = y + rng.normal(scale=0.3, size=y.shape)
    p[4, 1] = np.nan
    r = DeviationReport.from_predictions(p, y, worst_n=7)
    text = r.to_json()
    json.loads(text)  # strict JSON: no NaN/Infinity tokens
    assert "NaN" not in text and "Infinity" not in text
    back = DeviationReport.from_json(text)
    assert back == r
    assert np.array_equal(back.deviations, r.deviations)
    assert back.deviations[4] == np.inf
    assert back.score == r.score
    assert [w.to_dict() for w in back.worst] == [w.to_dict() for w in r.worst]
    path = tmp_path / "report.json"
    r.save(path)
    assert DeviationReport.load(path) == r


def test_loading_refuses_inconsistent_or_newer_reports():
    r = report_of([10.0, 30.0])
    doc = r.to_dict()
    doc["failures"] = 0
    with pytest.raises(ValueError, match="failures"):
        DeviationReport.from_dict(doc)
    doc = r.to_dict()
    doc["buckets"]["0-10%"] = [1]
    with pytest.raises(ValueError, match="buckets"):
        DeviationReport.from_dict(doc)
    doc = r.to_dict()
    doc["format_version"] = 99
    with pytest.raises(ValueError, match="newer"):
        DeviationReport.from_dict(doc)
    with pytest.raises(ValueError, match="JSON"):
        DeviationReport.from_json("{")


def test_save_is_atomic_an_earlier_file_survives_a_failed_write(tmp_path, monkeypatch):
    import linncore._util.atomic as atomic

    path = tmp_path / "r.json"
    first = report_of([10.0])
    first.save(path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        report_of([30.0]).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_callback_logs_the_score_every_n_epochs_and_nan_between():
    x = np.linspace(-1, 1, 40)[:, None]
    y = 0.5 * x
    net = Network([Dense((1, 6), "tanh", seed=0), Dense((6, 1), seed=1)])
    cb = EvaluationCallback(x, y, every=3)
    h = net.fit(x, y, epochs=7, verbose=0, seed=0, callbacks=[cb])
    scores = h.history["val_score"]
    assert len(scores) == 7 == len(h.history["loss"])
    assert [not math.isnan(s) for s in scores] == [False, False, True, False, False, True, False]
    assert sorted(cb.reports) == [2, 5]
    assert scores[5] == cb.reports[5].score
    assert 0.0 <= scores[2] <= 100.0
    assert len(h.history["val_avg_deviation"]) == 7 and len(h.history["val_failures"]) == 7


def test_callback_with_every_one_matches_evaluate_on_the_final_weights():
    x = np.linspace(-1, 1, 20)[:, None]
    net = Network([Dense((1, 4), "tanh", seed=0), Dense((4, 1), seed=1)])
    h = net.fit(
        x, x**2, epochs=3, verbose=0, seed=0, callbacks=[EvaluationCallback(x, x**2, prefix="v_")]
    )
    assert h.history["v_score"][-1] == evaluate(net, x, x**2).score


def test_callback_checks_its_arguments():
    with pytest.raises(ValueError, match="every"):
        EvaluationCallback([[0.0]], [[0.0]], every=0)
    with pytest.raises(ValueError, match="Y_val"):
        EvaluationCallback([[0.0], [1.0]], [[0.0]])
    with pytest.raises(TypeError, match="options"):
        EvaluationCallback([[0.0]], [[0.0]], wrost_n=3)


def test_plots_explain_how_to_install_matplotlib_when_it_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install linncore\[plot\]"):
        plot_buckets(report_of([10.0]))
    with pytest.raises(ImportError, match=r"pip install linncore\[plot\]"):
        plot_history({"loss": [1.0]})


def test_plots_return_figures_and_save_them(tmp_path):
    pytest.importorskip("matplotlib")
    r = report_of([10.0, 11.0, 30.0])
    fig = plot_buckets(r, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
    assert [int(p.get_height()) for p in fig.axes[0].patches] == list(r.counts.values())
    net = Network([Dense((1, 2), seed=0)])
    x = np.linspace(-1, 1, 9)[:, None]
    fig = plot_predictions(net, x, np.hstack([x, -x]), tmp_path / "p.png")
    assert len(fig.axes) == 2 and (tmp_path / "p.png").exists()
    fig = plot_predictions(np.zeros(3), None, np.ones(3))
    assert len(fig.axes) == 1
    fig = plot_history({"loss": [1.0, 0.5], "val_score": [math.nan, 50.0]}, tmp_path / "h.png")
    assert len(fig.axes) == 2 and (tmp_path / "h.png").exists()
    with pytest.raises(ValueError, match="keys"):
        plot_history({"loss": [1.0]}, keys=["val_loss"])


def test_plots_carry_titles_units_and_legends_outside_the_data():
    pytest.importorskip("matplotlib")
    r = report_of([10.0, 11.0, 30.0])
    ax = plot_buckets(r).axes[0]
    assert "3 samples" in ax.get_title() and "(%)" in ax.get_xlabel()
    assert "(count)" in ax.get_ylabel()
    assert plot_buckets(r, title="run A").axes[0].get_title() == "run A"
    net = Network([Dense((1, 2), seed=0)])
    x = np.linspace(-1, 1, 9)[:, None]
    fig = plot_predictions(net, x, np.hstack([x, -x]))
    assert "9 samples" in suptitle(fig) and "Network(1 -> 2" in suptitle(fig)
    assert all("(units of Y)" in a.get_xlabel() and a.get_legend() is None for a in fig.axes)
    assert [a.get_title().split(":")[0] for a in fig.axes] == ["output 0", "output 1"]
    h = net.fit(x, x**2 * np.ones((1, 2)), epochs=3, verbose=0, seed=0, validation_split=0.3)
    fig = plot_history(h)
    assert suptitle(fig).startswith("training history, 3 epoch(s): Network(1 -> 2")
    ax = fig.axes[0]
    assert "loss" in ax.get_ylabel()
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1
