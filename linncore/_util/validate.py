"""Checks of user input, shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` naming the argument, what was expected and
what came, so that a bad call fails at the line that made it."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def as_float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 ndarray, refusing non-numeric input."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(
            f"{name}: expected a numeric array, got {type(value).__name__} ({exc})"
        ) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise when ``arr`` holds NaN or inf, naming the first bad position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: expected finite values, got {arr[where]} at index "
            f"{where if len(where) > 1 else where[0]}"
            f" ({int(bad.sum())} non-finite value(s) in all)"
        )


def as_samples(value: Any, width: int, name: str, *, dtype: Any = np.float64) -> np.ndarray:
    """A C-contiguous ``(n, width)`` array of finite samples in ``dtype``.

    A 1-D array is read as ``n`` samples when ``width`` is 1, and as one sample when its
    length equals ``width``."""
    arr = as_float_array(value, name)
    if arr.ndim == 1:
        if width == 1:
            arr = arr[:, None]
        elif arr.shape[0] == width:
            arr = arr[None, :]
        else:
            raise ValueError(
                f"{name}: expected samples of width {width}, got a 1-D array of length "
                f"{arr.shape[0]}"
            )
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (samples, {width}), got shape {arr.shape}")
    if arr.shape[1] != width:
        raise ValueError(
            f"{name}: expected {width} column(s), got {arr.shape[1]} (shape {arr.shape})"
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"{name}: expected at least one sample, got an empty array of shape {arr.shape}"
        )
    check_finite(arr, name)
    if np.dtype(dtype) == arr.dtype:
        return np.ascontiguousarray(arr)
    with np.errstate(over="ignore"):  # finite in float64 may overflow to inf in float32
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(out, f"{name} (as {np.dtype(dtype).name})")
    return out


def _shown(value: Any) -> str:
    """A bad value for a message: at most a few dozen characters of it."""
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and abs(int(value)) > 10**30
    ):
        return f"an integer of {len(str(abs(int(value))))} digits"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def positive_int(value: Any, name: str, hi: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < 1
        or (hi is not None and int(value) > hi)
    ):
        over = hi is not None and isinstance(value, numbers.Integral) and int(value) > hi
        bound = "a positive integer" + (f" of at most {hi}" if over else "")
        raise ValueError(f"{name}: expected {bound}, got {_shown(value)}")
    return int(value)


def non_negative_int(value: Any, name: str, hi: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < 0
        or (hi is not None and int(value) > hi)
    ):
        over = hi is not None and isinstance(value, numbers.Integral) and int(value) > hi
        bound = "a non-negative integer" + (f" of at most {hi}" if over else "")
        raise ValueError(f"{name}: expected {bound}, got {_shown(value)}")
    return int(value)


def flag(value: Any, name: str) -> bool:
    """``value`` when it is a boolean (``True``/``False`` or a NumPy boolean).  A string such as
    ``"false"`` or ``"no"`` is refused: it would count as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name}: expected True or False, got {_shown(value)} ({type(value).__name__})"
        )
    return bool(value)


def seed_value(seed: Any, name: str = "seed") -> Any:
    """``seed`` when it is None, a Generator or a non-negative integer (NumPy's own message,
    "expected non-negative integer", named no argument)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return non_negative_int(seed, name)


def finite_float(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float in the stated interval."""
    try:
        v = (
            float(value)
            if not isinstance(value, bool) and isinstance(value, numbers.Real)
            else math.nan
        )
    except OverflowError:  # an integer beyond the float range
        v = math.nan
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {_shown(value)}")
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        interval = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ValueError(f"{name}: expected a number in {interval}, got {_shown(value)}")
    return v


def choice(value: Any, options: dict[str, Any] | list[str], name: str) -> str:
    """``value`` lower-cased, when it is one of ``options``."""
    if not isinstance(value, str) or value.lower() not in options:
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name}: expected one of {valid}, got {_shown(value)}")
    return value.lower()


def float_dtype(value: Any, name: str = "dtype") -> np.dtype:
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name}: expected 'float32' or 'float64', got {value!r}")
    return dt
