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

__all__ = ["backend", "kernels", "use"]

_ENV = "LINNCORE_BACKEND"


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
