"""Sweeps: grid order, summaries, reproducibility, files, executors and bad grids."""

from __future__ import annotations

import csv
import json
import math
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import pytest

from linncore import FitHistory, SweepResult, sweep
from linncore.ablation.sweep import check_config, expand_grid

BASE = {"dataset": {"n": 64, "d_in": 4, "d_out": 2}, "train": {"epochs": 2, "batch_size": 16}}
QUANT = {"default": {"weight": "fixed<8,1>", "update": "fixed<8,1>", "gradient": "fixed<12,2>"}}
GRID = {
    "train.learning_rate": [0.05, 0.5],
    "train.use_controller": [False, True],
    "train.precision_dict": [None, QUANT],
}
SUMMARY_COLUMNS = (
    "final_loss",
    "diverged",
    "silent_death",
    "min_update_cosine",
    "max_weight_saturation_fraction",
    "max_weight_near_rail_fraction",
    "max_gradient_saturation_fraction",
    "max_gradient_near_rail_fraction",
    "max_update_saturation_fraction",
    "max_update_underflow_fraction",
)


def same(a, b):
    """Equal values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def check_rows(res: SweepResult, seeds):
    points = expand_grid(GRID)
    assert len(res.rows) == len(points) * len(seeds)
    k = 0
    for i, point in enumerate(points):
        for seed in seeds:
            row = res.rows[k]
            assert row["run"] == f"run{i:03d}_seed{seed}" and row["seed"] == seed
            for key, value in point.items():
                assert row[key] == value, key
            for col in SUMMARY_COLUMNS:
                assert col in row, col
            assert math.isfinite(row["final_loss"]) and row["diverged"] == 0.0
            quantized = point["train.precision_dict"] is not None
            assert math.isnan(row["max_update_underflow_fraction"]) != quantized
            assert row["steps"] == 8.0
            assert isinstance(res.histories[row["run"]], FitHistory)
            k += 1


@pytest.fixture(scope="module")
def threaded():
    with ThreadPoolExecutor(2) as ex:
        return sweep(GRID, seeds=[0, 1], base=BASE, executor=ex)


def test_thread_pool_rows_in_grid_order_with_summary_columns(threaded):
    check_rows(threaded, [0, 1])


def test_default_process_pool_gives_the_same_rows_as_threads(threaded):
    done = []
    res = sweep(
        GRID, seeds=[0, 1], base=BASE, progress=lambda d, t, row: done.append((d, t, row["run"]))
    )
    check_rows(res, [0, 1])
    for a, b in zip(res.rows, threaded.rows):
        assert a.keys() == b.keys()
        assert all(same(a[k], b[k]) for k in a), (a, b)
    for run_id, h in res.histories.items():
        for key in h:
            np.testing.assert_array_equal(
                h[key], threaded.histories[run_id][key], err_msg=f"{run_id} {key}"
            )
    assert [d for d, _, _ in done] == list(range(1, 17)) and {t for _, t, _ in done} == {16}
    assert sorted(r for _, _, r in done) == sorted(row["run"] for row in res.rows)


def test_same_seed_same_row_and_seeds_differ():
    with ThreadPoolExecutor(2) as ex:
        a = sweep({"train.learning_rate": [0.1]}, seeds=[3, 4], base=BASE, executor=ex)
        b = sweep({"train.learning_rate": [0.1]}, seeds=[3], base=BASE, executor=ex)
    r0, r2 = a.rows
    r1 = b.rows[0]
    assert all(same(r0[k], r1[k]) for k in r0)
    assert r0["final_loss"] != r2["final_loss"]


def test_a_seed_given_twice_is_refused_one_row_and_one_history_per_run():
    with pytest.raises(ValueError, match="seeds: seed 3 appears twice"):
        sweep({"train.learning_rate": [0.1]}, seeds=[3, 4, 3], base=BASE)


def test_grid_and_sizes_are_checked_before_anything_runs():
    from linncore.ablation.sweep import MAX_RUNS

    huge = {f"train.k{i}": list(range(1000)) for i in range(4)}  # 10**12 points, never expanded
    with pytest.raises(
        ValueError, match=f"grid: 1000000000000 points, more than the limit of {MAX_RUNS}"
    ):
        sweep(huge, seeds=[0], base=BASE)
    with pytest.raises(
        TypeError, match=r"dataset.n: expected a positive integer, got the number 10000000000.0"
    ):
        sweep({"train.learning_rate": [0.1]}, seeds=[0], base={"dataset": {"n": 1e10}})
    with pytest.raises(ValueError, match=r"dataset: n \* \(d_in \+ d_out\) = 60000000000 values"):
        sweep({"train.learning_rate": [0.1]}, seeds=[0], base={"dataset": {"n": 10**10}})
    with pytest.raises(ValueError, match=r"model: [0-9]+ parameters, more than the limit"):
        sweep({"model.num_hidden": [[2_000_000, 2_000_000]]}, seeds=[0], base=BASE)
    with pytest.raises(ValueError, match=r"seeds\[0\]: expected a non-negative integer, got -1"):
        sweep({"train.learning_rate": [0.1]}, seeds=[-1], base=BASE)


def test_controller_and_silent_death_show_in_the_table():
    dead = {"default": {"weight": "fixed<8,1>", "update": "fixed<8,1>"}}
    with ThreadPoolExecutor(1) as ex:
        res = sweep(
            {"train.precision_dict": [dead], "train.learning_rate": [1e-3]},
            seeds=[0],
            base={
                **BASE,
                "train": {"epochs": 2, "batch_size": 16, "compute_analytic_hessian": False},
            },
            executor=ex,
        )
    row = res.rows[0]
    assert (
        row["silent_death"] == 1.0
        and row["max_update_underflow_fraction"] == 1.0
        and row["diverged"] == 0.0
    )
    # the first step moves the initial weights onto the storage grid; every later update is lost
    h = res.histories[row["run"]]
    assert np.all(h.actual_update_norm[1:] == 0) and np.all(h.update_cosine[1:] == 0)


class CountingExecutor(Executor):
    """Runs each call at submit time and counts the calls."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append((fn.__name__, args[1] if len(args) > 1 else None))
        fut = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # pragma: no cover - reported through the future
            fut.set_exception(exc)
        return fut


def test_a_custom_executor_runs_every_job():
    ex = CountingExecutor()
    res = sweep({"train.learning_rate": [0.05, 0.1, 0.2]}, seeds=[0, 1], base=BASE, executor=ex)
    assert len(ex.submitted) == 6 and {name for name, _ in ex.submitted} == {"run_config"}
    assert [seed for _, seed in ex.submitted] == [0, 1] * 3
    assert [r["train.learning_rate"] for r in res.rows] == [0.05, 0.05, 0.1, 0.1, 0.2, 0.2]


def test_csv_json_and_save_folder(threaded, tmp_path):
    text = threaded.to_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == text
    with open(tmp_path / "t.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["run"] for r in table] == [r["run"] for r in threaded.rows]
    assert float(table[0]["final_loss"]) == threaded.rows[0]["final_loss"]
    # a precision config in a cell is JSON
    quant_row = next(r for r in table if r["train.precision_dict"])
    assert json.loads(quant_row["train.precision_dict"]) == QUANT
    threaded.to_json(tmp_path / "t.json")
    rows = json.loads((tmp_path / "t.json").read_text())
    assert [r["run"] for r in rows] == [r["run"] for r in threaded.rows]
    assert all(same(a[k], b[k]) for a, b in zip(rows, threaded.rows) for k in a)

    out = threaded.save(tmp_path / "out")
    assert (out / "summary.csv").read_text() == text
    assert json.loads((out / "summary.json").read_text()) == json.loads(threaded.to_json())
    files = sorted(p.name for p in (out / "histories").iterdir())
    assert files == sorted(f"{r['run']}.npz" for r in threaded.rows)
    for row in threaded.rows:
        h = FitHistory.load(out / "histories" / f"{row['run']}.npz")
        assert h.keys() == threaded.histories[row["run"]].keys()
        np.testing.assert_array_equal(h.loss, threaded.histories[row["run"]].loss)
        assert h.config["run"]["seed"] == row["seed"]
    # atomic: no temporary files are left behind
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_failed_write_keeps_the_earlier_table(threaded, tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("earlier\n")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        threaded.to_csv(path)
    assert path.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.parametrize(
    "grid, match",
    [
        ({"train.learning_rate": 0.1}, r"grid\['train.learning_rate'\]: expected a non-empty list"),
        ({"train.learning_rate": []}, r"grid\['train.learning_rate'\]: expected a non-empty list"),
        ({"train.learning_rate": "0.1"}, r"grid\['train.learning_rate'\]"),
        ({"learning_rate": [0.1]}, r"'learning_rate'"),
        ({"optim.learning_rate": [0.1]}, r"'optim.learning_rate'"),
        ({"train.learnin_rate": [0.1]}, r"train.learnin_rate: unknown key"),
        ({"model.widths": [[4]]}, r"model.widths: unknown key"),
        (
            {"train.precision_dict": [{"dense7": {"weight": "fixed<8,1>"}}]},
            r"train.precision_dict: .*dense7",
        ),
        (
            {"train.precision_dict": [{"dense0": {"weights": "fixed<8,1>"}}]},
            r"unknown field 'weights'",
        ),
        ([{"train.learning_rate": 0.1}, 3], r"grid\[1\]: expected a mapping"),
    ],
)
def test_bad_grids_are_refused_naming_the_key(grid, match):
    ex = CountingExecutor()
    with pytest.raises(ValueError, match=match):
        sweep(grid, seeds=[0], base=BASE, executor=ex)
    assert ex.submitted == []  # nothing ran


def test_bad_seeds_base_and_executor_are_named():
    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        sweep({"train.learning_rate": [0.1]}, seeds=[], base=BASE)
    with pytest.raises(
        TypeError, match=r"seeds\[0\]: expected a non-negative integer, got the number 0.5"
    ):
        sweep({"train.learning_rate": [0.1]}, seeds=[0.5], base=BASE)
    with pytest.raises(TypeError, match="base: expected a mapping"):
        sweep({"train.learning_rate": [0.1]}, seeds=[0], base=[1])
    with pytest.raises(TypeError, match="executor: expected a concurrent.futures.Executor"):
        sweep({"train.learning_rate": [0.1]}, seeds=[0], base=BASE, executor=object())
    with pytest.raises(ValueError, match=r"grid point 0 .*dataset.size: unknown key"):
        sweep({"train.learning_rate": [0.1]}, seeds=[0], base={"dataset": {"size": 3}})


def test_a_run_that_fails_is_named():
    ex = CountingExecutor()
    with pytest.raises(
        RuntimeError,
        match=r"run001_seed0 \(train.learning_rate=-1.0, seed 0\) failed: "
        r"ValueError: learning_rate",
    ):
        sweep({"train.learning_rate": [0.1, -1.0]}, seeds=[0], base=BASE, executor=ex)


def test_precision_dict_as_a_json_path(tmp_path):
    from linncore.fixed.precision import PrecisionDict

    PrecisionDict(QUANT).save(tmp_path / "q.json")
    cfg = check_config({**BASE, "train": {"precision_dict": str(tmp_path / "q.json")}})
    assert cfg["train"]["precision_dict"]["default"]["weight"] == "fixed<8,1,RND_CONV,SAT>"
    with pytest.raises(ValueError, match=r"train.precision_dict: cannot read .*nope.json"):
        check_config({"train": {"precision_dict": str(tmp_path / "nope.json")}})


def test_the_sweeps_own_worker_processes_run_kernels_on_one_thread():
    from concurrent.futures import ProcessPoolExecutor

    import linncore
    from linncore.ablation.sweep import _one_thread

    with ProcessPoolExecutor(max_workers=1, initializer=_one_thread) as ex:
        assert ex.submit(linncore.get_num_threads).result() == 1
