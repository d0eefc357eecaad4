"""Sweeps on a dask.distributed cluster: ``sweep(..., executor=client.get_executor())`` and
``linncore ablate --scheduler ADDRESS`` give the rows the local process pool gives."""

from __future__ import annotations

import builtins
import csv
import json
import sys

import pytest

from linncore import sweep
from linncore.cli import main

GRID = {"train.learning_rate": [0.05, 0.5], "train.use_controller": [False, True]}
BASE = {
    "dataset": {"n": 64},
    "train": {
        "epochs": 2,
        "batch_size": 16,
        "precision_dict": {"default": {"weight": "fixed<8,1>"}},
    },
}

CONFIG = """\
seeds = [0, 1]
[base.dataset]
n = 64
[base.train]
epochs = 2
batch_size = 16
[grid]
"train.learning_rate" = [0.05, 0.5]
"""


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    # two workers of one thread each, in this process (no worker start-up cost)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as lc:
        yield lc


def _rows_text(rows) -> str:
    return json.dumps(rows, allow_nan=True)  # NaN == NaN in text


@pytest.mark.optional
def test_sweep_on_a_two_worker_cluster_gives_the_process_pools_rows(cluster):
    from distributed import Client

    with Client(cluster) as client:
        on_dask = sweep(GRID, seeds=[0, 1], base=BASE, executor=client.get_executor())
        assert len(client.scheduler_info()["workers"]) == 2
    local = sweep(GRID, seeds=[0, 1], base=BASE)
    assert len(on_dask.rows) == 8
    assert _rows_text(on_dask.rows) == _rows_text(local.rows)
    for run_id, h in local.histories.items():
        assert h.to_dict().keys() == on_dask.histories[run_id].to_dict().keys()


@pytest.mark.optional
def test_ablate_with_scheduler_runs_on_the_cluster(cluster, tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.pyplot"):  # plots are not the subject here
        monkeypatch.setitem(sys.modules, name, None)
    cfg = tmp_path / "abl.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert (
        main(
            [
                "ablate",
                str(cfg),
                "--out",
                str(tmp_path / "dask"),
                "--scheduler",
                cluster.scheduler_address,
            ]
        )
        == 0
    )
    assert main(["ablate", str(cfg), "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("[4/4] ") == 2
    read = [
        list(csv.DictReader(open(tmp_path / d / "summary.csv", encoding="utf-8")))
        for d in ("dask", "pool")
    ]
    assert read[0] == read[1] and len(read[0]) == 4


def test_ablate_scheduler_without_dask_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    cfg = tmp_path / "abl.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["ablate", str(cfg), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "linncore[dask]"' in err and "--scheduler" in err


def test_ablate_scheduler_and_workers_exclude_each_other(tmp_path, capsys):
    cfg = tmp_path / "abl.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["ablate", str(cfg), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert "exclude each other" in capsys.readouterr().err
