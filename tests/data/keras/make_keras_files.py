"""Write the small Keras model files that the Keras-file loader is tested against.

Run with an environment that has Keras 3, TensorFlow, h5py and the vendor's package
(``moku[neuralnetwork]``)::

    python tests/data/keras/make_keras_files.py

Every model is built from a fixed seed.  For each model that a loader must accept, the script
writes it twice, as a Keras 3 archive (``NAME.keras``) and as a legacy HDF5 file (``NAME.h5``),
and beside them ``NAME.npz`` holding ``x`` (the inputs) and ``y`` (Keras's own predictions of
the in-memory model on ``x``).  Both files of a pair hold the same weights, so one ``.npz``
serves both.  The ``.npz`` files hold plain float arrays only: read them with
``numpy.load(path, allow_pickle=False)``.

Files named ``k2_*`` are written by Keras 2 (the ``tf-keras`` package, with the vendor's
package running on it): the script runs itself once more with ``TF_USE_LEGACY_KERAS=1`` for
them, so the environment needs ``tf-keras`` too.  Files a loader must refuse are named
``refuse_*``; they have no ``.npz``.

``manifest.json`` lists every file with what it holds and what a loader must do with it.
The archives carry the time they were saved (``metadata.json``), so a rerun changes the
bytes of the ``.keras`` files even where the weights are the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# With TF_USE_LEGACY_KERAS=1 the script writes the Keras 2 files (tf_keras is Keras 2 and the
# vendor's ``from tensorflow import keras`` then gives it); main() runs itself that way once.
LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS") == "1"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if LEGACY_KERAS:
    import tf_keras as keras
else:
    import keras

tf.get_logger().setLevel("ERROR")
try:
    import absl.logging

    absl.logging.set_verbosity("error")  # Keras warns that .h5 is legacy on every save
except ImportError:
    pass

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the vendor warns that its upload tool is missing
    from moku.nn import LinnModel
    from moku.nn._linn import OutputClipLayer, WeightClip

HERE = Path(__file__).resolve().parent
N_SAMPLES = 16
VENDOR_OBJECTS = {"WeightClip": WeightClip, "OutputClipLayer": OutputClipLayer}

layers = keras.layers


def _fresh(seed: int) -> None:
    """Reset Keras's layer-name counters and every random generator Keras uses."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)


def _inputs(seed: int, width: int, dtype: str = "float32", spread: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-spread, spread, size=(N_SAMPLES, width)).astype(dtype)


def _fit_briefly(
    model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float
) -> None:
    """A few full-batch Adam steps, so weights move (and WeightClip gets to clip them)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=len(x), shuffle=False, verbose=0)


# ---- models a loader must accept ------------------------------------------------------------


def seq_input_relu_linear() -> tuple[keras.Model, np.ndarray]:
    """Sequential started with keras.Input; Dense relu then Dense linear."""
    _fresh(101)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(3, activation="linear"),
        ],
        name="seq_input_relu_linear",
    )
    return model, _inputs(101, 4)


def seq_inputlayer_nobias() -> tuple[keras.Model, np.ndarray]:
    """Sequential with an explicit InputLayer; tanh without bias, sigmoid with bias."""
    _fresh(102)
    model = keras.Sequential(
        [
            layers.InputLayer(shape=(3,), name="explicit_input"),
            layers.Dense(6, activation="tanh", use_bias=False, name="hidden_tanh_nobias"),
            layers.Dense(2, activation="sigmoid", name="out_sigmoid"),
        ],
        name="seq_inputlayer_nobias",
    )
    return model, _inputs(102, 3)


def seq_built_activation_layers() -> tuple[keras.Model, np.ndarray]:
    """Sequential without an input in its list (built with model.build); Activation layers."""
    _fresh(103)
    model = keras.Sequential(
        [
            layers.Dense(8),  # default activation: linear
            layers.Activation("softsign"),
            layers.Dense(4, activation="linear", use_bias=False),
            layers.Activation("relu"),
            layers.Dense(2, activation="tanh"),
        ],
        name="seq_built_activation_layers",
    )
    model.build((None, 5))
    return model, _inputs(103, 5)


def func_softsign_relu_nobias() -> tuple[keras.Model, np.ndarray]:
    """Functional chain: softsign, relu without bias, linear; widths up to 16."""
    _fresh(104)
    inp = keras.Input((5,), name="features")
    h = layers.Dense(16, activation="softsign", name="d16_softsign")(inp)
    h = layers.Dense(8, activation="relu", use_bias=False, name="d8_relu_nobias")(h)
    out = layers.Dense(2, activation="linear", name="d2_linear")(h)
    return keras.Model(inp, out, name="func_softsign_relu_nobias"), _inputs(104, 5)


def func_activation_layers() -> tuple[keras.Model, np.ndarray]:
    """Functional chain mixing Dense activations with separate Activation layers."""
    _fresh(105)
    inp = keras.Input((3,))
    h = layers.Dense(6)(inp)
    h = layers.Activation("tanh")(h)
    h = layers.Dense(4, activation="sigmoid")(h)
    h = layers.Dense(2, use_bias=False)(h)
    out = layers.Activation("sigmoid")(h)
    return keras.Model(inp, out, name="func_activation_layers"), _inputs(105, 3)


def func_float64() -> tuple[keras.Model, np.ndarray]:
    """Functional chain whose input and every layer are float64."""
    _fresh(106)
    inp = keras.Input((4,), dtype="float64")
    h = layers.Dense(8, activation="tanh", dtype="float64")(inp)
    h = layers.Dense(8, activation="softsign", dtype="float64")(h)
    out = layers.Dense(3, activation="linear", dtype="float64")(h)
    return keras.Model(inp, out, name="func_float64"), _inputs(106, 4, dtype="float64")


def moku_construct_model() -> tuple[keras.Model, np.ndarray]:
    """The vendor's own LinnModel.construct_model, briefly trained (optimizer state saved)."""
    _fresh(107)
    rng = np.random.default_rng(107)
    x_train = rng.uniform(-1.0, 1.0, size=(64, 2))
    # Targets reach 1.5, beyond the vendor's output clip of 1, so that trained outputs reach it.
    y_train = 1.5 * np.stack(
        [np.sin(3 * x_train[:, 0]) * x_train[:, 1], np.cos(2 * x_train[:, 1])], axis=1
    )
    vendor = LinnModel()
    vendor.set_training_data(x_train, y_train, scale=False)
    vendor.construct_model(
        [(12, "relu"), (8, "tanh"), (2, "linear")], optimizer=keras.optimizers.Adam(0.02)
    )
    vendor.fit_model(epochs=40, batch_size=16, validation_split=0.0, shuffle=False, verbose=0)
    # Wide inputs so the OutputClipLayer after the last Dense clips some outputs.
    return vendor.model, _inputs(107, 2, spread=4.0)


def moku_sequential_clip_half() -> tuple[keras.Model, np.ndarray]:
    """Sequential built from the vendor's classes with WeightClip(0.5), trained until it clips."""
    _fresh(108)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            layers.Dense(
                8,
                activation="sigmoid",
                kernel_constraint=WeightClip(0.5),
                bias_constraint=WeightClip(0.5),
            ),
            OutputClipLayer(),
            layers.Dense(
                2,
                activation="linear",
                kernel_constraint=WeightClip(0.5),
                bias_constraint=WeightClip(0.5),
            ),
            OutputClipLayer(),
        ],
        name="moku_sequential_clip_half",
    )
    rng = np.random.default_rng(108)
    x_train = rng.uniform(-1.0, 1.0, size=(32, 3)).astype("float32")
    y_train = (3.0 * x_train[:, :2]).astype("float32")  # needs weights beyond 0.5
    _fit_briefly(model, x_train, y_train, epochs=40, learning_rate=0.05)
    return model, _inputs(108, 3, spread=3.0)


ACCEPTED: list[tuple[Callable[[], tuple[keras.Model, np.ndarray]], str]] = [
    (seq_input_relu_linear, "Sequential"),
    (seq_inputlayer_nobias, "Sequential"),
    (seq_built_activation_layers, "Sequential"),
    (func_softsign_relu_nobias, "Functional"),
    (func_activation_layers, "Functional"),
    (func_float64, "Functional"),
    (moku_construct_model, "Functional"),
    (moku_sequential_clip_half, "Sequential"),
]


# ---- models a loader must refuse ------------------------------------------------------------


def _doubling() -> Callable[[Any], Any]:
    """``lambda t: 2.0 * t`` compiled under a bare file name: Keras stores the lambda's
    bytecode, and with it the file name, which should not be this machine's path."""
    return eval(compile("lambda t: 2.0 * t", "make_keras_files.py", "eval"))


def refuse_lambda() -> tuple[keras.Model, str, str]:
    _fresh(201)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(4, activation="relu"),
            layers.Lambda(_doubling(), name="doubling_lambda"),
        ],
        name="refuse_lambda",
    )
    return (
        model,
        "doubling_lambda",
        (
            "Lambda layer: its config holds marshalled Python bytecode (base64); running it "
            "would execute code from the file"
        ),
    )


def refuse_conv1d() -> tuple[keras.Model, str, str]:
    _fresh(202)
    inp = keras.Input((8, 1))
    h = layers.Conv1D(2, 3, activation="relu", name="conv")(inp)
    h = layers.Flatten()(h)
    out = layers.Dense(1)(h)
    return (
        keras.Model(inp, out, name="refuse_conv1d"),
        "conv",
        ("Conv1D layer (and a 2-D input, a Flatten): not a dense layer"),
    )


def refuse_dropout() -> tuple[keras.Model, str, str]:
    _fresh(203)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(8, activation="tanh"),
            layers.Dropout(0.25, name="drop"),
            layers.Dense(1),
        ],
        name="refuse_dropout",
    )
    return model, "drop", "Dropout layer: not among the supported layers"


def refuse_elu_activation() -> tuple[keras.Model, str, str]:
    _fresh(204)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(4, activation="elu", name="dense_elu"),
            layers.Dense(1),
        ],
        name="refuse_elu_activation",
    )
    return model, "dense_elu", "Dense with activation 'elu': not an instrument activation"


def refuse_branching() -> tuple[keras.Model, str, str]:
    _fresh(205)
    inp = keras.Input((4,))
    a = layers.Dense(3, activation="relu", name="branch_a")(inp)
    b = layers.Dense(3, activation="tanh", name="branch_b")(inp)
    out = layers.Add(name="join")([a, b])
    return (
        keras.Model(inp, out, name="refuse_branching"),
        "join",
        ("Functional graph that is not a chain: two branches joined by an Add layer"),
    )


# ---- Keras 2 (tf_keras) files: legacy configs and weight names differ from Keras 3's -------


def k2_seq_inputlayer_nobias() -> tuple[keras.Model, np.ndarray]:
    """Keras 2 Sequential with an explicit InputLayer; relu without bias, then sigmoid."""
    _fresh(301)
    model = keras.Sequential(
        [
            layers.InputLayer(input_shape=(4,)),
            layers.Dense(8, activation="relu", use_bias=False),
            layers.Dense(3, activation="sigmoid"),
        ],
        name="k2_seq_inputlayer_nobias",
    )
    return model, _inputs(301, 4)


def k2_func_activation_layers() -> tuple[keras.Model, np.ndarray]:
    """Keras 2 Functional chain with softsign and tanh Activation layers."""
    _fresh(302)
    inp = keras.Input((3,))
    h = layers.Dense(6, activation="softsign")(inp)
    h = layers.Dense(4)(h)
    h = layers.Activation("tanh")(h)
    out = layers.Dense(2, activation="linear")(h)
    return keras.Model(inp, out, name="k2_func_activation_layers"), _inputs(302, 3)


def k2_moku_construct_model() -> tuple[keras.Model, np.ndarray]:
    """The vendor's LinnModel.construct_model running on Keras 2, briefly trained."""
    _fresh(303)
    rng = np.random.default_rng(303)
    x_train = rng.uniform(-1.0, 1.0, size=(48, 3))
    y_train = 1.5 * np.tanh(x_train[:, :2] * x_train[:, 1:])
    vendor = LinnModel()
    vendor.set_training_data(x_train, y_train, scale=False)
    vendor.construct_model([(10, "relu"), (2, "linear")], optimizer=keras.optimizers.Adam(0.02))
    vendor.fit_model(epochs=40, batch_size=16, validation_split=0.0, shuffle=False, verbose=0)
    return vendor.model, _inputs(303, 3, spread=4.0)


ACCEPTED_KERAS2: list[tuple[Callable[[], tuple[keras.Model, np.ndarray]], str]] = [
    (k2_seq_inputlayer_nobias, "Sequential"),
    (k2_func_activation_layers, "Functional"),
    (k2_moku_construct_model, "Functional"),
]


REFUSED: list[tuple[Callable[[], tuple[keras.Model, str, str]], tuple[str, ...]]] = [
    (refuse_lambda, (".keras",)),
    (refuse_conv1d, (".keras", ".h5")),
    (refuse_dropout, (".h5",)),
    (refuse_elu_activation, (".keras",)),
    (refuse_branching, (".keras",)),
]


# ---- writing --------------------------------------------------------------------------------


def _save_quietly(model: keras.Model, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls the .h5 format legacy on every save
        model.save(path)


def _layer_summary(model: keras.Model) -> list[dict[str, Any]]:
    out = []
    for layer in model.layers:
        entry: dict[str, Any] = {"name": layer.name, "class": type(layer).__name__}
        if isinstance(layer, layers.Dense):
            entry.update(
                units=layer.units, activation=layer.activation.__name__, use_bias=layer.use_bias
            )
        if isinstance(layer, layers.Activation):
            entry.update(activation=layer.activation.__name__)
        out.append(entry)
    return out


def _reload_check(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    """Load a written file back with Keras and say how that went (for the README)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = keras.models.load_model(path, custom_objects=VENDOR_OBJECTS, compile=False)
    except Exception as exc:
        root: BaseException = exc
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__  # Keras wraps the real error many times
        first = str(root).strip().splitlines()[0][:160]
        return f"Keras cannot load it back: {type(root).__name__}: {first}"
    diff = float(np.max(np.abs(again.predict(x, verbose=0) - y)))
    return f"Keras loads it back; max |difference| of predictions {diff:.3g}"


def _clip_hits(model: keras.Model, x: np.ndarray) -> list[int]:
    """For each OutputClipLayer, how many of its input values on ``x`` lie beyond the clip."""
    hits = []
    for layer in model.layers:
        if isinstance(layer, OutputClipLayer):
            before = keras.Model(model.inputs, layer.input)
            pre = np.asarray(before.predict(x, verbose=0))
            hits.append(int(np.sum(np.abs(pre) > layer.clip_value)))
    return hits


def write_accepted(maker: Callable[[], tuple[keras.Model, np.ndarray]], kind: str) -> dict:
    name = maker.__name__
    model, x = maker()
    y = np.asarray(model.predict(x, verbose=0))
    assert y.dtype == x.dtype, (name, y.dtype, x.dtype)
    np.savez(HERE / f"{name}.npz", x=x, y=y)
    reloads = {}
    for suffix in (".keras", ".h5"):
        path = HERE / f"{name}{suffix}"
        _save_quietly(model, path)
        reloads[suffix] = _reload_check(path, x, y)
    clip_hits = _clip_hits(model, x)
    uses_moku = bool(clip_hits)
    if uses_moku:
        assert clip_hits[-1] > 0, f"{name}: no output reaches the clip: {clip_hits}"
    kernels = [
        w
        for layer in model.layers
        if isinstance(layer, layers.Dense)
        for w in [layer.kernel.numpy()]
    ]
    return {
        "name": name,
        "files": [f"{name}.keras", f"{name}.h5", f"{name}.npz"],
        "expect": "load",
        "written_by_keras": keras.__version__,
        "model_class": kind,
        "dtype": str(x.dtype),
        "doc": maker.__doc__,
        "layers": _layer_summary(model),
        "input_width": int(x.shape[1]),
        "output_width": int(y.shape[1]),
        "uses_moku_classes": uses_moku,
        "values_clipped_per_output_clip_layer": clip_hits,
        "max_abs_kernel": float(max(np.max(np.abs(k)) for k in kernels)),
        "keras_reload": reloads,
    }


def write_refused(
    maker: Callable[[], tuple[keras.Model, str, str]], suffixes: tuple[str, ...]
) -> dict:
    name = maker.__name__
    model, layer_name, why = maker()
    bad = model.get_layer(layer_name)
    for suffix in suffixes:
        _save_quietly(model, HERE / f"{name}{suffix}")
    return {
        "name": name,
        "files": [f"{name}{s}" for s in suffixes],
        "expect": "refuse",
        "written_by_keras": keras.__version__,
        "refused_layer": layer_name,
        "refused_class": type(bad).__name__,
        "why": why,
        "layers": _layer_summary(model),
    }


def _check_archive(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert names == ["config.json", "metadata.json", "model.weights.h5"], (path, names)


def _versions() -> dict[str, str]:
    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "keras_backend": keras.backend.backend(),
    }


def _keras2_entries() -> tuple[list[dict], dict[str, str]]:
    """Run this script under Keras 2 (tf_keras) and collect what it wrote."""
    out = HERE / "keras2_entries.json.tmp"
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    subprocess.run([sys.executable, __file__, "--keras2", str(out)], env=env, check=True)
    done = json.loads(out.read_text())
    out.unlink()
    return done["models"], done["versions"]


def main() -> int:
    if LEGACY_KERAS:
        assert sys.argv[1:2] == ["--keras2"], "run without TF_USE_LEGACY_KERAS"
        k2 = [write_accepted(maker, kind) for maker, kind in ACCEPTED_KERAS2]
        Path(sys.argv[2]).write_text(json.dumps({"models": k2, "versions": _versions()}))
        return 0
    for old in HERE.glob("*"):
        if old.suffix in (".keras", ".h5", ".npz"):
            old.unlink()
    entries = [write_accepted(maker, kind) for maker, kind in ACCEPTED]
    k2_entries, k2_versions = _keras2_entries()
    entries += k2_entries
    entries += [write_refused(maker, suffixes) for maker, suffixes in REFUSED]
    for path in HERE.glob("*.keras"):
        _check_archive(path)
    for path in HERE.glob("*.h5"):
        with h5py.File(path, "r") as f:
            assert "model_config" in f.attrs, path
    manifest = {
        "generated_with": {
            "python": sys.version.split()[0],
            **_versions(),
            "moku": _dist_version("moku"),
            "h5py": h5py.__version__,
            "numpy": np.__version__,
            "k2_files_keras": k2_versions["keras"],
        },
        "models": entries,
    }
    tmp = HERE / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(HERE / "manifest.json")
    for entry in entries:
        sizes = ", ".join(f"{f} {os.path.getsize(HERE / f)} B" for f in entry["files"])
        print(f"{entry['name']}: {entry['expect']}; {sizes}")
        for suffix, outcome in entry.get("keras_reload", {}).items():
            print(f"    reload {suffix}: {outcome}")
    return 0


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
