"""Parameter initialisers: ``f(shape, rng) -> ndarray`` (float64).

Names accepted wherever an initialiser is taken: ``glorot_uniform`` (Keras's default for
kernels), ``he_uniform`` (also ``kaiming``, Rockpool's default), ``uniform_sqrt`` (Rockpool's
bias default), ``zeros``, ``ones``.  A callable taking ``(shape)`` or ``(shape, rng)`` works
too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "glorot_uniform",
    "he_uniform",
    "kaiming",
    "uniform_sqrt",
    "zeros",
    "ones",
    "get",
    "call",
]

Initializer = Callable[..., np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform on ``[-r, r]``, ``r = sqrt(6 / (fan_in + fan_out))`` (Keras ``GlorotUniform``).

    Examples
    --------
    >>> w = glorot_uniform((3, 5), np.random.default_rng(0))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / 8)))
    True
    """
    fan_in, fan_out = _fans(shape)
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=shape)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform on ``[-r, r]``, ``r = sqrt(6 / fan_in)`` (Kaiming / He uniform).

    Examples
    --------
    >>> w = he_uniform((4, 2), np.random.default_rng(0))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / 4)))
    True
    """
    fan_in, _ = _fans(shape)
    r = np.sqrt(6.0 / fan_in)
    return rng.uniform(-r, r, size=shape)


kaiming = he_uniform


def uniform_sqrt(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform on ``[-sqrt(1/N), sqrt(1/N)]`` with ``N = shape[0]`` (Rockpool's bias default).

    Examples
    --------
    >>> b = uniform_sqrt((4,), np.random.default_rng(0))
    >>> bool(np.all(np.abs(b) <= 0.5))
    True
    """
    r = np.sqrt(1.0 / shape[0])
    return rng.uniform(-r, r, size=shape)


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None) -> np.ndarray:
    """All zeros (Keras's bias default)."""
    return np.zeros(shape)


def ones(shape: tuple[int, ...], rng: np.random.Generator | None = None) -> np.ndarray:
    """All ones."""
    return np.ones(shape)


_BY_NAME: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "he_uniform": he_uniform,
    "kaiming": he_uniform,
    "uniform_sqrt": uniform_sqrt,
    "zeros": zeros,
    "ones": ones,
}


def get(init: Any, name: str = "init") -> Initializer:
    """The initialiser named ``init`` (or ``init`` itself when callable)."""
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in _BY_NAME:
        return _BY_NAME[init.lower()]
    valid = ", ".join(repr(k) for k in _BY_NAME)
    raise ValueError(f"{name}: expected a callable or one of {valid}, got {init!r}")


def call(init: Initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Run ``init`` on ``shape``, passing ``rng`` when it takes a second argument."""
    try:
        n_args = len(inspect.signature(init).parameters)
    except (TypeError, ValueError):
        n_args = 2
    return np.asarray(init(shape, rng) if n_args >= 2 else init(shape), dtype=np.float64)
