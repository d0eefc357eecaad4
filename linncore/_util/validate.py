"""The one family of checks of input values: API arguments, configuration and file fields.

Every check names what it checks (an argument, ``epochs``; a document path,
``network.layers[1].n_in``; a config key, ``[training] shuffle``), says what was expected and
what came, in one style::

    epochs: expected a non-negative integer, got the boolean true
    seed: expected a non-negative integer, got -1

What came is described by :func:`kind` (its type and a short quote) when its type is wrong,
and quoted by :func:`short` when only its value is.  One mistake, one error type:

- the wrong type (a boolean for a count, a float for an integer, a number for a flag) raises
  ``TypeError``;
- a wrong value of the right type (a negative count, a non-finite float, an unknown name)
  raises ``ValueError``;
- a field of a file raises the file format's own error for both: the caller passes
  ``error``, a callable that takes the message and returns the exception to raise (the
  error classes of the file readers, or a small function that builds one).

Examples
--------
>>> positive_int(3, "epochs")
3
>>> try:
...     positive_int(True, "epochs")
... except TypeError as exc:
...     print(exc)
epochs: expected a positive integer, got the boolean true
>>> class FileFormatError(ValueError):
...     pass
>>> try:
...     integer(70, "layers[0].n_in", lo=1, hi=64, error=FileFormatError)
... except FileFormatError as exc:
...     print(exc)
layers[0].n_in: expected an integer in [1, 64], got 70
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ErrorFactory",
    "as_float_array",
    "as_samples",
    "check_finite",
    "choice",
    "clip",
    "finite_float",
    "flag",
    "float_dtype",
    "integer",
    "items",
    "kind",
    "non_negative_int",
    "positive_int",
    "seed_value",
    "short",
    "string",
]

#: Builds the exception to raise from a message (an exception class will do).
ErrorFactory = Callable[[str], BaseException]

_QUOTE = 40


# -- what came ------------------------------------------------------------------------------
def short(value: Any, limit: int = _QUOTE) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages.

    Examples
    --------
    >>> short("x" * 1000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (1002 characters)"
    >>> short(10**4000)
    'an integer of 4001 digits'
    """
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, (bool, np.bool_))
        and abs(int(value)) > 10**30
    ):
        return f"an integer of {len(str(abs(int(value))))} digits"
    text = repr(value) if not isinstance(value, (bytes, bytearray)) else repr(bytes(value[:limit]))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def clip(text: str, limit: int = 200) -> str:
    """Message text cut to about ``limit`` characters (unquoted, unlike :func:`short`).

    Examples
    --------
    >>> clip("abc" * 100, 9)
    'abcabcabc... (300 characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def kind(value: Any) -> str:
    """What ``value`` is, for "expected ..., got ..." messages: its type and a short quote.

    Examples
    --------
    >>> kind("false"), kind(True), kind(5)
    ("the string 'false'", 'the boolean true', 'the integer 5')
    >>> kind([1, 2]), kind("x" * 100), kind({"a": 1})
    ('a list of 2 items', 'a string of 100 characters', 'an object of 1 key')
    """
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, numbers.Integral):
        return f"the integer {short(int(value))}"
    if isinstance(value, numbers.Real):
        return f"the number {short(float(value))}"
    if isinstance(value, str):
        if len(value) <= _QUOTE:
            return f"the string {value!r}"
        return f"a string of {len(value)} characters"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    return f"a {type(value).__name__}"


def _refuse(
    error: ErrorFactory | None, default: type[Exception], name: str, expected: str, got: str
) -> BaseException:
    """The exception of one refusal: ``error`` (a file format's) or ``default``."""
    return (error or default)(f"{name}: expected {expected}, got {got}")


def as_float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 ndarray, refusing non-numeric input."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(
            f"{name}: expected a numeric array, got {type(value).__name__} ({exc})"
        ) from None
    kind = arr.dtype.kind  # b, i, u, f: bool and real numbers; c: complex; others not numbers
    if kind not in "biuf":
        if kind == "c":
            raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise when ``arr`` holds NaN or inf, naming the first bad position."""
    if np.isfinite(arr).all():  # the common case in one pass; the details only on failure
        return
    bad = ~np.isfinite(arr)
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


# -- scalars --------------------------------------------------------------------------------
def _bound(b: int) -> str:
    """An integer bound as written: ``2**63 - 1`` rather than its 19 digits."""
    m = abs(b)
    for k, tail in ((m, ""), (m + 1, " - 1" if b >= 0 else " + 1")):
        if k >= 1 << 31 and k & (k - 1) == 0:
            return f"{'-' if b < 0 else ''}2**{k.bit_length() - 1}{tail}"
    return str(b)


def _int_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer in [{_bound(lo)}, {_bound(hi)}]"
    if lo == 1:
        return "a positive integer"
    if lo == 0:
        return "a non-negative integer"
    if lo is not None:
        return f"an integer >= {_bound(lo)}"
    if hi is not None:
        return f"an integer <= {_bound(hi)}"
    return "an integer"


def integer(
    value: Any,
    name: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    error: ErrorFactory | None = None,
) -> int:
    """``value`` as an ``int`` when it is an integer (not a boolean, not a float) in
    ``[lo, hi]``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (``error`` instead, when given).
    ValueError
        ``value`` is outside ``[lo, hi]`` (``error`` instead, when given).

    Examples
    --------
    >>> integer(np.int64(3), "k", lo=0, hi=5)
    3
    >>> try:
    ...     integer(1.0, "k", lo=1)
    ... except TypeError as exc:
    ...     print(exc)
    k: expected a positive integer, got the number 1.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise _refuse(error, TypeError, name, _int_range(lo, hi), kind(value))
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _refuse(error, ValueError, name, _int_range(lo, hi), short(v))
    return v


def positive_int(
    value: Any, name: str, hi: int | None = None, *, error: ErrorFactory | None = None
) -> int:
    """:func:`integer` of at least 1 (and at most ``hi``).

    Examples
    --------
    >>> positive_int(4, "batch_size")
    4
    """
    return integer(value, name, lo=1, hi=hi, error=error)


def non_negative_int(
    value: Any, name: str, hi: int | None = None, *, error: ErrorFactory | None = None
) -> int:
    """:func:`integer` of at least 0 (and at most ``hi``).

    Examples
    --------
    >>> non_negative_int(0, "epochs")
    0
    """
    return integer(value, name, lo=0, hi=hi, error=error)


def flag(value: Any, name: str, *, error: ErrorFactory | None = None) -> bool:
    """``value`` when it is a boolean (``True``/``False`` or a NumPy boolean).  A string such as
    ``"false"`` or ``"no"`` is refused (it would count as true), and so is ``1``.

    Examples
    --------
    >>> flag(np.bool_(False), "shuffle")
    False
    >>> try:
    ...     flag("no", "shuffle")
    ... except TypeError as exc:
    ...     print(exc)
    shuffle: expected true or false, got the string 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise _refuse(error, TypeError, name, "true or false", kind(value))
    return bool(value)


def seed_value(seed: Any, name: str = "seed") -> Any:
    """``seed`` when it is None, a Generator or a non-negative integer (NumPy's own message,
    "expected non-negative integer", named no argument).

    Examples
    --------
    >>> seed_value(None) is None, seed_value(7)
    (True, 7)
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return non_negative_int(seed, name)


def _float_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is None and hi is None:
        return "a finite number"
    if hi is None and lo == 0:
        return "a positive number" if lo_open else "a non-negative number"
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    return f"a number in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def finite_float(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    error: ErrorFactory | None = None,
) -> float:
    """``value`` as a finite ``float`` in the stated interval; integers are taken, booleans
    and strings are not.

    Raises
    ------
    TypeError
        ``value`` is not a real number (``error`` instead, when given).
    ValueError
        ``value`` is NaN, infinite, beyond the float range or outside the interval
        (``error`` instead, when given).

    Examples
    --------
    >>> finite_float(1, "noise", lo=0.0)
    1.0
    >>> try:
    ...     finite_float(1.0, "validation_split", lo=0.0, hi=1.0, hi_open=True)
    ... except ValueError as exc:
    ...     print(exc)
    validation_split: expected a number in [0.0, 1.0), got 1.0
    """
    expected = _float_range(lo, hi, lo_open, hi_open)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _refuse(error, TypeError, name, expected, kind(value))
    try:
        v = float(value)
    except OverflowError:  # an integer beyond the float range
        v = math.nan
    if not math.isfinite(v):
        raise _refuse(error, ValueError, name, "a finite number", short(value))
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        raise _refuse(error, ValueError, name, expected, short(value))
    return v


def choice(
    value: Any,
    options: dict[str, Any] | Sequence[str],
    name: str,
    *,
    any_case: bool = True,
    error: ErrorFactory | None = None,
) -> str:
    """``value`` lower-cased, when that is one of ``options`` (which are lower case); with
    ``any_case=False``, ``value`` itself, when it is one of ``options`` exactly.

    Examples
    --------
    >>> choice("ADAM", ["adam", "sgd"], "optimizer")
    'adam'
    >>> try:
    ...     choice("huber", ["mse", "mae"], "loss")
    ... except ValueError as exc:
    ...     print(exc)
    loss: expected one of 'mse', 'mae', got 'huber'
    """
    valid = ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise _refuse(error, TypeError, name, f"one of {valid}", kind(value))
    key = value.lower() if any_case else value
    if key not in options:
        raise _refuse(error, ValueError, name, f"one of {valid}", short(value))
    return key


def string(value: Any, name: str, *, error: ErrorFactory | None = None) -> str:
    """``value`` when it is a string.

    Examples
    --------
    >>> string("data.csv", "file")
    'data.csv'
    """
    if not isinstance(value, str):
        raise _refuse(error, TypeError, name, "a string", kind(value))
    return value


def items(
    value: Any,
    name: str,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    error: ErrorFactory | None = None,
) -> list:
    """``value`` as a list when it is a list or tuple of ``min_len`` to ``max_len`` items.

    Examples
    --------
    >>> items((1, 2), "seeds", min_len=1)
    [1, 2]
    """
    if not isinstance(value, (list, tuple)):
        raise _refuse(error, TypeError, name, "a list", kind(value))
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        if max_len is not None:
            expected = f"a list of {min_len} to {max_len} items"
        else:
            expected = "a non-empty list" if min_len == 1 else f"a list of at least {min_len} items"
        raise _refuse(error, ValueError, name, expected, kind(value) if value else "an empty list")
    return list(value)


def float_dtype(value: Any, name: str = "dtype") -> np.dtype:
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name}: expected 'float32' or 'float64', got {value!r}")
    return dt
