"""Keras model files without TensorFlow: :func:`load_keras` and :func:`save_keras`.

Two layouts are read, chosen by the file's first bytes (not its name):

- ``.keras`` (Keras 3, and Keras 2.13-2.15): a zip archive holding ``config.json`` (the model's
  architecture), ``metadata.json`` and ``model.weights.h5``.  In the weights file the i-th
  layer of a class is the group ``layers/<class in snake case>[_i]/vars`` (``dense``,
  ``dense_1``, ...), its variables the datasets ``0`` (kernel) and ``1`` (bias).
- legacy ``.h5`` (Keras 2.x and 3.x ``model.save("m.h5")``): an HDF5 file whose root
  attribute ``model_config`` holds the architecture as JSON and whose group
  ``model_weights/<layer name>`` lists its variables' paths in the attribute
  ``weight_names`` (kernel first, then bias).

The models read are chains of ``InputLayer``, ``Dense`` (activations
:func:`linncore.all_activations`, with or without bias), ``Activation``, moku's
``OutputClipLayer`` and ``hard_tanh`` (both clip to ``[-1, 1]``), with moku's ``WeightClip``
constraint, in float32 or float64, as a ``Sequential`` or a ``Functional`` model.  Anything
else is refused with an error naming the layer, its class and what is supported.

Files are untrusted input.  The file is read through :mod:`linncore._util.untrusted` (a
regular file, at most :data:`MAX_FILE_BYTES`); the archive's directory is checked before it
is parsed (:data:`MAX_MEMBERS` members), and only the exact member names above are read, each
in bounded chunks against its declared and a fixed uncompressed size.  JSON is parsed
strictly; nothing is unpickled, imported or executed (a ``Lambda`` layer is refused without
looking at its code).  HDF5 is read with ``h5py`` from memory: only plain (hard) links are
followed, one name at a time; external links, external storage and virtual datasets are
refused; every dataset's shape and type is checked against what the architecture implies
before a single value is read, so a file claiming a terabyte dataset costs nothing.

``h5py`` is an optional dependency (``pip install "linncore[keras]"``); without it both
functions raise ``ImportError`` saying so, and the rest of linncore works as before.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._util import untrusted
from .._util.atomic import atomic_write
from .._version import __version__
from ..engine.network import Network
from .keras_archive import (
    EMPTY_ZIP_MAGIC,
    HDF5_MAGIC,
    MAX_FILE_BYTES,
    MAX_MEMBERS,
    ZIP_MAGIC,
    H5Reader,
    KerasFileError,
    parse_json,
    read_archive,
    require_h5py,
)
from .keras_config import (
    CLIP_ACTIVATION,
    keras_weights,
    legacy_weights,
    network_from_config,
    snake_case,
)
from .keras_view import KerasModelView
from .linn_model import LinnModel

__all__ = [
    "KERAS_FOR_SAVED_FILES",
    "MAX_FILE_BYTES",
    "MAX_MEMBERS",
    "KerasFileError",
    "load_keras",
    "save_keras",
]

#: The oldest Keras that loads what :func:`save_keras` writes (the first with ``hard_tanh``).
KERAS_FOR_SAVED_FILES = "3.7.0"


# -- public ---------------------------------------------------------------------------------
def load_keras(path: str | os.PathLike) -> LinnModel:
    """Read a Keras model file (``.keras`` or legacy ``.h5``) without TensorFlow.

    The model must be a chain of ``InputLayer``, ``Dense`` (any activation of
    :func:`linncore.all_activations`, with or without bias), ``Activation`` and clipping
    (moku's ``OutputClipLayer`` or the ``hard_tanh`` activation), optionally with moku's
    ``WeightClip`` constraint, in float32 or float64: what the vendor's ``moku.nn`` builds
    and plain stacks of Dense layers.  The file is untrusted (see the module notes): nothing
    in it is executed, and size limits hold for every part.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its layout is recognised from its content.

    Returns
    -------
    LinnModel
        Holding the network (``.network``), without scaling, so ``predict`` works in the
        units the Keras model saw.  ``network.clip`` is True when the file clips the layers'
        outputs to ``[-1, 1]`` (as ``moku.nn`` models do), False when it does not; it also
        decides whether further training in linncore clips the weights.  Predictions equal
        Keras's to float32 rounding; a float64 model agrees more closely with Keras's layers
        than with ``model.predict``, which feeds a float64 model float32-rounded inputs.

    Raises
    ------
    KerasFileError
        A ``ValueError`` naming the file and the problem: an unsupported layer (with its
        name, class and what is supported), a damaged or hostile file, a limit exceeded.
    ImportError
        When h5py is not installed.
    FileNotFoundError

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 3), "tanh", seed=0), Dense((3, 1), seed=1)])
    >>> path = save_keras(net, pathlib.Path(tempfile.mkdtemp()) / "model.keras")
    >>> lm = load_keras(path)
    >>> lm.network
    Network(2 -> 3 tanh -> 1 linear, clip=True, dtype=float32)
    >>> bool((lm.predict([[0.5, -0.5]]) == net.predict([[0.5, -0.5]])).all())
    True
    """
    require_h5py()
    raw = untrusted.read_bytes(
        path, limit=MAX_FILE_BYTES, what="a Keras file (.keras or .h5)", error=KerasFileError
    )
    label = untrusted.short(os.fspath(path), 80).strip("'\"")
    if raw.startswith(ZIP_MAGIC) or raw.startswith(EMPTY_ZIP_MAGIC):
        config_bytes, weights = read_archive(raw, label)
        config = parse_json(config_bytes, f"{label}: config.json")
        h5 = H5Reader(weights, f"{label}: model.weights.h5")
        try:
            net = network_from_config(config, lambda entries: keras_weights(h5, entries), label)
        finally:
            h5.close()
    elif raw.startswith(HDF5_MAGIC):
        h5 = H5Reader(raw, label)
        try:
            text = h5.attribute(h5.file, "model_config", "attribute 'model_config'", max_items=0)
            if text is None:
                raise KerasFileError(
                    f"{label}: the HDF5 file has no 'model_config' attribute; it holds weights "
                    "only (save_weights), not a model"
                )
            config = parse_json(text, f"{label}: model_config")
            net = network_from_config(config, lambda entries: legacy_weights(h5), label)
        finally:
            h5.close()
    else:
        raise KerasFileError(
            f"{label}: neither a .keras archive (zip) nor a legacy .h5 (HDF5) file; it starts "
            f"with {untrusted.short(raw[:8])}"
        )
    return LinnModel.from_network(net)


def warn_scaling_left_out(stacklevel: int) -> None:
    """Warn that a LinnModel's training scaling is not written; ``stacklevel`` counts from the
    caller of this function, as ``warnings.warn`` counts from its own caller."""
    warnings.warn(
        "model: the training scaling is not part of a Keras file; Keras will compute in "
        "the instrument's [-1, 1] units (LinnModel.predict scales, Keras's predict does "
        "not)",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def _network_of(model: Any) -> Network:
    if isinstance(model, LinnModel):
        if model.network is None:
            raise ValueError("model: this LinnModel has no network yet; call construct_model first")
        if model.scaling() is not None:
            warn_scaling_left_out(stacklevel=3)
        return model.network
    if isinstance(model, KerasModelView):
        return model.network
    if isinstance(model, Network):
        return model
    raise TypeError(
        f"model: expected a LinnModel, its .model or a Network, got {type(model).__name__}"
    )


def _keras_names(net: Network) -> list[tuple[str, str]]:
    """(Dense name, clipping layer name) per layer, valid and unique as Keras wants them."""
    out: list[tuple[str, str]] = []
    taken = {"input_layer"}
    for i, layer in enumerate(net.layers):
        name = (
            layer.name
            if layer.name and re.fullmatch(r"[A-Za-z0-9_.\-]{1,200}", layer.name)
            else f"dense{i}"
        )
        if name in taken:
            name = f"dense{i}_{len(taken)}"
        taken.add(name)
        clip = f"{name}_clip"
        while clip in taken:
            clip += "_"
        taken.add(clip)
        out.append((name, clip))
    return out


def _layer_configs(
    net: Network, modern: bool
) -> tuple[list[dict], list[tuple[str, str, list[np.ndarray]]]]:
    """The Sequential model's layer entries, and (Keras class, name, arrays) of each layer in
    ``model.layers`` order (the input layer is not among them)."""
    dtype = net.dtype.name

    def obj(module: str, cls: str, config: dict) -> dict:
        return (
            {"module": module, "class_name": cls, "config": config, "registered_name": None}
            if modern
            else {"class_name": cls, "config": config}
        )

    layers = [
        obj(
            "keras.layers",
            "InputLayer",
            {
                "batch_shape": [None, net.input_size],
                "dtype": dtype,
                "sparse": False,
                "name": "input_layer",
            },
        )
    ]
    order: list[tuple[str, str, list[np.ndarray]]] = []
    for layer, (name, clip_name) in zip(net.layers, _keras_names(net), strict=True):
        layers.append(
            obj(
                "keras.layers",
                "Dense",
                {
                    "name": name,
                    "trainable": True,
                    "dtype": dtype,
                    "units": layer.size_out,
                    "activation": layer.activation,
                    "use_bias": layer.has_bias,
                    "kernel_initializer": obj(
                        "keras.initializers", "GlorotUniform", {"seed": None}
                    ),
                    "bias_initializer": obj("keras.initializers", "Zeros", {}),
                    "kernel_regularizer": None,
                    "bias_regularizer": None,
                    "activity_regularizer": None,
                    "kernel_constraint": None,
                    "bias_constraint": None,
                },
            )
        )
        arrays = [np.asarray(layer.weight, dtype=net.dtype)]
        if layer.has_bias:
            arrays.append(np.asarray(layer.bias, dtype=net.dtype))
        order.append(("Dense", name, arrays))
        if net.clip:
            layers.append(
                obj(
                    "keras.layers",
                    "Activation",
                    {
                        "name": clip_name,
                        "trainable": True,
                        "dtype": dtype,
                        "activation": CLIP_ACTIVATION,
                    },
                )
            )
            order.append(("Activation", clip_name, []))
    return layers, order


def _model_config(net: Network, modern: bool) -> dict:
    layers, _ = _layer_configs(net, modern)
    config = {
        "name": "sequential",
        "trainable": True,
        "dtype": net.dtype.name,
        "layers": layers,
        "build_input_shape": [None, net.input_size],
    }
    if modern:
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": [None, net.input_size]},
        }
    return {"class_name": "Sequential", "config": config}


def _h5_bytes(fill: Callable[[Any], None]) -> bytes:
    h5py = require_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    return buffer.getvalue()


def _keras_bytes(net: Network) -> bytes:
    _, order = _layer_configs(net, True)

    def fill(f: Any) -> None:
        used: dict[str, int] = {}
        for cls, name, arrays in order:
            base = snake_case(cls)
            group_name = base if base not in used else f"{base}_{used[base] + 1}"
            used[base] = used.get(base, -1) + 1
            group = f.create_group(f"layers/{group_name}/vars")
            group.attrs["name"] = name
            for k, arr in enumerate(arrays):
                group.create_dataset(str(k), data=arr)
        f.create_group("vars").attrs["name"] = "sequential"

    weights = _h5_bytes(fill)
    meta = {"keras_version": KERAS_FOR_SAVED_FILES, "written_by": f"linncore {__version__}"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, data in (
            ("metadata.json", json.dumps(meta).encode()),
            ("config.json", json.dumps(_model_config(net, True)).encode()),
            ("model.weights.h5", weights),
        ):
            info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def _legacy_bytes(net: Network) -> bytes:
    _, order = _layer_configs(net, False)

    def fill(f: Any) -> None:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = KERAS_FOR_SAVED_FILES
        f.attrs["model_config"] = json.dumps(_model_config(net, False))
        top = f.create_group("model_weights")
        top.attrs["backend"] = "tensorflow"
        top.attrs["keras_version"] = KERAS_FOR_SAVED_FILES
        top.attrs["layer_names"] = np.array([name.encode() for _, name, _ in order])
        for _, name, arrays in order:
            group = top.create_group(name)
            names = [f"{name}/kernel", f"{name}/bias"][: len(arrays)]
            group.attrs["weight_names"] = (
                np.array([n.encode() for n in names], dtype="S")
                if names
                else np.zeros((0,), dtype="S1")
            )
            for n, arr in zip(names, arrays, strict=True):
                group.create_dataset(n, data=arr)

    return _h5_bytes(fill)


def save_keras(model: Any, path: str | os.PathLike) -> Path:
    """Write a network as a Keras file: ``.keras`` (Keras 3's format) or legacy ``.h5``.

    The file holds a ``Sequential`` model of ``InputLayer`` and ``Dense`` layers with the
    network's activations, weights and dtype.  A clipping network (``clip=True``, as the
    instrument computes) gets an ``Activation("hard_tanh")`` layer after every Dense layer,
    which is exactly ``clip(x, -1, 1)``; so Keras needs **no custom objects**: plain
    ``keras.saving.load_model(path)`` loads the file (Keras 3.7 or later, the first with
    ``hard_tanh``) and predicts as linncore does.  The weight clipping that linncore's
    training applies is not written (plain Keras has no element-wise clipping constraint;
    moku's ``WeightClip`` cannot be read back by Keras 3.15), so training the model further
    in Keras does not clip weights.  :func:`load_keras` reads the file back with
    ``clip=True``.  A LinnModel's training scaling is not part of the file (a warning says
    so).  The file is written atomically and the same network gives the same bytes.
    (Keras applies ``leaky_relu``'s slope 0.2 as a float32 number, so a float64 network using
    it differs from Keras by about 1e-9 relative.)

    Parameters
    ----------
    model : LinnModel, LinnModel.model or Network
        Dense layers only (fold batch normalisation first).
    path : str or os.PathLike
        Ending in ``.keras`` or ``.h5``.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((3, 1), "relu", seed=0)], clip=False)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> [save_keras(net, folder / name).name for name in ("m.keras", "m.h5")]
    ['m.keras', 'm.h5']
    >>> load_keras(folder / "m.h5").network
    Network(3 -> 1 relu, clip=False, dtype=float32)
    """
    net = _network_of(model)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a path ending in .keras or .h5, got {type(path).__name__}")
    target = Path(path)
    if target.suffix not in (".keras", ".h5"):
        raise ValueError(
            f"path: expected a name ending in '.keras' or '.h5', got {untrusted.short(str(path))}"
        )
    if net.has_batchnorm:
        raise ValueError(
            "model: the network has batch normalisation; save_keras writes Dense layers only "
            "(fold it into the Dense layers first, e.g. with get_linn)"
        )
    require_h5py()
    data = _keras_bytes(net) if target.suffix == ".keras" else _legacy_bytes(net)
    with atomic_write(target, "wb", name="path") as fh:
        fh.write(data)
    return target
