"""The ``linncore`` command (also ``python -m linncore``).

Commands: ``demo`` (train the vendor's Simple_sine tutorial), ``inspect`` (validate and
describe a ``.linn`` file), ``predict`` (run a ``.linn`` file on data), ``convert`` (a Keras
file to a ``.linn`` file), ``train`` (train from a TOML config) and ``ablate`` (an ablation
sweep from a TOML config).  Exit codes: 0 success, 1 a bad file or a failed run, 2 a usage error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from ._version import __version__
from .vendor.linn_document import channel_mode, describe
from .vendor.linn_model import LinnError, LinnModel, budget_text, get_linn, load_linn, read_linn, save_linn

__all__ = ["main"]

EXIT_OK, EXIT_BAD_FILE, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure reported as ``linncore <command>: error: ...`` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_FILE) -> None:
        super().__init__(message)
        self.code = code


# -- data files -----------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """A numeric CSV (comma separated, optional header line) as 2-D float64, and the header."""
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a UTF-8 text file") from None
    if not lines:
        raise CliError(f"{path}: no data")
    header = None
    first = [c.strip() for c in lines[0].split(",")]
    try:
        [float(c) for c in first]
    except ValueError:
        header, lines = first, lines[1:]
    rows = []
    for k, ln in enumerate(lines):
        cells = [c.strip() for c in ln.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise CliError(f"{path}: line {k + 1 + (header is not None)}: expected numbers, got {ln[:60]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise CliError(f"{path}: line {k + 1 + (header is not None)}: expected {len(rows[0])} columns, got {len(rows[-1])}")
    if not rows:
        raise CliError(f"{path}: no data rows")
    return np.array(rows, dtype=np.float64), header


def _read_data(path: Path) -> tuple[np.ndarray, list[str] | None]:
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        arr, header = _read_csv(path)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise CliError(f"{path}: not a readable .npy file ({exc})") from None
        header = None
        if arr.dtype.kind not in "biuf":
            raise CliError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise CliError(f"{path}: expected a 1-D or 2-D array, got shape {arr.shape}")
    else:
        raise CliError(f"{path}: expected a .csv or .npy file, got {suffix or 'no extension'!r}", EXIT_USAGE)
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise CliError(f"{path}: non-finite value {arr[bad]} at row {bad[0]}, column {bad[1]}")
    return arr, header


def _write_data(path: Path, arr: np.ndarray) -> None:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, arr)
    elif suffix == ".csv":
        path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in arr) + "\n", encoding="utf-8")
    else:
        raise CliError(f"-o/--output: expected a .csv or .npy file name, got {str(path)!r}", EXIT_USAGE)


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
    print(f"  {'#':<3}{'activation':<12}{'inputs':>7}{'outputs':>8}{'params':>8}   weights range        biases range")
    for i, l in enumerate(layers):
        print(f"  {i:<3}{l.activation:<12}{l.inputs:>7}{l.outputs:>8}{l.weights.size + l.biases.size:>8}   "
              f"[{l.weights.min():+.4f}, {l.weights.max():+.4f}]   [{l.biases.min():+.4f}, {l.biases.max():+.4f}]")
    for line in budget_text([l.inputs for l in layers], [l.outputs for l in layers], args.device, args.slots):
        print(line)
    for which, width, ch in (("input", layers[0].inputs, header["num_input_channels"]),
                             ("output", layers[-1].outputs, header["num_output_channels"])):
        mode = channel_mode(width, ch)
        detail = f"a window of {width} samples on one channel" if mode == "serial" else f"{ch} channel(s)"
        print(f"{which}s: {width} on {ch} channel(s), {mode} mode ({detail})")
    return EXIT_OK


# -- predict --------------------------------------------------------------------------------
def _cmd_predict(args: argparse.Namespace) -> int:
    net = load_linn(Path(args.file))
    data, _ = _read_data(Path(args.data))
    if data.shape[1] != net.input_size:
        if net.input_size == 1 and data.shape[0] == 1:
            data = data.T
        else:
            raise CliError(f"{args.data}: expected {net.input_size} column(s) per row (the network's inputs), "
                           f"got {data.shape[1]}")
    outside = int(np.sum(np.abs(data) > 1.0))
    if outside and not args.no_clip_inputs:
        print(f"note: {outside} input value(s) outside [-1, 1] clipped, as the instrument's inputs saturate",
              file=sys.stderr)
        data = np.clip(data, -1.0, 1.0)
    out = net.predict(data).astype(np.float64)
    if args.output:
        _write_data(Path(args.output), out)
        print(f"wrote {out.shape[0]} row(s) of {out.shape[1]} output(s) to {args.output}", file=sys.stderr)
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
        raise CliError(f"-o/--output: expected a file name ending in .linn, got {str(out)!r}",
                       EXIT_USAGE)
    try:
        lm = load_keras(Path(args.file))
    except (KerasFileError, ImportError) as exc:
        raise CliError(str(exc)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_linn(lm, args.input_channels, args.output_channels, out,
                  output_mapping=args.output_mapping, clip=args.clip, device=args.device,
                  slots=args.slots)
    for w in caught:
        print(f"linncore convert: warning: {w.message}", file=sys.stderr)
    net = lm.network
    layers = " -> ".join(f"{l.size_out} {l.activation}" for l in net.layers)
    clipping = "outputs clipped to [-1, 1]" if net.clip else "no clipping"
    print(f"wrote {out}: {net.input_size} -> {layers} ({clipping}), {args.input_channels} input "
          f"and {args.output_channels} output channel(s)")
    return EXIT_OK


# -- demo -----------------------------------------------------------------------------------
def _fit_quality(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    rmse = float(np.sqrt(np.mean((y - p) ** 2)))
    var = float(np.var(y))
    r2 = 1.0 - float(np.mean((y - p) ** 2)) / var if var > 0 else float("nan")
    return rmse, r2


def _preflight(lm: LinnModel, out_path: Path, input_channels: Any = 1, output_channels: Any = 1,
               output_mapping: Any = None, device: Any = None, slots: Any = None) -> None:
    """Check, before training, everything save_linn will check that does not depend on the
    trained values: the output folder and every converter, channel, mapping and device rule
    (on a copy of the network with zero parameters)."""
    if not out_path.parent.is_dir():
        raise CliError(f"{out_path}: the folder {str(out_path.parent)!r} does not exist")
    probe = lm.network.copy()
    probe.theta[:] = 0.0
    get_linn(probe, input_channels, output_channels, output_mapping=output_mapping, device=device, slots=slots)


def _cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".linn":
        raise CliError(f"--out: expected a file name ending in .linn, got {args.out!r}", EXIT_USAGE)
    x = np.arange(0.0, 2.0 * np.pi, 0.01)
    y = np.cos(5.0 * x)
    print(f"Simple_sine: y = cos(5x) on {x.size} points of [0, 2pi); 1 -> 32 relu -> 32 relu -> 32 tanh -> 1 linear; "
          f"{args.epochs} epochs, 10% validation (the last samples)")
    lm = LinnModel()
    lm.set_training_data(x.reshape(-1, 1), y.reshape(-1, 1))
    lm.construct_model([(32, "relu"), (32, "relu"), (32, "tanh"), (1, "linear")], seed=args.seed)
    _preflight(lm, out)
    lm.fit_model(args.epochs, validation_split=0.1, verbose=1, seed=args.seed)
    pred = lm.predict(x).ravel()
    n_train = int(math.floor(x.size * 0.9))
    rt, r2t = _fit_quality(y[:n_train], pred[:n_train])
    rv, r2v = _fit_quality(y[n_train:], pred[n_train:])
    print(f"fit quality: RMSE train {rt:.4f}, validation {rv:.4f} (target amplitude 1); "
          f"variance explained train {r2t:.3f}, validation {r2v:.3f}")
    print(f"  (as in the vendor's tutorial, the validation samples are the last 10% of x, x >= {x[n_train]:.2f}: "
          "outside the training range, so they measure extrapolation)")
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
    ax.axvspan(x[n_train], x[-1], color="grey", alpha=0.15, lw=0,
               label="validation (extrapolation)")
    ax.set_xlabel("x (radians)")
    ax.set_ylabel("y (target units)")
    ax.set_title(f"Simple_sine: 1 -> 32 relu -> 32 relu -> 32 tanh -> 1 linear, "
                 f"{args.epochs} epochs, seed {args.seed}; "
                 f"RMSE train {rt:.3f}, validation {rv:.3f}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    print(f"wrote {png}")
    return EXIT_OK


# -- train ----------------------------------------------------------------------------------
_CONFIG_HELP = """\
CONFIG.toml (paths are relative to the config file):

  [data]
  file = "data.csv"        # .csv (optional header line) or .npy; or inputs_file / outputs_file
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
    "data": {"file", "inputs_file", "outputs_file", "inputs", "outputs"},
    "scaling": {"scale", "input_boundary", "output_boundary", "constant_columns"},
    "model": {"layers", "optimizer", "loss", "seed"},
    "training": {"epochs", "batch_size", "shuffle", "validation_split", "early_stopping"},
    "output": {"file", "input_channels", "output_channels", "output_mapping", "clip", "device", "slots"},
}


def _columns(arr: np.ndarray, header: list[str] | None, spec: Any, key: str, path: Path) -> np.ndarray:
    if spec is None:
        return arr
    if not isinstance(spec, list) or not spec:
        raise CliError(f"[data] {key}: expected a non-empty list of column indices or names, got {spec!r}")
    idx = []
    for c in spec:
        if isinstance(c, str):
            if header is None or c not in header:
                raise CliError(f"[data] {key}: no column named {c!r} in {path} (header: {header})")
            idx.append(header.index(c))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < arr.shape[1]:
            idx.append(c)
        else:
            raise CliError(f"[data] {key}: column {c!r} is not an index in [0, {arr.shape[1]}) of {path}")
    return arr[:, idx]


def _cmd_train(args: argparse.Namespace) -> int:
    cfg_path = Path(args.config)
    try:
        cfg = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{cfg_path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{cfg_path}: not valid TOML ({exc})") from None
    unknown = sorted(set(cfg) - set(_CONFIG_KEYS))
    if unknown:
        raise CliError(f"{cfg_path}: unknown section(s) {unknown}; expected {sorted(_CONFIG_KEYS)}")
    for section, keys in _CONFIG_KEYS.items():
        if not isinstance(cfg.get(section, {}), dict):
            raise CliError(f"{cfg_path}: [{section}] must be a table")
        extra = sorted(set(cfg.get(section, {})) - keys)
        if extra:
            raise CliError(f"{cfg_path}: [{section}] unknown key(s) {extra}; expected some of {sorted(keys)}")
    es_cfg = cfg.get("training", {}).get("early_stopping")
    if es_cfg is not None:
        es_keys = {"monitor", "patience", "restore", "restore_best_weights"}
        if not isinstance(es_cfg, dict):
            raise CliError(f"{cfg_path}: [training.early_stopping] must be a table")
        extra = sorted(set(es_cfg) - es_keys)
        if extra:
            raise CliError(f"{cfg_path}: [training.early_stopping] unknown key(s) {extra}; expected some of {sorted(es_keys)}")
    for section in ("data", "model", "output"):
        if section not in cfg:
            raise CliError(f"{cfg_path}: missing section [{section}] (see linncore train --help)")
    base = cfg_path.parent
    data, scaling, model, training, output = (cfg.get(s, {}) for s in ("data", "scaling", "model", "training", "output"))
    if "file" in data:
        arr, header = _read_data(base / data["file"])
        if "inputs" not in data or "outputs" not in data:
            raise CliError(f"{cfg_path}: [data] with one file needs 'inputs' and 'outputs' columns")
        x = _columns(arr, header, data["inputs"], "inputs", base / data["file"])
        y = _columns(arr, header, data["outputs"], "outputs", base / data["file"])
    elif "inputs_file" in data and "outputs_file" in data:
        ax, hx = _read_data(base / data["inputs_file"])
        ay, hy = _read_data(base / data["outputs_file"])
        x = _columns(ax, hx, data.get("inputs"), "inputs", base / data["inputs_file"])
        y = _columns(ay, hy, data.get("outputs"), "outputs", base / data["outputs_file"])
    else:
        raise CliError(f"{cfg_path}: [data] needs 'file' (with inputs/outputs columns) or 'inputs_file' and 'outputs_file'")
    if "layers" not in model:
        raise CliError(f"{cfg_path}: [model] needs 'layers', e.g. layers = [[32, \"relu\"], [1, \"linear\"]]")
    if "file" not in output:
        raise CliError(f"{cfg_path}: [output] needs 'file', the .linn to write")
    out_path = base / output["file"]
    if out_path.suffix != ".linn":
        raise CliError(f"{cfg_path}: [output] file: expected a name ending in .linn, got {output['file']!r}")
    lm = LinnModel()
    try:
        lm.set_training_data(x, y, scale=scaling.get("scale", True),
                             input_data_boundary=scaling.get("input_boundary"),
                             output_data_boundary=scaling.get("output_boundary"),
                             constant_columns=scaling.get("constant_columns", "error"))
        lm.construct_model([tuple(l) if isinstance(l, list) else l for l in model["layers"]],
                           optimizer=model.get("optimizer", "adam"), loss=model.get("loss", "mse"),
                           seed=model.get("seed"))
        es = training.get("early_stopping")
        epochs = training.get("epochs", 100)
        in_ch, out_ch = output.get("input_channels", 1), output.get("output_channels", 1)
        _preflight(lm, out_path, in_ch, out_ch, output.get("output_mapping"), output.get("device"), output.get("slots"))
        print(f"training {lm.network!r} on {x.shape[0]} samples for up to {epochs} epochs")
        history = lm.fit_model(epochs, es_config=es, validation_split=training.get("validation_split", 0.0),
                               batch_size=training.get("batch_size", 32), shuffle=training.get("shuffle", True),
                               seed=model.get("seed"), verbose=0 if args.quiet else 1)
        save_linn(lm, in_ch, out_ch, out_path, output_mapping=output.get("output_mapping"),
                  clip=output.get("clip", False), device=output.get("device"), slots=output.get("slots"))
    except (ValueError, TypeError) as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    final = {k: v[-1] for k, v in history.history.items()}
    text = lm.summary_text(in_ch, out_ch, output.get("device"), output.get("slots"))
    text += f"\ntrained {len(history.epoch)} epoch(s); final " + ", ".join(f"{k} {v:.6g}" for k, v in final.items())
    summary_path = out_path.with_suffix(".summary.txt")
    summary_path.write_text(text + "\n", encoding="utf-8")
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
    path of a PrecisionDict JSON file (relative to the config file)."""
    if isinstance(value, str):
        from .ablation.sweep import FLOAT_WORDS

        if value.strip().lower() in FLOAT_WORDS:
            return None
        path = base / value
        if not path.is_file():
            raise CliError(f"{key}: no PrecisionDict file {str(path)!r}")
        return str(path.resolve())
    if value is not None and not isinstance(value, dict):
        raise CliError(f"{key}: expected an inline table, a PrecisionDict file name or \"float\", got {value!r}")
    return value


def _ablate_config(cfg_path: Path) -> tuple[list[int], dict, dict]:
    try:
        cfg = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{cfg_path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{cfg_path}: is a folder, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{cfg_path}: not valid TOML ({exc})") from None
    unknown = sorted(set(cfg) - _ABLATE_KEYS)
    if unknown:
        raise CliError(f"{cfg_path}: unknown key {unknown[0]!r}; expected {sorted(_ABLATE_KEYS)} "
                       f"(see linncore ablate --help)")
    seeds = cfg.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise CliError(f"{cfg_path}: seeds: expected a non-empty list of integers, got {seeds!r}")
    base = cfg.get("base", {})
    if not isinstance(base, dict):
        raise CliError(f"{cfg_path}: base: expected tables [base.dataset], [base.model], [base.train]")
    for section, value in base.items():
        if section not in ("dataset", "model", "train"):
            raise CliError(f"{cfg_path}: base.{section}: unknown section; expected base.dataset, base.model, base.train")
        if not isinstance(value, dict):
            raise CliError(f"{cfg_path}: base.{section}: expected a table, got {value!r}")
    grid = cfg.get("grid", {})
    if not isinstance(grid, dict):
        raise CliError(f"{cfg_path}: grid: expected a table of dotted keys to lists")
    for key, values in grid.items():
        if isinstance(values, dict):
            raise CliError(f"{cfg_path}: grid.{key}: a nested table; write dotted keys quoted, "
                           f"e.g. \"{key}.{next(iter(values), 'name')}\" = [...]")
        if not isinstance(values, list) or not values:
            raise CliError(f"{cfg_path}: grid[{key!r}]: expected a non-empty list of values, got {values!r}")
    folder = cfg_path.parent
    try:
        train = base.get("train", {})
        if "precision_dict" in train:
            train["precision_dict"] = _precision_value(train["precision_dict"], "base.train.precision_dict", folder)
        if "train.precision_dict" in grid:
            grid["train.precision_dict"] = [_precision_value(v, f"grid['train.precision_dict'][{i}]", folder)
                                            for i, v in enumerate(grid["train.precision_dict"])]
    except CliError as exc:
        raise CliError(f"{cfg_path}: {exc}") from None
    return seeds, base, grid


def _dask_client(address: str, workers: int | None) -> Any:
    """A dask.distributed client of the scheduler at ``address``, whose workers run the sweep."""
    if workers is not None:
        raise CliError("--workers and --scheduler exclude each other: the scheduler's workers "
                       "run the sweep", EXIT_USAGE)
    try:
        from distributed import Client
    except ImportError:
        raise CliError(f"--scheduler {address}: needs dask.distributed, an optional extra: "
                       "pip install \"linncore[dask]\"", EXIT_USAGE) from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CliError(f"--scheduler: cannot connect to the Dask scheduler at {address!r} "
                       f"({type(exc).__name__}: {exc})") from None


def _cmd_ablate(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from .ablation.fit_history import _pyplot
    from .ablation.sweep import sweep

    cfg_path = Path(args.config)
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers: expected a positive integer, got {args.workers}", EXIT_USAGE)
    seeds, base, grid = _ablate_config(cfg_path)
    out = Path(args.out) if args.out else cfg_path.parent / cfg_path.stem
    if out.exists() and not out.is_dir():
        raise CliError(f"--out: {str(out)!r} exists and is not a folder", EXIT_USAGE)

    def progress(done: int, total: int, row: dict) -> None:
        flags = [f for f, k in (("DIVERGED", "diverged"), ("SILENT-DEATH", "silent_death")) if row.get(k)]
        if not args.quiet:
            print(f"[{done}/{total}] {row['run']}  final_loss {row['final_loss']:.6g}  "
                  f"{' '.join(flags) or 'ok'}", flush=True)

    client = _dask_client(args.scheduler, args.workers) if args.scheduler else None
    if client is not None:
        executor = client.get_executor()
    else:
        executor = ProcessPoolExecutor(args.workers) if args.workers else None
    try:
        try:
            result = sweep(grid or [{}], seeds=seeds, base=base, executor=executor, progress=progress)
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
    print(f"wrote {out / 'summary.csv'}, {out / 'summary.json'} and {n} histor{'y' if n == 1 else 'ies'} "
          f"in {out / 'histories'}")
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
    p = argparse.ArgumentParser(prog="linncore", description="Train, check and run networks for the Moku Neural "
                                "Network instrument (.linn files), without TensorFlow.",
                                epilog="exit codes: 0 success, 1 a bad file or failed run, 2 a usage error")
    p.add_argument("--version", action="version", version=f"linncore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="train the vendor's Simple_sine tutorial and write sine.linn",
                       description="Train y = cos(5x) on x in [0, 2pi) step 0.01 with 1 -> 32 relu -> 32 relu -> "
                                   "32 tanh -> 1 linear and 10% validation; print the fit quality and summary; "
                                   "write the .linn (and a .png next to it when matplotlib is installed).")
    d.add_argument("--epochs", type=int, default=1000, help="epochs to train (default 1000)")
    d.add_argument("--out", default="sine.linn", help="the .linn file to write (default sine.linn); the plot "
                                                     "goes next to it with the extension .png")
    d.add_argument("--seed", type=int, default=0, help="seed of the initial weights and shuffling (default 0)")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("inspect", help="validate a .linn file and describe it as the instrument would",
                       description="Validate a .linn file (JSON, structure, types, sizes, finiteness and every "
                                   "converter rule) and describe it as the instrument does; exit 1 naming the "
                                   "broken rule.")
    i.add_argument("file", help="the .linn file")
    i.add_argument("--json", action="store_true", help="print only the instrument's description, as JSON")
    i.add_argument("--device", help="also check a device's neurons per layer: Moku:Pro, Moku:Delta, Moku:Lab, Moku:Go")
    i.add_argument("--slots", type=_slots, help="instrument slots in use on Moku:Lab / Moku:Go (2 or 3)")
    i.set_defaults(func=_cmd_inspect)
    r = sub.add_parser("predict", help="run a .linn file on data (.csv or .npy)",
                       description="Run a .linn file on data: one row per sample, one column per network input, "
                                   "in the instrument's [-1, 1] units (values outside are clipped, as the "
                                   "instrument's inputs saturate). Prints CSV or writes -o OUT (.csv or .npy).")
    r.add_argument("file", help="the .linn file")
    r.add_argument("data", help="input data, .csv (optional header line) or .npy")
    r.add_argument("-o", "--output", help="write the outputs here (.csv or .npy) instead of printing them")
    r.add_argument("--no-clip-inputs", action="store_true", help="feed inputs outside [-1, 1] unclipped")
    r.set_defaults(func=_cmd_predict)
    t = sub.add_parser("train", help="train from a TOML config and write the .linn and its summary",
                       description="Train a network from a TOML config and write the .linn file and a "
                                   ".summary.txt next to it.", epilog=_CONFIG_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", help="the CONFIG.toml")
    t.add_argument("-q", "--quiet", action="store_true", help="no training progress")
    t.set_defaults(func=_cmd_train)
    a = sub.add_parser("ablate", help="run an ablation sweep from a TOML config",
                       description="Run every point of the config's [grid] on top of its [base] once per seed "
                                   "with linncore.ablation.sweep (instrumented training, one process per worker), print "
                                   "one line per finished run (run id, final loss, DIVERGED / SILENT-DEATH "
                                   "flags) and write the table, the histories and the plots into a folder.",
                       epilog=_ABLATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("config", help="the CONFIG.toml")
    a.add_argument("--out", help="output folder (default: a folder named after the config file's stem, "
                                 "next to the config file)")
    a.add_argument("--workers", type=int, help="worker processes (default: one per CPU, at most one per run)")
    a.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786 "
                        "(needs pip install \"linncore[dask]\"; the workers need linncore "
                        "installed)")
    a.add_argument("-q", "--quiet", action="store_true", help="no per-run progress lines")
    a.set_defaults(func=_cmd_ablate)
    c = sub.add_parser("convert", help="convert a Keras file (.keras or .h5) to a .linn file",
                       description="Read a Keras model file (.keras or legacy .h5; a chain of "
                                   "Dense layers as moku.nn builds it) without TensorFlow and "
                                   "write the .linn file the instrument loads, with every "
                                   "converter rule checked. Needs h5py "
                                   "(pip install \"linncore[keras]\").")
    c.add_argument("file", help="the Keras file (.keras or .h5)")
    c.add_argument("-o", "--output", required=True, help="the .linn file to write (atomically)")
    c.add_argument("--input-channels", type=int, required=True,
                   help="instrument inputs connected: 1 (serial) or the network's input count "
                        "(parallel, at most 4)")
    c.add_argument("--output-channels", type=int, required=True,
                   help="instrument outputs connected: 1 (serial) or the output count "
                        "(parallel, at most 4)")
    c.add_argument("--output-mapping", type=int, nargs="+", metavar="NEURON",
                   help="output neurons of the last layer to keep, in order")
    c.add_argument("--clip", action="store_true",
                   help="clip weights and biases into [-1, 1] instead of refusing")
    c.add_argument("--device", help="also check a device's neurons per layer: Moku:Pro, "
                                    "Moku:Delta, Moku:Lab, Moku:Go")
    c.add_argument("--slots", type=_slots,
                   help="instrument slots in use on Moku:Lab / Moku:Go (2 or 3)")
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
        print(f"linncore {args.command}: error: --slots needs --device Moku:Lab or Moku:Go", file=sys.stderr)
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
