"""The activation table: every activation's forward, derivatives and C expression in one row.

The NumPy engine's forward and backward passes, its Hessian kernels, the C-header export and
the activation lists of the API all read this table; the compiled core implements the same
rows in ``csrc/`` (``tests/test_activations.py`` compares the two engines on every row).
Codes are those of :mod:`linncore._util.codes`.

Each function takes the pre-activation ``z`` and, where it helps, ``h = act(z)``, and keeps
``z``'s dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._util.codes import ACTIVATIONS, LEAKY_SLOPE

__all__ = ["Activation", "TABLE", "BY_NAME", "INSTRUMENT", "lookup"]

Fn = Callable[[np.ndarray, np.ndarray], np.ndarray]
Chain = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Activation:
    """One activation.

    Attributes
    ----------
    name, code : str, int
        Its Keras name and its code shared with C.
    forward : callable
        ``forward(z)``: ``act(z)``.
    deriv, deriv2 : callable
        ``deriv(z, h)`` and ``deriv2(z, h)``: the first and second derivatives at ``z``, given
        ``h = act(z)``.
    c_code : str
        The C statement that applies it to a double ``s`` in an exported header ("" for none).
    instrument : bool
        Whether the Moku Neural Network instrument implements it.
    fast_chain : callable or None
        ``fast_chain(z, h, da)``: the bits of ``da * deriv(z, h)`` by a cheaper way, where the
        row has one (see :meth:`chain`).
    """

    name: str
    code: int
    forward: Callable[[np.ndarray], np.ndarray]
    deriv: Fn
    deriv2: Fn
    c_code: str
    instrument: bool
    fast_chain: Chain | None = None

    def chain(self, z: np.ndarray, h: np.ndarray, da: np.ndarray) -> np.ndarray:
        """``da * deriv(z, h)``, the chain rule through the activation (the backward pass).

        The result may be ``da`` itself (the linear row): callers do not write to it.
        """
        if self.fast_chain is not None:
            return self.fast_chain(z, h, da)
        return da * self.deriv(z, h)


def _one(z: np.ndarray) -> np.generic:
    return z.dtype.type(1)


def _zero(z: np.ndarray) -> np.generic:
    return z.dtype.type(0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _one(z) / (_one(z) + np.exp(-z))


def _softsign_d2(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    d = _one(z) + np.abs(z)
    return -np.sign(z) * (z.dtype.type(2) / (d * d * d))


def _softplus_d2(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)
    return s * (_one(z) - s)


def _relu(z: np.ndarray) -> np.ndarray:
    # z > 0 ? z : 0 (NaN and -0 give +0), by two cheap ufuncs: fmax(z, 0) is z where z > 0,
    # 0 where z < 0 or z is NaN, and +-0 at +-0; adding +0 leaves z > 0 as it is and turns
    # -0 into +0.
    h = np.fmax(z, _zero(z))
    h += _zero(z)
    return h


def _row(
    name: str, forward, deriv, deriv2, c_code: str, instrument: bool, fast_chain=None
) -> Activation:
    return Activation(
        name, ACTIVATIONS[name], forward, deriv, deriv2, c_code, instrument, fast_chain
    )


_ROWS = [
    _row(
        "relu",
        _relu,
        lambda z, h: (z > 0).astype(z.dtype),  # 0 at z = 0, as Keras
        lambda z, h: np.zeros_like(z),
        "s = s > 0.0 ? s : 0.0;",
        True,
        lambda z, h, da: da * (z > 0),  # da times 1.0 or 0.0, as with the float derivative
    ),
    _row(
        "tanh",
        np.tanh,
        lambda z, h: _one(z) - h * h,
        lambda z, h: -z.dtype.type(2) * h * (_one(z) - h * h),  # -2 t (1 - t^2)
        "s = tanh(s);",
        True,
    ),
    _row(
        "sigmoid",
        _sigmoid,
        lambda z, h: h * (_one(z) - h),
        lambda z, h: h * (_one(z) - h) * (_one(z) - z.dtype.type(2) * h),  # s (1-s)(1-2s)
        "s = 1.0 / (1.0 + exp(-s));",
        True,
    ),
    _row(
        "softsign",
        lambda z: z / (_one(z) + np.abs(z)),
        lambda z, h: _one(z) / ((_one(z) + np.abs(z)) * (_one(z) + np.abs(z))),
        _softsign_d2,  # -2 sgn(z) / (1 + |z|)^3
        "s = s / (1.0 + fabs(s));",
        True,
    ),
    _row(
        "linear",
        lambda z: z.copy(),
        lambda z, h: np.ones_like(z),
        lambda z, h: np.zeros_like(z),
        "",
        True,
        lambda z, h, da: da,  # da * 1 is da, bit for bit
    ),
    _row(
        "leaky_relu",
        lambda z: np.where(z > 0, z, z.dtype.type(LEAKY_SLOPE) * z),
        lambda z, h: np.where(z > 0, _one(z), z.dtype.type(LEAKY_SLOPE)),
        lambda z, h: np.zeros_like(z),
        f"s = s > 0.0 ? s : {LEAKY_SLOPE!r} * s;",
        False,
    ),
    _row(
        "softplus",
        lambda z: np.log1p(np.exp(-np.abs(z))) + np.where(z > 0, z, _zero(z)),
        lambda z, h: _sigmoid(z),
        _softplus_d2,  # s (1 - s), s = sigmoid(z)
        "s = log1p(exp(-fabs(s))) + (s > 0.0 ? s : 0.0);",
        False,
    ),
]

#: Rows by code.
TABLE: dict[int, Activation] = {row.code: row for row in _ROWS}
#: Rows by name, in the order of the API's lists (the instrument's five first).
BY_NAME: dict[str, Activation] = {row.name: row for row in _ROWS}
#: The activations the instrument implements, in the vendor's order.
INSTRUMENT: tuple[str, ...] = tuple(row.name for row in _ROWS if row.instrument)

assert sorted(TABLE) == sorted(ACTIVATIONS.values()), "every code needs exactly one row"


def lookup(act: int) -> Activation:
    """The row of code ``act``.

    Raises
    ------
    ValueError
        ``act`` is not a code.

    Examples
    --------
    >>> lookup(2).name
    'tanh'
    """
    row = TABLE.get(act) if isinstance(act, (int, np.integer)) else None
    if row is None:
        raise ValueError(f"act: expected a code in [0, {len(TABLE)}), got {act!r}")
    return row
