"""Losses by name.

``mse``
    Keras's ``"mse"``: the mean over outputs of the squared error, then the mean over the
    batch, ``sum r^2 / (B m)``.
``half_mse``
    ``0.5 / B * sum ||r||^2``: the loss whose Hessian for one dense layer has the closed form.
``mae``
    ``sum |r| / (B m)``.
"""

from __future__ import annotations

from typing import Any

from .._util.codes import LOSSES

__all__ = ["get", "ALIASES"]

ALIASES = {
    "mse": "mse",
    "mean_squared_error": "mse",
    "keras_mse": "mse",
    "half_mse": "half_mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
}


def get(loss: Any, name: str = "loss") -> str:
    """The canonical name of loss ``loss`` (``mse``, ``half_mse`` or ``mae``).

    Examples
    --------
    >>> get("mean_squared_error")
    'mse'
    """
    if isinstance(loss, str) and loss.lower() in ALIASES:
        return ALIASES[loss.lower()]
    valid = ", ".join(repr(k) for k in ALIASES)
    raise ValueError(f"{name}: expected one of {valid}, got {loss!r}")


def code(loss: str) -> int:
    return LOSSES[get(loss)]
