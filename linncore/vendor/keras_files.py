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
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .._util import untrusted
from .._util.atomic import atomic_write
from .._version import __version__
from ..engine.layers import Dense, all_activations
from ..engine.network import Network
from .keras_view import KerasModelView
from .linn_model import LinnModel

__all__ = ["KerasFileError", "load_keras", "save_keras", "MAX_FILE_BYTES", "MAX_MEMBERS"]

#: Largest Keras file read (bytes).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Most members a ``.keras`` archive may list (Keras writes three, plus any assets).
MAX_MEMBERS = 1024
#: Largest central directory of a ``.keras`` archive (bytes).
MAX_DIRECTORY_BYTES = 1024 * 1024
#: Largest uncompressed size of each member read (bytes).
MEMBER_LIMITS = {"config.json": 16 * 1024 * 1024, "metadata.json": 1024 * 1024,
                 "model.weights.h5": MAX_FILE_BYTES}
#: Most values one weight array may hold.
MAX_WEIGHT_VALUES = 1 << 26
#: Most layers a model's architecture may list.
MAX_CONFIG_LAYERS = 4096

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_SUPPORTED = "InputLayer, Dense, Activation and moku's OutputClipLayer"
_BOUNDED = ("tanh", "sigmoid", "softsign")  # outputs already inside [-1, 1]: clipping is moot
_CLIPS = ("hard_tanh",)                    # Keras activations equal to clip(x, -1, 1)
#: The oldest Keras that loads what :func:`save_keras` writes (the first with ``hard_tanh``).
KERAS_FOR_SAVED_FILES = "3.7.0"


class KerasFileError(ValueError):
    """A Keras file refused: unreadable, hostile, or holding something linncore cannot run."""


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError('reading and writing Keras files needs h5py: pip install "linncore[keras]" '
                          "(or pip install h5py)") from None
    return h5py


# -- the archive ----------------------------------------------------------------------------
def _directory_extent(raw: bytes, label: str) -> tuple[int, int]:
    """(members, directory bytes) a zip archive's end record declares, read before zipfile
    builds a record per member."""
    tail_start = max(0, len(raw) - (22 + 65535))
    at = raw.rfind(_EMPTY_ZIP_MAGIC, tail_start)
    if at < 0 or len(raw) - at < 22:
        raise KerasFileError(f"{label}: not a readable .keras archive (no zip end record)")
    members, size = struct.unpack_from("<HI", raw, at + 10)
    locator = at - 20
    if (members == 0xFFFF or size == 0xFFFFFFFF) and locator >= 0 and raw[locator:locator + 4] == b"PK\x06\x07":
        (record,) = struct.unpack_from("<Q", raw, locator + 8)
        if record + 56 > len(raw) or raw[record:record + 4] != b"PK\x06\x06":
            raise KerasFileError(f"{label}: not a readable .keras archive (bad zip64 end record)")
        members, size = struct.unpack_from("<QQ", raw, record + 32)
    return members, size


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    limit = MEMBER_LIMITS[info.filename]
    where = f"{label}: member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise KerasFileError(f"{where} is encrypted")
    if info.file_size > limit:
        raise KerasFileError(f"{where} declares {info.file_size} bytes uncompressed, more than the limit of {limit}")
    expected = info.file_size
    chunks, total = [], 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(min(1 << 20, expected + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > expected:
                    raise KerasFileError(f"{where} inflates past its declared {expected} bytes")
    except KerasFileError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise KerasFileError(f"{where} cannot be read ({untrusted.short(str(exc), 80)})") from None
    return b"".join(chunks)


def _read_archive(raw: bytes, label: str) -> tuple[bytes, bytes]:
    """The bytes of ``config.json`` and ``model.weights.h5`` (``metadata.json`` is checked)."""
    members, size = _directory_extent(raw, label)
    if members > MAX_MEMBERS:
        raise KerasFileError(f"{label}: the archive lists {members} members, more than the limit of {MAX_MEMBERS}")
    if size > MAX_DIRECTORY_BYTES:
        raise KerasFileError(f"{label}: the archive's directory is {size} bytes, more than the limit of "
                             f"{MAX_DIRECTORY_BYTES}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise KerasFileError(f"{label}: not a readable .keras archive ({untrusted.short(str(exc), 80)})") from None
    if len(infos) > MAX_MEMBERS:
        raise KerasFileError(f"{label}: the archive lists {len(infos)} members, more than the limit of {MAX_MEMBERS}")
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in MEMBER_LIMITS:
            if info.filename in found:
                raise KerasFileError(f"{label}: the archive holds {info.filename!r} twice")
            found[info.filename] = info
    names = {info.filename for info in infos}
    for name in ("config.json", "model.weights.h5"):
        if name not in found:
            extra = ""
            if name == "model.weights.h5" and ({"model.weights.npz", "model.weights.json"} & names):
                extra = " (weights stored as .npz or in shards are not supported)"
            raise KerasFileError(f"{label}: the archive has no {name!r}; a .keras file holds config.json, "
                                 f"metadata.json and model.weights.h5{extra}")
    config = _read_member(zf, found["config.json"], label)
    if "metadata.json" in found:
        meta = _json(_read_member(zf, found["metadata.json"], label), f"{label}: metadata.json")
        if not isinstance(meta, dict):
            raise KerasFileError(f"{label}: metadata.json: expected a JSON object, got {type(meta).__name__}")
    return config, _read_member(zf, found["model.weights.h5"], label)


def _json(data: bytes | str, label: str) -> Any:
    text = data if isinstance(data, str) else untrusted.decode_text(data, label=label, error=KerasFileError)
    return untrusted.loads_json(text, label=label, error=KerasFileError)


# -- HDF5 -----------------------------------------------------------------------------------
class _H5:
    """Reads from an in-memory HDF5 file through plain links only, shapes checked first."""

    def __init__(self, data: bytes, label: str) -> None:
        self.h5py = _h5py()
        self.label = label
        try:
            self.file = self.h5py.File(io.BytesIO(data), "r")
        except Exception as exc:  # h5py raises OSError for most damage, others for some
            raise KerasFileError(f"{label}: not a readable HDF5 file ({untrusted.short(str(exc), 80)})") from None

    def child(self, group: Any, name: str, where: str, *, required: bool = True) -> Any:
        """``group[name]`` for one path component reached through a hard link."""
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise KerasFileError(f"{self.label}: {where}: {untrusted.short(name)} is not a plain name")
        try:
            link = group.get(name, getlink=True)
            if link is None:
                if required:
                    raise KerasFileError(f"{self.label}: {where} is missing")
                return None
            if not isinstance(link, self.h5py.HardLink):
                kind = {"SoftLink": "a soft link", "ExternalLink": "an external link"}.get(
                    type(link).__name__, "not a plain link")
                raise KerasFileError(f"{self.label}: {where} is {kind}; only plain groups and datasets are read "
                                     "(no soft or external links)")
            return group[name]
        except KerasFileError:
            raise
        except Exception as exc:
            raise KerasFileError(f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})") from None

    def path(self, group: Any, parts: Sequence[str], where: str, *, required: bool = True) -> Any:
        for part in parts:
            group = self.child(group, part, where, required=required)
            if group is None:
                return None
        return group

    def array(self, node: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
        """The values of a float dataset; with ``shape`` None, any 1-D/2-D shape within the limit."""
        h5py = self.h5py
        if not isinstance(node, h5py.Dataset):
            raise KerasFileError(f"{self.label}: {where}: expected a dataset, got a group")
        try:
            if node.is_virtual:
                raise KerasFileError(f"{self.label}: {where} is a virtual dataset; its values live in other files")
            if node.external:
                raise KerasFileError(f"{self.label}: {where} keeps its values in external files")
            dt, got = node.dtype, node.shape
        except KerasFileError:
            raise
        except Exception as exc:
            raise KerasFileError(f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})") from None
        if dt.kind != "f" or dt.itemsize not in (4, 8) or dt.names is not None or dt.subdtype is not None:
            raise KerasFileError(f"{self.label}: {where}: expected float32 or float64 values, got {dt}")
        if got is None or (shape is not None and tuple(got) != shape) or \
                (shape is None and len(got) not in (1, 2)):
            expected = "a 1-D or 2-D array" if shape is None else f"shape {shape}"
            raise KerasFileError(f"{self.label}: {where}: expected {expected}, got shape {got}")
        if int(np.prod(got, dtype=object)) > MAX_WEIGHT_VALUES:
            raise KerasFileError(f"{self.label}: {where}: shape {got} holds more than the limit of "
                                 f"{MAX_WEIGHT_VALUES} values")
        out = np.empty(got, dtype=dt.newbyteorder("="))
        try:
            if out.size:
                node.read_direct(out)
        except Exception as exc:
            raise KerasFileError(f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})") from None
        return out

    def attribute(self, node: Any, name: str, where: str, *, max_items: int) -> Any:
        """A string (scalar) or a short list of strings stored as an attribute, or None."""
        h5py = self.h5py
        try:
            if name not in node.attrs:
                return None
            aid = h5py.h5a.open(node.id, name.encode())
            shape, dt = aid.shape, aid.dtype
        except Exception as exc:
            raise KerasFileError(f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})") from None
        if shape is None or len(shape) > 1 or (len(shape) == 1 and shape[0] > max_items) or \
                (max_items == 0 and shape != ()):
            raise KerasFileError(f"{self.label}: {where}: expected at most {max_items} string(s), got shape {shape}")
        if dt.kind not in ("S", "U", "O") or (dt.kind == "O" and h5py.check_string_dtype(dt) is None):
            raise KerasFileError(f"{self.label}: {where}: expected text, got {dt}")
        try:
            value = node.attrs[name]
        except Exception as exc:
            raise KerasFileError(f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})") from None

        def text(v: Any) -> str:
            if isinstance(v, bytes):
                return untrusted.decode_text(v, label=f"{self.label}: {where}", error=KerasFileError)
            return str(v)
        if isinstance(value, np.ndarray) and value.ndim == 1:
            return [text(v) for v in value]
        return text(value.item() if isinstance(value, np.ndarray) else value)

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:
            pass


# -- the architecture -----------------------------------------------------------------------
class _Entry:
    __slots__ = ("cls", "name", "config", "inbound", "raw")

    def __init__(self, cls: str, name: str, config: dict, inbound: str | None, raw: dict) -> None:
        self.cls, self.name, self.config, self.inbound, self.raw = cls, name, config, inbound, raw

    def __str__(self) -> str:
        return f"layer {self.name!r} (class {self.cls})"


def _fail(label: str, message: str) -> KerasFileError:
    return KerasFileError(f"{label}: {message}")


def _obj(value: Any, label: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(label, f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _history_name(tensor: Any, label: str, where: str) -> str:
    """The layer a serialised input tensor comes from (Keras 3 and Keras 2 forms)."""
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        hist = _obj(tensor.get("config"), label, where).get("keras_history")
        if isinstance(hist, list) and len(hist) == 3 and isinstance(hist[0], str) and hist[1:] == [0, 0]:
            return hist[0]
    elif isinstance(tensor, list) and len(tensor) in (3, 4) and isinstance(tensor[0], str) and \
            tensor[1:3] == [0, 0] and (len(tensor) == 3 or tensor[3] in ({}, None)):
        return tensor[0]
    raise _fail(label, f"{where}: expected one tensor from another layer's first output, got {untrusted.short(tensor)}")


def _inbound(entry: dict, name: str, label: str) -> str | None:
    """The one layer feeding a Functional model's layer (None for an input layer)."""
    nodes = entry.get("inbound_nodes", [])
    where = f"layer {name!r}: inbound_nodes"
    if not isinstance(nodes, list):
        raise _fail(label, f"{where}: expected a list, got {type(nodes).__name__}")
    if not nodes:
        return None
    if len(nodes) != 1:
        raise _fail(label, f"{where}: the layer is called {len(nodes)} times; only chains are supported "
                           "(each layer called once)")
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [tensor], "kwargs": {}}
        args, kwargs = node.get("args"), node.get("kwargs", {})
        if not isinstance(args, list) or len(args) != 1:
            raise _fail(label, f"{where}: expected the layer called on one tensor, got {untrusted.short(args)}")
        if not isinstance(kwargs, dict) or any(v is not None for v in kwargs.values()):
            raise _fail(label, f"{where}: call arguments {untrusted.short(kwargs)} are not supported")
        return _history_name(args[0], label, where)
    if isinstance(node, list) and len(node) == 1:  # Keras 2: [[name, 0, 0, {}]]
        return _history_name(node[0], label, where)
    raise _fail(label, f"{where}: expected the layer called on one tensor, got {untrusted.short(node)}")


def _ends(value: Any, label: str, where: str) -> str:
    """The one layer named by ``input_layers`` / ``output_layers``."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], list) or \
            len(value[0]) != 3 or not isinstance(value[0][0], str):
        raise _fail(label, f"{where}: expected one layer, got {untrusted.short(value)} (models with several "
                           "inputs or outputs are not supported)")
    return value[0][0]


def _chain(config: Any, label: str) -> tuple[list[_Entry], list[_Entry]]:
    """The model's layers in the order Keras lists them, and in the order data flows."""
    model = _obj(config, label, "config")
    cls = model.get("class_name")
    body = model.get("config")
    if cls == "Sequential" and isinstance(body, list):  # the oldest Keras 2 form
        body = {"layers": body}
    if cls not in ("Sequential", "Functional", "Model"):
        raise _fail(label, f"the model's class {untrusted.short(cls)} is not supported; supported: a Sequential "
                           "or Functional model of " + _SUPPORTED)
    body = _obj(body, label, "config.config")
    raw_layers = body.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise _fail(label, "config.layers: expected a non-empty list of layers")
    if len(raw_layers) > MAX_CONFIG_LAYERS:
        raise _fail(label, f"config.layers: {len(raw_layers)} layers, more than the limit of {MAX_CONFIG_LAYERS}")
    entries: list[_Entry] = []
    for i, raw in enumerate(raw_layers):
        raw = _obj(raw, label, f"config.layers[{i}]")
        lcls = raw.get("class_name")
        lconf = raw.get("config")
        if not isinstance(lcls, str):
            raise _fail(label, f"config.layers[{i}].class_name: expected a string, got {untrusted.short(lcls)}")
        lconf = _obj(lconf, label, f"config.layers[{i}].config ({lcls})")
        name = raw.get("name", lconf.get("name", f"{lcls.lower()}_{i}"))
        if not isinstance(name, str) or not name or len(name) > 256:
            raise _fail(label, f"config.layers[{i}].name: expected a name, got {untrusted.short(name)}")
        entries.append(_Entry(lcls, name, lconf, None, raw))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _fail(label, f"config.layers: the name {dup!r} is used by two layers")
    for e in entries:  # refuse what is not supported before reading anything else of it
        if e.cls not in ("InputLayer", "Dense", "Activation", "OutputClipLayer"):
            raise _fail(label, f"{e} is not supported; supported: {_SUPPORTED}"
                        + (" (a Lambda layer holds code, which linncore never runs)" if e.cls == "Lambda" else ""))
    if cls == "Sequential":
        return entries, entries
    by_name = {e.name: e for e in entries}
    for e in entries:
        e.inbound = _inbound(e.raw, e.name, label)
        if e.inbound is not None and e.inbound not in by_name:
            raise _fail(label, f"{e}: its input comes from {e.inbound!r}, which is not a layer of the model")
    first = _ends(body.get("input_layers"), label, "config.input_layers")
    last = _ends(body.get("output_layers"), label, "config.output_layers")
    for end in (first, last):
        if end not in by_name:
            raise _fail(label, f"the model's input or output {end!r} is not a layer of the model")
    flow: list[_Entry] = []
    seen: set[str] = set()
    at: str | None = last
    while at is not None:
        if at in seen:
            raise _fail(label, f"layer {at!r} feeds itself through a loop")
        seen.add(at)
        flow.append(by_name[at])
        at = by_name[at].inbound
    flow.reverse()
    if flow[0].name != first or flow[0].cls != "InputLayer":
        raise _fail(label, f"the chain ending at {last!r} starts at {flow[0].name!r}, not at the model's input "
                           f"layer {first!r}")
    off = [e for e in entries if e.name not in seen]
    if off:
        raise _fail(label, f"{off[0]} is not on the chain from {first!r} to {last!r}; only chains are supported")
    return entries, flow


def _dtype_name(value: Any, label: str, where: str) -> str | None:
    """float32/float64 from a dtype or dtype-policy entry (None when absent)."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
            raise _fail(label, f"{where}: the dtype policy {untrusted.short(value.get('class_name'))} is not "
                               "supported; expected float32 or float64")
        value = _obj(value.get("config"), label, where).get("name")
    if value not in ("float32", "float64"):
        raise _fail(label, f"{where}: dtype {untrusted.short(value)} is not supported; expected float32 or float64")
    return value


def _width(shape: Any, label: str, where: str) -> int:
    if not (isinstance(shape, list) and len(shape) == 2 and shape[0] is None and isinstance(shape[1], int)
            and not isinstance(shape[1], bool) and shape[1] > 0):
        raise _fail(label, f"{where}: expected inputs of shape [None, width], got {untrusted.short(shape)}")
    return shape[1]


def _activation(value: Any, label: str, where: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str):
        value = value["config"]  # a built-in function serialised by reference
    if not isinstance(value, str) or value not in all_activations() + list(_CLIPS):
        raise _fail(label, f"{where}: activation {untrusted.short(value)} is not supported; supported: "
                           f"{', '.join(all_activations() + list(_CLIPS))}")
    return value


def _clip_value(config: dict, label: str, where: str) -> None:
    value = config.get("clip_value", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != 1.0:
        raise _fail(label, f"{where}: clip_value {untrusted.short(value)} is not supported; linncore clips to "
                           "[-1, 1] (clip_value 1.0)")


_DENSE_KEYS = {"name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
               "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
               "kernel_constraint", "bias_constraint", "batch_input_shape", "batch_shape", "input_shape",
               "lora_rank", "lora_alpha", "quantization_config"}


class _Stage:
    """One Dense layer and the element-wise layers after it."""

    def __init__(self, entry: _Entry, units: int, use_bias: bool, activation: str, dtype: str | None) -> None:
        self.entry, self.units, self.use_bias = entry, units, use_bias
        self.activation, self.clipped = ("linear", True) if activation in _CLIPS else (activation, False)
        self.dtype = dtype

    def then(self, activation: str, clips: bool, entry: _Entry, label: str) -> None:
        if clips or activation in _CLIPS:
            self.clipped = True
        elif activation == "linear":
            pass
        elif self.clipped:
            raise _fail(label, f"{entry} applies {activation!r} after {self.entry.name!r}'s output is clipped; "
                               "linncore clips after the activation")
        elif self.activation != "linear":
            raise _fail(label, f"{entry} applies {activation!r} after {self.entry.name!r}'s {self.activation!r}; "
                               "one activation per Dense layer is supported")
        else:
            self.activation = activation


def _constraint(value: Any, label: str, where: str) -> float | None:
    """moku's WeightClip's clip value, or None without a constraint; others are refused.

    A constraint acts in training only, so any positive clip value loads; one other than 1.0
    warns that linncore's training clips to [-1, 1] instead."""
    if value is None:
        return None
    value = _obj(value, label, where)
    if value.get("class_name") != "WeightClip":
        raise _fail(label, f"{where}: constraint {untrusted.short(value.get('class_name'))} is not supported; "
                           "supported: moku's WeightClip")
    conf = _obj(value.get("config", {}), label, where)
    extra = sorted(set(conf) - {"name", "clip_value"})
    if extra:
        raise _fail(label, f"{where}: unexpected WeightClip setting(s) {extra}")
    clip = conf.get("clip_value", 1.0)
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0.0 < float(clip) < float("inf"):
        raise _fail(label, f"{where}: WeightClip clip_value: expected a positive number, got {untrusted.short(clip)}")
    return float(clip)


def _stages(flow: list[_Entry], label: str) -> tuple[int | None, list[_Stage], set[str]]:
    """The input width (None when the file does not say), the Dense stages and the dtypes named."""
    width: int | None = None
    dtypes: set[str] = set()
    stages: list[_Stage] = []
    other_clips: dict[float, list[str]] = {}
    for k, e in enumerate(flow):
        c = e.config
        if e.cls == "InputLayer":
            if k != 0:
                raise _fail(label, f"{e} must come first")
            shape = c.get("batch_shape", c.get("batch_input_shape"))
            width = _width(shape, label, f"{e}: batch_shape")
            if c.get("sparse") or c.get("ragged"):
                raise _fail(label, f"{e}: sparse or ragged inputs are not supported")
            _dtype_name(c.get("dtype"), label, f"{e}: dtype")  # Keras casts inputs to the layers' dtype
        elif e.cls == "Dense":
            extra = sorted(set(c) - _DENSE_KEYS)
            if extra:
                raise _fail(label, f"{e}: setting(s) {untrusted.short(extra, 80)} are not supported")
            for key in ("lora_rank", "quantization_config"):
                if c.get(key) is not None:
                    raise _fail(label, f"{e}: {key} {untrusted.short(c[key])} is not supported")
            units = c.get("units")
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                raise _fail(label, f"{e}: units: expected a positive integer, got {untrusted.short(units)}")
            use_bias = c.get("use_bias", True)
            if not isinstance(use_bias, bool):
                raise _fail(label, f"{e}: use_bias: expected true or false, got {untrusted.short(use_bias)}")
            if not stages and width is None:
                for key in ("batch_input_shape", "batch_shape"):
                    if c.get(key) is not None:
                        width = _width(c[key], label, f"{e}: {key}")
            act = _activation(c.get("activation", "linear"), label, f"{e}")
            d = _dtype_name(c.get("dtype"), label, f"{e}: dtype")
            if d:
                dtypes.add(d)
            for key in ("kernel_constraint", "bias_constraint")[:1 + use_bias]:
                clip = _constraint(c.get(key), label, f"{e}: {key}")
                if clip is not None and clip != 1.0:
                    other_clips.setdefault(clip, []).append(e.name)
            stages.append(_Stage(e, units, use_bias, act, d))
        else:
            if e.cls == "OutputClipLayer":
                extra = sorted(set(c) - {"name", "trainable", "dtype", "clip_value"})
                if extra:
                    raise _fail(label, f"{e}: unexpected setting(s) {extra}")
                _clip_value(c, label, f"{e}")
                act, clips = "linear", True
            else:
                act, clips = _activation(c.get("activation", "linear"), label, f"{e}"), False
            if not stages:
                if clips or act != "linear":
                    raise _fail(label, f"{e} acts on the model's inputs; linncore's layers start with a Dense layer")
                continue
            stages[-1].then(act, clips, e, label)
    if not stages:
        raise _fail(label, "the model has no Dense layer")
    for clip, names in other_clips.items():
        warnings.warn(f"{label}: WeightClip({clip:g}) on {', '.join(sorted(set(names)))} clipped the weights in "
                      "Keras's training; they are read as stored, but training in linncore clips weights to "
                      "[-1, 1]", UserWarning, stacklevel=4)
    return width, stages, dtypes


def _clip_state(stages: list[_Stage], label: str) -> bool:
    clipped = [s for s in stages if s.clipped]
    if not clipped:
        return False
    for s in stages:
        if not s.clipped and s.activation not in _BOUNDED:
            raise _fail(label, f"{s.entry}: its output is not clipped to [-1, 1] while layer "
                               f"{clipped[0].entry.name!r} clips its output; linncore clips every layer's "
                               "output or none")
    return True


# -- weights --------------------------------------------------------------------------------
WeightReader = Callable[[int, _Stage, int | None], list[np.ndarray]]


def _snake(name: str) -> str:
    """Keras's snake-case of a class name (``OutputClipLayer`` -> ``output_clip_layer``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_shapes(h5: _H5, node_k: Any, node_b: Any, stage: _Stage, n_in: int | None,
                  where: str) -> list[np.ndarray]:
    if n_in is None:  # the first layer of a model that does not state its input width
        kernel = h5.array(node_k, None, f"{where} kernel")
        if kernel.ndim != 2 or kernel.shape[1] != stage.units:
            raise KerasFileError(f"{h5.label}: {where} kernel: expected shape (inputs, {stage.units}), "
                                 f"got {kernel.shape}")
    else:
        kernel = h5.array(node_k, (n_in, stage.units), f"{where} kernel")
    out = [kernel]
    if stage.use_bias:
        out.append(h5.array(node_b, (stage.units,), f"{where} bias"))
    return out


def _keras_weights(h5: _H5, entries: list[_Entry]) -> WeightReader:
    """Weights of a ``.keras`` archive: ``layers/<snake class>[_i]/vars/{0,1}``."""
    used: dict[str, int] = {}
    paths: dict[str, str] = {}
    for e in entries:  # Keras names each layer's group by its class and its rank among them
        base = _snake(e.cls)
        paths[e.name] = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
    root_name = "layers"
    if h5.child(h5.file, "layers", "group 'layers'", required=False) is None and \
            h5.child(h5.file, "_layer_checkpoint_dependencies", "group", required=False) is not None:
        root_name = "_layer_checkpoint_dependencies"  # Keras 2.13-2.15

    def read(index: int, stage: _Stage, n_in: int | None) -> list[np.ndarray]:
        group_name = paths[stage.entry.name]
        where = f"weights of {stage.entry} ({root_name}/{group_name}/vars)"
        group = h5.path(h5.file, [root_name, group_name, "vars"], where)
        stored = h5.attribute(group, "name", f"{where}: attribute 'name'", max_items=0)
        if stored is not None and stored != stage.entry.name:
            raise KerasFileError(f"{h5.label}: {where} belong to layer {untrusted.short(stored)}, not "
                                 f"{stage.entry.name!r}")
        count = len(group)
        if count != 1 + stage.use_bias:
            raise KerasFileError(f"{h5.label}: {where}: expected {1 + stage.use_bias} array(s) (kernel"
                                 f"{', bias' if stage.use_bias else ''}), got {count}")
        kernel = h5.child(group, "0", f"{where}/0")
        bias = h5.child(group, "1", f"{where}/1") if stage.use_bias else None
        return _check_shapes(h5, kernel, bias, stage, n_in, where)
    return read


def _h5_weights(h5: _H5) -> WeightReader:
    """Weights of a legacy ``.h5`` file: ``model_weights/<layer>`` and its ``weight_names``."""
    top = h5.child(h5.file, "model_weights", "group 'model_weights'")

    def read(index: int, stage: _Stage, n_in: int | None) -> list[np.ndarray]:
        name = stage.entry.name
        where = f"weights of {stage.entry} (model_weights/{name})"
        group = h5.child(top, name, where)
        names = h5.attribute(group, "weight_names", f"{where}: attribute 'weight_names'", max_items=8)
        if not isinstance(names, list) or len(names) != 1 + stage.use_bias:
            raise KerasFileError(f"{h5.label}: {where}: expected {1 + stage.use_bias} weight name(s) (kernel"
                                 f"{', bias' if stage.use_bias else ''}), got {untrusted.short(names)}")
        nodes = [h5.path(group, n.split("/"), f"{where}: {untrusted.short(n)}") for n in names]
        return _check_shapes(h5, nodes[0], nodes[1] if stage.use_bias else None, stage, n_in, where)
    return read


def _network(config: Any, reader_for: Callable[[list[_Entry]], WeightReader], label: str) -> Network:
    entries, flow = _chain(config, label)
    width, stages, dtypes = _stages(flow, label)
    clip = _clip_state(stages, label)
    if len(dtypes) > 1:
        raise _fail(label, f"the layers use different dtypes ({', '.join(sorted(dtypes))}); one is supported")
    read = reader_for(entries)
    layers: list[Dense] = []
    n_in = width
    seen_dtypes: set[str] = set()
    for i, stage in enumerate(stages):
        arrays = read(i, stage, n_in)
        seen_dtypes.add(arrays[0].dtype.name)
        n_in = arrays[0].shape[0] if n_in is None else n_in
        try:
            layers.append(Dense((n_in, stage.units), stage.activation, has_bias=stage.use_bias,
                                weight=arrays[0], bias=arrays[1] if stage.use_bias else None,
                                name=stage.entry.name))
        except ValueError as exc:  # e.g. a NaN among the weights
            raise _fail(label, f"weights of {stage.entry}: {exc}") from None
        n_in = stage.units
    dtype = dtypes.pop() if dtypes else ("float64" if seen_dtypes == {"float64"} else "float32")
    return Network(layers, clip=clip, dtype=dtype)


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
        decides whether further training in linncore clips the weights.

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
    >>> net = Network([Dense((2, 3), "tanh", seed=0), Dense((3, 1), seed=1)])
    >>> path = save_keras(net, pathlib.Path(tempfile.mkdtemp()) / "model.keras")
    >>> lm = load_keras(path)
    >>> lm.network
    Network(2 -> 3 tanh -> 1 linear, clip=True, dtype=float32)
    >>> bool((lm.predict([[0.5, -0.5]]) == net.predict([[0.5, -0.5]])).all())
    True
    """
    _h5py()
    raw = untrusted.read_bytes(path, limit=MAX_FILE_BYTES, what="a Keras file (.keras or .h5)",
                               error=KerasFileError)
    label = untrusted.short(os.fspath(path), 80).strip("'\"")
    if raw.startswith(_ZIP_MAGIC) or raw.startswith(_EMPTY_ZIP_MAGIC):
        config_bytes, weights = _read_archive(raw, label)
        config = _json(config_bytes, f"{label}: config.json")
        h5 = _H5(weights, f"{label}: model.weights.h5")
        try:
            net = _network(config, lambda entries: _keras_weights(h5, entries), label)
        finally:
            h5.close()
    elif raw.startswith(_HDF5_MAGIC):
        h5 = _H5(raw, label)
        try:
            text = h5.attribute(h5.file, "model_config", "attribute 'model_config'", max_items=0)
            if text is None:
                raise KerasFileError(f"{label}: the HDF5 file has no 'model_config' attribute; it holds weights "
                                     "only (save_weights), not a model")
            config = _json(text, f"{label}: model_config")
            net = _network(config, lambda entries: _h5_weights(h5), label)
        finally:
            h5.close()
    else:
        raise KerasFileError(f"{label}: neither a .keras archive (zip) nor a legacy .h5 (HDF5) file; it starts "
                             f"with {untrusted.short(raw[:8])}")
    return LinnModel.from_network(net)


def _network_of(model: Any) -> Network:
    if isinstance(model, LinnModel):
        if model.network is None:
            raise ValueError("model: this LinnModel has no network yet; call construct_model first")
        if model.scaling() is not None:
            warnings.warn("model: the training scaling is not part of a Keras file; Keras will compute in the "
                          "instrument's [-1, 1] units (LinnModel.predict scales, Keras's predict does not)",
                          UserWarning, stacklevel=3)
        return model.network
    if isinstance(model, KerasModelView):
        return model.network
    if isinstance(model, Network):
        return model
    raise TypeError(f"model: expected a LinnModel, its .model or a Network, got {type(model).__name__}")


def _keras_names(net: Network) -> list[tuple[str, str]]:
    """(Dense name, clipping layer name) per layer, valid and unique as Keras wants them."""
    out: list[tuple[str, str]] = []
    taken = {"input_layer"}
    for i, layer in enumerate(net.layers):
        name = layer.name if layer.name and re.fullmatch(r"[A-Za-z0-9_.\-]{1,200}", layer.name) else f"dense{i}"
        if name in taken:
            name = f"dense{i}_{len(taken)}"
        taken.add(name)
        clip = f"{name}_clip"
        while clip in taken:
            clip += "_"
        taken.add(clip)
        out.append((name, clip))
    return out


def _layer_configs(net: Network, modern: bool) -> tuple[list[dict], list[tuple[str, str, list[np.ndarray]]]]:
    """The Sequential model's layer entries, and (Keras class, name, arrays) of each layer in
    ``model.layers`` order (the input layer is not among them)."""
    dtype = net.dtype.name

    def obj(module: str, cls: str, config: dict) -> dict:
        return {"module": module, "class_name": cls, "config": config, "registered_name": None} if modern \
            else {"class_name": cls, "config": config}
    layers = [obj("keras.layers", "InputLayer", {"batch_shape": [None, net.input_size], "dtype": dtype,
                                                 "sparse": False, "name": "input_layer"})]
    order: list[tuple[str, str, list[np.ndarray]]] = []
    for layer, (name, clip_name) in zip(net.layers, _keras_names(net)):
        layers.append(obj("keras.layers", "Dense", {
            "name": name, "trainable": True, "dtype": dtype, "units": layer.size_out,
            "activation": layer.activation, "use_bias": layer.has_bias,
            "kernel_initializer": obj("keras.initializers", "GlorotUniform", {"seed": None}),
            "bias_initializer": obj("keras.initializers", "Zeros", {}),
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}))
        arrays = [np.asarray(layer.weight, dtype=net.dtype)]
        if layer.has_bias:
            arrays.append(np.asarray(layer.bias, dtype=net.dtype))
        order.append(("Dense", name, arrays))
        if net.clip:
            layers.append(obj("keras.layers", "Activation", {"name": clip_name, "trainable": True, "dtype": dtype,
                                                             "activation": "hard_tanh"}))
            order.append(("Activation", clip_name, []))
    return layers, order


def _model_config(net: Network, modern: bool) -> dict:
    layers, _ = _layer_configs(net, modern)
    config = {"name": "sequential", "trainable": True, "dtype": net.dtype.name, "layers": layers,
              "build_input_shape": [None, net.input_size]}
    if modern:
        return {"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None,
                "build_config": {"input_shape": [None, net.input_size]}}
    return {"class_name": "Sequential", "config": config}


def _h5_bytes(fill: Callable[[Any], None]) -> bytes:
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    return buffer.getvalue()


def _keras_bytes(net: Network) -> bytes:
    _, order = _layer_configs(net, True)

    def fill(f: Any) -> None:
        used: dict[str, int] = {}
        for cls, name, arrays in order:
            base = _snake(cls)
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
        for member, data in (("metadata.json", json.dumps(meta).encode()),
                             ("config.json", json.dumps(_model_config(net, True)).encode()),
                             ("model.weights.h5", weights)):
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
        for cls, name, arrays in order:
            group = top.create_group(name)
            names = [f"{name}/kernel", f"{name}/bias"][:len(arrays)]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S") if names \
                else np.zeros((0,), dtype="S1")
            for n, arr in zip(names, arrays):
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
        raise ValueError(f"path: expected a name ending in '.keras' or '.h5', got {untrusted.short(str(path))}")
    if net.has_batchnorm:
        raise ValueError("model: the network has batch normalisation; save_keras writes Dense layers only "
                         "(fold it into the Dense layers first, e.g. with get_linn)")
    _h5py()
    data = _keras_bytes(net) if target.suffix == ".keras" else _legacy_bytes(net)
    with atomic_write(target, "wb", name="path") as fh:
        fh.write(data)
    return target
