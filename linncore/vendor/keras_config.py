"""Keras model architectures (``config.json`` / ``model_config``) and their weights, read into a
:class:`~linncore.Network`.

What is read: a ``Sequential`` or ``Functional`` chain of ``InputLayer``, ``Dense``,
``Activation`` and moku's ``OutputClipLayer``, with moku's ``WeightClip``.  The element-wise
layers after a Dense layer fold into it: one activation, then clipping to ``[-1, 1]``
(``OutputClipLayer`` or ``hard_tanh``).  The network clips when any layer's output is clipped;
a layer left unclipped must then have an activation whose outputs lie in ``[-1, 1]`` anyway.
Anything else is refused naming the layer and its class, before its weights are looked at.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._util import untrusted
from .._util.validate import finite_float, flag, positive_int
from ..engine.layers import Dense, all_activations
from ..engine.network import Network
from .keras_archive import H5Reader, KerasFileError

__all__ = [
    "CLIP_ACTIVATION",
    "MAX_CONFIG_LAYERS",
    "keras_weights",
    "legacy_weights",
    "network_from_config",
    "snake_case",
]

#: Most layers a model's architecture may list.
MAX_CONFIG_LAYERS = 4096
#: The Keras activation that is exactly ``clip(x, -1, 1)``.
CLIP_ACTIVATION = "hard_tanh"
_SUPPORTED = "InputLayer, Dense, Activation and moku's OutputClipLayer"
_BOUNDED = ("tanh", "sigmoid", "softsign")  # outputs already inside [-1, 1]: clipping is moot
_CLIPS = (CLIP_ACTIVATION,)  # Keras activations equal to clip(x, -1, 1)


# -- the architecture -----------------------------------------------------------------------
class _Entry:
    __slots__ = ("cls", "config", "inbound", "name", "raw")

    def __init__(self, cls: str, name: str, config: dict, inbound: str | None, raw: dict) -> None:
        self.cls, self.name, self.config, self.inbound, self.raw = cls, name, config, inbound, raw

    def __str__(self) -> str:
        return f"layer {self.name!r} (class {self.cls})"


def _fail(label: str, message: str) -> KerasFileError:
    return KerasFileError(f"{label}: {message}")


def _failing(label: str) -> Callable[[str], KerasFileError]:
    """The error factory of the shared validators for the file ``label``."""
    return lambda message: _fail(label, message)


def _obj(value: Any, label: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(label, f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _history_name(tensor: Any, label: str, where: str) -> str:
    """The layer a serialised input tensor comes from (Keras 3 and Keras 2 forms)."""
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        hist = _obj(tensor.get("config"), label, where).get("keras_history")
        if (
            isinstance(hist, list)
            and len(hist) == 3
            and isinstance(hist[0], str)
            and hist[1:] == [0, 0]
        ):
            return hist[0]
    elif (
        isinstance(tensor, list)
        and len(tensor) in (3, 4)
        and isinstance(tensor[0], str)
        and tensor[1:3] == [0, 0]
        and (len(tensor) == 3 or tensor[3] in ({}, None))
    ):
        return tensor[0]
    raise _fail(
        label,
        f"{where}: expected one tensor from another layer's first output, got "
        f"{untrusted.short(tensor)}",
    )


def _inbound(entry: dict, name: str, label: str) -> str | None:
    """The one layer feeding a Functional model's layer (None for an input layer)."""
    nodes = entry.get("inbound_nodes", [])
    where = f"layer {name!r}: inbound_nodes"
    if not isinstance(nodes, list):
        raise _fail(label, f"{where}: expected a list, got {type(nodes).__name__}")
    if not nodes:
        return None
    if len(nodes) != 1:
        raise _fail(
            label,
            f"{where}: the layer is called {len(nodes)} times; only chains are supported "
            "(each layer called once)",
        )
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [tensor], "kwargs": {}}
        args, kwargs = node.get("args"), node.get("kwargs", {})
        if not isinstance(args, list) or len(args) != 1:
            raise _fail(
                label,
                f"{where}: expected the layer called on one tensor, got {untrusted.short(args)}",
            )
        if not isinstance(kwargs, dict) or any(v is not None for v in kwargs.values()):
            raise _fail(
                label, f"{where}: call arguments {untrusted.short(kwargs)} are not supported"
            )
        return _history_name(args[0], label, where)
    if isinstance(node, list) and len(node) == 1:  # Keras 2: [[name, 0, 0, {}]]
        return _history_name(node[0], label, where)
    raise _fail(
        label, f"{where}: expected the layer called on one tensor, got {untrusted.short(node)}"
    )


def _ends(value: Any, label: str, where: str) -> str:
    """The one layer named by ``input_layers`` / ``output_layers``."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if (
        not isinstance(value, list)
        or len(value) != 1
        or not isinstance(value[0], list)
        or len(value[0]) != 3
        or not isinstance(value[0][0], str)
    ):
        raise _fail(
            label,
            f"{where}: expected one layer, got {untrusted.short(value)} (models with several "
            "inputs or outputs are not supported)",
        )
    return value[0][0]


def _chain(config: Any, label: str) -> tuple[list[_Entry], list[_Entry]]:
    """The model's layers in the order Keras lists them, and in the order data flows."""
    model = _obj(config, label, "config")
    cls = model.get("class_name")
    body = model.get("config")
    if cls == "Sequential" and isinstance(body, list):  # the oldest Keras 2 form
        body = {"layers": body}
    if cls not in ("Sequential", "Functional", "Model"):
        raise _fail(
            label,
            f"the model's class {untrusted.short(cls)} is not supported; supported: a Sequential "
            "or Functional model of " + _SUPPORTED,
        )
    body = _obj(body, label, "config.config")
    raw_layers = body.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise _fail(label, "config.layers: expected a non-empty list of layers")
    if len(raw_layers) > MAX_CONFIG_LAYERS:
        raise _fail(
            label,
            f"config.layers: {len(raw_layers)} layers, more than the limit of {MAX_CONFIG_LAYERS}",
        )
    entries: list[_Entry] = []
    for i, raw in enumerate(raw_layers):
        raw = _obj(raw, label, f"config.layers[{i}]")
        lcls = raw.get("class_name")
        lconf = raw.get("config")
        if not isinstance(lcls, str):
            raise _fail(
                label,
                f"config.layers[{i}].class_name: expected a string, got {untrusted.short(lcls)}",
            )
        lconf = _obj(lconf, label, f"config.layers[{i}].config ({lcls})")
        name = raw.get("name", lconf.get("name", f"{lcls.lower()}_{i}"))
        if not isinstance(name, str) or not name or len(name) > 256:
            raise _fail(
                label, f"config.layers[{i}].name: expected a name, got {untrusted.short(name)}"
            )
        entries.append(_Entry(lcls, name, lconf, None, raw))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _fail(label, f"config.layers: the name {dup!r} is used by two layers")
    for e in entries:  # refuse what is not supported before reading anything else of it
        if e.cls not in ("InputLayer", "Dense", "Activation", "OutputClipLayer"):
            raise _fail(
                label,
                f"{e} is not supported; supported: {_SUPPORTED}"
                + (
                    " (a Lambda layer holds code, which linncore never runs)"
                    if e.cls == "Lambda"
                    else ""
                ),
            )
    if cls == "Sequential":
        return entries, entries
    by_name = {e.name: e for e in entries}
    for e in entries:
        e.inbound = _inbound(e.raw, e.name, label)
        if e.inbound is not None and e.inbound not in by_name:
            raise _fail(
                label, f"{e}: its input comes from {e.inbound!r}, which is not a layer of the model"
            )
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
        raise _fail(
            label,
            f"the chain ending at {last!r} starts at {flow[0].name!r}, not at the model's input "
            f"layer {first!r}",
        )
    off = [e for e in entries if e.name not in seen]
    if off:
        raise _fail(
            label,
            f"{off[0]} is not on the chain from {first!r} to {last!r}; only chains are supported",
        )
    return entries, flow


def _dtype_name(value: Any, label: str, where: str) -> str | None:
    """float32/float64 from a dtype or dtype-policy entry (None when absent)."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
            raise _fail(
                label,
                f"{where}: the dtype policy {untrusted.short(value.get('class_name'))} is not "
                "supported; expected float32 or float64",
            )
        value = _obj(value.get("config"), label, where).get("name")
    if value not in ("float32", "float64"):
        raise _fail(
            label,
            f"{where}: dtype {untrusted.short(value)} is not supported; expected float32 or "
            "float64",
        )
    return value


def _width(shape: Any, label: str, where: str) -> int:
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and shape[0] is None
        and isinstance(shape[1], int)
        and not isinstance(shape[1], bool)
        and shape[1] > 0
    ):
        raise _fail(
            label, f"{where}: expected inputs of shape [None, width], got {untrusted.short(shape)}"
        )
    return shape[1]


def _activation(value: Any, label: str, where: str) -> str:
    if value is None:
        return "linear"
    if (
        isinstance(value, dict)
        and value.get("class_name") == "function"
        and isinstance(value.get("config"), str)
    ):
        value = value["config"]  # a built-in function serialised by reference
    if not isinstance(value, str) or value not in all_activations() + list(_CLIPS):
        raise _fail(
            label,
            f"{where}: activation {untrusted.short(value)} is not supported; supported: "
            f"{', '.join(all_activations() + list(_CLIPS))}",
        )
    return value


def _clip_value(config: dict, label: str, where: str) -> None:
    value = config.get("clip_value", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != 1.0:
        raise _fail(
            label,
            f"{where}: clip_value {untrusted.short(value)} is not supported; linncore clips to "
            "[-1, 1] (clip_value 1.0)",
        )


_DENSE_KEYS = {
    "name",
    "trainable",
    "dtype",
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "batch_input_shape",
    "batch_shape",
    "input_shape",
    "lora_rank",
    "lora_alpha",
    "quantization_config",
}


class _Stage:
    """One Dense layer and the element-wise layers after it."""

    def __init__(
        self, entry: _Entry, units: int, use_bias: bool, activation: str, dtype: str | None
    ) -> None:
        self.entry, self.units, self.use_bias = entry, units, use_bias
        self.activation, self.clipped = (
            ("linear", True) if activation in _CLIPS else (activation, False)
        )
        self.dtype = dtype

    def then(self, activation: str, clips: bool, entry: _Entry, label: str) -> None:
        if clips or activation in _CLIPS:
            self.clipped = True
        elif activation == "linear":
            pass
        elif self.clipped:
            raise _fail(
                label,
                f"{entry} applies {activation!r} after {self.entry.name!r}'s output is clipped; "
                "linncore clips after the activation",
            )
        elif self.activation != "linear":
            raise _fail(
                label,
                f"{entry} applies {activation!r} after {self.entry.name!r}'s {self.activation!r}; "
                "one activation per Dense layer is supported",
            )
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
        raise _fail(
            label,
            f"{where}: constraint {untrusted.short(value.get('class_name'))} is not supported; "
            "supported: moku's WeightClip",
        )
    conf = _obj(value.get("config", {}), label, where)
    extra = sorted(set(conf) - {"name", "clip_value"})
    if extra:
        raise _fail(label, f"{where}: unexpected WeightClip setting(s) {extra}")
    return finite_float(
        conf.get("clip_value", 1.0),
        f"{where}: WeightClip clip_value",
        lo=0,
        lo_open=True,
        error=_failing(label),
    )


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
            _dtype_name(
                c.get("dtype"), label, f"{e}: dtype"
            )  # Keras casts inputs to the layers' dtype
        elif e.cls == "Dense":
            extra = sorted(set(c) - _DENSE_KEYS)
            if extra:
                raise _fail(
                    label, f"{e}: setting(s) {untrusted.short(extra, 80)} are not supported"
                )
            for key in ("lora_rank", "quantization_config"):
                if c.get(key) is not None:
                    raise _fail(label, f"{e}: {key} {untrusted.short(c[key])} is not supported")
            refuse = _failing(label)
            units = positive_int(c.get("units"), f"{e}: units", error=refuse)
            use_bias = flag(c.get("use_bias", True), f"{e}: use_bias", error=refuse)
            if not stages and width is None:
                for key in ("batch_input_shape", "batch_shape"):
                    if c.get(key) is not None:
                        width = _width(c[key], label, f"{e}: {key}")
            act = _activation(c.get("activation", "linear"), label, f"{e}")
            d = _dtype_name(c.get("dtype"), label, f"{e}: dtype")
            if d:
                dtypes.add(d)
            for key in ("kernel_constraint", "bias_constraint")[: 1 + use_bias]:
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
                    raise _fail(
                        label,
                        f"{e} acts on the model's inputs; linncore's layers start with a Dense "
                        "layer",
                    )
                continue
            stages[-1].then(act, clips, e, label)
    if not stages:
        raise _fail(label, "the model has no Dense layer")
    for clip, names in other_clips.items():
        warnings.warn(
            f"{label}: WeightClip({clip:g}) on {', '.join(sorted(set(names)))} clipped the weights "
            "in Keras's training; they are read as stored, but training in linncore clips weights "
            "to [-1, 1]",
            UserWarning,
            stacklevel=4,
        )
    return width, stages, dtypes


def _clip_state(stages: list[_Stage], label: str) -> bool:
    clipped = [s for s in stages if s.clipped]
    if not clipped:
        return False
    for s in stages:
        if not s.clipped and s.activation not in _BOUNDED:
            raise _fail(
                label,
                f"{s.entry}: its output is not clipped to [-1, 1] while layer "
                f"{clipped[0].entry.name!r} clips its output; linncore clips every layer's "
                "output or none",
            )
    return True


# -- weights --------------------------------------------------------------------------------
WeightReader = Callable[[int, _Stage, int | None], list[np.ndarray]]


def snake_case(name: str) -> str:
    """Keras's snake-case of a class name (``OutputClipLayer`` -> ``output_clip_layer``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_shapes(
    h5: H5Reader, node_k: Any, node_b: Any, stage: _Stage, n_in: int | None, where: str
) -> list[np.ndarray]:
    if n_in is None:  # the first layer of a model that does not state its input width
        kernel = h5.array(node_k, None, f"{where} kernel")
        if kernel.ndim != 2 or kernel.shape[1] != stage.units:
            raise KerasFileError(
                f"{h5.label}: {where} kernel: expected shape (inputs, {stage.units}), "
                f"got {kernel.shape}"
            )
    else:
        kernel = h5.array(node_k, (n_in, stage.units), f"{where} kernel")
    out = [kernel]
    if stage.use_bias:
        out.append(h5.array(node_b, (stage.units,), f"{where} bias"))
    return out


def keras_weights(h5: H5Reader, entries: list[_Entry]) -> WeightReader:
    """Weights of a ``.keras`` archive: ``layers/<snake class>[_i]/vars/{0,1}``."""
    used: dict[str, int] = {}
    paths: dict[str, str] = {}
    for e in entries:  # Keras names each layer's group by its class and its rank among them
        base = snake_case(e.cls)
        paths[e.name] = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
    root_name = "layers"
    if (
        h5.child(h5.file, "layers", "group 'layers'", required=False) is None
        and h5.child(h5.file, "_layer_checkpoint_dependencies", "group", required=False) is not None
    ):
        root_name = "_layer_checkpoint_dependencies"  # Keras 2.13-2.15

    def read(index: int, stage: _Stage, n_in: int | None) -> list[np.ndarray]:
        group_name = paths[stage.entry.name]
        where = f"weights of {stage.entry} ({root_name}/{group_name}/vars)"
        group = h5.path(h5.file, [root_name, group_name, "vars"], where)
        stored = h5.attribute(group, "name", f"{where}: attribute 'name'", max_items=0)
        if stored is not None and stored != stage.entry.name:
            raise KerasFileError(
                f"{h5.label}: {where} belong to layer {untrusted.short(stored)}, not "
                f"{stage.entry.name!r}"
            )
        count = len(group)
        if count != 1 + stage.use_bias:
            raise KerasFileError(
                f"{h5.label}: {where}: expected {1 + stage.use_bias} array(s) (kernel"
                f"{', bias' if stage.use_bias else ''}), got {count}"
            )
        kernel = h5.child(group, "0", f"{where}/0")
        bias = h5.child(group, "1", f"{where}/1") if stage.use_bias else None
        return _check_shapes(h5, kernel, bias, stage, n_in, where)

    return read


def legacy_weights(h5: H5Reader) -> WeightReader:
    """Weights of a legacy ``.h5`` file: ``model_weights/<layer>`` and its ``weight_names``."""
    top = h5.child(h5.file, "model_weights", "group 'model_weights'")

    def read(index: int, stage: _Stage, n_in: int | None) -> list[np.ndarray]:
        name = stage.entry.name
        where = f"weights of {stage.entry} (model_weights/{name})"
        group = h5.child(top, name, where)
        names = h5.attribute(
            group, "weight_names", f"{where}: attribute 'weight_names'", max_items=8
        )
        if not isinstance(names, list) or len(names) != 1 + stage.use_bias:
            raise KerasFileError(
                f"{h5.label}: {where}: expected {1 + stage.use_bias} weight name(s) (kernel"
                f"{', bias' if stage.use_bias else ''}), got {untrusted.short(names)}"
            )
        nodes = [h5.path(group, n.split("/"), f"{where}: {untrusted.short(n)}") for n in names]
        return _check_shapes(h5, nodes[0], nodes[1] if stage.use_bias else None, stage, n_in, where)

    return read


def network_from_config(
    config: Any, reader_for: Callable[[list[_Entry]], WeightReader], label: str
) -> Network:
    entries, flow = _chain(config, label)
    width, stages, dtypes = _stages(flow, label)
    clip = _clip_state(stages, label)
    if len(dtypes) > 1:
        raise _fail(
            label,
            f"the layers use different dtypes ({', '.join(sorted(dtypes))}); one is supported",
        )
    read = reader_for(entries)
    layers: list[Dense] = []
    n_in = width
    seen_dtypes: set[str] = set()
    for i, stage in enumerate(stages):
        arrays = read(i, stage, n_in)
        seen_dtypes.add(arrays[0].dtype.name)
        n_in = arrays[0].shape[0] if n_in is None else n_in
        try:
            layers.append(
                Dense(
                    (n_in, stage.units),
                    stage.activation,
                    has_bias=stage.use_bias,
                    weight=arrays[0],
                    bias=arrays[1] if stage.use_bias else None,
                    name=stage.entry.name,
                )
            )
        except ValueError as exc:  # e.g. a NaN among the weights
            raise _fail(label, f"weights of {stage.entry}: {exc}") from None
        n_in = stage.units
    dtype = dtypes.pop() if dtypes else ("float64" if seen_dtypes == {"float64"} else "float32")
    return Network(layers, clip=clip, dtype=dtype)
