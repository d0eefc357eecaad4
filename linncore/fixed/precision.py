"""Precision configurations: which fixed-point format each tensor role of each layer uses.

A :class:`PrecisionDict` maps ``(layer_name, field)`` to a
:class:`~linncore.fixed.formats.FixedFormat` or to ``None`` (floating point).  Layer names are
``dense0``, ``dense1``, ...; the fields are those of the spec (:data:`FIELDS`).  The
``"default"`` entry applies to every layer; a layer's own entry overrides it field by field
(``None`` there forces floating point).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .._util import untrusted as _untrusted
from .._util.atomic import write_text_atomic
from ..engine import network as _network
from .formats import FixedFormat

__all__ = [
    "FIELDS",
    "PrecisionDict",
    "PrecisionFileError",
    "ensure_precision_dict",
    "MAX_FILE_BYTES",
]

#: The largest precision config file read (a config of a thousand layers is well under it).
MAX_FILE_BYTES = 4 * 1024 * 1024
_MAX_DEPTH = 8


class PrecisionFileError(ValueError):
    """A precision config file or text is malformed; the message names the file and the entry."""


FIELDS: tuple[str, ...] = (
    "input",
    "weight",
    "bias",
    "accumulator",
    "activation",
    "gradient",
    "update",
    "momentum",
    "adam_m",
    "adam_v",
)
DEFAULT = "default"
_LAYER_RE = re.compile(r"^dense(0|[1-9][0-9]*)$")

FormatSpec = FixedFormat | str | Mapping[str, Any] | None


def _check_layer(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _LAYER_RE.match(name):
        raise ValueError(
            f"{where}: expected 'default' or a layer name dense0, dense1, ..., got {name!r}"
        )
    return name


def _check_field(field: Any, where: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"{where}: unknown field {field!r}; expected one of {', '.join(FIELDS)}")
    return field


def _format(spec: FormatSpec, where: str) -> FixedFormat | None:
    if spec is None or isinstance(spec, FixedFormat):
        return spec
    try:
        if isinstance(spec, str):
            return FixedFormat.parse(spec)
        if isinstance(spec, Mapping):
            return FixedFormat.from_dict(spec)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    raise TypeError(
        f"{where}: expected a FixedFormat, a format string, a dict or None, got "
        f"{type(spec).__name__}"
    )


class PrecisionDict:
    """Fixed-point formats per ``(layer, field)``, with defaults for every layer.

    Parameters
    ----------
    config : mapping, optional
        ``{"default": {field: fmt, ...}, "dense1": {field: fmt, ...}, ...}`` where each
        ``fmt`` is a :class:`FixedFormat`, a format string (``"fixed<16,1>"``, ``"Q2.14"``),
        a :meth:`FixedFormat.to_dict` mapping, or None (floating point).

    Raises
    ------
    ValueError
        A key is neither ``"default"`` nor a layer name, or a field is unknown; the message
        names it.

    Examples
    --------
    >>> pd = PrecisionDict({"default": {"weight": "fixed<16,1>"},
    ...                     "dense1": {"activation": "Q2.14"}})
    >>> str(pd.dtype("dense0", "weight"))
    'fixed<16,1,RND_CONV,SAT>'
    >>> str(pd.dtype("dense1", "activation")), pd.dtype("dense0", "activation")
    ('fixed<16,2,RND_CONV,SAT>', None)
    """

    def __init__(self, config: Mapping[str, Mapping[str, FormatSpec]] | None = None):
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a mapping, got {type(config).__name__}")
        entries: dict[str, dict[str, FixedFormat | None]] = {}
        for layer, fields in config.items():
            if layer != DEFAULT:
                _check_layer(layer, "config")
            if not isinstance(fields, Mapping):
                raise TypeError(
                    f"config[{layer!r}]: expected a mapping of field -> format, "
                    f"got {type(fields).__name__}"
                )
            entries[layer] = {
                _check_field(field, f"config[{layer!r}]"): _format(
                    spec, f"config[{layer!r}][{field!r}]"
                )
                for field, spec in fields.items()
            }
        self._entries = entries

    def dtype(self, layer: str, field: str) -> FixedFormat | None:
        """The format of ``field`` in ``layer``, or None for floating point."""
        _check_layer(layer, "layer")
        _check_field(field, "field")
        own = self._entries.get(layer, {})
        if field in own:
            return own[field]
        return self._entries.get(DEFAULT, {}).get(field)

    def layers(self) -> list[str]:
        """The layer names the configuration mentions (besides ``default``)."""
        return [k for k in self._entries if k != DEFAULT]

    def validate(self, layer_names: Iterable[str]) -> None:
        """Check that every layer this configuration names exists in ``layer_names``.

        Raises
        ------
        ValueError
            Naming the first layer that is not in ``layer_names``.

        Examples
        --------
        >>> PrecisionDict({"dense3": {"weight": "Q1.7"}}).validate(["dense0", "dense1"])
        Traceback (most recent call last):
        ...
        ValueError: layer 'dense3' is not in the network (layers: dense0, dense1)
        """
        names = list(layer_names)
        for n in names:
            _check_layer(n, "layer_names")
        for layer in self.layers():
            if layer not in names:
                raise ValueError(
                    f"layer {layer!r} is not in the network (layers: {', '.join(names)})"
                )

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        """A JSON-ready dict of format strings (None for floating point)."""
        return {
            layer: {f: (None if fmt is None else str(fmt)) for f, fmt in fields.items()}
            for layer, fields in self._entries.items()
        }

    def to_json(self) -> str:
        """JSON text that :meth:`from_json` reads back to an equal PrecisionDict."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, _label: str = "text") -> PrecisionDict:
        """The PrecisionDict of :meth:`to_json` text.

        Raises
        ------
        PrecisionFileError
            The text is not strict JSON (duplicate keys, NaN and nesting deeper than 8 are
            refused), its top level is not an object, or an entry is not a valid config; the
            message names the entry.

        Examples
        --------
        >>> PrecisionDict.from_json('{"default": {"weight": "Q1.7"}, "default": {}}')
        Traceback (most recent call last):
        ...
        linncore.fixed.precision.PrecisionFileError: text: duplicate key 'default'
        """
        if isinstance(text, (bytes, bytearray)):
            if len(text) > MAX_FILE_BYTES:
                raise PrecisionFileError(f"{_label}: more than the limit of {MAX_FILE_BYTES} bytes")
            text = _untrusted.decode_text(bytes(text), label=_label, error=PrecisionFileError)
        elif not isinstance(text, str):
            raise TypeError(f"text: expected JSON text (str or bytes), got {type(text).__name__}")
        data = _untrusted.loads_json(
            text, label=_label, max_depth=_MAX_DEPTH, error=PrecisionFileError
        )
        if not isinstance(data, dict):
            raise PrecisionFileError(
                f"{_label}: expected a JSON object of layer names to fields, got "
                f"{_untrusted.kind(data)}"
            )
        try:
            return cls(data)
        except (TypeError, ValueError) as exc:
            raise PrecisionFileError(f"{_label}: {_untrusted.clip(str(exc))}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path`` atomically (a temporary file in the same folder,
        then ``os.replace``)."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PrecisionDict:
        """The PrecisionDict saved at ``path`` (an untrusted file: see :meth:`from_json`).

        Raises
        ------
        PrecisionFileError
            Naming the file: it is not a regular file of at most :data:`MAX_FILE_BYTES` bytes
            of strict UTF-8 JSON, or not a valid config.
        FileNotFoundError
        """
        label = _untrusted.short(os.fspath(path), 80).strip("'\"")
        data = _untrusted.read_bytes(
            path, limit=MAX_FILE_BYTES, what="a precision config (JSON)", error=PrecisionFileError
        )
        return cls.from_json(data, _label=label)

    # ------------------------------------------------------------ display

    def summary(self) -> str:
        """A table of every configured entry, one line per (layer, field).

        Examples
        --------
        >>> print(PrecisionDict({"default": {"weight": "Q1.15"}}).summary())
        layer    field   format
        default  weight  fixed<16,1,RND_CONV,SAT>
        """
        rows = [("layer", "field", "format")]
        for layer, fields in self._entries.items():
            for f in FIELDS:
                if f in fields:
                    rows.append((layer, f, "float" if fields[f] is None else str(fields[f])))
        w0 = max(len(r[0]) for r in rows) + 2
        w1 = max(len(r[1]) for r in rows) + 2
        return "\n".join(f"{a:<{w0}}{b:<{w1}}{c}".rstrip() for a, b, c in rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrecisionDict):
            return NotImplemented
        return self._entries == other._entries

    def __repr__(self) -> str:
        return f"PrecisionDict({self.to_dict()!r})"


def ensure_precision_dict(obj: Mapping | PrecisionDict | None) -> PrecisionDict | None:
    """None (floating point everywhere), or a PrecisionDict made from ``obj``.

    Examples
    --------
    >>> ensure_precision_dict(None) is None
    True
    >>> ensure_precision_dict({"default": {"weight": "Q1.7"}}).dtype("dense0", "weight").bits
    8
    """
    if obj is None or isinstance(obj, PrecisionDict):
        return obj
    if isinstance(obj, Mapping):
        return PrecisionDict(obj)
    raise TypeError(
        f"precision_dict: expected None, a dict or a PrecisionDict, got {type(obj).__name__}"
    )


# The engine below reads precision configs for quantization-aware training through this reader.
_network._precision_reader = ensure_precision_dict
