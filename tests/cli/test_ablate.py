"""``linncore ablate CONFIG.toml``.

Run in process through ``linncore.cli.main`` and as ``python -m linncore``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import linncore
from linncore import FitHistory
from linncore.cli import main
from linncore.fixed.precision import PrecisionDict

PACKAGE_HOME = Path(linncore.__file__).resolve().parents[1]

CONFIG = """\
seeds = [0, 1]

[base.dataset]
n = 64
d_in = 4
d_out = 2

[base.model]
num_hidden = []
use_bias = false

[base.train]
epochs = 2
batch_size = 16
precision_dict = { default = { weight = "fixed<8,1>", update = "fixed<8,1>" } }

[grid]
"train.learning_rate" = [0.05, 0.5]
"train.use_controller" = [false, true]
"""


def write(folder: Path, text: str, name: str = "abl.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_ablate_writes_table_histories_and_plots(tmp_path, capsys):
    cfg = write(tmp_path, CONFIG)
    out = tmp_path / "results"
    assert main(["ablate", str(cfg), "--out", str(out), "--workers", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [ln for ln in lines if ln.startswith("[")]
    assert len(progress) == 8 and progress[-1].startswith("[8/8] ")
    assert all(
        "final_loss " in ln and ln.rstrip().endswith(("ok", "DIVERGED", "SILENT-DEATH"))
        for ln in progress
    )
    with open(out / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["run"] for r in table] == [f"run{i:03d}_seed{s}" for i in range(4) for s in (0, 1)]
    assert [float(r["train.learning_rate"]) for r in table] == [0.05] * 4 + [0.5] * 4
    assert {
        "final_loss",
        "diverged",
        "silent_death",
        "min_update_cosine",
        "max_update_underflow_fraction",
    } <= set(table[0])
    rows = json.loads((out / "summary.json").read_text())
    assert [r["run"] for r in rows] == [r["run"] for r in table]
    for r in rows:
        h = FitHistory.load(out / "histories" / f"{r['run']}.npz")
        assert len(h) == 8 and h.config["run"]["seed"] == r["seed"]
        assert "update_underflow_fraction_max" in h  # the precision config reached the run
    pngs = sorted(p.name for p in (out / "plots").glob("*.png")) if (out / "plots").exists() else []
    if has_matplotlib():
        assert pngs == sorted(f"{r['run']}.png" for r in rows)
        assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    else:
        assert pngs == [] and any("pip install 'linncore[plot]'" in ln for ln in lines)


def test_default_out_is_named_after_the_config_and_precision_may_be_a_file(tmp_path, capsys):
    PrecisionDict({"default": {"weight": "fixed<8,1>"}}).save(tmp_path / "q8.json")
    cfg = write(
        tmp_path,
        """\
seeds = [3]
[base.dataset]
n = 32
[base.train]
epochs = 1
[grid]
"train.precision_dict" = ["float", "q8.json"]
""",
        name="my-sweep.toml",
    )
    assert main(["ablate", str(cfg), "-q"]) == 0
    out = tmp_path / "my-sweep"
    assert not [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[")]
    a = FitHistory.load(out / "histories" / "run000_seed3.npz")
    b = FitHistory.load(out / "histories" / "run001_seed3.npz")
    assert "weight_saturation_fraction_max" not in a and "weight_saturation_fraction_max" in b
    assert b.config["precision"]["default"]["weight"] == "fixed<8,1,RND_CONV,SAT>"


@pytest.mark.parametrize(
    "text, match",
    [
        ('seeds = [0]\n[grid]\n"train.learnin_rate" = [0.1]\n', "train.learnin_rate: unknown key"),
        (
            'seeds = [0]\n[grid]\n"train.learning_rate" = 0.1\n',
            r"grid\['train.learning_rate'\]: expected a non-empty list",
        ),
        (
            'seeds = [0]\n[grid]\n"train.learning_rate" = []\n',
            r"grid\['train.learning_rate'\]: expected a non-empty list",
        ),
        (
            "seeds = [0]\n[grid]\ntrain.learning_rate = [0.1]\n",
            r"grid.train: a nested table; write dotted keys quoted",
        ),
        ('seeds = [0]\n[grid]\n"optim.lr" = [0.1]\n', r"'optim.lr'"),
        ("seeds = 0\n", r"seeds: expected a list, got the integer 0"),
        ("seeds = []\n", r"seeds: expected a non-empty list, got an empty list"),
        ("seeds = [0.5]\n", r"seeds\[0\]: expected a non-negative integer, got the number 0.5"),
        ("seed = [0]\n", r"unknown key 'seed'"),
        ("[base.optimizer]\nname = 'adam'\n", r"base.optimizer: unknown section"),
        ("[base.dataset]\nsize = 3\n", r"dataset.size: unknown key"),
        (
            "[base.train]\nprecision_dict = 'missing.json'\n",
            r"base.train.precision_dict: no PrecisionDict file",
        ),
        (
            "[base.train]\nprecision_dict = { dense4 = { weight = 'fixed<8,1>' } }\n",
            r"train.precision_dict: .*dense4",
        ),
        (
            "[base.train]\nprecision_dict = 7\n",
            r"base.train.precision_dict: expected an inline table",
        ),
        ("[base.train]\nlearning_rate = -1.0\n", r"run000_seed0 .*learning_rate"),
        ("seeds = [0\n", r"not valid TOML"),
    ],
)
def test_bad_files_exit_1_naming_the_key(tmp_path, capsys, text, match):
    cfg = write(tmp_path, text)
    assert main(["ablate", str(cfg), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("linncore ablate: error: ")
    assert pytest.importorskip("re").search(match, err), err
    assert "Traceback" not in err


def test_missing_config_file_exits_1(tmp_path, capsys):
    assert main(["ablate", str(tmp_path / "nope.toml")]) == 1
    assert "nope.toml: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["ablate"], "the following arguments are required: config"),
        (["ablate", "x.toml", "--workers", "two"], "--workers: invalid int value"),
        (
            ["ablate", "x.toml", "--workers", "0"],
            "--workers: expected an integer in [1, 1024], got 0",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, match):
    write(tmp_path, CONFIG, "x.toml")
    argv = [a if a != "x.toml" else str(tmp_path / "x.toml") for a in argv]
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    cfg = write(tmp_path, CONFIG)
    (tmp_path / "f").write_text("")
    assert main(["ablate", str(cfg), "--out", str(tmp_path / "f")]) == 2
    assert "--out: " in capsys.readouterr().err


def test_help_describes_the_toml_layout(capsys):
    assert main(["ablate", "--help"]) == 0
    out = capsys.readouterr().out
    for text in (
        "seeds = [0, 1]",
        "[base.dataset]",
        "[base.model]",
        "[base.train]",
        "[grid]",
        '"train.learning_rate" = [0.05, 0.5]',
        "--workers",
        "--out",
        "precision.json",
    ):
        assert text in out, text


def test_ablate_as_a_subprocess(tmp_path):
    cfg = write(tmp_path, CONFIG.replace("seeds = [0, 1]", "seeds = [0]"))
    env = {
        **os.environ,
        "PYTHONPATH": str(PACKAGE_HOME) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    res = subprocess.run(
        [sys.executable, "-m", "linncore", "ablate", str(cfg), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert sum(ln.startswith("[") for ln in res.stdout.splitlines()) == 4
    assert (tmp_path / "abl" / "summary.csv").is_file() and len(
        list((tmp_path / "abl" / "histories").iterdir())
    ) == 4
    bad = write(tmp_path, '[grid]\n"train.nope" = [1]\n', "bad.toml")
    res = subprocess.run(
        [sys.executable, "-m", "linncore", "ablate", str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        res.returncode == 1
        and "train.nope: unknown key" in res.stderr
        and "Traceback" not in res.stderr
    )
