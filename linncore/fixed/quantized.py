"""Quantized inference: what integer hardware computes for a network under a precision config.

:class:`QuantizedNetwork` evaluates a :class:`~linncore.Network`, a
:class:`~linncore.LinnModel` or a ``.linn`` document with every tensor role at its stated
fixed-point format.  Per dense layer, with ``q_F`` the cast to format ``F`` (its rounding,
then its overflow mode):

1. ``x := q_input(x)``; ``W := q_weight(W)``; ``b := q_bias(b)``;
2. ``acc := q_accumulator(x W)``: the products and their sum on integer codes, either exact
   in a wide accumulator and rounded once (``accumulate="exact"``), or with every partial sum
   cast to the accumulator format as a fixed-width hardware accumulator does
   (``accumulate="saturate"``, in the order of the inputs);
3. ``y := q_activation(clip(act(acc + b), -1, 1))`` (the clip when the network clips).

A field without a format stays float64.  The sum ``acc + b`` and the activation are
evaluated in float64 on grid values; for formats up to 26 fraction bits the sum is exact, so
the whole pipeline is exact and reproducible bit for bit.

The vendor publishes no bit widths for the Moku Neural Network instrument.  The default
configuration :data:`INSTRUMENT_ASSUMPTIONS` is therefore an *assumption*, stated here and in
:meth:`QuantizedNetwork.summary`: signed 16-bit values on ``[-1, 1)`` (``fixed<16,1>``, ties
to even, saturating) for inputs, weights, biases and layer outputs, and a 32-bit accumulator
with 8 integer bits (``fixed<32,8>``: room for the sum of 100 products of magnitude below 1;
the products' 30 fraction bits are summed exactly and rounded once to 24).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from .._util.codes import ACTIVATIONS
from ..engine.network import Network
from .formats import FixedFormat, fixed_matmul, quantize
from .precision import PrecisionDict, ensure_precision_dict

__all__ = ["QuantizedNetwork", "INSTRUMENT_ASSUMPTIONS"]

#: The default precision config: an assumed model of the instrument's arithmetic.
INSTRUMENT_ASSUMPTIONS = {
    "default": {
        "input": "fixed<16,1,RND_CONV,SAT>",
        "weight": "fixed<16,1,RND_CONV,SAT>",
        "bias": "fixed<16,1,RND_CONV,SAT>",
        "accumulator": "fixed<32,8,RND_CONV,SAT>",
        "activation": "fixed<16,1,RND_CONV,SAT>",
    }
}
_FORWARD_FIELDS = ("input", "weight", "bias", "accumulator", "activation")

#: The format of every forward field of one layer (None: float64).
_Formats = dict[str, FixedFormat | None]
#: Saturation fraction per layer and quantized tensor, as ``predict(return_stats=True)`` gives.
_Stats = dict[str, dict[str, float]]


class _QuantizedLayer(NamedTuple):
    """One dense layer as the quantized network evaluates it, fixed at construction."""

    name: str  # the key of its formats and of its saturation statistics
    activation: str
    formats: _Formats
    weight: np.ndarray  # float64 values on the weight grid
    bias: np.ndarray | None  # float64 values on the bias grid; None for a layer without


# The reader of ``.linn`` documents.  This layer does not import the vendor workflow above it;
# ``linncore.vendor.linn_model`` registers its ``load_linn`` here.
_linn_reader: Callable[..., Network] | None = None


def _as_network(model: Any) -> Network:
    if isinstance(model, Network):
        return model
    inner = getattr(model, "network", None)
    if isinstance(inner, Network):  # LinnModel
        return inner
    if (
        isinstance(model, (str, dict)) or hasattr(model, "__fspath__")
    ) and _linn_reader is not None:
        return _linn_reader(model, dtype="float64")
    raise TypeError(
        f"model: expected a Network, a LinnModel or a .linn document, got {type(model).__name__}"
    )


class QuantizedNetwork:
    """A network evaluated in fixed-point arithmetic (see the module docstring).

    Parameters
    ----------
    model : Network, LinnModel, dict or path
        The network; a ``.linn`` document (dict or path) is read with :func:`load_linn`.
        Its parameters are taken as they are now (later training does not change this object).
    precision : PrecisionDict or dict, optional
        Formats per ``(layer, field)``; default :data:`INSTRUMENT_ASSUMPTIONS`.  The
        ``gradient`` and ``update`` fields are training-only and ignored here.
    accumulate : {"exact", "saturate"}
        How the accumulator adds: exactly then one cast (default), or a cast after every
        addition.

    Examples
    --------
    >>> import numpy as np
    >>> from linncore import Dense, Network
    >>> net = Network([Dense((2, 1), weight=[[0.5], [0.25]], bias=[0.1])], dtype="float64")
    >>> qn = QuantizedNetwork(net, {"default": {"input": "fixed<8,1>", "weight": "fixed<8,1>",
    ...                                         "bias": "fixed<8,1>", "activation": "fixed<8,1>"}})
    >>> qn.predict([[0.3, -0.7]])  # 38/128 * 0.5 - 90/128 * 0.25 + 13/128 = 9.5/128: a tie, to even
    array([[0.078125]])
    """

    def __init__(self, model: Any, precision: Any = None, accumulate: str = "exact") -> None:
        net = _as_network(model)
        net._refuse_batchnorm("quantized inference")
        self.network = (
            net.copy()
            if net.dtype == np.float64
            else Network([layer.copy() for layer in net.layers], clip=net.clip, dtype="float64")
        )
        if accumulate not in ("exact", "saturate"):
            raise ValueError(f"accumulate: expected 'exact' or 'saturate', got {accumulate!r}")
        self.accumulate = accumulate
        self.assumed = precision is None
        pd = ensure_precision_dict(INSTRUMENT_ASSUMPTIONS if precision is None else precision)
        # ensure_precision_dict gives None only for None, and it is never handed None here
        assert pd is not None
        names: list[str] = []
        for layer in self.network.layers:
            # Network names every unnamed layer (dense0, ...), and self.network was just built
            assert layer.name is not None
            names.append(layer.name)
        pd.validate(names)
        self.precision: PrecisionDict = pd
        self._layers: list[_QuantizedLayer] = []
        for name, layer in zip(names, self.network.layers):
            fm = {f: pd.dtype(name, f) for f in _FORWARD_FIELDS}
            W = layer.weight if fm["weight"] is None else quantize(layer.weight, fm["weight"])
            b = None
            if layer.bias is not None:  # a Dense layer has a bias exactly when has_bias
                b = layer.bias if fm["bias"] is None else quantize(layer.bias, fm["bias"])
            self._layers.append(
                _QuantizedLayer(
                    name,
                    layer.activation,
                    fm,
                    np.asarray(W, np.float64),
                    None if b is None else np.asarray(b, np.float64),
                )
            )

    def formats(self) -> list[dict[str, FixedFormat | None]]:
        """The format of every forward field, per layer."""
        return [dict(q.formats) for q in self._layers]

    @overload
    def predict(self, X: Any, return_stats: Literal[False] = False) -> np.ndarray: ...
    @overload
    def predict(self, X: Any, return_stats: Literal[True]) -> tuple[np.ndarray, _Stats]: ...
    @overload
    def predict(self, X: Any, return_stats: bool) -> np.ndarray | tuple[np.ndarray, _Stats]: ...

    def predict(self, X: Any, return_stats: bool = False) -> np.ndarray | tuple[np.ndarray, _Stats]:
        """Outputs of the quantized network (float64 values on the output grid).

        Parameters
        ----------
        X : array_like
            ``(n, n_in)`` inputs (a 1-D array as :meth:`Network.predict` reads it).
        return_stats : bool
            Also return, per layer, the saturation fraction of each quantized tensor
            (``{"dense0": {"input": 0.0, "accumulator": 0.01, ...}, ...}``).
        """
        a, _ = self.network._samples(X, None)
        stats: _Stats = {}
        for name, activation, fm, W, b in self._layers:
            st = stats.setdefault(name, {})
            if fm["input"] is not None:
                a, s = quantize(a, fm["input"], return_stats=True)
                st["input"] = s.saturation_fraction
            acc = self._product(a, W, fm)
            acc_fmt = fm["accumulator"]
            if acc_fmt is not None:
                if self._integer_path(fm):
                    st["accumulator"] = self._accumulator_saturation(a, W, acc_fmt)
                else:
                    acc, s = quantize(acc, acc_fmt, return_stats=True)
                    st["accumulator"] = s.saturation_fraction
            z = acc + b if b is not None else acc
            from .._backend import kernels

            h = kernels().act_forward(ACTIVATIONS[activation], np.ascontiguousarray(z))
            a = np.clip(h, -1, 1) if self.network.clip else h
            if fm["activation"] is not None:
                a, s = quantize(a, fm["activation"], return_stats=True)
                st["activation"] = s.saturation_fraction
            a = np.asarray(a, np.float64)
        return (a, stats) if return_stats else a

    def _accumulator_saturation(self, a: np.ndarray, W: np.ndarray, fmt: FixedFormat) -> float:
        """The fraction of dot products the accumulator's rails changed: exact mode, the sum
        outside the format; saturating mode, any running sum outside it (then clamped, as the
        accumulator does; products are exact in float64 for formats up to 26 bits)."""
        if self.accumulate == "exact":
            exact = a @ W
            return float(np.mean((exact < fmt.lo) | (exact > fmt.hi)))
        acc = np.zeros((a.shape[0], W.shape[1]))
        hit = np.zeros(acc.shape, dtype=bool)
        for k in range(W.shape[0]):
            acc = acc + a[:, k : k + 1] * W[k]
            out = (acc < fmt.lo) | (acc > fmt.hi)
            hit |= out
            acc = np.clip(acc, fmt.lo, fmt.hi)
        return float(np.mean(hit))

    @staticmethod
    def _integer_path(fm: _Formats) -> bool:
        return (
            fm["input"] is not None and fm["weight"] is not None and fm["accumulator"] is not None
        )

    def _product(self, a: np.ndarray, W: np.ndarray, fm: _Formats) -> np.ndarray:
        """x W: on integer codes into the accumulator format when input, weight and
        accumulator all have formats; otherwise in float64."""
        in_fmt, w_fmt, acc_fmt = fm["input"], fm["weight"], fm["accumulator"]
        if in_fmt is not None and w_fmt is not None and acc_fmt is not None:  # _integer_path
            codes = fixed_matmul(
                in_fmt.to_codes(a),
                in_fmt,
                w_fmt.to_codes(W),
                w_fmt,
                acc_fmt,
                accumulator=acc_fmt if self.accumulate == "saturate" else None,
            )
            return acc_fmt.from_codes(codes)
        if self.accumulate == "saturate" and fm["accumulator"] is not None:
            raise ValueError(
                "accumulate='saturate' needs input, weight and accumulator formats on every layer "
                "(a fixed-width accumulator adds integer codes)"
            )
        return a @ W

    def compare(self, X: Any) -> dict[str, float]:
        """How far the quantized outputs lie from the float network's on ``X``: max and RMS
        absolute difference, and the output format's lsb for scale."""
        q = self.predict(X)
        f = self.network.predict(X)
        d = q - f
        out_fmt = self._layers[-1].formats["activation"]
        return {
            "max_abs_error": float(np.max(np.abs(d))),
            "rms_error": float(np.sqrt(np.mean(d * d))),
            "output_lsb": float(out_fmt.lsb) if out_fmt is not None else float("nan"),
        }

    def summary(self) -> None:
        """Print :meth:`summary_text`, as :meth:`Network.summary` prints its table."""
        print(self.summary_text())

    def summary_text(self) -> str:
        """The formats of every layer and field, and the assumptions behind the defaults."""
        rows = [f"QuantizedNetwork: {self.network!r}; accumulation: {self.accumulate}"]
        if self.assumed:
            rows.append(
                "formats: linncore's ASSUMED model of the instrument (the vendor publishes no bit "
                "widths):"
            )
            rows.append(
                "  16-bit signed values on [-1, 1) (fixed<16,1>, ties to even, saturating) for "
                "inputs, weights,"
            )
            rows.append(
                "  biases and layer outputs; a 32-bit accumulator with 8 integer bits "
                "(fixed<32,8>) holding"
            )
            rows.append(
                "  sums of up to 100 products, rounded once.  Pass precision=... to model other "
                "hardware."
            )
        rows.append(f"{'layer':<8}" + "".join(f"{f:<27}" for f in _FORWARD_FIELDS))
        for q in self._layers:
            fm = q.formats
            rows.append(
                f"{q.name:<8}"
                + "".join(f"{(str(fm[f]) if fm[f] else 'float'):<27}" for f in _FORWARD_FIELDS)
            )
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"QuantizedNetwork({self.network!r}, accumulate={self.accumulate!r})"
