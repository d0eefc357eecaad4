"""Hostile input, end to end: every loader and every command, under a memory cap and a clock.

Each case runs in a child process (``tests/_hostile.py``) whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` and which gives each case a few seconds (``signal.alarm``).
A case must end with its one documented error: the exception type and message for a loader,
the exit code and message (and no traceback) for a command.  Messages must stay short, whatever
the input.  The cases cover FIFOs, devices, folders, symlinks (to a device, in a loop,
dangling), files over the size limits (sparse), nesting bombs, ``.npz`` bombs (declared and
actual unpacked sizes, member counts), typed config values, outputs that are inputs, full and
read-only file systems (a small tmpfs, when mounting is permitted), and seeded mutations of
every JSON format and of a history archive.  The counts of cases tried and clean are printed.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import linncore as lc

HERE = Path(__file__).resolve().parent
PACKAGE_HOME = Path(lc.__file__).resolve().parents[1]
MEMORY = 2 * 1024**3  # the address-space cap of each child
SECONDS = 30  # per case, wall clock: a hang fails the case, not the run (generous: a
# loaded machine runs a fast case many times slower)
MAX_MESSAGE = 600  # characters of any error message
BIG = 300 * 1024 * 1024  # a sparse file over every size limit

# -- the files the cases read --------------------------------------------------------------
LINN_DOC = {
    "version": "0.1",
    "num_input_channels": 3,
    "num_output_channels": 1,
    "layers": [{"activation": "linear", "weights": [[0.1, 0.2, 0.3]], "biases": [0.1]}],
}


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _patch_sizes(data: bytes, size: int) -> bytes:
    """A zip whose every member declares ``size`` unpacked bytes (local and central headers)."""
    buf = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = buf.find(sig)
        while pos >= 0:
            struct.pack_into("<I", buf, pos + off, size)
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def _history_npz(meta: object, arrays: dict | None = None) -> bytes:
    arrays = {"metric:loss": np.ones(3), "metric:step": np.arange(3)} if arrays is None else arrays
    if meta is not None:
        arrays["__meta__"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    return _npz_bytes(arrays)


def _zeros_npz(unpacked: int) -> bytes:
    """A real deflate bomb: one member of ``unpacked`` zero bytes (a few hundred KB packed)."""
    buf = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (unpacked // 8,)}
    )
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("metric:loss.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            chunk = b"\0" * (1 << 22)
            for _ in range(unpacked // len(chunk)):
                fh.write(chunk)
    return buf.getvalue()


def _directory_bomb(members: int) -> bytes:
    """A zip of nothing but a central directory of ``members`` records (56 MB for a million):
    :mod:`zipfile` alone would build a Python object for every one before any check ran."""
    name = b"m.npy"
    record = (
        struct.pack(
            "<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
    )
    directory = record * members
    end = struct.pack(
        "<4s4H2IH",
        b"PK\x05\x06",
        0,
        0,
        min(members, 0xFFFF),
        min(members, 0xFFFF),
        len(directory),
        0,
        0,
    )
    return directory + end


def _report_doc(columns: int = 1) -> dict:
    y = np.linspace(1.0, 2.0, 4)[:, None].repeat(columns, axis=1)
    return lc.DeviationReport.from_predictions(y * 1.05, y).to_dict()


def _nested_report(depth: int) -> dict:
    doc = _report_doc()
    for _ in range(depth):
        outer = _report_doc(2)
        outer["columns"] = [doc, _report_doc()]  # one nested chain: 24 levels stay small
        doc = outer
    return doc


def _make_files(tmp: Path, mounts: dict) -> dict:
    P: dict[str, str] = {}

    def put(name: str, data: bytes | str) -> None:
        path = tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        P[name] = str(path)

    # generic hostile paths
    os.mkfifo(tmp / "fifo")
    P["fifo"] = str(tmp / "fifo")
    (tmp / "folder").mkdir()
    P["folder"] = str(tmp / "folder")
    (tmp / "folder.linn").mkdir()
    (tmp / "to_zero").symlink_to("/dev/zero")
    P["to_zero"] = str(tmp / "to_zero")
    (tmp / "loop_a").symlink_to(tmp / "loop_b")
    (tmp / "loop_b").symlink_to(tmp / "loop_a")
    P["loop"] = str(tmp / "loop_a")
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    P["dangling"] = str(tmp / "dangling")
    with open(tmp / "sparse", "wb") as fh:
        fh.truncate(BIG)
    P["sparse"] = str(tmp / "sparse")
    P["zero"] = "/dev/zero"
    put("empty", b"")
    put("binary", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    put("latin1", b'{"a": "caf\xe9"}')
    put("bomb", "[" * 200_000 + "]" * 200_000)
    put("dup", '{"a": 1, "a": 2}')
    put("nan", '{"a": NaN}')
    put("bigint", '{"a": 1' + "0" * 5000 + "}")
    # .linn
    put("ok.linn", json.dumps(LINN_DOC))
    put("bom.linn", b"\xef\xbb\xbf" + json.dumps(LINN_DOC).encode())
    put("digits.linn", json.dumps(dict(LINN_DOC, num_input_channels=int("7" * 4000))))
    # model files
    net = lc.Network([lc.Dense((3, 1), seed=0)])
    lc.save_model(net, tmp / "ok.json")
    P["ok.json"] = str(tmp / "ok.json")
    doc = json.loads(lc.to_json(net))
    doc["network"]["layers"][0]["n_in"] = int("9" * 4000)
    put("digits_model.json", json.dumps(doc))
    put("version_model.json", json.dumps(dict(json.loads(lc.to_json(net)), format_version=1.5)))
    # precision configs
    put("ok_precision.json", lc.PrecisionDict({"default": {"weight": "Q1.7"}}).to_json())
    put("null.json", "null")
    put("list.json", "[]")
    put("dup_precision.json", '{"default": {"weight": "Q1.7"}, "default": {}}')
    put("long_format.json", json.dumps({"default": {"weight": "fixed<" + "9" * 5000 + ",1>"}}))
    put("unknown_field.json", json.dumps({"default": {"wieght": "Q1.7"}}))
    # reports
    put("ok_report.json", json.dumps(_report_doc(2)))
    put("nested_report.json", json.dumps(_nested_report(24)))
    P["nested_report_doc"] = json.dumps(_nested_report(3))
    put("floor0_report.json", json.dumps(dict(_report_doc(), floor=[0.0])))
    put("nocolumns_report.json", json.dumps(dict(_report_doc(2), columns=[])))
    bad_dev = _report_doc()
    bad_dev["deviations"][0] = 0.0
    put("deviation_report.json", json.dumps(bad_dev))
    # histories (.npz)
    h = lc.FitHistory({"step": np.arange(4), "epoch": np.zeros(4, int), "loss": np.ones(4)}, seed=3)
    h.save(tmp / "ok_history.npz")
    P["ok_history.npz"] = str(tmp / "ok_history.npz")
    good = (tmp / "ok_history.npz").read_bytes()
    put("declared_bomb.npz", _patch_sizes(good, 2**31))
    put(
        "lying.npz",
        _patch_sizes(_npz_bytes({"metric:loss": np.ones(10_000), "__meta__": np.array("{}")}), 900),
    )
    put("real_bomb.npz", _zeros_npz(600 * 1024 * 1024))
    put("directory_bomb.npz", _directory_bomb(1_000_000))
    members = io.BytesIO()
    with zipfile.ZipFile(members, "w") as z:
        for i in range(5000):
            z.writestr(f"metric:m{i}.npy", b"")
    put("members.npz", members.getvalue())
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp / "pickle.npz", "w") as z:
        z.writestr("metric:loss.npy", obj.getvalue())
    P["pickle.npz"] = str(tmp / "pickle.npz")
    meta = {
        "format": "linncore.FitHistory",
        "version": 1,
        "seed": 0,
        "config": {},
        "stop_reason": None,
    }
    put("seed_x.npz", _history_npz(dict(meta, seed="x")))
    put("version_19.npz", _history_npz(dict(meta, version=1.9)))
    put("version_2.npz", _history_npz(dict(meta, version=2)))
    put("no_meta.npz", _history_npz(None))
    put("int_meta.npz", _npz_bytes({"__meta__": np.arange(3), "metric:loss": np.ones(2)}))
    put("broken_meta.npz", _history_npz("{not json"))
    put("ragged.npz", _history_npz(meta, {"metric:loss": np.ones(3), "metric:step": np.arange(4)}))
    put("text_metric.npz", _history_npz(meta, {"metric:loss": np.array(["a", "b"])}))
    put("truncated.npz", good[: len(good) // 2])
    # data for predict and train
    put("x.csv", "0.1,0.2,0.3\n0.4,0.5,0.6\n")
    put("typo.csv", "0.5x,0.2,0.3\n0.4,0.5,0.6\n")
    put("bad_field.csv", "0.1,0.2,0.3\n0.4,0.5,0.6\n0.7,abc,0.9\n")
    put("ragged.csv", "0.1,0.2,0.3\n0.4,0.5\n")
    put("named.csv", "a,b,c\n0.1,0.2,0.3\n")
    (tmp / "zero.csv").symlink_to("/dev/zero")
    P["zero.csv"] = str(tmp / "zero.csv")
    os.mkfifo(tmp / "fifo.csv")
    P["fifo.csv"] = str(tmp / "fifo.csv")
    (tmp / "folder.csv").mkdir()
    P["folder.csv"] = str(tmp / "folder.csv")
    with open(tmp / "big.csv", "wb") as fh:
        fh.truncate(BIG)
    P["big.csv"] = str(tmp / "big.csv")
    npy = io.BytesIO()
    np.save(npy, np.full((2, 3), 0.1))
    put("x.npy", npy.getvalue())
    put("npz_named.npy", _npz_bytes({"x": np.ones((2, 3))}))
    put("pickle.npy", obj.getvalue())
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3)}
    )
    put("lying.npy", header.getvalue() + b"\0" * 48)
    (tmp / "o.csv").mkdir()
    P["o.csv"] = str(tmp / "o.csv")
    P["out.NPY"] = str(tmp / "out.NPY")
    put("tr.csv", "x,y\n" + "\n".join(f"{a},{a * a}" for a in np.linspace(-1, 1, 40)) + "\n")
    put(
        "tr_typo.csv", "0.5x,1\n" + "\n".join(f"{a},{a * a}" for a in np.linspace(-1, 1, 40)) + "\n"
    )
    P["tmp"] = str(tmp)
    P.update(mounts)
    return P


# -- TOML configs ----------------------------------------------------------------------------
TRAIN = """
[data]
file = "tr.csv"
inputs = ["x"]
outputs = ["y"]
[model]
layers = [[4, "tanh"], [1]]
seed = 0
[training]
epochs = 2
[output]
file = "m.linn"
"""


def _train(change: tuple[str, str] | None = None, extra: str = "") -> str:
    text = TRAIN if change is None else TRAIN.replace(*change)
    assert change is None or change[0] in TRAIN
    return text + extra


ABLATE = """
seeds = [0]
[base.dataset]
n = 64
[base.train]
epochs = 1
compute_analytic_hessian = false
"""

TOMLS = {
    "deep.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    "dotted.toml": "a" + ".a" * 20_000 + " = 1\n",
    "file5.toml": _train(('file = "tr.csv"', "file = 5")),
    "scale.toml": _train(extra='[scaling]\nscale = "false"\n'),
    "shuffle.toml": _train(("epochs = 2", 'epochs = 2\nshuffle = "no"')),
    "epochs.toml": _train(("epochs = 2", "epochs = 1e10")),
    "seed.toml": _train(("seed = 0", "seed = -1")),
    "wide.toml": _train(('[[4, "tanh"], [1]]', '[[1000000000, "tanh"], [1]]')),
    "nofolder.toml": _train(('file = "m.linn"', 'file = "missing/m.linn"')),
    "outfolder.toml": _train(('file = "m.linn"', 'file = "folder.linn"')),
    "fifo_data.toml": _train(('file = "tr.csv"', 'file = "fifo.csv"')),
    "typo_data.toml": _train(('file = "tr.csv"', 'file = "tr_typo.csv"')),
    "slots.toml": _train(extra='device = "Moku:Go"\n'),
    "header.toml": _train(('file = "tr.csv"', 'file = "tr.csv"\nheader = "yes"')),
    "batch.toml": _train(("epochs = 2", "epochs = 1\nbatch_size = 4611686018427387904")),
    "ok_train.toml": _train(),
    "seeds_twice.toml": ABLATE.replace("seeds = [0]", "seeds = [0, 0]"),
    "seeds_negative.toml": ABLATE.replace("seeds = [0]", "seeds = [-1]"),
    "grid.toml": ABLATE
    + "[grid]\n"
    + "".join(f'"train.k{i}" = [{", ".join(map(str, range(1000)))}]\n' for i in range(4)),
    "n_float.toml": ABLATE.replace("n = 64", "n = 1e10"),
    "n_big.toml": ABLATE.replace("n = 64", "n = 10000000000"),
    "use_bias.toml": ABLATE + '[base.model]\nuse_bias = "false"\n',
    "precision_fifo.toml": ABLATE.replace("epochs = 1", 'epochs = 1\nprecision_dict = "fifo"'),
    "ok_ablate.toml": ABLATE,
}


# -- the cases ---------------------------------------------------------------------------------
def raises(exc: str, pattern: str):
    return ("raises", exc, pattern)


def exits(code: int, pattern: str):
    return ("exit", code, pattern)


def ok(pattern: str = ""):
    return ("ok", None, pattern)


CASES: list[tuple[str, str, tuple]] = []


def case(name: str, code: str, expect: tuple) -> None:
    CASES.append((name, code, expect))


LOADERS = {  # name -> (call, error type)
    "load_linn": ("lc.load_linn", "LinnError"),
    "read_linn": ("lc.vendor.linn_model.read_linn", "LinnError"),
    "load_model": ("lc.load_model", "ModelFileError"),
    "load_bundle": ("lc.load_bundle", "ModelFileError"),
    "PrecisionDict.load": ("lc.PrecisionDict.load", "PrecisionFileError"),
    "DeviationReport.load": ("lc.DeviationReport.load", "ReportFileError"),
    "FitHistory.load": ("lc.FitHistory.load", "HistoryFileError"),
}
GENERIC = {  # path -> message every loader gives
    "fifo": "fifo: (document: )?is a FIFO",
    "zero": "/dev/zero: (document: )?is a device",
    "to_zero": "to_zero: (document: )?is a device",
    "folder": "folder: (document: )?is a folder",
    "loop": "loop_a: (document: )?cannot be read",
    "sparse": "sparse: .*more than the limit",
}
JSON_ONLY = {
    "empty": "empty: .*not valid JSON",
    "binary": "binary: .*(not UTF-8|not valid JSON)",
    "latin1": "latin1: .*not UTF-8",
    "bomb": "bomb: .*nested 200000 deep",
    "dup": "dup: .*duplicate key 'a'",
    "nan": "nan: .*NaN is not a JSON number",
    "bigint": "bigint: .*unreadable JSON value",
}
for loader, (call, error) in LOADERS.items():
    for path, message in GENERIC.items():
        case(f"{loader}-{path}", f"{call}(P[{path!r}])", raises(error, message))
    case(
        f"{loader}-dangling",
        f"{call}(P['dangling'])",
        raises("FileNotFoundError", "dangling: no such file"),
    )
    if loader != "FitHistory.load":
        for path, message in JSON_ONLY.items():
            case(f"{loader}-{path}", f"{call}(P[{path!r}])", raises(error, message))
    else:
        for path in ("empty", "binary", "bomb"):
            case(
                f"{loader}-{path}",
                f"{call}(P[{path!r}])",
                raises(error, f"{path}: not a .npz archive"),
            )

# .linn
case("linn-bom", "value = lc.load_linn(P['bom.linn']).input_size", ok("3"))
case(
    "linn-digits",
    "lc.load_linn(P['digits.linn'])",
    raises("LinnError", "an integer of 4000 digits"),
)
# model files
case(
    "model-digits",
    "lc.load_model(P['digits_model.json'])",
    raises("ModelFileError", "n_in: expected an integer"),
)
case(
    "model-version",
    "lc.load_model(P['version_model.json'])",
    raises("ModelFileError", "format_version"),
)
case("model-ok", "value = lc.load_model(P['ok.json']).network.input_size", ok("3"))
# precision configs
case(
    "precision-null",
    "lc.PrecisionDict.load(P['null.json'])",
    raises("PrecisionFileError", "expected a JSON object.*got null"),
)
case(
    "precision-list",
    "lc.PrecisionDict.load(P['list.json'])",
    raises("PrecisionFileError", "expected a JSON object"),
)
case(
    "precision-dup",
    "lc.PrecisionDict.load(P['dup_precision.json'])",
    raises("PrecisionFileError", "duplicate key 'default'"),
)
case(
    "precision-long",
    "lc.PrecisionDict.load(P['long_format.json'])",
    raises("PrecisionFileError", "long_format.json: config"),
)
case(
    "precision-field",
    "lc.PrecisionDict.load(P['unknown_field.json'])",
    raises("PrecisionFileError", "unknown field 'wieght'"),
)
case(
    "precision-ok",
    "value = str(lc.PrecisionDict.load(P['ok_precision.json']).dtype('dense0', 'weight'))",
    ok("fixed<8,1"),
)
# reports
case(
    "report-nested",
    "lc.DeviationReport.load(P['nested_report.json'])",
    raises("ReportFileError", "nested 5[0-9] deep, more than the limit of 6"),
)
case(
    "report-nested-dict",
    "lc.DeviationReport.from_dict(__import__('json').loads(P['nested_report_doc']))",
    raises("ReportFileError", r"report.columns\[0\]: columns: expected an empty list"),
)
case(
    "report-floor0",
    "lc.DeviationReport.load(P['floor0_report.json'])",
    raises("ReportFileError", r"floor\[0\]: expected a positive finite number"),
)
case(
    "report-nocolumns",
    "lc.DeviationReport.load(P['nocolumns_report.json'])",
    raises("ReportFileError", "columns: expected 2 per-column reports"),
)
case(
    "report-deviations",
    "lc.DeviationReport.load(P['deviation_report.json'])",
    raises("ReportFileError", "deviations: not those of the stored"),
)
case("report-ok", "value = lc.DeviationReport.load(P['ok_report.json']).n_samples", ok("4"))
# histories
H = "lc.FitHistory.load"
for name, message in {
    "declared_bomb.npz": "declares 2147483648 bytes unpacked, more than the limit",
    "real_bomb.npz": "declares [0-9]+ bytes unpacked, more than the limit",
    "lying.npz": "(cannot be unpacked|unpacks to a size)",
    "members.npz": "5000 members, more than the limit of 1024",
    "directory_bomb.npz": "65535 members, more than the limit of 1024",
    "pickle.npz": "expected an array of numbers, got dtype 'object'",
    "seed_x.npz": "__meta__.seed: expected an integer or null, got the string 'x'",
    "version_19.npz": "__meta__.version: expected a positive integer, got the number 1.9",
    "version_2.npz": "newer linncore",
    "no_meta.npz": "no __meta__ member",
    "int_meta.npz": "__meta__: expected one JSON string",
    "broken_meta.npz": "__meta__: not valid JSON",
    "ragged.npz": "expected 1-D arrays of one length",
    "text_metric.npz": "expected numbers, got text",
    "truncated.npz": "not a .npz archive",
}.items():
    case(
        f"history-{name}",
        f"{H}(P[{name!r}])",
        raises("HistoryFileError", f"{re.escape(name)}: .*{message}"),
    )
case("history-ok", f"value = {H}(P['ok_history.npz']).seed", ok("3"))


# -- commands ----------------------------------------------------------------------------------
def cli(*argv: str) -> str:
    return f"value = cli([{', '.join(a if a.startswith('P[') else repr(a) for a in argv)}])"


for path, message in (
    ("fifo", "is a FIFO"),
    ("zero", "is a device"),
    ("folder", "is a folder"),
    ("bomb", "nested 200000 deep"),
    ("sparse", "more than the limit"),
):
    case(f"inspect-{path}", cli("inspect", f"P[{path!r}]"), exits(1, message))
    case(f"train-{path}", cli("train", f"P[{path!r}]"), exits(1, message))
    case(f"ablate-{path}", cli("ablate", f"P[{path!r}]"), exits(1, message))
LINN = "P['ok.linn']"
for path, code, message in (
    ("fifo.csv", 1, "fifo.csv: is a FIFO"),
    ("zero.csv", 1, "zero.csv: is a device"),
    ("folder.csv", 1, "folder.csv: is a folder"),
    ("big.csv", 1, "big.csv: .*more than the limit"),
    ("typo.csv", 1, r"typo.csv: line 1, column 1: expected a number, got '0.5x'"),
    ("bad_field.csv", 1, r"bad_field.csv: line 3, column 2: expected a number, got 'abc'"),
    ("ragged.csv", 1, r"ragged.csv: line 2: expected 3 columns, got 2"),
    ("npz_named.npy", 1, "npz_named.npy: is a zip archive"),
    ("pickle.npy", 1, "expected an array of numbers"),
    ("lying.npy", 1, "lying.npy: the header promises"),
    ("zero", 2, "expected a .csv or .npy file"),
):
    case(f"predict-{path}", cli("predict", LINN, f"P[{path!r}]"), exits(code, message))
case(
    "predict-no-header",
    cli("predict", LINN, "P['named.csv']", "--no-header"),
    exits(1, r"line 1, column 1: expected a number, got 'a'"),
)
case("predict-header", cli("predict", LINN, "P['x.csv']", "--header"), exits(0, ""))
case("predict-linn-fifo", cli("predict", "P['fifo']", "P['x.csv']"), exits(1, "is a FIFO"))
case(
    "predict-o-input",
    "before = open(P['x.csv'], 'rb').read();"
    " value = cli(['predict', P['ok.linn'], P['x.csv'], '-o', P['x.csv']]);"
    " assert open(P['x.csv'], 'rb').read() == before, 'the input was overwritten'",
    exits(2, "x.csv' is also an input file"),
)
case(
    "predict-o-linn",
    cli("predict", LINN, "P['x.npy']", "-o", "P['ok.linn']"),
    exits(2, r"(expected a \.csv or \.npy|also an input)"),
)
case(
    "predict-o-folder",
    cli("predict", LINN, "P['x.npy']", "-o", "P['o.csv']"),
    exits(1, "o.csv: is a folder"),
)
case(
    "predict-o-NPY",
    "value = cli(['predict', P['ok.linn'], P['x.csv'], '-o', P['out.NPY']]);"
    " import os; assert os.path.exists(P['out.NPY']) and not os.path.exists(P['out.NPY'] + '.npy');"
    " assert np.load(P['out.NPY']).shape == (2, 1)",
    exits(0, "to .*out.NPY$"),
)
# train: config values typed and limits checked before work starts
for name, message in {
    "deep.toml": "TOML nested 5000 deep, more than the limit of 16",
    "dotted.toml": "TOML nested 20000 deep, more than the limit of 16",
    "file5.toml": r"\[data\] file: expected a string, got the integer 5",
    "scale.toml": r"\[scaling\] scale: expected true or false, got the string 'false'",
    "shuffle.toml": r"\[training\] shuffle: expected true or false, got the string 'no'",
    "epochs.toml": r"\[training\] epochs: expected an integer in \[0, 1000000000\], got the numb",
    "seed.toml": r"\[model\] seed: expected a non-negative integer, got -1",
    "wide.toml": r"\[rule: outputs per layer\] layer 0: expected 1 to 100 outputs",
    "nofolder.toml": "missing' does not exist",
    "outfolder.toml": "folder.linn: is a folder",
    "fifo_data.toml": "fifo.csv: is a FIFO",
    "typo_data.toml": r"tr_typo.csv: line 1, column 1: expected a number, got '0.5x'",
    "slots.toml": r"\[output\] slots: Moku:Go runs the instrument with 2 or 3",
    "header.toml": r"\[data\] header: expected true or false, got the string 'yes'",
}.items():
    case(f"train-{name}", cli("train", f"P[{name!r}]"), exits(1, message))
case("train-batch-2**62", cli("train", "P['batch.toml']", "-q"), exits(0, ""))
# ablate
for name, message in {
    "deep.toml": "TOML nested 5000 deep",
    "seeds_twice.toml": "seeds: seed 0 appears twice",
    "seeds_negative.toml": r"seeds\[0\]: expected a non-negative integer, got -1",
    "grid.toml": "grid: 1000000000000 points, more than the limit of 100000 runs",
    "n_float.toml": "dataset.n: expected a positive integer, got the number 10000000000.0",
    "n_big.toml": r"n \* \(d_in \+ d_out\) = 60000000000 values, more than the limit",
    "use_bias.toml": "use_bias: expected true or false, got the string 'false'",
    "precision_fifo.toml": "fifo: is a FIFO",
}.items():
    case(
        f"ablate-{name}",
        cli("ablate", f"P[{name!r}]", "--out", "P['tmp'] + '/ab'"),
        exits(1, message),
    )
case(
    "ablate-out-file",
    cli("ablate", "P['ok_ablate.toml']", "--out", "P['x.csv']"),
    exits(2, "exists and is not a folder"),
)
case(
    "ablate-workers",
    cli("ablate", "P['ok_ablate.toml']", "--workers", "100000"),
    exits(2, "--workers: expected"),
)
# demo: the output is checked before training
case(
    "demo-nofolder",
    cli("demo", "--out", "P['tmp'] + '/missing/s.linn'"),
    exits(1, "missing' does not exist"),
)
case(
    "demo-folder",
    "import os; os.makedirs(P['tmp'] + '/d.linn', exist_ok=True); "
    "value = cli(['demo', '--out', P['tmp'] + '/d.linn'])",
    exits(1, "d.linn: is a folder"),
)
case(
    "demo-seed",
    cli("demo", "--seed", "-1", "--epochs", "1", "--out", "P['tmp'] + '/s.linn'"),
    exits(2, "--seed: expected a non-negative"),
)
case(
    "demo-epochs",
    cli("demo", "--epochs", "-1", "--out", "P['tmp'] + '/s.linn'"),
    exits(2, "--epochs: expected a non-negative"),
)

# -- full and read-only file systems (a small tmpfs; skipped where mounting is not permitted) -----
FULL = (
    "import os; out = P['full'] + '/out.csv'; open(out, 'w').write('1.0\\n');"
    " value = cli(['predict', P['ok.linn'], P['many.npy'], '-o', out]);"
    " assert open(out).read() == '1.0\\n', 'the previous output was damaged';"
    " assert os.listdir(P['full']) == ['out.csv'], os.listdir(P['full'])"
)
READONLY = "value = cli(['predict', P['ok.linn'], P['x.csv'], '-o', P['readonly'] + '/out.csv'])"

# -- the library: values typed and checked before training, non-finite results never silent -----
NET = (
    "net = lc.Network([lc.Dense((2, 4), 'tanh', seed=0), lc.Dense((4, 1), seed=1)]);"
    " x = np.linspace(-1, 1, 40).reshape(20, 2); y = x[:, :1] * 0.5;"
)
case(
    "fit-validation-None",
    NET + " calls = []\ncb = lc.LambdaCallback(on_epoch_begin=lambda e, l: calls.append(e))\n"
    "try:\n    net.fit(x, y, validation_data=(x, None), callbacks=[cb], verbose=0)\nfinally:\n"
    "    assert not calls, 'an epoch ran before the error'",
    raises("ValueError", "validation_data: expected a pair"),
)
case(
    "predict-float32-overflow",
    NET + " net.predict(np.full((1, 2), 1e300))",
    raises("ValueError", r"X \(as float32\): expected finite values, got inf"),
)
case(
    "set_num_threads-2**31",
    "lc.set_num_threads(2 ** 31)",
    raises("ValueError", "n: expected 1 to 4096 threads"),
)
case(
    "fit-batch-2**63",
    NET + " value = net.fit(x, y, batch_size=2 ** 63, verbose=0).params['batch_size'] == 2 ** 63",
    ok("True"),
)
case(
    "fit-seed-negative",
    NET + " net.fit(x, y, seed=-1, verbose=0)",
    raises("ValueError", "seed: expected a non-negative integer, got -1"),
)
case(
    "dense-seed-negative",
    "lc.Dense((2, 1), seed=-5)",
    raises("ValueError", "seed: expected a non-negative integer, got -5"),
)
case(
    "fit-shuffle-string",
    NET + " net.fit(x, y, shuffle='no', verbose=0)",
    raises("TypeError", "shuffle: expected true or false, got the string 'no'"),
)
case(
    "fit-epochs-digits",
    NET + " net.fit(x, y, epochs=10 ** 4000, verbose=0)",
    raises("ValueError", "epochs: .*got an integer of 4001 digits"),
)
case(
    "predict-nan-parameters",
    NET + " net.theta[0] = np.nan; net.predict(x)",
    raises("ValueError", "parameters are not finite"),
)
DIVERGE = (
    "import warnings; warnings.simplefilter('ignore');"
    " x = np.random.default_rng(0).normal(size=(64, 2)); y = x.sum(1, keepdims=True);"
    " net = lc.Network([lc.Dense((2, 8), 'relu', seed=0), lc.Dense((8, 1), seed=1)], clip=False);"
)
case(
    "predict-after-divergence",
    DIVERGE + " h = net.fit(x, y, epochs=20, optimizer=lc.SGD(1e6), verbose=0);"
    " assert h.diverged; net.predict(x)",
    raises("ValueError", "non-finite output .* from finite inputs"),
)
case(
    "qat-divergence",
    "import warnings; warnings.simplefilter('ignore');"
    + NET.replace("'tanh'", "'relu'").replace("lc.Network(", "lc.Network(clip=False, layers=")
    + " h = net.fit(x * 10, y * 10, epochs=50, optimizer=lc.SGD(1e9), verbose=0,"
    " precision={'default': {'gradient': 'fixed<16,8>'}}); value = bool(h.diverged)",
    ok("True"),
)
case(
    "linn-scale-string",
    "lm = lc.LinnModel(); lm.set_training_data(np.arange(4.0), np.arange(4.0), scale='false')",
    raises("TypeError", "scale: expected true or false, got the string 'false'"),
)

# -- seeded mutations of every JSON format and of a history archive -----------------------------
FUZZ = """
import sys, json, io
sys.path.insert(0, P['tests'])
from _fuzz import _fuzz_mutations
rng = np.random.default_rng({seed})
texts = [open(P[name]).read() for name in {names}]
counts = {{'error': 0, 'valid': 0}}
for k in range({n}):
    bad = _fuzz_mutations(texts[k % len(texts)], rng)
    try:
        {call}
    except {error}:
        counts['error'] += 1
        continue
    counts['valid'] += 1
value = [counts['error'], counts['valid']]
"""
FUZZERS = {
    "precision": (
        ["ok_precision.json", "unknown_field.json"],
        "lc.PrecisionDict.from_json(bad)",
        "lc.PrecisionFileError",
    ),
    "report": (
        ["ok_report.json", "floor0_report.json"],
        "lc.DeviationReport.from_json(bad)",
        "lc.ReportFileError",
    ),
}
FUZZ_N = 200
for name, (names, call, error) in FUZZERS.items():
    case(
        f"fuzz-{name}", FUZZ.format(seed=13, names=names, n=FUZZ_N, call=call, error=error), ok("")
    )
NPZ_FUZZ = """
import os
rng = np.random.default_rng(29)
good = open(P['ok_history.npz'], 'rb').read()
counts = [0, 0]
path = P['tmp'] + '/fuzz.npz'
for k in range({n}):
    buf = bytearray(good)
    for _ in range(int(rng.integers(1, 6))):
        buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
    if rng.random() < 0.3:
        buf = buf[: int(rng.integers(len(buf)))]
    open(path, 'wb').write(bytes(buf))
    try:
        lc.FitHistory.load(path)
    except lc.HistoryFileError as exc:
        assert len(str(exc)) < {limit}, str(exc)[:200]
        counts[0] += 1
        continue
    counts[1] += 1
value = counts
"""
case("fuzz-history-npz", NPZ_FUZZ.format(n=FUZZ_N, limit=MAX_MESSAGE), ok(""))

IDS = [c[0] for c in CASES]
assert len(IDS) == len(set(IDS)), "case names must be unique"


# -- running them --------------------------------------------------------------------------------
def _mount(folder: Path, options: str) -> bool:
    folder.mkdir()
    try:
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def _run_child(cases: list[dict], paths: dict, tmp: Path, tag: str) -> list[dict]:
    spec, out = tmp / f"cases-{tag}.json", tmp / f"results-{tag}.json"
    spec.write_text(json.dumps({"cases": cases, "paths": paths}))
    env = {
        **os.environ,
        "PYTHONPATH": str(PACKAGE_HOME) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    res = subprocess.run(
        [sys.executable, str(HERE / "_hostile.py"), str(spec), str(out), str(MEMORY), str(SECONDS)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS * len(cases) + 60,
    )
    assert res.returncode == 0 and out.exists(), f"the child failed:\n{res.stderr[-3000:]}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    mounts: dict[str, str] = {}
    mounted = []
    extra = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if _mount(tmp / "full", "size=64k"):
            mounted.append(tmp / "full")
            mounts["full"] = str(tmp / "full")
            extra.append(("full-disk-predict", FULL, exits(1, "out.csv: No space left on device")))
        if _mount(tmp / "readonly", "ro,size=64k"):
            mounted.append(tmp / "readonly")
            mounts["readonly"] = str(tmp / "readonly")
            extra.append(
                ("readonly-predict", READONLY, exits(1, r"readonly/out.csv: Read-only file system"))
            )
    paths = _make_files(tmp, mounts)
    paths["tests"] = str(HERE)
    for name, text in TOMLS.items():
        (tmp / name).write_text(text)
        paths[name] = str(tmp / name)
    net = lc.Network([lc.Dense((3, 1), weight=[[0.1], [0.2], [0.3]], bias=[0.1])])
    lc.save_linn(net, 3, 1, tmp / "ok.linn")
    np.save(tmp / "many.npy", np.full((20_000, 3), 0.1))  # about 400 KB of CSV output
    paths["many.npy"] = str(tmp / "many.npy")
    all_cases = CASES + extra
    try:
        batches = [all_cases[i::3] for i in range(3)]
        out: dict[str, tuple[tuple, dict]] = {}
        for k, batch in enumerate(batches):
            got = _run_child([{"id": c[0], "code": c[1]} for c in batch], paths, tmp, str(k))
            for (name, _, expect), result in zip(batch, got, strict=False):
                out[name] = (expect, result)
    finally:
        for folder in mounted:
            subprocess.run(["umount", str(folder)], capture_output=True, timeout=10)
    fuzz = [r for name, (_, r) in out.items() if name.startswith("fuzz-")]
    tried = len(out) - len(fuzz) + sum(sum(r.get("value") or []) for r in fuzz)
    clean = sum(
        1 for name, (e, r) in out.items() if not name.startswith("fuzz-") and not _problem(e, r)
    ) + sum(sum(r.get("value") or []) for r in fuzz if r["outcome"] == "ok")
    print(
        f"\nhostile inputs: {tried} cases tried, {clean} clean "
        f"({len(out) - len(fuzz)} named cases, {tried - len(out) + len(fuzz)} fuzzed)"
    )
    return out


def _problem(expect: tuple, r: dict) -> str | None:
    """What is wrong with a result, or None."""
    kind, want, pattern = expect
    if r["outcome"] == "timeout":
        return f"no end within {SECONDS} s"
    if r.get("length", 0) > MAX_MESSAGE:
        return f"a message of {r['length']} characters"
    if kind == "raises":
        if r["outcome"] != "raised" or r["type"] != want:
            return f"expected {want}, got {r['outcome']} {r['type']}: {r['message'][:300]}"
        if not re.search(pattern, r["message"]):
            return f"message {r['message'][:300]!r} does not match {pattern!r}"
        return None
    if r["outcome"] != "ok":
        return f"raised {r['type']}: {r['message'][:300]}"
    if kind == "exit":
        if r["code"] != want:
            return f"exit code {r['code']}, expected {want}; stderr {r['stderr'][:300]!r}"
        if "Traceback" in r["stderr"]:
            return "a traceback"
        if pattern and not re.search(pattern, r["stderr"].strip(), re.M):
            return f"stderr {r['stderr'][:300]!r} does not match {pattern!r}"
        return None
    if pattern and not re.search(pattern, str(r.get("value"))):
        return f"value {r.get('value')!r} does not match {pattern!r}"
    return None


@pytest.mark.parametrize("name", [*IDS, "full-disk-predict", "readonly-predict"])
def test_hostile_case_ends_with_its_documented_error(results, name):
    if name not in results:
        pytest.skip("mounting a small tmpfs is not permitted here")
    expect, r = results[name]
    problem = _problem(expect, r)
    assert problem is None, f"{name}: {problem}"
