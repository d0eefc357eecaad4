"""The linncore command.

Run in-process through ``linncore.cli.main`` and as ``python -m linncore``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import linncore
from linncore import Dense, Network, load_linn, save_linn
from linncore.cli import main

PACKAGE_HOME = Path(linncore.__file__).resolve().parents[1]
VENDOR = Path(__file__).resolve().parents[3] / "shared" / "data" / "vendor-linn"


def run(*args, cwd):
    # the subprocess must import the same linncore as this process (the installed package in
    # CI, the in-place build in a checkout), never an unbuilt source tree
    env = {
        **os.environ,
        "PYTHONPATH": str(PACKAGE_HOME) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, "-m", "linncore", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def sum_file(folder: Path) -> Path:
    net = Network([Dense((3, 1), weight=[[0.1], [0.2], [0.3]], bias=[0.1])])
    return save_linn(net, 3, 1, folder / "sum.linn")


# -- demo -----------------------------------------------------------------------------------
def test_demo_trains_prints_quality_and_summary_and_writes_sine_linn(tmp_path):
    res = run("demo", "--epochs", "20", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Epoch 20/20" in res.stdout
    assert "fit quality: RMSE train" in res.stdout and "variance explained" in res.stdout
    assert "column depth 109 of 1024" in res.stdout and "set_input(channel" in res.stdout
    net = load_linn(tmp_path / "sine.linn")
    assert [l.size_out for l in net.layers] == [32, 32, 32, 1]


def test_demo_in_process_with_out_and_seed_is_reproducible(tmp_path, capsys):
    assert main(["demo", "--epochs", "3", "--seed", "7", "--out", str(tmp_path / "a.linn")]) == 0
    assert main(["demo", "--epochs", "3", "--seed", "7", "--out", str(tmp_path / "b.linn")]) == 0
    assert (tmp_path / "a.linn").read_bytes() == (tmp_path / "b.linn").read_bytes()
    assert f"wrote {tmp_path / 'a.linn'}" in capsys.readouterr().out


def test_demo_refuses_an_out_name_without_linn(tmp_path, capsys):
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path / "a.json")]) == 2
    assert "--out: expected a file name ending in .linn" in capsys.readouterr().err


# -- inspect --------------------------------------------------------------------------------
def test_inspect_describes_a_document_as_the_instrument_does(tmp_path, capsys):
    path = sum_file(tmp_path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        '{"inputs": 3, "outputs": 1, "num_input_channels": 3, "num_output_channels": 1, '
        '"layers": [{"activation": "Linear", "inputs": 3, "outputs": 1}]}' in out
    )
    assert "column depth 6 of 1024" in out and "parallel mode" in out


def test_inspect_json_output(tmp_path, capsys):
    assert main(["inspect", "--json", str(sum_file(tmp_path))]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == [
        {"activation": "Linear", "inputs": 3, "outputs": 1}
    ]


def test_inspect_names_the_broken_rule_and_exits_1(tmp_path):
    doc = json.loads(sum_file(tmp_path).read_text())
    doc["num_input_channels"] = 2
    bad = tmp_path / "bad.linn"
    bad.write_text(json.dumps(doc))
    res = run("inspect", str(bad), cwd=tmp_path)
    assert res.returncode == 1
    assert "[rule: input channels]" in res.stderr and "got 2" in res.stderr
    assert "Traceback" not in res.stderr


def test_inspect_truncated_file_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "cut.linn"
    bad.write_text(sum_file(tmp_path).read_text()[:30])
    assert main(["inspect", str(bad)]) == 1
    assert "[rule: JSON]" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "nope.linn")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_inspect_device_limit(tmp_path, capsys):
    net = Network([Dense((4, 60), "relu", seed=0), Dense((60, 1), seed=1)])
    path = save_linn(net, 1, 1, tmp_path / "wide.linn")
    assert main(["inspect", str(path), "--device", "Moku:Go", "--slots", "3"]) == 1
    assert "[rule: device neuron limit]" in capsys.readouterr().err
    assert main(["inspect", str(path), "--device", "Moku:Go", "--slots", "2"]) == 0


@pytest.mark.skipif(not VENDOR.is_dir(), reason="shared/data/vendor-linn is not in this checkout")
@pytest.mark.parametrize(
    "name", ["Sum.linn", "Autoencoder.linn", "autoencoder_32.linn", "SigID.linn"]
)
def test_inspect_describes_every_vendor_file(name, capsys):
    assert main(["inspect", "--json", str(VENDOR / name)]) == 0
    desc = json.loads(capsys.readouterr().out)
    doc = json.loads((VENDOR / name).read_text())
    assert desc["num_input_channels"] == doc["num_input_channels"]
    assert [l["outputs"] for l in desc["layers"]] == [len(l["biases"]) for l in doc["layers"]]


# -- predict --------------------------------------------------------------------------------
def test_predict_csv_prints_outputs(tmp_path, capsys):
    path = sum_file(tmp_path)
    data = tmp_path / "x.csv"
    data.write_text("a,b,c\n0.5,-0.25,0.75\n0,0,0\n")
    assert main(["predict", str(path), str(data)]) == 0
    rows = [list(map(float, ln.split(","))) for ln in capsys.readouterr().out.split()]
    np.testing.assert_allclose(rows, [[0.05 - 0.05 + 0.225 + 0.1], [0.1]], rtol=1e-6)


def test_predict_npy_to_npy_matches_load_linn(tmp_path):
    path = sum_file(tmp_path)
    x = np.random.default_rng(0).uniform(-1, 1, (10, 3))
    np.save(tmp_path / "x.npy", x)
    res = run("predict", str(path), "x.npy", "-o", "y.npy", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "y.npy"), load_linn(path).predict(x).astype(np.float64)
    )


def test_predict_clips_inputs_like_the_instrument(tmp_path, capsys):
    path = sum_file(tmp_path)
    (tmp_path / "x.csv").write_text("2,0,0\n")
    assert main(["predict", str(path), str(tmp_path / "x.csv")]) == 0
    captured = capsys.readouterr()
    assert (
        float(captured.out) == pytest.approx(0.2, rel=1e-6)
        and "1 input value(s) outside [-1, 1] clipped" in captured.err
    )


def test_predict_wrong_width_and_wrong_extension(tmp_path, capsys):
    path = sum_file(tmp_path)
    (tmp_path / "x.csv").write_text("0.1,0.2\n")
    assert main(["predict", str(path), str(tmp_path / "x.csv")]) == 1
    assert "expected 3 column(s) per row" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("0.1,0.2,0.3\n")
    assert main(["predict", str(path), str(tmp_path / "x.txt")]) == 2
    assert "expected a .csv or .npy file" in capsys.readouterr().err


# -- train ----------------------------------------------------------------------------------
CONFIG = """
[data]
file = "data.csv"
inputs = ["x"]
outputs = ["y"]

[model]
layers = [[8, "tanh"], [1]]
seed = 0

[training]
epochs = 30
validation_split = 0.2

[training.early_stopping]
monitor = "val_loss"
patience = 5
restore = true

[output]
file = "out/model.linn"
input_channels = 1
output_channels = 1
"""


def make_training_folder(tmp_path: Path, config: str = CONFIG) -> Path:
    x = np.linspace(-2, 2, 100)
    (tmp_path / "data.csv").write_text("x,y\n" + "\n".join(f"{a},{a**2}" for a in x) + "\n")
    (tmp_path / "out").mkdir()
    cfg = tmp_path / "train.toml"
    cfg.write_text(config)
    return cfg


def test_train_writes_the_linn_and_its_summary(tmp_path):
    cfg = make_training_folder(tmp_path)
    res = run("train", str(cfg), "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    net = load_linn(tmp_path / "out" / "model.linn")
    assert [(l.shape, l.activation) for l in net.layers] == [((1, 8), "tanh"), ((8, 1), "linear")]
    summary = (tmp_path / "out" / "model.summary.txt").read_text()
    assert "input column 0: [-2, 2]" in summary and "output column 0: [0.000408122, 4]" in summary
    assert "trained" in summary and "val_loss" in summary


@pytest.mark.parametrize(
    "change, message",
    [
        (("[data]", "[dataset]"), "unknown section(s) ['dataset']"),
        (("patience = 5", "patiance = 5"), "[training.early_stopping] unknown key(s) ['patiance']"),
        (('inputs = ["x"]', 'inputs = ["z"]'), "no column named 'z'"),
        (('file = "out/model.linn"', 'file = "out/model.json"'), "expected a name ending in .linn"),
        (
            ('layers = [[8, "tanh"], [1]]', 'layers = [[8, "tanh"], [2]]'),
            "last layer must have 1 neuron(s)",
        ),
        (("output_channels = 1", "output_channels = 2"), "[rule: output channels]"),
        (("epochs = 30", "epochs = [30"), "not valid TOML"),
    ],
)
def test_train_config_errors_are_clear(tmp_path, capsys, change, message):
    cfg = make_training_folder(tmp_path, CONFIG.replace(*change))
    code = main(["train", str(cfg), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and message in err, err
    assert not (tmp_path / "out" / "model.linn").exists()


# -- usage ----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["demo"], ["inspect"], ["predict"], ["train"]])
def test_help_on_every_command(command, capsys):
    assert main(command + ["--help"]) == 0
    assert "usage: linncore" in capsys.readouterr().out


def test_help_of_train_documents_the_config(capsys):
    main(["train", "--help"])
    assert "[training.early_stopping]" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path):
    res = run("inspect", cwd=tmp_path)
    assert res.returncode == 2 and "the following arguments are required: file" in res.stderr
    assert run("frobnicate", cwd=tmp_path).returncode == 2
    assert run(cwd=tmp_path).returncode == 2
    assert main(["demo", "--epochs", "many"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "{f}/x.linn"], "Not a directory"),
        (["inspect", "a" * 300 + ".linn"], "File name too long"),
        (["train", "{d}"], "is a folder, expected a TOML config"),
        (["predict", "{f}", "{d}/x.csv", "-o", "{d}/nofolder/o.csv"], "nofolder' does not exist"),
        (["demo", "--out", "{d}/nofolder/s.linn"], "does not exist"),
    ],
)
def test_file_system_errors_give_a_message_and_exit_1_not_a_traceback(
    tmp_path, capsys, argv, message
):
    f = sum_file(tmp_path)
    (tmp_path / "x.csv").write_text("0.1,0.2,0.3\n")
    argv = [a.format(f=f, d=tmp_path) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_checks_the_output_rules_before_training(tmp_path, capsys):
    x = np.linspace(0, 1, 50)
    np.savetxt(tmp_path / "d.csv", np.c_[x, x**2], delimiter=",")
    (tmp_path / "c.toml").write_text(
        '[data]\nfile = "d.csv"\ninputs = [0]\noutputs = [1]\n[model]\n'
        'layers = [[8, "tanh"], [1, "linear"]]\n[training]\nepochs = 100000\n'
        '[output]\nfile = "m.linn"\ninput_channels = 3\n'
    )
    assert main(["train", str(tmp_path / "c.toml")]) == 1
    out = capsys.readouterr()
    assert "rule: input channels" in out.err and "training" not in out.out
