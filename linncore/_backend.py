"""Which engine runs the kernels: the compiled core (``linncore._core``) or its NumPy twin.

``LINNCORE_BACKEND`` chooses, read once at import:

- unset or empty: the compiled core when it imports; otherwise the NumPy engine
  (``linncore._numpy.kernels``), which implements every kernel with the same names,
  signatures and semantics, with one :class:`NumpyBackendWarning` that quotes why the core
  did not import;
- ``native``: the compiled core or an ImportError that quotes why it did not import (for a
  deployment that must not fall back silently);
- ``numpy``: the NumPy engine, even when the core is built (no warning but the one saying so).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator
from types import ModuleType

__all__ = [
    "backend",
    "fma_available",
    "get_fma",
    "get_num_threads",
    "kernels",
    "set_fma",
    "set_num_threads",
    "use",
]

_ENV = "LINNCORE_BACKEND"
_THREADS_ENV = "LINNCORE_NUM_THREADS"

# What the two engines' results have in common, said wherever the NumPy engine is chosen.
_AGREEMENT = (
    "each kernel agrees with the compiled core's within floating-point rounding, but the "
    "roundings differ, so a long training drifts apart bit for bit (the same seed gives other "
    "final weights); training is also slower"
)


class NumpyBackendWarning(RuntimeWarning):
    """linncore is running on its NumPy engine instead of the compiled core."""


_native_error: ImportError | None = None


def _native() -> ModuleType | None:
    """The compiled core, or None when it does not import (the error kept in _native_error)."""
    global _native_error
    try:
        # import_module, not "from . import _core": while linncore itself is still being
        # imported, the latter reports a missing module as a circular import.
        core = importlib.import_module(f"{__package__}._core")
    except ImportError as exc:
        _native_error = exc
        return None
    return core


def _native_failure() -> str:
    exc = _native_error
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
    return f"the compiled core linncore._core did not import ({detail})"


def _numpy() -> ModuleType:
    from ._numpy import kernels as numpy_kernels

    return numpy_kernels


def _choose() -> tuple[str, ModuleType]:
    want = os.environ.get(_ENV, "").strip().lower()
    if want not in ("", "native", "numpy"):
        raise ValueError(f"{_ENV}: expected 'native', 'numpy' or nothing, got {want[:40]!r}")
    if want != "numpy":
        core = _native()
        if core is not None:
            return "native", core
        reason = _native_failure()
        if want == "native":
            raise ImportError(f"{_ENV}=native, but {reason}") from _native_error
        hint = f"; set {_ENV}=native to make this an error, {_ENV}=numpy to silence it"
    else:
        reason = f"{_ENV}=numpy is set"
        hint = ""
    warnings.warn(
        f"linncore runs on its NumPy engine because {reason}. Results: {_AGREEMENT}{hint}.",
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
            raise ValueError(
                f"{_THREADS_ENV}: expected a whole number of threads in [1, {MAX_THREADS}], "
                f"got {text[:40]!r}"
            )
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_threads = _default_threads()
_native_core = _native()
if _native_core is not None:
    _native_core.set_num_threads(_threads)


def set_num_threads(n: int) -> None:
    """Set how many threads the compiled core's parallel kernels may use.

    Training (each step of ``Network.fit``, ``LinnModel.fit_model`` and quantization-aware
    training) and the Hessian-vector products split their work into parts fixed by the
    problem's size, never by the thread count, and combine the parts in a fixed order, so
    results are the same bits for any ``n``.  A training step splits its batch's rows for the
    forward and backward passes, then the parameters for their gradient and the optimizer;
    steps too small to gain from a second thread (the tutorial's 1-32-32-32-1 network at
    batch 32), batch-normalised networks and quantization-aware training with stochastic
    rounding of inputs, accumulators or activations run on one thread, and with ``n = 1``
    every step runs unsplit (the same bits).  At most 8 threads work on one call.  The
    default is the number of CPUs this process may run on, or the environment variable
    ``LINNCORE_NUM_THREADS``.  Set ``n = 1`` when running many processes side by side (a
    sweep on a process pool).  The NumPy engine ignores it.

    The helper threads of a call wait, spinning, for about a millisecond after it returns, so
    that the next call (a fit's next epoch, the next ``hvp`` of a loop) finds them running;
    then they exit.  On Linux they are named ``linncore`` (``top -H``).  A process forked in
    that millisecond is safe: the child starts helpers of its own (Python 3.12 and later
    warn about forking while threads run).

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
    if isinstance(n, bool) or (not isinstance(n, (int,)) and not hasattr(n, "__index__")):
        raise TypeError(f"n: expected an integer number of threads, got {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= MAX_THREADS:
        shown = n if abs(n) < 10**12 else f"an integer of {len(str(abs(n)))} digits"
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


def fma_available() -> bool:
    """Whether the compiled core offers FMA products here (see :func:`set_fma`).

    True for a GCC build of the core on x86-64, running on a CPU with AVX2 and FMA; False
    elsewhere, and without the compiled core.

    Examples
    --------
    >>> import linncore
    >>> linncore.fma_available() in (True, False)
    True
    """
    core = _native()
    return core is not None and core.fma_available()


def set_fma(on: bool) -> None:
    """Make the compiled core's matrix products fused multiply-adds, or not (the default).

    By default every product term is a rounded multiply followed by a rounded add, as in the
    NumPy engine, so the same seed gives the same bits on every machine and in both engines.
    With ``set_fma(True)`` each term is one fused multiply-add, rounded once: other bits,
    differing from the default, from the NumPy engine and from machines without FMA, but still
    the same bits run to run and for any thread count on one machine.  It is faster where
    multiplies and adds compete for the same units: on Intel cores up to twice the products'
    speed; on the AMD Zen 3 this was measured on, the medium networks' products were
    1.15-1.19x faster.  It applies to every product of training, prediction and the Hessian
    code's forward and backward passes (the Hessian's own narrow products keep two roundings);
    the NumPy engine ignores it.  It holds for the whole process and is read at each product:
    set it before training, not during.

    Parameters
    ----------
    on : bool
        True for fused products.

    Raises
    ------
    ValueError
        ``on`` is True and :func:`fma_available` is False.

    Examples
    --------
    >>> import linncore
    >>> if linncore.fma_available():
    ...     linncore.set_fma(True)
    ...     assert linncore.get_fma()
    ...     linncore.set_fma(False)
    >>> linncore.get_fma()
    False
    """
    kind = type(on)
    if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):
        on = bool(on)  # a NumPy boolean scalar
    elif not isinstance(on, bool) and (not isinstance(on, int) or on not in (0, 1)):
        raise TypeError(f"on: expected True or False, got {kind.__name__} {repr(on)[:40]}")
    on = bool(on)
    core = _native()
    if core is None:
        if on:
            raise ValueError(
                f"on: the FMA products are the compiled core's, and {_native_failure()}"
            )
        return
    core.set_fma(on)


def get_fma() -> bool:
    """Whether the compiled core's products are fused multiply-adds (see :func:`set_fma`).

    Examples
    --------
    >>> import linncore
    >>> linncore.get_fma()
    False
    """
    core = _native()
    return core is not None and core.get_fma()


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
            raise ImportError(_native_failure()) from _native_error
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
