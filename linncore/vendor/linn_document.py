"""The ``.linn`` document: the instrument's rules, conversion to and from layers, validation.

This module knows the document and the Moku Neural Network instrument's limits; it knows
nothing of training.  Both directions go through the same rule checks, so a document that
``get_linn`` writes is one that ``load_linn`` reads and the other way round:

* ``build_document`` takes layers as ``(kernel (n_in, n_out), bias (n_out,), activation)``
  and applies every converter rule (see :doc:`/linn_format`), linncore's
  parameter-range rule and, when a device is named, that device's neuron limit.
* ``parse_document`` takes an untrusted, already JSON-decoded object and checks structure,
  types, sizes, finiteness and the same rules before any array is built.

Every failure is a :class:`LinnError` (a ``ValueError``) whose ``rule`` names the broken rule
and whose message gives the layer and the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._numpy.activations import INSTRUMENT
from .._util.untrusted import short as _short
from .._util.validate import integer

__all__ = [
    "LinnError",
    "INSTRUMENT_ACTIVATIONS",
    "MAX_LAYERS",
    "MAX_NEURONS",
    "MAX_COLUMN_DEPTH",
    "MAX_PARALLEL_CHANNELS",
    "LINN_VERSION",
    "DEVICE_NAMES",
    "device_neuron_limit",
    "LinnLayer",
    "build_document",
    "parse_document",
    "column_depth",
    "channel_mode",
    "describe",
]

LINN_VERSION = "0.1"
#: The activations the instrument runs, in the vendor's order.
INSTRUMENT_ACTIVATIONS: tuple[str, ...] = INSTRUMENT
MAX_LAYERS = 5  # dense layers per network
MAX_NEURONS = 100  # outputs per layer and inputs of the first layer (converter limit)
MAX_COLUMN_DEPTH = 1024  # sum over layers of (inputs + 3)
COLUMN_OVERHEAD = 3  # columns a layer costs beyond its inputs
MAX_PARALLEL_CHANNELS = 4  # the instrument's analog channels; more inputs means serial mode

#: Canonical device names, and the neuron limit per layer for each number of instrument
#: slots (None: the device runs the instrument in one configuration only).
DEVICE_NAMES: dict[str, dict[int | None, int]] = {
    "Moku:Pro": {None: 100},
    "Moku:Delta": {None: 100},
    "Moku:Lab": {2: 80, 3: 50},
    "Moku:Go": {2: 80, 3: 50},
}


class LinnError(ValueError):
    """A ``.linn`` rule is broken.

    Attributes
    ----------
    rule : str
        The rule's name, e.g. ``"layer count"`` or ``"input channels"``.
    """

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"[rule: {rule}] {message}")


# -- devices --------------------------------------------------------------------------------
def _canonical_device(device: str) -> str:
    if not isinstance(device, str):
        raise TypeError(
            f"device: expected a device name such as 'Moku:Pro', got {type(device).__name__}"
        )
    key = device.strip().lower().replace(" ", "")
    if not key.startswith("moku:"):
        key = "moku:" + key.removeprefix("moku")
    for name in DEVICE_NAMES:
        if name.lower() == key:
            return name
    raise ValueError(
        f"device: expected one of {', '.join(map(repr, DEVICE_NAMES))}, got {_short(device)}"
    )


def device_neuron_limit(device: str | None, slots: int | None = None) -> tuple[int, str]:
    """The neurons allowed per layer on ``device`` with ``slots`` instrument slots.

    Naming scheme: ``device`` is ``"Moku:Pro"``, ``"Moku:Delta"``, ``"Moku:Lab"`` or
    ``"Moku:Go"`` (case and the ``"Moku:"`` prefix optional).  Moku:Lab and Moku:Go run the
    instrument in Multi-instrument Mode and need ``slots=2`` (80 neurons) or ``slots=3``
    (50 neurons); Moku:Pro and Moku:Delta allow 100 and take no ``slots``.  Without a device,
    the converter's limit of 100 applies.

    Returns
    -------
    limit : int
    label : str
        How the limit reads in messages, e.g. ``"Moku:Go with 3 slots"``.

    Examples
    --------
    >>> device_neuron_limit("Moku:Go", slots=3)
    (50, 'Moku:Go with 3 slots')
    >>> device_neuron_limit(None)
    (100, 'the converter')
    """
    if device is None:
        if slots is not None:
            raise ValueError(
                "slots: only meaningful with device='Moku:Lab' or 'Moku:Go', got "
                f"slots={_short(slots)} without a device"
            )
        return MAX_NEURONS, "the converter"
    name = _canonical_device(device)
    table = DEVICE_NAMES[name]
    if None in table:
        if slots is not None:
            raise ValueError(
                f"slots: {name} runs the instrument in one configuration; expected slots=None, got "
                f"{_short(slots)}"
            )
        return table[None], name
    if isinstance(slots, bool) or slots not in table:
        options = " or ".join(f"slots={s} ({n} neurons per layer)" for s, n in table.items())
        raise ValueError(
            f"slots: {name} runs the instrument with 2 or 3 instrument slots; pass {options}, got "
            f"{_short(slots)}"
        )
    return table[slots], f"{name} with {slots} slots"


# -- layers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinnLayer:
    """One dense layer as the document holds it: ``weights`` is ``(outputs, inputs)``."""

    activation: str
    weights: np.ndarray  # float32, (n_out, n_in)
    biases: np.ndarray  # float32, (n_out,)

    @property
    def inputs(self) -> int:
        return int(self.weights.shape[1])

    @property
    def outputs(self) -> int:
        return int(self.weights.shape[0])


def column_depth(inputs_per_layer: Sequence[int]) -> int:
    """The instrument's memory budget used: sum over layers of ``inputs + 3``.

    Examples
    --------
    >>> column_depth([1, 32, 32, 32])
    109
    """
    return int(sum(int(n) + COLUMN_OVERHEAD for n in inputs_per_layer))


def channel_mode(width: int, channels: int) -> str:
    """``"serial"`` or ``"parallel"`` for a layer edge of ``width`` on ``channels`` channels."""
    if channels == 1 and width > 1:
        return "serial"
    return "parallel"


def _check_shapes(
    shapes: list[tuple[int, int]], acts: list[str], limit: int, limit_label: str, where: str
) -> None:
    """Rules on the layer stack: count, activations, widths, chaining, column depth."""
    if not 1 <= len(shapes) <= MAX_LAYERS:
        raise LinnError(
            "layer count", f"{where}: expected 1 to {MAX_LAYERS} dense layers, got {len(shapes)}"
        )
    for i, act in enumerate(acts):
        if act not in INSTRUMENT_ACTIVATIONS:
            raise LinnError(
                "activation",
                f"layer {i}: the instrument runs {', '.join(INSTRUMENT_ACTIVATIONS)}; got "
                f"{_short(act)}",
            )
    n_in0 = shapes[0][0]
    if not 1 <= n_in0 <= limit:
        raise LinnError(
            "inputs of the first layer" if limit == MAX_NEURONS else "device neuron limit",
            f"layer 0: expected 1 to {limit} inputs ({limit_label}), got {n_in0}",
        )
    for i, (n_in, n_out) in enumerate(shapes):
        if not 1 <= n_out <= limit:
            raise LinnError(
                "outputs per layer" if limit == MAX_NEURONS else "device neuron limit",
                f"layer {i}: expected 1 to {limit} outputs ({limit_label}), got {n_out}",
            )
        if i and n_in != shapes[i - 1][1]:
            raise LinnError(
                "chaining",
                f"layer {i}: expected {shapes[i - 1][1]} inputs (the outputs of layer {i - 1}), "
                f"got {n_in}",
            )
    depth = column_depth([s[0] for s in shapes])
    if depth > MAX_COLUMN_DEPTH:
        raise LinnError(
            "column depth",
            f"sum over layers of (inputs + 3) is {depth}, more than {MAX_COLUMN_DEPTH}",
        )


def _check_mapping(mapping: Any, n_out: int, last: int) -> list[int]:
    if isinstance(mapping, (str, bytes, dict)):
        raise LinnError(
            "output mapping", f"expected a list of integers, got {type(mapping).__name__}"
        )
    try:
        items = list(mapping)
    except TypeError:
        raise LinnError(
            "output mapping", f"expected a list of integers, got {type(mapping).__name__}"
        ) from None
    if not items:
        raise LinnError(
            "output mapping", "expected a non-empty list of integers, got an empty list"
        )
    if len(items) > n_out:
        raise LinnError(
            "output mapping",
            f"layer {last}: {len(items)} entries for {n_out} outputs; expected at most {n_out}",
        )
    out = []
    for k, v in enumerate(items):
        v = integer(v, f"entry {k}", error=lambda m: LinnError("output mapping", m))
        if not 0 <= v < n_out:
            raise LinnError(
                "output mapping",
                f"entry {k}: expected an index in [0, {n_out}) (outputs of layer {last}), got "
                f"{int(v)}",
            )
        out.append(int(v))
    return out


def _check_channels(channels: Any, width: int, which: str, where: str) -> int:
    rule = f"{which} channels"
    channels = integer(channels, f"num_{which}_channels", error=lambda m: LinnError(rule, m))
    if width > MAX_PARALLEL_CHANNELS:
        if channels != 1:
            raise LinnError(
                rule,
                f"{where} has {width} {which}s, more than {MAX_PARALLEL_CHANNELS}: only serial "
                "mode "
                f"(num_{which}_channels=1) is possible, got {_short(channels)}",
            )
    elif channels not in (1, width):
        allowed = "1" if width == 1 else f"1 (serial) or {width} (parallel)"
        raise LinnError(
            rule,
            f"{where} has {width} {which}(s): expected num_{which}_channels {allowed}, got "
            f"{_short(channels)}",
        )
    return channels


def _check_range(layers: list[LinnLayer], clip: bool) -> list[LinnLayer]:
    out = []
    for i, layer in enumerate(layers):
        fields = {}
        for field, arr in (("weights", layer.weights), ("biases", layer.biases)):
            if not np.all(np.isfinite(arr)):
                where = tuple(int(j) for j in np.argwhere(~np.isfinite(arr))[0])
                raise LinnError(
                    "finite parameters",
                    f"layer {i} {field}{list(where)}: expected a finite value, got {arr[where]}",
                )
            if clip:
                arr = np.clip(arr, -1.0, 1.0)
            else:
                worst = np.unravel_index(int(np.argmax(np.abs(arr))), arr.shape)
                value = float(arr[worst])
                if abs(value) > 1.0:
                    n_bad = int(np.sum(np.abs(arr) > 1.0))
                    raise LinnError(
                        "parameter range",
                        f"layer {i} {field}{list(int(j) for j in worst)} = {value!r} is outside "
                        "[-1, 1] "
                        f"({n_bad} value(s) outside in this field); the instrument works on [-1, "
                        "1]: "
                        "train with clipping or pass clip=True to clip explicitly",
                    )
            fields[field] = arr
        out.append(LinnLayer(layer.activation, fields["weights"], fields["biases"]))
    return out


def build_document(
    layers: Sequence[tuple[Any, Any, str]],
    input_channels: Any,
    output_channels: Any,
    output_mapping: Any = None,
    clip: bool = False,
    device: str | None = None,
    slots: int | None = None,
) -> dict:
    """A ``.linn`` document from ``(kernel (n_in, n_out), bias, activation)`` triples.

    Applies the rules in the order the vendor converter does (layers, widths, chaining,
    column depth, output mapping, channels) and then linncore's parameter range rule.
    Numbers are written as ``float(float32(value))``, as the vendor writes them.
    """
    limit, label = device_neuron_limit(device, slots)
    linn_layers = []
    for kernel, bias, act in layers:
        k = np.asarray(kernel, dtype=np.float32)
        b = (
            np.zeros(k.shape[1], dtype=np.float32)
            if bias is None
            else np.asarray(bias, dtype=np.float32)
        )
        linn_layers.append(LinnLayer(act, np.ascontiguousarray(k.T), b))
    _check_shapes(
        [(l.inputs, l.outputs) for l in linn_layers],
        [l.activation for l in linn_layers],
        limit,
        label,
        "model",
    )
    if output_mapping is not None:
        last = linn_layers[-1]
        sel = _check_mapping(output_mapping, last.outputs, len(linn_layers) - 1)
        linn_layers[-1] = LinnLayer(last.activation, last.weights[sel], last.biases[sel])
    n_in_ch = _check_channels(input_channels, linn_layers[0].inputs, "input", "the first layer")
    n_out_ch = _check_channels(
        output_channels,
        linn_layers[-1].outputs,
        "output",
        "the last layer" + (" after output mapping" if output_mapping is not None else ""),
    )
    linn_layers = _check_range(linn_layers, clip)
    return {
        "version": LINN_VERSION,
        "num_input_channels": n_in_ch,
        "num_output_channels": n_out_ch,
        "layers": [
            {"activation": l.activation, "weights": l.weights.tolist(), "biases": l.biases.tolist()}
            for l in linn_layers
        ],
    }


# -- reading untrusted documents ------------------------------------------------------------
_TOP_KEYS = ("version", "num_input_channels", "num_output_channels", "layers")
_LAYER_KEYS = ("activation", "weights", "biases")


def _structure(message: str) -> LinnError:
    return LinnError("document structure", message)


def _number_list(value: Any, length_max: int, where: str) -> list[float]:
    if not isinstance(value, list):
        raise _structure(f"{where}: expected a list of numbers, got {type(value).__name__}")
    if not value:
        raise _structure(f"{where}: expected a non-empty list of numbers, got an empty list")
    if len(value) > length_max:
        raise LinnError(
            "size limit", f"{where}: expected at most {length_max} numbers, got {len(value)}"
        )
    for j, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _structure(f"{where}[{j}]: expected a number, got {type(v).__name__} {v!r:.40}")
        if isinstance(v, float) and not math.isfinite(v):
            raise LinnError(
                "finite parameters", f"{where}[{j}]: expected a finite number, got {v!r}"
            )
        if isinstance(v, int) and abs(v) > 1:
            raise LinnError("parameter range", f"{where}[{j}] = {v} is outside [-1, 1]")
    return value


def _exact_keys(obj: dict, keys: tuple, where: str, what: str) -> None:
    """Refuse a missing or an unknown key of ``obj`` (``what`` has exactly ``keys``)."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise _structure(f"{where}: missing key(s) {missing}; {what} has {list(keys)}")
    extra = [k for k in obj if k not in keys]
    if extra:
        raise _structure(f"{where}: unknown key(s) {extra}; {what} has only {list(keys)}")


def parse_document(
    doc: Any, *, limit: int = MAX_NEURONS, limit_label: str = "the converter"
) -> tuple[dict, list[LinnLayer]]:
    """Check an untrusted, JSON-decoded document; return its header and its layers.

    Nothing in the document is trusted: every container's type and size is checked before
    it is walked, so a hostile document costs at most ``5 * 100 * 100`` element checks.

    Returns
    -------
    header : dict
        ``version``, ``num_input_channels``, ``num_output_channels``.
    layers : list of LinnLayer
        float32 weights ``(outputs, inputs)`` and biases.
    """
    if not isinstance(doc, dict):
        raise _structure(f"document: expected a JSON object, got {type(doc).__name__}")
    _exact_keys(doc, _TOP_KEYS, "document", "a .linn document")
    if doc["version"] != LINN_VERSION:
        raise LinnError(
            "version", f"version: expected {_short(LINN_VERSION)}, got {_short(doc['version'])}"
        )
    for key in ("num_input_channels", "num_output_channels"):
        integer(doc[key], key, error=_structure)
    raw_layers = doc["layers"]
    if not isinstance(raw_layers, list):
        raise _structure(
            f"layers: expected a list of layer objects, got {type(raw_layers).__name__}"
        )
    if not 1 <= len(raw_layers) <= MAX_LAYERS:
        raise LinnError(
            "layer count", f"layers: expected 1 to {MAX_LAYERS} dense layers, got {len(raw_layers)}"
        )
    layers: list[LinnLayer] = []
    for i, raw in enumerate(raw_layers):
        where = f"layers[{i}]"
        if not isinstance(raw, dict):
            raise _structure(
                f"{where}: expected an object with {list(_LAYER_KEYS)}, got {type(raw).__name__}"
            )
        _exact_keys(raw, _LAYER_KEYS, where, "a layer")
        act = raw["activation"]
        if not isinstance(act, str):
            raise _structure(f"{where}.activation: expected a string, got {type(act).__name__}")
        if act not in INSTRUMENT_ACTIVATIONS:
            raise LinnError(
                "activation",
                f"{where}.activation: expected one of {', '.join(INSTRUMENT_ACTIVATIONS)}, got "
                f"{act!r:.40}",
            )
        rows = raw["weights"]
        if not isinstance(rows, list) or not rows:
            got = "an empty list" if isinstance(rows, list) else type(rows).__name__
            raise _structure(
                f"{where}.weights: expected a non-empty list of rows (one per output neuron), got "
                f"{got}"
            )
        if len(rows) > limit:
            raise LinnError(
                "outputs per layer" if limit == MAX_NEURONS else "device neuron limit",
                f"{where}: expected 1 to {limit} outputs ({limit_label}), got {len(rows)} weight "
                "rows",
            )
        width = None
        for r, row in enumerate(rows):
            _number_list(row, MAX_NEURONS, f"{where}.weights[{r}]")
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise _structure(
                    f"{where}.weights[{r}]: expected {width} values like row 0, got {len(row)}"
                )
        biases = _number_list(raw["biases"], MAX_NEURONS, f"{where}.biases")
        if len(biases) != len(rows):
            raise _structure(
                f"{where}.biases: expected {len(rows)} values (one per weight row), got "
                f"{len(biases)}"
            )
        w = np.array(rows, dtype=np.float64)
        b = np.array(biases, dtype=np.float64)
        for field, arr in (("weights", w), ("biases", b)):
            bad = np.abs(arr) > 1.0
            if bad.any():
                pos = np.unravel_index(int(np.argmax(np.abs(arr))), arr.shape)
                raise LinnError(
                    "parameter range",
                    f"{where}.{field}{list(int(p) for p in pos)} = {float(arr[pos])!r} is outside "
                    "[-1, 1]",
                )
        layers.append(LinnLayer(act, w.astype(np.float32), b.astype(np.float32)))
    _check_shapes(
        [(l.inputs, l.outputs) for l in layers],
        [l.activation for l in layers],
        limit,
        limit_label,
        "layers",
    )
    _check_channels(doc["num_input_channels"], layers[0].inputs, "input", "the first layer")
    _check_channels(doc["num_output_channels"], layers[-1].outputs, "output", "the last layer")
    header = {k: doc[k] for k in _TOP_KEYS[:3]}
    return header, layers


def describe(header: dict, layers: Sequence[LinnLayer]) -> dict:
    """The instrument's description of a loaded network.

    Examples
    --------
    >>> lay = LinnLayer("tanh", np.zeros((16, 4), np.float32), np.zeros(16, np.float32))
    >>> describe({"num_input_channels": 4, "num_output_channels": 1}, [lay])["layers"]
    [{'activation': 'Tanh', 'inputs': 4, 'outputs': 16}]
    """
    return {
        "inputs": layers[0].inputs,
        "outputs": layers[-1].outputs,
        "num_input_channels": header["num_input_channels"],
        "num_output_channels": header["num_output_channels"],
        "layers": [
            {"activation": l.activation.capitalize(), "inputs": l.inputs, "outputs": l.outputs}
            for l in layers
        ],
    }
