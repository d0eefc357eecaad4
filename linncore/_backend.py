"""Which engine runs the kernels: the compiled core (``linncore._core``) or its NumPy twin.

The compiled core is used when it imports and ``LINNCORE_BACKEND`` is not ``numpy``; otherwise
linncore runs on the NumPy engine (``linncore._numpy.kernels``), which implements every kernel
with the same names, signatures and semantics, and warns once.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from types import ModuleType
from typing import Iterator

__all__ = ["backend", "get_num_threads", "kernels", "set_num_threads", "use"]

_ENV = "LINNCORE_BACKEND"
_THREADS_ENV = "LINNCORE_NUM_THREADS"


class NumpyBackendWarning(RuntimeWarning):
    """linncore is running on its NumPy engine instead of the compiled core."""


def _native() -> ModuleType | None:
    try:
        from . import _core
    except ImportError:
        return None
    return _core


def _numpy() -> ModuleType:
    from ._numpy import kernels as numpy_kernels

    return numpy_kernels


def _choose() -> tuple[str, ModuleType]:
    want = os.environ.get(_ENV, "").strip().lower()
    if want not in ("", "native", "numpy"):
        raise ValueError(f"{_ENV}: expected 'native' or 'numpy', got {want!r}")
    if want != "numpy":
        core = _native()
        if core is not None:
            return "native", core
        reason = "the compiled core linncore._core is not built or failed to import"
        if want == "native":
            raise ImportError(f"{_ENV}=native, but {reason}")
    else:
        reason = f"{_ENV}=numpy is set"
    warnings.warn(
        f"linncore runs on its NumPy engine ({reason}); results are the same, training is slower",
        NumpyBackendWarning,
        stacklevel=3,
    )
    return "numpy", _numpy()


_name, _kernels = _choose()


#: The most threads :func:`set_num_threads` accepts (the core's count is a C int).
MAX_THREADS = 4096


def _default_threads() -> int:
    text = os.environ.get(_THREADS_ENV, "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"{_THREADS_ENV}: expected a whole number of threads in [1, {MAX_THREADS}], "
                             f"got {text[:40]!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_threads = _default_threads()
if _native() is not None:
    _native().set_num_threads(_threads)


def set_num_threads(n: int) -> None:
    """Set how many threads the compiled core's parallel kernels may use.

    The Hessian-vector products split their samples into parts fixed by the problem's size
    (never by the thread count) and add the parts' sums in a fixed order, so results are the
    same bits for any ``n``.  The default is the number of CPUs this process may run on, or
    the environment variable ``LINNCORE_NUM_THREADS``.  Set ``n = 1`` when running many
    processes side by side (a sweep on a process pool).  The NumPy engine ignores it.

    Parameters
    ----------
    n : int
        At least 1.

    Examples
    --------
    >>> import linncore
    >>> before = linncore.get_num_threads()
    >>> linncore.set_num_threads(1)
    >>> linncore.get_num_threads()
    1
    >>> linncore.set_num_threads(before)
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"n: expected an integer number of threads, got {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= MAX_THREADS:
        shown = n if abs(n) < 10 ** 12 else f"an integer of {len(str(abs(n)))} digits"
        raise ValueError(f"n: expected 1 to {MAX_THREADS} threads, got {shown}")
    _threads = n
    core = _native()
    if core is not None:
        core.set_num_threads(n)


def get_num_threads() -> int:
    """How many threads the compiled core's parallel kernels may use (see :func:`set_num_threads`).

    Examples
    --------
    >>> import linncore
    >>> linncore.get_num_threads() >= 1
    True
    """
    core = _native()
    return core.get_num_threads() if core is not None else _threads


def backend() -> str:
    """Name of the engine in use.

    Returns
    -------
    str
        ``"native"`` for the compiled core, ``"numpy"`` for the NumPy engine.

    Examples
    --------
    >>> import linncore
    >>> linncore.backend() in ("native", "numpy")
    True
    """
    return _name


def kernels() -> ModuleType:
    """The module whose functions run the kernels of the engine in use."""
    return _kernels


@contextlib.contextmanager
def use(name: str) -> Iterator[ModuleType]:
    """Run the enclosed block on engine ``name`` (``"native"`` or ``"numpy"``); for tests.

    Raises
    ------
    ImportError
        When ``name`` is ``"native"`` and the compiled core is not available.
    """
    global _name, _kernels
    if name == "native":
        module = _native()
        if module is None:
            raise ImportError("the compiled core linncore._core is not available")
    elif name == "numpy":
        module = _numpy()
    else:
        raise ValueError(f"name: expected 'native' or 'numpy', got {name!r}")
    saved = _name, _kernels
    _name, _kernels = name, module
    try:
        yield module
    finally:
        _name, _kernels = saved
