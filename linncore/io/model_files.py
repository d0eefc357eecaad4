"""Model files: a whole network and what came with its training, as one JSON document.

The document (``format`` ``"linncore.model"``, ``format_version`` 1)::

    {
      "format": "linncore.model",
      "format_version": 1,
      "network": {
        "dtype": "float32",                 # or "float64": parameters and arithmetic
        "clip": true,                       # instrument-style clipping to [-1, 1]
        "layers": [
          {"name": "dense0", "n_in": 1, "n_out": 8, "activation": "tanh", "has_bias": true,
           "weight": {"shape": [1, 8], "data": "<base64>"},
           "bias": {"shape": [8], "data": "<base64>"}},       # null without bias
          ...
        ]
      },
      "scaling": {"inputs": {"lo": [...], "hi": [...]},       # optional, either part optional
                  "outputs": {"lo": [...], "hi": [...]}},
      "precision": {...},                   # optional plain JSON object, passed through
      "training": {...}                     # optional plain JSON object, passed through
    }

Weights are exact: each array's ``data`` is the base64 of its raw bytes in the network's dtype,
little-endian, row-major (the kernel ``(n_in, n_out)`` as Keras stores it), so float32 and
float64 parameters come back bit for bit.  A bundle (``"linncore.bundle"``) holds several
such documents under ``"models"``, keyed by name.

Reading treats the text as untrusted data: JSON only (no pickle, nothing executed), at most
:data:`MAX_FILE_BYTES`, no NaN/Infinity tokens or duplicate keys, every field checked for
presence, type, range, shape and finiteness against :data:`LIMITS`, and unknown fields
refused.  Every problem raises :class:`ModelFileError` naming where it is, e.g.
``network.layers[1].weight: expected shape (16, 2), got (16, 3)``.  A document from a newer
format version is refused as such rather than misread.

Loading builds a plain :class:`~linncore.Network`, so it works on the NumPy engine without the
compiled core.  Writing is atomic: a temporary file in the same folder, then ``os.replace``;
a failed write leaves an earlier file intact.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util import untrusted as _untrusted
from .._util import validate as _v
from .._util.atomic import write_text_atomic
from .._util.codes import ACTIVATIONS
from ..engine.layers import BatchNormalization, Dense
from ..engine.network import Network

# The vendor workflow's model class.  This layer does not import the vendor workflow above it;
# ``linncore.vendor.linn_model`` registers ``LinnModel`` here, so ``save_model`` accepts one and
# :meth:`ModelFile.linn_model` builds one.
_linn_model_type: Any = None

__all__ = [
    "FORMAT",
    "BUNDLE_FORMAT",
    "FORMAT_VERSION",
    "LIMITS",
    "MAX_FILE_BYTES",
    "ModelFileError",
    "ModelFile",
    "to_json",
    "from_json",
    "save_model",
    "load_model",
    "bundle_to_json",
    "bundle_from_json",
    "save_bundle",
    "load_bundle",
]

FORMAT = "linncore.model"
BUNDLE_FORMAT = "linncore.bundle"
FORMAT_VERSION = 1

#: Size of the largest document read (bytes or characters).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Limits every loaded document is checked against.
LIMITS: dict[str, int] = {
    "layers": 256,  # layers per network
    "width": 65536,  # n_in / n_out of a layer
    "params": 16_000_000,  # parameters per network
    "name": 128,  # characters of a layer or bundle name
    "models": 1024,  # models per bundle
    "depth": 32,  # nesting of the precision / training objects
    "items": 100_000,  # values in the precision / training objects
}


class ModelFileError(ValueError):
    """A model document is malformed, inconsistent, too large or from a newer format.

    Attributes
    ----------
    where : str
        The place in the document (``network.layers[1].weight``), or ``document``.
    what : str
        What is wrong there.
    file : str or None
        The file read (:func:`load_model`, :func:`load_bundle`); None for text.
    """

    def __init__(self, where: str, what: str, file: str | None = None) -> None:
        self.where, self.what, self.file = where, what, file
        super().__init__(f"{file}: {where}: {what}" if file else f"{where}: {what}")


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds.

    Attributes
    ----------
    network : Network
    scaling : dict or None
        ``{"inputs": {"lo": [...], "hi": [...]}, "outputs": {...}}`` (either part optional).
    precision : dict or None
        The precision configuration, as saved.
    training : dict or None
        The training settings, as saved.
    format_version : int
        The version the document was written in.

    Use :meth:`linn_model` for a :class:`~linncore.LinnModel` that predicts in the data's own
    units through the saved scaling.
    """

    network: Network
    scaling: dict | None = None
    precision: dict | None = None
    training: dict | None = None
    format_version: int = FORMAT_VERSION

    def linn_model(self):
        """A :class:`~linncore.LinnModel` of this network with the saved training scaling."""
        if _linn_model_type is None:
            raise TypeError("linn_model: needs linncore.vendor; import linncore")
        return _linn_model_type.from_network(self.network, self.scaling)


# -- checks of parsed values ---------------------------------------------------------------
# Values are checked by the shared validators (linncore._util.validate) with a ModelFileError
# for the place they sit at; the structure (objects, keys, names) is checked here.


def _at(where: str) -> Callable[[str], ModelFileError]:
    """The error factory of the shared validators for the value at ``where``."""
    prefix = f"{where}: "
    return lambda message: ModelFileError(where, message.removeprefix(prefix))


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise ModelFileError(where, f"expected an object, got {_v.kind(v)}")
    return v


def _keys(d: dict, required: set[str], optional: set[str], where: str) -> None:
    missing = sorted(required - set(d))
    if missing:
        raise ModelFileError(where, f"missing field(s) {missing}")
    unknown = sorted(set(d) - required - optional)
    if unknown:
        shown = [k[:40] for k in unknown[:5]]
        raise ModelFileError(
            where, f"unknown field(s) {shown}; expected {sorted(required | optional)}"
        )


def _name(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v or len(v) > LIMITS["name"]:
        raise ModelFileError(
            where, f"expected a name of 1 to {LIMITS['name']} characters, got {_v.kind(v)}"
        )
    if not v.isprintable():
        raise ModelFileError(where, f"expected a printable name, got {v!r}")
    return v


def _floats(v: Any, n: int, where: str) -> list[float]:
    if not isinstance(v, list) or len(v) != n:
        raise ModelFileError(where, f"expected a list of {n} numbers, got {_v.kind(v)}")
    return [
        _v.finite_float(x, f"{where}[{i}]", error=_at(f"{where}[{i}]")) for i, x in enumerate(v)
    ]


def _version(doc: dict, fmt: str, where: str) -> int:
    got = doc.get("format")
    if got != fmt:
        other = {FORMAT: "load_model / from_json", BUNDLE_FORMAT: "load_bundle / bundle_from_json"}
        hint = f" (read it with {other[got]})" if isinstance(got, str) and got in other else ""
        raise ModelFileError(f"{where}format", f"expected {fmt!r}, got {_v.kind(got)}{hint}")
    v = _v.positive_int(
        doc.get("format_version"), f"{where}format_version", error=_at(f"{where}format_version")
    )
    if v > FORMAT_VERSION:
        raise ModelFileError(
            f"{where}format_version",
            f"the document is format version {v}, newer than the {FORMAT_VERSION} this "
            "linncore reads; upgrade linncore to load it",
        )
    return v


def _utf8(text: str, where: str) -> None:
    """Refuse text with no UTF-8 encoding (lone surrogates such as '\\ud800' from JSON escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelFileError(
            where, "expected text, got a lone UTF-16 surrogate, which no file can hold"
        ) from None


def _plain(v: Any, where: str, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A checked copy of a plain JSON value (objects with string keys, lists, strings, finite
    numbers, booleans, null); NumPy arrays and scalars, tuples and objects with ``to_dict()``
    are converted."""
    if budget is None:
        budget = [LIMITS["items"]]
    budget[0] -= 1
    if budget[0] < 0:
        raise ModelFileError(where, f"more than {LIMITS['items']} values")
    if depth > LIMITS["depth"]:
        raise ModelFileError(where, f"nested deeper than {LIMITS['depth']} levels")
    if hasattr(v, "to_dict") and callable(v.to_dict) and not isinstance(v, dict):
        v = v.to_dict()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    elif isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str):
        _utf8(v, where)
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        if not math.isfinite(v):
            raise ModelFileError(where, f"expected a finite number, got {v!r}")
        return float(v)
    if isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ModelFileError(where, f"expected string keys, got the key {k!r}")
            _utf8(k, where)
            out[k] = _plain(x, f"{where}.{k[:40]}", depth + 1, budget)
        return out
    if isinstance(v, (list, tuple)):
        return [_plain(x, f"{where}[{i}]", depth + 1, budget) for i, x in enumerate(v)]
    raise ModelFileError(
        where,
        f"expected plain JSON data (dict, list, str, number, bool, None), got {type(v).__name__}",
    )


def _settings(v: Any, where: str) -> dict | None:
    if v is None:
        return None
    out = _plain(v, where)
    if not isinstance(out, dict):
        raise ModelFileError(where, f"expected an object (dict), got {_v.kind(out)}")
    return out


def _scaling(v: Any, n_in: int, n_out: int, where: str = "scaling") -> dict | None:
    if v is None:
        return None
    v = _plain(v, where)
    d = _obj(v, where)
    if not d:
        raise ModelFileError(where, "expected 'inputs' and/or 'outputs', got an empty object")
    _keys(d, set(), {"inputs", "outputs"}, where)
    out = {}
    for part, n in (("inputs", n_in), ("outputs", n_out)):
        if part not in d:
            continue
        w = f"{where}.{part}"
        p = _obj(d[part], w)
        _keys(p, {"lo", "hi"}, set(), w)
        lo = _floats(p["lo"], n, f"{w}.lo")
        hi = _floats(p["hi"], n, f"{w}.hi")
        for i, (a, b) in enumerate(zip(lo, hi)):
            if a > b:
                raise ModelFileError(
                    f"{w}",
                    f"expected lo <= hi in every column, got lo {a!r} > hi {b!r} in column {i}",
                )
        out[part] = {"lo": lo, "hi": hi}
    return out


# -- encoding --------------------------------------------------------------------------------
def _encode_array(a: np.ndarray, dtype: np.dtype) -> dict[str, Any]:
    raw = np.ascontiguousarray(a, dtype=dtype.newbyteorder("<")).tobytes()
    return {"shape": list(a.shape), "data": base64.b64encode(raw).decode("ascii")}


def _decode_array(v: Any, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    d = _obj(v, where)
    _keys(d, {"shape", "data"}, set(), where)
    s = d["shape"]
    if not isinstance(s, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in s):
        raise ModelFileError(f"{where}.shape", f"expected a list of integers, got {_v.kind(s)}")
    if tuple(s) != shape:
        got = tuple(s) if len(s) <= 8 else f"a shape of {len(s)} dimensions"
        raise ModelFileError(where, f"expected shape {shape}, got {got}")
    data = d["data"]
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not isinstance(data, str):
        raise ModelFileError(f"{where}.data", f"expected a base64 string, got {_v.kind(data)}")
    if len(data) != 4 * ((n_bytes + 2) // 3):
        raise ModelFileError(
            f"{where}.data",
            f"expected the base64 of {n_bytes} bytes ({dtype.name}), "
            f"{4 * ((n_bytes + 2) // 3)} characters; got {len(data)}",
        )
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ModelFileError(
            f"{where}.data", f"expected base64 text, got invalid characters ({exc})"
        ) from None
    if len(raw) != n_bytes:
        raise ModelFileError(f"{where}.data", f"expected {n_bytes} bytes, got {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelFileError(
            where,
            f"expected finite values, got {arr[idx]} at index {idx if len(idx) > 1 else idx[0]}",
        )
    return arr


def _network_doc(net: Network) -> dict[str, Any]:
    layers = []
    for layer, bn in zip(net.layers, net.batch_norms):
        doc = {
            "name": layer.name,
            "n_in": layer.size_in,
            "n_out": layer.size_out,
            "activation": layer.activation,
            "has_bias": layer.has_bias,
            "weight": _encode_array(layer.weight, net.dtype),
            "bias": _encode_array(layer.bias, net.dtype) if layer.bias is not None else None,
        }
        if bn is not None:  # optional key: files without it read as before
            doc["batchnorm"] = {
                "momentum": bn.momentum,
                "epsilon": bn.epsilon,
                **{k: _encode_array(getattr(bn, k), net.dtype) for k in _BN_ARRAYS},
            }
        layers.append(doc)
    return {"dtype": net.dtype.name, "clip": net.clip, "layers": layers}


_BN_ARRAYS = ("gamma", "beta", "moving_mean", "moving_variance")


def _batchnorm_from(v: Any, n_out: int, dtype: np.dtype, where: str) -> BatchNormalization:
    d = _obj(v, where)
    _keys(d, {"momentum", "epsilon", *_BN_ARRAYS}, set(), where)
    w, e = f"{where}.momentum", f"{where}.epsilon"
    momentum = _v.finite_float(d["momentum"], w, lo=0, hi=1, error=_at(w))
    epsilon = _v.finite_float(d["epsilon"], e, lo=0, lo_open=True, error=_at(e))
    bn = BatchNormalization(momentum, epsilon)
    for k in _BN_ARRAYS:
        setattr(bn, k, _decode_array(d[k], (n_out,), dtype, f"{where}.{k}").astype(np.float64))
    if bn.moving_variance is not None and np.any(bn.moving_variance < 0):
        raise ModelFileError(f"{where}.moving_variance", "expected non-negative variances")
    return bn


def _model_doc(model: Any, scaling: Any, precision: Any, training: Any) -> dict[str, Any]:
    if _linn_model_type is not None and isinstance(model, _linn_model_type):  # with its scaling
        if model.network is None:
            raise ValueError("model: this LinnModel has no network yet; call construct_model first")
        scaling = model.scaling() if scaling is None else scaling
        model = model.network
    if isinstance(model, ModelFile):
        scaling = model.scaling if scaling is None else scaling
        precision = model.precision if precision is None else precision
        training = model.training if training is None else training
        model = model.network
    if not isinstance(model, Network):
        raise TypeError(
            f"model: expected a Network, a LinnModel or a ModelFile, got {type(model).__name__}"
        )
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network": _network_doc(model),
    }
    for key, value in (
        ("scaling", _scaling(scaling, model.input_size, model.output_size)),
        ("precision", _settings(precision, "precision")),
        ("training", _settings(training, "training")),
    ):
        if value is not None:
            doc[key] = value
    return doc


def _readable(text: str, read: Any) -> None:
    """Refuse to write what the reader would refuse (its size, name and structure limits)."""
    try:
        read(text)
    except ModelFileError as exc:
        what = exc.what
        raise ModelFileError(
            exc.where, f"cannot be written in a form load_model reads back: {what}"
        ) from None


def _dump(doc: Any, indent: int | None) -> str:
    return json.dumps(doc, indent=indent, allow_nan=False, ensure_ascii=False)


# -- decoding --------------------------------------------------------------------------------
def _json_doc(text: str, file: str | None) -> Any:
    label = file or "document"

    def error(message: str) -> ModelFileError:  # the reader's "label: what" -> where and what
        return ModelFileError("document", message[len(label) + 2 :], file)

    return _untrusted.loads_json(text, label=label, max_depth=LIMITS["depth"] + 8, error=error)


def _parse(text: Any, name: str, file: str | None = None) -> Any:
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text)
        if len(text) > MAX_FILE_BYTES:
            raise ModelFileError(
                "document", f"{len(text)} bytes, more than the limit of {MAX_FILE_BYTES}", file
            )
        label = file or "document"
        text = _untrusted.decode_text(
            text, label=label, error=lambda m: ModelFileError("document", m[len(label) + 2 :], file)
        )
    elif not isinstance(text, str):
        raise TypeError(f"{name}: expected JSON text (str or bytes), got {type(text).__name__}")
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        raise ModelFileError(
            "document", f"{size} bytes as UTF-8, more than the limit of {MAX_FILE_BYTES}", file
        )
    return _json_doc(text, file)


def _network_from(v: Any, where: str) -> Network:
    d = _obj(v, where)
    _keys(d, {"dtype", "clip", "layers"}, set(), where)
    if d["dtype"] not in ("float32", "float64"):
        raise ModelFileError(
            f"{where}.dtype", f"expected 'float32' or 'float64', got {_v.kind(d['dtype'])}"
        )
    dtype = np.dtype(d["dtype"])
    clip = _v.flag(d["clip"], f"{where}.clip", error=_at(f"{where}.clip"))
    layers_doc = d["layers"]
    if not isinstance(layers_doc, list) or not 1 <= len(layers_doc) <= LIMITS["layers"]:
        raise ModelFileError(
            f"{where}.layers",
            f"expected a list of 1 to {LIMITS['layers']} layers, got {_v.kind(layers_doc)}",
        )
    # structure first, so that sizes are checked before any array is decoded
    heads: list[tuple[str, int, int, str, bool]] = []
    names: dict[str, int] = {}
    total = 0
    for i, ld in enumerate(layers_doc):
        w = f"{where}.layers[{i}]"
        ld = _obj(ld, w)
        _keys(
            ld,
            {"name", "n_in", "n_out", "activation", "has_bias", "weight", "bias"},
            {"batchnorm"},
            w,
        )
        name = _name(ld["name"], f"{w}.name")
        if name in names:
            raise ModelFileError(
                f"{w}.name", f"{name!r} is already the name of layers[{names[name]}]"
            )
        names[name] = i
        n_in = _v.integer(ld["n_in"], f"{w}.n_in", lo=1, hi=LIMITS["width"], error=_at(f"{w}.n_in"))
        n_out = _v.integer(
            ld["n_out"], f"{w}.n_out", lo=1, hi=LIMITS["width"], error=_at(f"{w}.n_out")
        )
        if i and n_in != heads[-1][2]:
            raise ModelFileError(
                f"{w}.n_in", f"expected {heads[-1][2]} (the n_out of layers[{i - 1}]), got {n_in}"
            )
        act = _v.choice(
            ld["activation"],
            sorted(ACTIVATIONS),
            f"{w}.activation",
            any_case=False,
            error=_at(f"{w}.activation"),
        )
        has_bias = _v.flag(ld["has_bias"], f"{w}.has_bias", error=_at(f"{w}.has_bias"))
        if not has_bias and ld["bias"] is not None:
            raise ModelFileError(
                f"{w}.bias", f"expected null for a layer without bias, got {_v.kind(ld['bias'])}"
            )
        total += n_in * n_out + (n_out if has_bias else 0) + (4 * n_out if "batchnorm" in ld else 0)
        if total > LIMITS["params"]:
            raise ModelFileError(f"{where}.layers", f"more than {LIMITS['params']} parameters")
        heads.append((name, n_in, n_out, act, has_bias))
    built: list[Dense | BatchNormalization] = []
    for i, ((name, n_in, n_out, act, has_bias), ld) in enumerate(zip(heads, layers_doc)):
        w = f"{where}.layers[{i}]"
        weight = _decode_array(ld["weight"], (n_in, n_out), dtype, f"{w}.weight")
        bias = _decode_array(ld["bias"], (n_out,), dtype, f"{w}.bias") if has_bias else None
        built.append(Dense((n_in, n_out), act, has_bias, weight=weight, bias=bias, name=name))
        if "batchnorm" in ld:
            built.append(_batchnorm_from(ld["batchnorm"], n_out, dtype, f"{w}.batchnorm"))
    try:
        return Network(built, clip=clip, dtype=dtype)
    except (ValueError, TypeError) as exc:  # a safety net: the checks above should catch all
        raise ModelFileError(where, str(exc)) from None


def _model_from(doc: Any, where: str = "") -> ModelFile:
    d = _obj(doc, where.rstrip(".") or "document")
    version = _version(d, FORMAT, where)
    _keys(
        d,
        {"format", "format_version", "network"},
        {"scaling", "precision", "training"},
        where.rstrip(".") or "document",
    )
    net = _network_from(d["network"], f"{where}network")
    return ModelFile(
        network=net,
        scaling=_scaling(d.get("scaling"), net.input_size, net.output_size, f"{where}scaling"),
        precision=_settings(d.get("precision"), f"{where}precision"),
        training=_settings(d.get("training"), f"{where}training"),
        format_version=version,
    )


def _read(path: Any) -> tuple[bytes, str]:
    """The bytes of a model or bundle file, through the untrusted reader, and its label."""
    label = (
        _untrusted.short(os.fspath(path), 80).strip("'\"")
        if isinstance(path, (str, os.PathLike))
        else ""
    )
    data = _untrusted.read_bytes(
        path,
        limit=MAX_FILE_BYTES,
        what="a model file",
        error=lambda m: ModelFileError("document", m[len(label) + 2 :], label),
    )
    return data, label


def _in_file(file: str, read: Callable[[], Any]) -> Any:
    """``read()``, with the file named in any ModelFileError it raises."""
    try:
        return read()
    except ModelFileError as exc:
        if exc.file is not None:
            raise
        raise ModelFileError(exc.where, exc.what, file) from None


# -- public API ------------------------------------------------------------------------------
def to_json(
    model: Network | ModelFile,
    *,
    scaling: Any = None,
    precision: Any = None,
    training: Any = None,
    indent: int | None = None,
) -> str:
    """A model as JSON text in the ``linncore.model`` format (see :mod:`linncore.io.model_files`).

    Parameters
    ----------
    model : Network or ModelFile
        A :class:`ModelFile` brings its own scaling, precision and training (overridden by
        the arguments that are given).
    scaling : dict, optional
        Training scaling: ``{"inputs": {"lo": [...], "hi": [...]}, "outputs": {...}}``, one
        finite ``lo <= hi`` per column; either part may be left out.
    precision, training : dict, optional
        Plain JSON data (objects with string keys, lists, strings, finite numbers, booleans,
        null; NumPy values and objects with ``to_dict()`` are converted), stored as given.
    indent : int, optional
        Pretty-printing indent.

    Returns
    -------
    str

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), "relu", weight=[[0.5], [-0.25]], bias=[0.1])])
    >>> text = to_json(net, training={"epochs": 10, "loss": "mse"})
    >>> back = from_json(text)
    >>> back.network.get_weights()[0].ravel().tolist(), back.training["epochs"]
    ([0.5, -0.25], 10)
    """
    return _dump(_model_doc(model, scaling, precision, training), indent)


def from_json(text: str | bytes) -> ModelFile:
    """Read a model from JSON text written by :func:`to_json` (untrusted input is safe).

    Raises
    ------
    ModelFileError
        When the text is not a valid model document of a format version this linncore reads;
        the message says where and what.

    Examples
    --------
    >>> from_json('{"format": "linncore.model", "format_version": 9}')
    Traceback (most recent call last):
    ...
    linncore.io.model_files.ModelFileError: format_version: the document is format version 9,
    newer than the 1 this linncore reads; upgrade linncore to load it
    """
    return _model_from(_parse(text, "text"))


def save_model(
    model: Network | ModelFile,
    path: str | os.PathLike,
    *,
    scaling: Any = None,
    precision: Any = None,
    training: Any = None,
) -> None:
    """Write a model file atomically (arguments as :func:`to_json`).

    Examples
    --------
    >>> import os, tempfile
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((1, 2), "tanh", seed=0)])
    >>> path = os.path.join(tempfile.mkdtemp(), "net.json")
    >>> save_model(net, path, scaling={"inputs": {"lo": [-5.0], "hi": [5.0]}})
    >>> m = load_model(path)
    >>> bool((m.network.theta == net.theta).all()), m.scaling["inputs"]["hi"]
    (True, [5.0])
    """
    text = to_json(model, scaling=scaling, precision=precision, training=training, indent=1)
    _readable(text, from_json)
    write_text_atomic(path, text + "\n")


def load_model(path: str | os.PathLike) -> ModelFile:
    """Read a model file written by :func:`save_model`; see :func:`from_json` for the checks."""
    data, file = _read(path)
    return _in_file(file, lambda: _model_from(_parse(data, "path", file)))


def bundle_to_json(models: Mapping[str, Network | ModelFile], indent: int | None = None) -> str:
    """Several named models as one JSON document (``linncore.bundle``).

    Parameters
    ----------
    models : mapping of str to Network or ModelFile
        Names of 1 to 128 printable characters.
    """
    if not isinstance(models, Mapping):
        raise TypeError(f"models: expected a dict of names to models, got {type(models).__name__}")
    if len(models) > LIMITS["models"]:
        raise ValueError(f"models: expected at most {LIMITS['models']} models, got {len(models)}")
    docs = {}
    for name, model in models.items():
        _name(name, f"models[{name!r}]")
        if isinstance(model, ModelFile):
            docs[name] = _model_doc(model, None, None, None)
        elif isinstance(model, Network):
            docs[name] = _model_doc(model, None, None, None)
        else:
            raise TypeError(
                f"models[{name!r}]: expected a Network or a ModelFile, got {type(model).__name__}"
            )
    return _dump(
        {"format": BUNDLE_FORMAT, "format_version": FORMAT_VERSION, "models": docs}, indent
    )


def bundle_from_json(text: str | bytes) -> dict[str, ModelFile]:
    """Read a bundle written by :func:`bundle_to_json`; models in their stored order."""
    doc = _obj(_parse(text, "text"), "document")
    _version(doc, BUNDLE_FORMAT, "")
    _keys(doc, {"format", "format_version", "models"}, set(), "document")
    models = _obj(doc["models"], "models")
    if len(models) > LIMITS["models"]:
        raise ModelFileError(
            "models", f"expected at most {LIMITS['models']} models, got {len(models)}"
        )
    out = {}
    for name, sub in models.items():
        _name(name, f"models[{name[:40]!r}]")
        out[name] = _model_from(sub, f"models[{name!r}].")
    return out


def save_bundle(path: str | os.PathLike, models: Mapping[str, Network | ModelFile]) -> None:
    """Write several named models to one file, atomically.

    Examples
    --------
    >>> import os, tempfile
    >>> from linncore import Dense, Network
    >>> path = os.path.join(tempfile.mkdtemp(), "bundle.json")
    >>> save_bundle(path, {"a": Network([Dense((1, 1), seed=0)]),
    ...                    "b": Network([Dense((2, 1), seed=1)])})
    >>> {k: m.network.input_size for k, m in load_bundle(path).items()}
    {'a': 1, 'b': 2}
    """
    text = bundle_to_json(models, indent=1)
    _readable(text, bundle_from_json)
    write_text_atomic(path, text + "\n")


def load_bundle(path: str | os.PathLike) -> dict[str, ModelFile]:
    """Read a bundle file written by :func:`save_bundle`."""
    data, file = _read(path)
    return _in_file(file, lambda: bundle_from_json(data))
