"""Integer codes of the parameters, and a C99 header of a network (float or fixed-point).

Integer codes (:func:`export_codes`)
------------------------------------
Each parameter tensor ``w`` gets one symmetric scale ``s = max|w| / q`` with
``q = 2^(b-1) - 1`` (127 for int8, 32767 for int16, 2147483647 for int32; an all-zero tensor
gets ``s = 1``) and codes ``c = sat(round_half_even(w / s))`` saturated to ``[-q, q]``, so that
``w ~= c * s`` with ``|w - c s| <= s / 2``.  The code ``-2^(b-1)`` is never used, which keeps
the range symmetric.  Arithmetic in float64.

Fixed-point inference (:func:`predict_fixed`, ``export_c_header(..., fixed=...)``)
---------------------------------------------------------------------------------
One format ``fixed<W,I>`` (ap_fixed notation: ``W`` bits, ``I`` integer bits with the sign
bit counted, ``F = W - I`` fraction bits; a code ``c`` means ``c * 2^-F``) holds the weights,
the biases, the inputs and every layer's output; ``W`` runs from 2 to 64 bits and codes are
stored in the smallest of ``int8_t``, ``int16_t``, ``int32_t``, ``int64_t`` that holds them.
Rounding is round-half-to-even, overflow saturates to ``[-2^(W-1), 2^(W-1) - 1]``, at these
cast points only:

1. input:  ``x`` (a float32, as the C function receives it) -> ``sat(rhe(x * 2^F))``; NaN -> 0;
2. weights and biases: ``sat(rhe(w * 2^F))`` at export; a value outside the format's range is
   refused (ValueError) rather than silently saturated;
3. accumulator: ``acc = sum_i x_i w_ij + (b_j << F)`` exactly, in int64, format
   ``fixed<64, 64 - 2F>``; the export checks from the actual weights that ``|acc|`` stays
   below ``2^63`` for any input, and refuses the network otherwise (with ``2^F`` of headroom).
   C99 has no wider integer type, so formats wider than 32 bits are exported only where
   this bound holds: products of two wide codes generally need more than 64 bits, and such
   networks are refused (``F <= 62`` besides, so that ``2^F`` is an int64);
4. layer output: ``sat(act(rhe(acc / 2^F)))`` then, when the network clips, clamp to
   ``[-1, 1]`` (that is ``[-2^F, min(2^F, 2^(W-1) - 1)]``);
5. output: ``float(c * 2^-F)`` (exact in double, then rounded to float32).

Only ``relu`` and ``linear`` layers run in fixed point (they are exact on integers); other
activations are refused.  The C code does the same integer operations without relying on
signed overflow or on the right shift of negative numbers, so its outputs equal
:func:`predict_fixed`'s bit for bit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._numpy.activations import BY_NAME
from .._util.atomic import write_text_atomic
from .._util.validate import as_samples, choice, flag, integer
from ..engine.network import Network
from ..fixed.formats import FixedFormat

__all__ = ["QuantizedParams", "export_format", "export_codes", "predict_fixed", "export_c_header"]

_INT_BITS = {"int8": 8, "int16": 16, "int32": 32}
_FIXED_ACTS = ("linear", "relu")


def _network(model: Any) -> Network:
    net = getattr(model, "network", model)
    if not isinstance(net, Network):
        raise TypeError(f"model: expected a Network or a ModelFile, got {type(model).__name__}")
    net._refuse_batchnorm("exporting codes or a C header")
    return net


def _params(net: Network) -> list[tuple[str, np.ndarray]]:
    out = []
    for layer in net.layers:
        out.append((f"{layer.name}.weight", layer.weight))
        if layer.bias is not None:
            out.append((f"{layer.name}.bias", layer.bias))
    return out


# -- integer codes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantizedParams:
    """Integer codes and per-tensor scales of a network's parameters (see :func:`export_codes`).

    Attributes
    ----------
    dtype : str
        ``"int8"``, ``"int16"`` or ``"int32"``.
    codes : dict of str to ndarray
        By parameter name (``dense0.weight``, ``dense0.bias``, ...), in the parameter's shape.
    scales : dict of str to float
        ``value ~= code * scale``.
    """

    dtype: str
    codes: dict[str, np.ndarray]
    scales: dict[str, float]

    def dequantize(self) -> dict[str, np.ndarray]:
        """``code * scale`` of every parameter, in float64."""
        return {k: c.astype(np.float64) * self.scales[k] for k, c in self.codes.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form: format, dtype, the rounding and saturation rules, and per
        parameter its shape, scale and row-major codes."""
        return {
            "format": "linncore.codes",
            "format_version": 1,
            "dtype": self.dtype,
            "rounding": "half_even",
            "saturation": "symmetric",
            "params": {
                k: {"shape": list(c.shape), "scale": self.scales[k], "codes": c.ravel().tolist()}
                for k, c in self.codes.items()
            },
        }


def export_codes(model: Any, dtype: str = "int8") -> QuantizedParams:
    """Every parameter tensor as integer codes with one symmetric scale.

    Parameters
    ----------
    model : Network or ModelFile
    dtype : {"int8", "int16", "int32"}

    Returns
    -------
    QuantizedParams
        ``codes[name] * scales[name]`` approximates the parameter within half a scale step.

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), weight=[[0.5], [-0.25]], bias=[0.0])], dtype="float64")
    >>> q = export_codes(net, "int8")
    >>> q.codes["dense0.weight"].ravel().tolist(), q.scales["dense0.weight"] == 0.5 / 127
    ([127, -64], True)
    >>> q.codes["dense0.bias"].tolist(), q.scales["dense0.bias"]
    ([0], 1.0)
    """
    net = _network(model)
    dtype = choice(dtype, list(_INT_BITS), "dtype")
    qmax = (1 << (_INT_BITS[dtype] - 1)) - 1
    codes, scales = {}, {}
    for name, w in _params(net):
        w64 = w.astype(np.float64)
        amax = float(np.max(np.abs(w64))) if w64.size else 0.0
        scale = amax / qmax if amax > 0 else 1.0
        if scale < np.finfo(np.float64).tiny:
            raise ValueError(
                f"model: {name} holds values as small as {amax!r}: their {dtype} scale "
                f"{amax!r} / {qmax} is below the smallest normal float, so the codes could "
                "not be turned back into values; rescale the network or use fewer bits"
            )
        c = np.clip(np.rint(w64 / scale), -qmax, qmax).astype(dtype)
        codes[name] = c
        scales[name] = scale
    return QuantizedParams(dtype, codes, scales)


# -- fixed point -----------------------------------------------------------------------------
def export_format(spec: Any, name: str = "fixed") -> FixedFormat:
    """The :class:`~linncore.FixedFormat` of a fixed-point export: signed, rounding half to
    even and saturating (what the exported C code implements).

    ``spec`` is a FixedFormat, a format string (``"fixed<16,2>"``, ``"Q2.14"``) or a dict
    ``{"bits": 16, "frac_bits": 14}`` (``"int_bits"`` may replace ``"frac_bits"``).

    Examples
    --------
    >>> str(export_format({"bits": 16, "int_bits": 2}))
    'fixed<16,2,RND_CONV,SAT>'
    """
    if isinstance(spec, FixedFormat):
        fmt = spec
    elif isinstance(spec, str):
        try:
            fmt = FixedFormat.parse(spec)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"bits", "frac_bits", "int_bits", "rounding", "overflow", "signed"}
        if unknown:
            raise ValueError(
                f"{name}: unknown key(s) {sorted(unknown)}; expected bits and frac_bits or int_bits"
            )
        bits, frac = spec.get("bits"), spec.get("frac_bits")
        if frac is None and spec.get("int_bits") is not None and isinstance(bits, int):
            frac = bits - spec["int_bits"]
        if bits is None or frac is None:
            raise ValueError(
                f"{name}: expected bits and frac_bits (or int_bits), got the keys {sorted(spec)}"
            )
        bits = integer(bits, f"{name}.bits", lo=2, hi=64)
        frac = integer(frac, f"{name}.frac_bits (or int_bits)")
        try:
            fmt = FixedFormat(
                bits,
                bits - frac,
                signed=flag(spec.get("signed", True), f"{name}.signed"),
                rounding=spec.get("rounding", "RND_CONV"),
                overflow=spec.get("overflow", "SAT"),
            )
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    else:
        raise TypeError(
            f"{name}: expected a FixedFormat, a format string or a dict, got {type(spec).__name__}"
        )
    if not fmt.signed:
        raise ValueError(f"{name}: only signed formats are supported, got {fmt}")
    if not 0 <= fmt.frac_bits <= min(fmt.bits - 1, 62):
        top = min(fmt.bits - 1, 62)
        raise ValueError(
            f"{name}: expected frac_bits in [0, {top}] for {fmt.bits} bits "
            f"(2^F must be an int64), got {fmt.frac_bits}"
        )
    if fmt.rounding.name != "RND_CONV" or fmt.overflow.name != "SAT":
        raise ValueError(
            f"{name}: {fmt} is not supported; the export rounds half to even (RND_CONV) and "
            "saturates (SAT)"
        )
    return fmt


def _ctype(f: FixedFormat) -> str:
    return (
        "int8_t"
        if f.bits <= 8
        else "int16_t"
        if f.bits <= 16
        else "int32_t"
        if f.bits <= 32
        else "int64_t"
    )


def _quantize(v: np.ndarray, f: FixedFormat) -> tuple[np.ndarray, np.ndarray]:
    """(codes int64, saturated mask) of float64 values: sat(rhe(v 2^F)), NaN -> 0.

    The rails are compared as the exported C code compares them, in double: a rail beyond
    2^53 rounds to a double, and a value at or past that double saturates (the integers below
    it are doubles, so no other value can round past the rail)."""
    r = np.rint(np.ldexp(v.astype(np.float64), f.frac_bits))
    lo_d, hi_d = float(f.code_min), float(f.code_max)  # lo_d is exact: -2^(W-1)
    hi_rounded = int(hi_d) != f.code_max
    sat = (r < lo_d) | (r > hi_d) | ((r == hi_d) & hi_rounded)
    inside = (r > lo_d) & (r < hi_d)
    codes = np.where(r >= hi_d, np.int64(f.code_max), np.int64(f.code_min))
    codes[inside] = r[inside].astype(np.int64)
    codes[np.isnan(r)] = 0
    return codes, sat


def _rhe_shift(acc: np.ndarray, frac: int) -> np.ndarray:
    """round_half_even(acc / 2^frac) of int64 values."""
    if frac == 0:
        return acc
    q = acc >> frac  # floor
    r = acc - (q << frac)
    half = np.int64(1) << (frac - 1)
    return q + ((r > half) | ((r == half) & ((q & 1) == 1))).astype(np.int64)


def _fixed_layers(net: Network, f: FixedFormat) -> list[tuple[np.ndarray, np.ndarray | None, str]]:
    """Weight and bias codes of every layer, refusing what the fixed path cannot run."""
    out = []
    for layer in net.layers:
        if layer.activation not in _FIXED_ACTS:
            raise ValueError(
                f"fixed: layer {layer.name} has activation {layer.activation!r}; fixed-point "
                "export "
                f"supports only {list(_FIXED_ACTS)} (exact on integers); use the float export"
            )
        parts: list[np.ndarray | None] = []
        for what, arr in (("weight", layer.weight), ("bias", layer.bias)):
            if arr is None:
                parts.append(None)
                continue
            codes, sat = _quantize(arr, f)
            if sat.any():
                idx = tuple(int(i) for i in np.argwhere(sat)[0])
                lo, hi = math.ldexp(f.code_min, -f.frac_bits), math.ldexp(f.code_max, -f.frac_bits)
                raise ValueError(
                    f"fixed: {layer.name}.{what}[{', '.join(map(str, idx))}] = {float(arr[idx])!r} "
                    "is "
                    f"outside the range [{lo}, {hi}] of {f}; use more integer bits"
                )
            parts.append(codes)
        W, b = parts
        assert W is not None  # every layer has a kernel; only the bias may be absent
        bound = (1 << (f.bits - 1)) * np.abs(W.astype(object)).sum(axis=0)
        if b is not None:
            bound = bound + np.abs(b.astype(object)) * (1 << f.frac_bits)
        worst = max(int(v) for v in bound)
        if worst > (1 << 63) - 1 - (1 << f.frac_bits):  # headroom for the C floor division
            raise ValueError(
                f"fixed: the accumulator of layer {layer.name} can reach {worst}, "
                f"beyond the int64 range (less 2^F of headroom) in {f}; the C export "
                "accumulates in int64 (C99 has no wider integer type): use fewer bits"
            )
        out.append((W, b, layer.activation))
    return out


def predict_fixed(model: Any, X: Any, fixed: Any, *, return_codes: bool = False) -> np.ndarray:
    """Outputs of the network in fixed-point arithmetic, the reference of the fixed C export.

    The rules are in :mod:`linncore.io.export`; ``X`` is first rounded to float32, as the C
    function receives it.

    Parameters
    ----------
    model : Network or ModelFile
        Layers with ``relu`` or ``linear`` activations only.
    X : array_like, shape (n, n_in)
    fixed : dict or format object
        ``{"bits": W, "frac_bits": F}``; see :func:`export_format`.
    return_codes : bool
        Return the int64 output codes instead of the float32 values.

    Returns
    -------
    ndarray, shape (n, n_out)
        float32 values ``code * 2^-F`` (or the codes).

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), "relu", weight=[[0.5], [0.25]], bias=[0.125])])
    >>> predict_fixed(net, [[0.5, 0.3]], {"bits": 8, "frac_bits": 4}).tolist()
    [[0.4375]]
    """
    net = _network(model)
    f = export_format(fixed)
    layers = _fixed_layers(net, f)
    x = as_samples(X, net.input_size, "X", dtype=np.float32)
    a, _ = _quantize(x, f)
    one = 1 << f.frac_bits
    clip_hi = min(one, f.code_max)
    for W, b, act in layers:
        acc = a @ W
        if b is not None:
            acc = acc + (b << f.frac_bits)
        q = _rhe_shift(acc, f.frac_bits)
        if act == "relu":
            q = np.maximum(q, 0)
        q = np.clip(q, f.code_min, f.code_max)
        if net.clip:
            q = np.clip(q, -one, clip_hi)
        a = q
    if return_codes:
        return a
    return np.ldexp(a.astype(np.float64), -f.frac_bits).astype(np.float32)


# -- the C header ----------------------------------------------------------------------------


def _c_float(v: float, single: bool) -> str:
    # hexadecimal literals are exact
    return float(v).hex() + ("f" if single else "")


def _c_array(ctype: str, name: str, values: np.ndarray, fmt: Any, per_line: int = 6) -> str:
    items = [fmt(v) for v in values.ravel().tolist()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};"


def _i64(v: int) -> str:
    return f"(INT64_C({v + 1}) - 1)" if v < 0 else f"INT64_C({v})"


def export_c_header(
    model: Any, path: str | os.PathLike | None, *, name: str = "linn_net", fixed: Any = None
) -> str:
    """Write a plain C99 header: the network's weights and ``NAME_predict``.

    The prediction function is ``void NAME_predict(const float *x, float *y)``.

    The header defines ``NAME_N_IN`` and ``NAME_N_OUT``, the parameters as ``static const``
    arrays (kernels row-major ``(n_in, n_out)``) and a ``static inline`` inference function
    (so several translation units may include it); it
    includes ``<math.h>`` and ``<stdint.h>`` (link with ``-lm``).

    * ``fixed=None``: float.  Weights exact (hexadecimal literals) in the network's dtype;
      each layer accumulates in double, applies its activation and, when the network clips,
      clamps to ``[-1, 1]``; outputs are rounded to float.  Agrees with ``predict`` within
      float32 rounding.  Every activation is supported.
    * ``fixed={"bits": W, "frac_bits": F}``: integer arithmetic as described in
      :mod:`linncore.io.export`, bit for bit equal to :func:`predict_fixed`; ``relu`` and
      ``linear`` layers only.

    Parameters
    ----------
    model : Network or ModelFile
    path : str or PathLike or None
        Where to write (atomically); None only returns the text.
    name : str
        C identifier prefix (letters, digits, underscores; default ``"linn_net"``).
    fixed : dict or format object, optional

    Returns
    -------
    str
        The header text.

    Examples
    --------
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), "relu", weight=[[0.5], [0.25]], bias=[0.125])])
    >>> text = export_c_header(net, None, name="tiny")
    >>> "static inline void tiny_predict(const float *x, float *y)" in text
    True
    """
    net = _network(model)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(
            f"name: expected a C identifier (letters, digits, _; at most 63), got {name!r}"
        )
    f = export_format(fixed) if fixed is not None else None
    guard = name.upper() + "_H_"
    widths = [net.input_size] + [layer.size_out for layer in net.layers]
    arch = " -> ".join([str(net.input_size)] + [f"{l.size_out} {l.activation}" for l in net.layers])
    head = [
        f"/* {name}: generated by linncore.export_c_header; do not edit.",
        f" * Network {arch}; outputs of every layer clipped to [-1, 1]: "
        f"{'yes' if net.clip else 'no'}.",
        " * Layer l:  a_{l+1} = "
        + ("clip(" if net.clip else "")
        + "act_l(a_l W_l + b_l)"
        + (", -1, 1)" if net.clip else ""),
        " * with the kernel W_l stored row-major as (n_in, n_out).",
    ]
    if f is None:
        single = net.dtype == np.float32
        ctype = "float" if single else "double"
        head.append(f" * Arithmetic: {ctype} parameters, double accumulation, float outputs. */")
    else:
        single = False
        ctype = _ctype(f)
        head += [
            f" * Arithmetic: {f} (code c means c * 2^-{f.frac_bits}), round half to even, "
            "saturation;",
            f" * accumulator int64 fixed<64,{64 - 2 * f.frac_bits}>, its bound checked at export. "
            "*/",
        ]
    lines = head + [
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <math.h>",
        "#include <stdint.h>",
        "",
        f"#define {name.upper()}_N_IN {net.input_size}",
        f"#define {name.upper()}_N_OUT {net.output_size}",
        "",
    ]
    if f is None:
        for l, layer in enumerate(net.layers):
            lines.append(
                _c_array(ctype, f"{name}_w{l}", layer.weight, lambda v: _c_float(v, single))
            )
            if layer.bias is not None:
                lines.append(
                    _c_array(ctype, f"{name}_b{l}", layer.bias, lambda v: _c_float(v, single))
                )
        lines.append("")
    else:
        fixed_layers = _fixed_layers(net, f)
        for l, (W, b, _) in enumerate(fixed_layers):
            lines.append(_c_array(ctype, f"{name}_w{l}", W, str, per_line=10))
            if b is not None:
                lines.append(_c_array(ctype, f"{name}_b{l}", b, str, per_line=10))
        one, half = 1 << f.frac_bits, (1 << f.frac_bits) >> 1
        lines += [
            "",
            f"/* c = sat(round_half_even(x * 2^{f.frac_bits})); NaN -> 0 (x * 2^F is exact in "
            "double) */",
            f"static inline int64_t {name}_quantize(float x)",
            "{",
            f"    double v = (double)x * {float(one).hex()};",
            "    if (v != v) return 0;",
            f"    if (v <= {float(f.code_min).hex()}) return {_i64(f.code_min)};",
            f"    if (v >= {float(f.code_max).hex()}) return {_i64(f.code_max)};",
            "    return (int64_t)nearbyint(v); /* the default rounding mode: to nearest, ties to "
            "even */",
            "}",
            "",
            f"/* round_half_even(acc / 2^{f.frac_bits}); |acc| < 2^63, so -acc cannot overflow */",
            f"static inline int64_t {name}_requantize(int64_t acc)",
            "{",
        ]
        if f.frac_bits == 0:
            lines += ["    return acc;", "}", ""]
        else:
            lines += [
                "    int64_t q, r;",
                f"    if (acc >= 0) q = acc / {_i64(one)};",
                f"    else q = -((-acc + {_i64(one - 1)}) / {_i64(one)});  /* floor */",
                f"    r = acc - q * {_i64(one)};  /* 0 <= r < 2^F */",
                f"    if (r > {_i64(half)} || (r == {_i64(half)} && q % 2 != 0)) q += 1;",
                "    return q;",
                "}",
                "",
            ]
    lines += [f"static inline void {name}_predict(const float *x, float *y)", "{"]
    maxw = max(widths)
    if f is None:
        lines += [
            f"    double a[{maxw}], b[{maxw}], s;",
            "    int i, j;",
            f"    for (i = 0; i < {net.input_size}; ++i) a[i] = (double)x[i];",
        ]
    else:
        lines += [
            f"    int64_t a[{maxw}], b[{maxw}], s;",
            "    int i, j;",
            f"    for (i = 0; i < {net.input_size}; ++i) a[i] = {name}_quantize(x[i]);",
        ]
    src, dst = "a", "b"
    for l, layer in enumerate(net.layers):
        n_in, n_out = layer.shape
        lines.append(f"    /* layer {l}: {layer.name}, {n_in} -> {n_out}, {layer.activation} */")
        lines.append(f"    for (j = 0; j < {n_out}; ++j) {{")
        if f is None:
            lines.append(
                "        s = "
                f"{'(double)' + name + '_b' + str(l) + '[j]' if layer.has_bias else '0.0'};"
            )
            lines.append(
                f"        for (i = 0; i < {n_in}; ++i) s += {src}[i] * (double){name}_w{l}[i * "
                f"{n_out} + j];"
            )
            if BY_NAME[layer.activation].c_code:
                lines.append(f"        {BY_NAME[layer.activation].c_code}")
            if net.clip:
                lines.append("        if (s < -1.0) s = -1.0; else if (s > 1.0) s = 1.0;")
        else:
            bias = f"(int64_t){name}_b{l}[j] * {_i64(1 << f.frac_bits)}" if layer.has_bias else "0"
            lines.append(f"        s = {bias};")
            lines.append(
                f"        for (i = 0; i < {n_in}; ++i) s += {src}[i] * (int64_t){name}_w{l}[i * "
                f"{n_out} + j];"
            )
            lines.append(f"        s = {name}_requantize(s);")
            if layer.activation == "relu":
                lines.append("        if (s < 0) s = 0;")
            lines.append(
                f"        if (s < {_i64(f.code_min)}) s = {_i64(f.code_min)}; else if (s > "
                f"{_i64(f.code_max)}) s = {_i64(f.code_max)};"
            )
            if net.clip:
                one = 1 << f.frac_bits
                lines.append(
                    f"        if (s < {_i64(-one)}) s = {_i64(-one)}; "
                    f"else if (s > {_i64(min(one, f.code_max))}) s = {_i64(min(one, f.code_max))};"
                )
        lines.append(f"        {dst}[j] = s;")
        lines.append("    }")
        src, dst = dst, src
    if f is None:
        lines.append(f"    for (j = 0; j < {net.output_size}; ++j) y[j] = (float){src}[j];")
    else:
        lines.append(
            f"    for (j = 0; j < {net.output_size}; ++j) "
            f"y[j] = (float)((double){src}[j] * {math.ldexp(1.0, -f.frac_bits).hex()});"
        )
    lines += ["}", "", f"#endif /* {guard} */", ""]
    text = "\n".join(lines)
    if path is not None:
        write_text_atomic(path, text)
    return text
