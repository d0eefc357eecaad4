"""The ``linncore`` command (also ``python -m linncore``).

Commands: ``demo`` (train the vendor's Simple_sine tutorial), ``inspect`` (validate and
describe a ``.linn`` file), ``predict`` (run a ``.linn`` file on data), ``convert`` (a Keras
file to a ``.linn`` file), ``train`` (train from a TOML config) and ``ablate`` (an ablation
sweep from a TOML config).  Exit codes: 0 success, 1 a bad file or a failed run, 2 a usage error.
"""

from __future__ import annotations

import argparse
import builtins
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._util import validate as _v
from ._util.atomic import atomic_write, check_writable, save_figure, write_text_atomic
from ._util.untrusted import clip, kind, read_csv, read_npy, read_toml, short
from ._version import __version__
from .vendor.linn_document import (
    INSTRUMENT_ACTIVATIONS,
    MAX_LAYERS,
    _check_shapes,
    channel_mode,
    describe,
    device_neuron_limit,
)
from .vendor.linn_model import (
    LinnError,
    LinnModel,
    budget_text,
    get_linn,
    load_linn,
    read_linn,
    save_linn,
)

__all__ = ["main"]

EXIT_OK, EXIT_BAD_FILE, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure reported as ``linncore <command>: error: ...`` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_FILE) -> None:
        super().__init__(message)
        self.code = code


def _usage(message: str) -> CliError:
    """A usage error (exit code 2): the error factory of the checks of command-line options."""
    return CliError(message, EXIT_USAGE)


# -- data files -----------------------------------------------------------------------------
#: Limits of the files the command reads: TOML configs, CSV and .npy data.
CONFIG_LIMIT = 1024 * 1024
CSV_LIMIT = 64 * 1024 * 1024
NPY_LIMIT = 256 * 1024 * 1024
_CONFIG_DEPTH = 16
_SUFFIXES = (".csv", ".npy")


def _suffix(path: Path, what: str, code: int = EXIT_USAGE) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise CliError(
            f"{what}: expected a .csv or .npy file, got {short(suffix or 'no extension')}", code
        )
    return suffix


def _read_data(path: Path, header: bool | None = None) -> tuple[np.ndarray, list[str] | None]:
    """A numeric CSV (strict, see :func:`linncore._util.untrusted.read_csv`) or a .npy file as
    2-D float64, and the CSV's header."""
    suffix = _suffix(path, short(str(path), 80).strip("'\""))
    if suffix == ".csv":
        arr, names = read_csv(path, limit=CSV_LIMIT, header=header, error=CliError)
    else:
        names = None
        arr = read_npy(path, limit=NPY_LIMIT, error=CliError)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise CliError(f"{path}: expected a 1-D or 2-D array, got shape {short(arr.shape)}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise CliError(f"{path}: no data (shape {arr.shape})")
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise CliError(f"{path}: non-finite value {arr[bad]} at row {bad[0]}, column {bad[1]}")
    return arr, names


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_output(path: Path, what: str, inputs: Sequence[Path]) -> None:
    """Refuse, before any work, an output that is one of the inputs or cannot be written."""
    for src in inputs:
        if _same_file(path, src):
            raise CliError(
                f"{what}: {str(path)!r} is also an input file; write the output elsewhere",
                EXIT_USAGE,
            )
    check_writable(path, what)


def _write_data(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` to exactly ``path`` (``.npy`` or ``.csv``), atomically."""
    if path.suffix.lower() == ".npy":
        with atomic_write(path, "wb", name="-o/--output") as fh:
            np.save(fh, arr)  # a file object: np.save adds no second extension
    else:
        text = "\n".join(",".join(repr(float(v)) for v in row) for row in arr) + "\n"
        write_text_atomic(path, text, name="-o/--output")


# -- inspect --------------------------------------------------------------------------------
def _cmd_inspect(args: argparse.Namespace) -> int:
    header, layers = read_linn(Path(args.file), device=args.device, slots=args.slots)
    desc = describe(header, layers)
    if args.json:
        print(json.dumps(desc))
        return EXIT_OK
    print(f"{args.file}: a valid .linn document (version {header['version']})")
    print("as the instrument describes it:")
    print("  " + json.dumps(desc))
    print(
        f"  {'#':<3}{'activation':<12}{'inputs':>7}{'outputs':>8}{'params':>8}   weights range     "
        "   biases range"
    )
    for i, l in enumerate(layers):
        print(
            f"  {i:<3}{l.activation:<12}{l.inputs:>7}{l.outputs:>8}"
            f"{l.weights.size + l.biases.size:>8}   "
            f"[{l.weights.min():+.4f}, {l.weights.max():+.4f}]   [{l.biases.min():+.4f}, "
            f"{l.biases.max():+.4f}]"
        )
    for line in budget_text(
        [l.inputs for l in layers], [l.outputs for l in layers], args.device, args.slots
    ):
        print(line)
    for which, width, ch in (
        ("input", layers[0].inputs, header["num_input_channels"]),
        ("output", layers[-1].outputs, header["num_output_channels"]),
    ):
        mode = channel_mode(width, ch)
        detail = (
            f"a window of {width} samples on one channel"
            if mode == "serial"
            else f"{ch} channel(s)"
        )
        print(f"{which}s: {width} on {ch} channel(s), {mode} mode ({detail})")
    return EXIT_OK


# -- predict --------------------------------------------------------------------------------
def _cmd_predict(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else None
    if output is not None:
        if output.suffix.lower() not in _SUFFIXES:
            raise CliError(
                f"-o/--output: expected a .csv or .npy file name, got {short(str(output))}",
                EXIT_USAGE,
            )
        _check_output(output, "-o/--output", [Path(args.file), Path(args.data)])
    net = load_linn(Path(args.file))
    data, _ = _read_data(Path(args.data), args.header)
    if data.shape[1] != net.input_size:
        if net.input_size == 1 and data.shape[0] == 1:
            data = data.T
        else:
            raise CliError(
                f"{args.data}: expected {net.input_size} column(s) per row (the network's inputs), "
                f"got {data.shape[1]}"
            )
    outside = int(np.sum(np.abs(data) > 1.0))
    if outside and not args.no_clip_inputs:
        print(
            f"note: {outside} input value(s) outside [-1, 1] clipped, as the instrument's inputs "
            "saturate",
            file=sys.stderr,
        )
        data = np.clip(data, -1.0, 1.0)
    out = net.predict(data).astype(np.float64)
    if output is not None:
        _write_data(output, out)
        print(
            f"wrote {out.shape[0]} row(s) of {out.shape[1]} output(s) to {output}", file=sys.stderr
        )
    else:
        for row in out:
            print(",".join(repr(float(v)) for v in row))
    return EXIT_OK


# -- convert --------------------------------------------------------------------------------
def _cmd_convert(args: argparse.Namespace) -> int:
    """A Keras file (.keras or .h5) to a .linn file, through load_keras and save_linn."""
    import warnings

    from .vendor.keras_files import KerasFileError, load_keras

    out = Path(args.output)
    if out.suffix != ".linn":
        raise CliError(
            f"-o/--output: expected a file name ending in .linn, got {str(out)!r}", EXIT_USAGE
        )
    try:
        lm = load_keras(Path(args.file))
    except (KerasFileError, ImportError) as exc:
        raise CliError(str(exc)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_linn(
            lm,
            args.input_channels,
            args.output_channels,
            out,
            output_mapping=args.output_mapping,
            clip=args.clip,
            device=args.device,
            slots=args.slots,
        )
    for w in caught:
        print(f"linncore convert: warning: {w.message}", file=sys.stderr)
    net = lm.network
    assert net is not None  # load_keras returns a model with its network built
    layers = " -> ".join(f"{l.size_out} {l.activation}" for l in net.layers)
    clipping = "outputs clipped to [-1, 1]" if net.clip else "no clipping"
    print(
        f"wrote {out}: {net.input_size} -> {layers} ({clipping}), {args.input_channels} input "
        f"and {args.output_channels} output channel(s)"
    )
    return EXIT_OK


# -- demo -----------------------------------------------------------------------------------
def _fit_quality(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    rmse = float(np.sqrt(np.mean((y - p) ** 2)))
    var = float(np.var(y))
    r2 = 1.0 - float(np.mean((y - p) ** 2)) / var if var > 0 else float("nan")
    return rmse, r2


def _preflight(
    lm: LinnModel,
    out_path: Path,
    input_channels: Any = 1,
    output_channels: Any = 1,
    output_mapping: Any = None,
    device: Any = None,
    slots: Any = None,
) -> None:
    """Check, before training, everything save_linn will check that does not depend on the
    trained values: the output folder and every converter, channel, mapping and device rule
    (on a copy of the network with zero parameters)."""
    check_writable(out_path, "output file")
    assert lm.network is not None  # both callers construct the model first
    probe = lm.network.copy()
    probe.theta[:] = 0.0
    get_linn(
        probe,
        input_channels,
        output_channels,
        output_mapping=output_mapping,
        device=device,
        slots=slots,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".linn":
        raise CliError(f"--out: expected a file name ending in .linn, got {args.out!r}", EXIT_USAGE)
    x = np.arange(0.0, 2.0 * np.pi, 0.01)
    y = np.cos(5.0 * x)
    print(
        f"Simple_sine: y = cos(5x) on {x.size} points of [0, 2pi); 1 -> 32 relu -> 32 relu -> 32 "
        "tanh -> 1 linear; "
        f"{args.epochs} epochs, 10% validation (the last samples)"
    )
    lm = LinnModel()
    lm.set_training_data(x.reshape(-1, 1), y.reshape(-1, 1))
    _v.non_negative_int(args.seed, "--seed", error=_usage)
    _v.non_negative_int(args.epochs, "--epochs", error=_usage)
    check_writable(out, "--out")
    check_writable(out.with_suffix(".png"), "--out (its .png)")
    lm.construct_model([(32, "relu"), (32, "relu"), (32, "tanh"), (1, "linear")], seed=args.seed)
    _preflight(lm, out)
    lm.fit_model(args.epochs, validation_split=0.1, verbose=1, seed=args.seed)
    pred = lm.predict(x).ravel()
    n_train = int(math.floor(x.size * 0.9))
    rt, r2t = _fit_quality(y[:n_train], pred[:n_train])
    rv, r2v = _fit_quality(y[n_train:], pred[n_train:])
    print(
        f"fit quality: RMSE train {rt:.4f}, validation {rv:.4f} (target amplitude 1); "
        f"variance explained train {r2t:.3f}, validation {r2v:.3f}"
    )
    print(
        "  (as in the vendor's tutorial, the validation samples are the last 10% of x, x >= "
        f"{x[n_train]:.2f}: "
        "outside the training range, so they measure extrapolation)"
    )
    print()
    lm.summary(input_channels=1, output_channels=1)
    save_linn(lm, 1, 1, out)
    print(f"wrote {out}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return EXIT_OK
    png = out.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(x, y, label="target cos(5x)")
    ax.plot(x, pred, "--", label="prediction")
    ax.axvspan(
        x[n_train], x[-1], color="grey", alpha=0.15, lw=0, label="validation (extrapolation)"
    )
    ax.set_xlabel("x (radians)")
    ax.set_ylabel("y (target units)")
    ax.set_title(
        f"Simple_sine: 1 -> 32 relu -> 32 relu -> 32 tanh -> 1 linear, "
        f"{args.epochs} epochs, seed {args.seed}; "
        f"RMSE train {rt:.3f}, validation {rv:.3f}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    save_figure(fig, png, "--out", dpi=100)
    plt.close(fig)
    print(f"wrote {png}")
    return EXIT_OK


# -- train ----------------------------------------------------------------------------------
_CONFIG_HELP = """\
CONFIG.toml (paths are relative to the config file):

  [data]
  file = "data.csv"        # .csv (optional header line) or .npy; or inputs_file / outputs_file
  header = true            # optional: the CSV's first line is (true) or is not (false) a header;
                           # default: a header only when none of its fields looks like a number
  inputs = [0, 1]          # columns: indices, or names from the CSV header
  outputs = [2]

  [scaling]                # optional
  scale = true
  input_boundary = [[0.0, 0.0], [1.0, 5.0]]   # optional (lower_list, upper_list)
  output_boundary = [[-1.0], [1.0]]           # optional
  constant_columns = "error"                  # or "zero"

  [model]
  layers = [[32, "relu"], [32, "tanh"], [1, "linear"]]
  optimizer = "adam"       # or "sgd"
  loss = "mse"
  seed = 0                 # optional

  [training]
  epochs = 100
  batch_size = 32
  shuffle = true
  validation_split = 0.1

  [training.early_stopping]  # optional
  monitor = "val_loss"
  patience = 10
  restore = true

  [output]
  file = "model.linn"
  input_channels = 1
  output_channels = 1
  output_mapping = [0]     # optional
  clip = false
  device = "Moku:Go"       # optional; with slots = 2 or 3 for Moku:Lab / Moku:Go
  slots = 2
"""

_CONFIG_KEYS = {
    "data": {"file", "inputs_file", "outputs_file", "inputs", "outputs", "header"},
    "scaling": {"scale", "input_boundary", "output_boundary", "constant_columns"},
    "model": {"layers", "optimizer", "loss", "seed"},
    "training": {"epochs", "batch_size", "shuffle", "validation_split", "early_stopping"},
    "output": {
        "file",
        "input_channels",
        "output_channels",
        "output_mapping",
        "clip",
        "device",
        "slots",
    },
}
_ES_KEYS = {"monitor", "patience", "restore", "restore_best_weights"}
_MAX_COLUMNS = 4096


class _Section:
    """Typed values of one table of a TOML config; errors name the file, the table and the key."""

    def __init__(self, path: Path, name: str, table: dict) -> None:
        self.path, self.name, self.table = path, name, table

    def error(self, message: str) -> CliError:
        return CliError(f"{self.path}: {message}")

    def where(self, key: str) -> str:
        return f"[{self.name}] {key}"

    def has(self, key: str) -> bool:
        return key in self.table

    def bool(self, key: str, default: bool) -> bool:
        return _v.flag(self.table.get(key, default), self.where(key), error=self.error)

    def int(self, key: str, default: Any, lo: int | None = None, hi: int | None = None) -> Any:
        v = self.table.get(key, default)
        return None if v is None else _v.integer(v, self.where(key), lo=lo, hi=hi, error=self.error)

    def float(
        self, key: str, default: float, lo: float | None = None, hi: float | None = None
    ) -> float:
        return _v.finite_float(
            self.table.get(key, default), self.where(key), lo=lo, hi=hi, error=self.error
        )

    def str(self, key: str, default: Any, choices: Sequence[str] | None = None) -> Any:
        v = self.table.get(key, default)
        if v is None:
            return None
        if choices is None:
            return _v.string(v, self.where(key), error=self.error)
        return _v.choice(v, choices, self.where(key), error=self.error)

    def columns(self, key: builtins.str) -> list | None:  # str is the method above
        if key not in self.table:
            return None
        items = _v.items(
            self.table[key], self.where(key), min_len=1, max_len=_MAX_COLUMNS, error=self.error
        )
        for i, c in enumerate(items):
            if not isinstance(c, str) and (isinstance(c, bool) or not isinstance(c, int)):
                raise self.error(
                    f"{self.where(key)}[{i}]: expected a column index or name, got {kind(c)}"
                )
        return items


def _read_config(cfg_path: Path) -> dict:
    return read_toml(
        cfg_path, limit=CONFIG_LIMIT, what="a TOML config", max_depth=_CONFIG_DEPTH, error=CliError
    )


def _columns(
    arr: np.ndarray, header: list[str] | None, spec: list | None, key: str, path: Path
) -> np.ndarray:
    if spec is None:
        return arr
    idx = []
    for c in spec:
        if isinstance(c, str):
            if header is None or c not in header:
                shown = short(header, 200) if header is not None else "none"
                raise CliError(
                    f"[data] {key}: no column named {short(c)} in {path} (header: {shown})"
                )
            idx.append(header.index(c))
        elif 0 <= c < arr.shape[1]:
            idx.append(c)
        else:
            raise CliError(
                f"[data] {key}: column {short(c)} is not an index in [0, {arr.shape[1]}) of {path}"
            )
    return arr[:, idx]


def _layers(model: _Section) -> list[tuple[int, str]]:
    """The typed ``[model] layers``: (width, activation) pairs, ``[w]`` meaning linear."""
    items = _v.items(
        model.table["layers"],
        model.where("layers"),
        min_len=1,
        max_len=MAX_LAYERS,
        error=model.error,
    )
    out = []
    for i, entry in enumerate(items):
        where = f"{model.where('layers')}[{i}]"
        if not isinstance(entry, list) or len(entry) not in (1, 2):
            raise model.error(
                f'{where}: expected [width, "activation"] or [width], got {kind(entry)}'
            )
        width = _v.integer(entry[0], f"{where} width", lo=1, error=model.error)
        act = (
            _v.choice(
                entry[1], list(INSTRUMENT_ACTIVATIONS), f"{where} activation", error=model.error
            )
            if len(entry) == 2
            else "linear"
        )
        out.append((width, act))
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    cfg_path = Path(args.config)
    cfg = _read_config(cfg_path)
    unknown = sorted(set(cfg) - set(_CONFIG_KEYS))
    if unknown:
        raise CliError(
            f"{cfg_path}: unknown section(s) {short(unknown, 200)}; expected {sorted(_CONFIG_KEYS)}"
        )
    for section, keys in _CONFIG_KEYS.items():
        if not isinstance(cfg.get(section, {}), dict):
            raise CliError(f"{cfg_path}: [{section}] must be a table, got {kind(cfg[section])}")
        extra = sorted(set(cfg.get(section, {})) - keys)
        if extra:
            raise CliError(
                f"{cfg_path}: [{section}] unknown key(s) {short(extra, 200)}; expected some of "
                f"{sorted(keys)}"
            )
    es_cfg = cfg.get("training", {}).get("early_stopping")
    if es_cfg is not None:
        if not isinstance(es_cfg, dict):
            raise CliError(
                f"{cfg_path}: [training.early_stopping] must be a table, got {kind(es_cfg)}"
            )
        extra = sorted(set(es_cfg) - _ES_KEYS)
        if extra:
            raise CliError(
                f"{cfg_path}: [training.early_stopping] unknown key(s) {short(extra, 200)}; "
                f"expected some of {sorted(_ES_KEYS)}"
            )
    for section in ("data", "model", "output"):
        if section not in cfg:
            raise CliError(f"{cfg_path}: missing section [{section}] (see linncore train --help)")
    data, scaling, model, training, output = (
        _Section(cfg_path, s, cfg.get(s, {}))
        for s in ("data", "scaling", "model", "training", "output")
    )
    # every value typed and every limit checked before any file is read or any work starts
    header = data.table.get("header")
    if header is not None:
        header = data.bool("header", False)
    files = {k: data.str(k, None) for k in ("file", "inputs_file", "outputs_file")}
    inputs, outputs = data.columns("inputs"), data.columns("outputs")
    scale = scaling.bool("scale", True)
    constant_columns = scaling.str("constant_columns", "error", ["error", "zero"])
    if not model.has("layers"):
        raise CliError(
            f'{cfg_path}: [model] needs \'layers\', e.g. layers = [[32, "relu"], [1, "linear"]]'
        )
    layers = _layers(model)
    optimizer = model.str("optimizer", "adam", ["adam", "sgd"])
    loss = model.str("loss", "mse", ["mse", "mae", "half_mse"])
    seed = model.int("seed", None, lo=0)
    epochs = training.int("epochs", 100, lo=0, hi=10**9)
    batch_size = training.int("batch_size", 32, lo=1)
    shuffle = training.bool("shuffle", True)
    validation_split = training.float("validation_split", 0.0, lo=0.0, hi=1.0)
    es = None
    if es_cfg is not None:
        es_sec = _Section(cfg_path, "training.early_stopping", es_cfg)
        es = {
            "monitor": es_sec.str("monitor", "val_loss", ["loss", "val_loss"]),
            "patience": es_sec.int("patience", 5, lo=0),
        }
        for key in ("restore", "restore_best_weights"):
            if es_sec.has(key):
                es[key] = es_sec.bool(key, False)
    out_name = output.str("file", None)
    if out_name is None:
        raise CliError(f"{cfg_path}: [output] needs 'file', the .linn to write")
    in_ch = output.int("input_channels", 1, lo=1, hi=10**6)
    out_ch = output.int("output_channels", 1, lo=1, hi=10**6)
    mapping = None
    if output.has("output_mapping"):
        mapping = _v.items(
            output.table["output_mapping"],
            output.where("output_mapping"),
            min_len=1,
            max_len=_MAX_COLUMNS,
            error=output.error,
        )
        mapping = [
            _v.integer(v, f"{output.where('output_mapping')}[{i}]", lo=0, error=output.error)
            for i, v in enumerate(mapping)
        ]
    clip = output.bool("clip", False)
    device = output.str("device", None)
    slots = output.int("slots", None)
    try:
        limit, limit_label = device_neuron_limit(device, slots)
    except ValueError as exc:
        raise CliError(f"{cfg_path}: [output] {exc}") from None
    base = cfg_path.parent
    out_path = base / out_name
    if out_path.suffix != ".linn":
        raise CliError(
            f"{cfg_path}: [output] file: expected a name ending in .linn, got {short(out_name)}"
        )
    summary_path = out_path.with_suffix(".summary.txt")
    if files["file"] is not None:
        sources = [base / files["file"]]
        if inputs is None or outputs is None:
            raise CliError(f"{cfg_path}: [data] with one file needs 'inputs' and 'outputs' columns")
    elif files["inputs_file"] is not None and files["outputs_file"] is not None:
        sources = [base / files["inputs_file"], base / files["outputs_file"]]
    else:
        raise CliError(
            f"{cfg_path}: [data] needs 'file' (with inputs/outputs columns) or 'inputs_file' and "
            "'outputs_file'"
        )
    for src in sources:
        _suffix(src, f"{cfg_path}: [data] {short(str(src.name))}", EXIT_BAD_FILE)
    for target in (out_path, summary_path):
        _check_output(target, f"{cfg_path}: [output] file", sources + [cfg_path])
    if files["file"] is not None:
        arr, names = _read_data(sources[0], header)
        x = _columns(arr, names, inputs, "inputs", sources[0])
        y = _columns(arr, names, outputs, "outputs", sources[0])
    else:
        ax, hx = _read_data(sources[0], header)
        ay, hy = _read_data(sources[1], header)
        x = _columns(ax, hx, inputs, "inputs", sources[0])
        y = _columns(ay, hy, outputs, "outputs", sources[1])
    # the instrument's limits (layer count, neurons per layer, column depth) before any network
    # is built
    shapes = [(w_in, w) for w_in, (w, _) in zip([x.shape[1]] + [w for w, _ in layers], layers)]
    try:
        _check_shapes(shapes, [a for _, a in layers], limit, limit_label, "[model] layers")
    except LinnError as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    lm = LinnModel()
    try:
        lm.set_training_data(
            x,
            y,
            scale=scale,
            input_data_boundary=scaling.table.get("input_boundary"),
            output_data_boundary=scaling.table.get("output_boundary"),
            constant_columns=constant_columns,
        )
        lm.construct_model(layers, optimizer=optimizer, loss=loss, seed=seed)
        _preflight(lm, out_path, in_ch, out_ch, mapping, device, slots)
        print(f"training {lm.network!r} on {x.shape[0]} samples for up to {epochs} epochs")
        history = lm.fit_model(
            epochs,
            es_config=es,
            validation_split=validation_split,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            verbose=0 if args.quiet else 1,
        )
        save_linn(
            lm,
            in_ch,
            out_ch,
            out_path,
            output_mapping=mapping,
            clip=clip,
            device=device,
            slots=slots,
        )
    except (ValueError, TypeError) as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    final = {k: v[-1] for k, v in history.history.items()}
    text = lm.summary_text(in_ch, out_ch, device, slots)
    text += f"\ntrained {len(history.epoch)} epoch(s); final " + ", ".join(
        f"{k} {v:.6g}" for k, v in final.items()
    )
    write_text_atomic(summary_path, text + "\n", name="summary")
    print(text)
    print(f"wrote {out_path} and {summary_path}")
    return EXIT_OK


# -- ablate ---------------------------------------------------------------------------------
_ABLATE_HELP = """\
CONFIG.toml (paths are relative to the config file):

  seeds = [0, 1]                   # every grid point runs once per seed

  [base.dataset]                   # a linear teacher Y = X A (+ noise)
  n = 1000
  d_in = 4
  d_out = 2
  noise = 0.0

  [base.model]                     # LinearBlockModel: dense blocks, then a linear output
  num_hidden = []                  # [] is one dense layer
  activation = "linear"
  use_bias = false

  [base.train]                     # train_instrumented's arguments
  epochs = 10
  batch_size = 32
  learning_rate = 0.05
  precision_dict = { default = { weight = "fixed<8,1>", update = "fixed<8,1>" } }
  # or precision_dict = "precision.json" (a PrecisionDict file), or "float" (no quantization)

  [grid]                           # dotted keys, quoted; the Cartesian product of the lists
  "train.learning_rate" = [0.05, 0.5]
  "train.use_controller" = [false, true]
  "train.precision_dict" = ["float", "precision.json"]

Writes into the output folder: summary.csv, summary.json (one row per run),
histories/<run>.npz (FitHistory.load reads them) and, when matplotlib is installed,
plots/<run>.png (FitHistory.plot_results).
"""
_ABLATE_KEYS = {"seeds", "base", "grid"}


def _precision_value(value: Any, key: str, base: Path) -> Any:
    """TOML has no null: "float"/"none" mean no precision config; any other string is the
    path of a PrecisionDict JSON file (relative to the config file), read and checked here."""
    from .fixed.precision import PrecisionDict

    if isinstance(value, str):
        from .ablation.sweep import FLOAT_WORDS

        if value.strip().lower() in FLOAT_WORDS:
            return None
        path = base / value
        if not path.exists():
            raise CliError(f"{key}: no PrecisionDict file {short(str(path), 80)}")
        try:
            PrecisionDict.load(path)
        except ValueError as exc:
            raise CliError(f"{key}: {exc}") from None
        return str(path.resolve())
    if value is not None and not isinstance(value, dict):
        raise CliError(
            f'{key}: expected an inline table, a PrecisionDict file name or "float", got '
            f"{kind(value)}"
        )
    return value


def _ablate_config(cfg_path: Path) -> tuple[list[int], dict, dict]:
    cfg = _read_config(cfg_path)

    def error(message: str) -> CliError:
        return CliError(f"{cfg_path}: {message}")

    unknown = sorted(set(cfg) - _ABLATE_KEYS)
    if unknown:
        raise CliError(
            f"{cfg_path}: unknown key {short(unknown[0])}; expected {sorted(_ABLATE_KEYS)} "
            f"(see linncore ablate --help)"
        )
    seeds = _v.items(cfg.get("seeds", [0]), "seeds", min_len=1, error=error)
    seeds = [_v.non_negative_int(s, f"seeds[{i}]", error=error) for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        twice = next(s for k, s in enumerate(seeds) if s in seeds[:k])
        raise CliError(
            f"{cfg_path}: seeds: seed {twice} appears twice; each seed runs once per grid point"
        )
    base = cfg.get("base", {})
    if not isinstance(base, dict):
        raise CliError(
            f"{cfg_path}: base: expected tables [base.dataset], [base.model], [base.train]"
        )
    for section, value in base.items():
        if section not in ("dataset", "model", "train"):
            raise CliError(
                f"{cfg_path}: base.{clip(section, 40)}: unknown section; expected base.dataset, "
                "base.model, "
                "base.train"
            )
        if not isinstance(value, dict):
            raise CliError(f"{cfg_path}: base.{section}: expected a table, got {kind(value)}")
    grid = cfg.get("grid", {})
    if not isinstance(grid, dict):
        raise CliError(f"{cfg_path}: grid: expected a table of dotted keys to lists")
    for key, values in grid.items():
        if isinstance(values, dict):
            raise CliError(
                f"{cfg_path}: grid.{clip(key, 40)}: a nested table; write dotted keys quoted, "
                f'e.g. "{clip(key, 40)}.{clip(next(iter(values), "name"), 40)}" = [...]'
            )
        if not isinstance(values, list) or not values:
            raise CliError(
                f"{cfg_path}: grid[{short(key)}]: expected a non-empty list of values, got "
                f"{kind(values)}"
            )
    folder = cfg_path.parent
    try:
        train = base.get("train", {})
        if "precision_dict" in train:
            train["precision_dict"] = _precision_value(
                train["precision_dict"], "base.train.precision_dict", folder
            )
        if "train.precision_dict" in grid:
            grid["train.precision_dict"] = [
                _precision_value(v, f"grid['train.precision_dict'][{i}]", folder)
                for i, v in enumerate(grid["train.precision_dict"])
            ]
    except CliError as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    return seeds, base, grid


def _dask_client(address: str, workers: int | None) -> Any:
    """A dask.distributed client of the scheduler at ``address``, whose workers run the sweep."""
    if workers is not None:
        raise CliError(
            "--workers and --scheduler exclude each other: the scheduler's workers run the sweep",
            EXIT_USAGE,
        )
    try:
        from distributed import Client
    except ImportError:
        raise CliError(
            f"--scheduler {address}: needs dask.distributed, an optional extra: "
            'pip install "linncore[dask]"',
            EXIT_USAGE,
        ) from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CliError(
            f"--scheduler: cannot connect to the Dask scheduler at {address!r} "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _cmd_ablate(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from .ablation.fit_history import _pyplot
    from .ablation.sweep import expand_grid, sweep

    cfg_path = Path(args.config)
    if args.workers is not None:
        _v.positive_int(args.workers, "--workers", hi=1024, error=_usage)
    seeds, base, grid = _ablate_config(cfg_path)
    out = Path(args.out) if args.out else cfg_path.parent / cfg_path.stem
    if out.exists() and not out.is_dir():
        raise CliError(f"--out: {short(str(out), 80)} exists and is not a folder", EXIT_USAGE)
    try:
        runs = len(expand_grid(grid or [{}])) * len(seeds)
    except (ValueError, TypeError) as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    # the output folder must take files before the first run starts
    out.mkdir(parents=True, exist_ok=True)
    (out / "histories").mkdir(exist_ok=True)
    check_writable(out / "summary.csv", "--out")
    check_writable(out / "histories" / "run000.npz", "--out")

    def progress(done: int, total: int, row: dict) -> None:
        flags = [
            f for f, k in (("DIVERGED", "diverged"), ("SILENT-DEATH", "silent_death")) if row.get(k)
        ]
        if not args.quiet:
            print(
                f"[{done}/{total}] {row['run']}  final_loss {row['final_loss']:.6g}  "
                f"{' '.join(flags) or 'ok'}",
                flush=True,
            )

    client = _dask_client(args.scheduler, args.workers) if args.scheduler else None
    if client is not None:
        executor = client.get_executor()
    else:
        executor = ProcessPoolExecutor(min(args.workers, runs)) if args.workers else None
    try:
        try:
            result = sweep(
                grid or [{}], seeds=seeds, base=base, executor=executor, progress=progress
            )
        except (ValueError, TypeError) as exc:
            raise CliError(f"{cfg_path}: {exc}") from None
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
    finally:
        if client is not None:
            client.close()
        elif executor is not None:
            executor.shutdown(cancel_futures=True)
    result.save(out)
    n = len(result.rows)
    print(
        f"wrote {out / 'summary.csv'}, {out / 'summary.json'} and {n} "
        f"histor{'y' if n == 1 else 'ies'} "
        f"in {out / 'histories'}"
    )
    try:
        plt = _pyplot()
    except ImportError as exc:
        print(f"no plots ({exc})")
        return EXIT_OK
    (out / "plots").mkdir(exist_ok=True)
    for run_id, history in result.histories.items():
        fig = history.plot_results(out / "plots" / f"{run_id}.png", run=run_id)
        plt.close(fig)
    print(f"wrote {n} plot(s) in {out / 'plots'}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------
def _slots(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 2 or 3, got {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="linncore",
        description="Train, check and run networks for the Moku Neural "
        "Network instrument (.linn files), without TensorFlow.",
        epilog="exit codes: 0 success, 1 a bad file or failed run, 2 a usage error",
    )
    p.add_argument("--version", action="version", version=f"linncore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        help="train the vendor's Simple_sine tutorial and write sine.linn",
        description="Train y = cos(5x) on x in [0, 2pi) step 0.01 with 1 -> 32 relu -> 32 relu -> "
        "32 tanh -> 1 linear and 10% validation; print the fit quality and summary; "
        "write the .linn (and a .png next to it when matplotlib is installed).",
    )
    d.add_argument("--epochs", type=int, default=1000, help="epochs to train (default 1000)")
    d.add_argument(
        "--out",
        default="sine.linn",
        help="the .linn file to write (default sine.linn); the plot "
        "goes next to it with the extension .png",
    )
    d.add_argument(
        "--seed", type=int, default=0, help="seed of the initial weights and shuffling (default 0)"
    )
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser(
        "inspect",
        help="validate a .linn file and describe it as the instrument would",
        description="Validate a .linn file (JSON, structure, types, sizes, finiteness and every "
        "converter rule) and describe it as the instrument does; exit 1 naming the "
        "broken rule.",
    )
    i.add_argument("file", help="the .linn file")
    i.add_argument(
        "--json", action="store_true", help="print only the instrument's description, as JSON"
    )
    i.add_argument(
        "--device",
        help="also check a device's neurons per layer: Moku:Pro, Moku:Delta, Moku:Lab, Moku:Go",
    )
    i.add_argument(
        "--slots", type=_slots, help="instrument slots in use on Moku:Lab / Moku:Go (2 or 3)"
    )
    i.set_defaults(func=_cmd_inspect)
    r = sub.add_parser(
        "predict",
        help="run a .linn file on data (.csv or .npy)",
        description="Run a .linn file on data: one row per sample, one column per network input, "
        "in the instrument's [-1, 1] units (values outside are clipped, as the "
        "instrument's inputs saturate). Prints CSV or writes -o OUT (.csv or .npy).",
    )
    r.add_argument("file", help="the .linn file")
    r.add_argument("data", help="input data, .csv (optional header line; see --header) or .npy")
    r.add_argument(
        "-o", "--output", help="write the outputs here (.csv or .npy) instead of printing them"
    )
    r.add_argument(
        "--no-clip-inputs", action="store_true", help="feed inputs outside [-1, 1] unclipped"
    )
    hdr = r.add_mutually_exclusive_group()
    hdr.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the CSV's first line is a header (default: only when none of its fields looks "
        "like a number)",
    )
    hdr.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the CSV's first line is data: a field that does not parse is an error",
    )
    r.set_defaults(func=_cmd_predict)
    t = sub.add_parser(
        "train",
        help="train from a TOML config and write the .linn and its summary",
        description="Train a network from a TOML config and write the .linn file and a "
        ".summary.txt next to it.",
        epilog=_CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("config", help="the CONFIG.toml")
    t.add_argument("-q", "--quiet", action="store_true", help="no training progress")
    t.set_defaults(func=_cmd_train)
    a = sub.add_parser(
        "ablate",
        help="run an ablation sweep from a TOML config",
        description="Run every point of the config's [grid] on top of its [base] once per seed "
        "with linncore.ablation.sweep (instrumented training, one process per worker), print "
        "one line per finished run (run id, final loss, DIVERGED / SILENT-DEATH "
        "flags) and write the table, the histories and the plots into a folder.",
        epilog=_ABLATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("config", help="the CONFIG.toml")
    a.add_argument(
        "--out",
        help="output folder (default: a folder named after the config file's stem, "
        "next to the config file)",
    )
    a.add_argument(
        "--workers", type=int, help="worker processes (default: one per CPU, at most one per run)"
    )
    a.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786 "
        '(needs pip install "linncore[dask]"; the workers need linncore '
        "installed)",
    )
    a.add_argument("-q", "--quiet", action="store_true", help="no per-run progress lines")
    a.set_defaults(func=_cmd_ablate)
    c = sub.add_parser(
        "convert",
        help="convert a Keras file (.keras or .h5) to a .linn file",
        description="Read a Keras model file (.keras or legacy .h5; a chain of "
        "Dense layers as moku.nn builds it) without TensorFlow and "
        "write the .linn file the instrument loads, with every "
        "converter rule checked. Needs h5py "
        '(pip install "linncore[keras]").',
    )
    c.add_argument("file", help="the Keras file (.keras or .h5)")
    c.add_argument("-o", "--output", required=True, help="the .linn file to write (atomically)")
    c.add_argument(
        "--input-channels",
        type=int,
        required=True,
        help="instrument inputs connected: 1 (serial) or the network's input count "
        "(parallel, at most 4)",
    )
    c.add_argument(
        "--output-channels",
        type=int,
        required=True,
        help="instrument outputs connected: 1 (serial) or the output count (parallel, at most 4)",
    )
    c.add_argument(
        "--output-mapping",
        type=int,
        nargs="+",
        metavar="NEURON",
        help="output neurons of the last layer to keep, in order",
    )
    c.add_argument(
        "--clip",
        action="store_true",
        help="clip weights and biases into [-1, 1] instead of refusing",
    )
    c.add_argument(
        "--device",
        help="also check a device's neurons per layer: Moku:Pro, Moku:Delta, Moku:Lab, Moku:Go",
    )
    c.add_argument(
        "--slots", type=_slots, help="instrument slots in use on Moku:Lab / Moku:Go (2 or 3)"
    )
    c.set_defaults(func=_cmd_convert)
    return p


def _os_message(exc: OSError) -> str:
    """What went wrong with which file, without a traceback."""
    if exc.strerror:  # raised by the operating system: errno, strerror, filename
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return str(exc.args[0]) if exc.args else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``linncore`` command; returns the exit code.

    Examples
    --------
    >>> main(["inspect"])  # doctest: +SKIP
    2
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "device", None) is None and getattr(args, "slots", None) is not None:
        print(
            f"linncore {args.command}: error: --slots needs --device Moku:Lab or Moku:Go",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return args.func(args)
    except CliError as exc:
        print(f"linncore {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except LinnError as exc:
        print(f"linncore {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_FILE
    except OSError as exc:  # missing files and folders, directories for files, names too long, ...
        print(f"linncore {args.command}: error: {_os_message(exc)}", file=sys.stderr)
        return EXIT_BAD_FILE
    except (ValueError, TypeError) as exc:
        print(f"linncore {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"linncore {args.command}: interrupted", file=sys.stderr)
        return 130
