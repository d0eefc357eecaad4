"""Build csrc/ (or a test's own C file against csrc/'s headers) into shared libraries, one per
set of preprocessor options, and open them with ctypes: the kernel tests that compare build
variants byte for byte (test_products, test_portable, test_vmath, test_step_elementwise) share
this, a typed pointer to an array's data (ptr), and the ctypes mirrors of the structures the
training kernels take (csrc/lc_dense.h, lc_optim.h).  Skips the test without a C compiler,
without csrc/ beside the tests, or when the library cannot be built."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

CSRC = Path(__file__).resolve().parents[1] / "csrc"
# The kernels' translation units (csrc/*.c without the Hessian's).
KERNEL_SOURCES = ["lc_dense.c", "lc_fixed.c", "lc_optim.c", "lc_parallel.c", "lc_qat.c"]

F64P = ctypes.POINTER(ctypes.c_double)
I64P = ctypes.POINTER(ctypes.c_int64)
I32P = ctypes.POINTER(ctypes.c_int32)
_CTYPES = {
    np.float32: ctypes.c_float,
    np.float64: ctypes.c_double,
    np.int64: ctypes.c_int64,
    np.int32: ctypes.c_int32,
}


def ptr(a: np.ndarray):
    """A ctypes pointer to a's data, typed by its dtype (float32, float64, int64, int32)."""
    return a.ctypes.data_as(ctypes.POINTER(_CTYPES[a.dtype.type]))


class Net(ctypes.Structure):
    """lc_net (csrc/lc_dense.h)."""

    _fields_ = [
        ("n_layers", ctypes.c_int64),
        ("sizes", I64P),
        ("acts", I32P),
        ("has_bias", I32P),
        ("clip_out", ctypes.c_int32),
        ("bn", I32P),
        ("bn_momentum", F64P),
        ("bn_epsilon", F64P),
    ]


class Optim(ctypes.Structure):
    """lc_optim (csrc/lc_optim.h)."""

    _fields_ = [
        ("kind", ctypes.c_int32),
        ("lr", ctypes.c_double),
        ("beta_1", ctypes.c_double),
        ("beta_2", ctypes.c_double),
        ("epsilon", ctypes.c_double),
        ("momentum", ctypes.c_double),
        ("nesterov", ctypes.c_int32),
    ]


class Train(ctypes.Structure):
    """lc_train (csrc/lc_dense.h)."""

    _fields_ = [
        ("net", ctypes.POINTER(Net)),
        ("layout", I64P),
        ("loss", ctypes.c_int32),
        ("opt", ctypes.POINTER(Optim)),
        ("clip_params", ctypes.c_int32),
        ("quant", ctypes.c_void_p),
    ]


class CNet:
    """A network as lc_net with its layout table from lib's lc_net_layout, the arrays it points
    into kept alive: widths, activation codes and bias flags per layer (no batch
    normalisation)."""

    def __init__(self, lib, sizes, acts, has_bias, clip_out: bool = False):
        self.sizes = np.ascontiguousarray(sizes, np.int64)
        self.acts = np.ascontiguousarray(acts, np.int32)
        self.bias = np.ascontiguousarray(has_bias, np.int32)
        L = len(self.acts)
        self.net = Net(L, ptr(self.sizes), ptr(self.acts), ptr(self.bias))
        self.net.clip_out = int(clip_out)
        self.layout = np.zeros((L, 4), np.int64)
        lib.lc_net_layout(ctypes.byref(self.net), ptr(self.layout))


def build_libraries(
    out: Path,
    sources: Sequence[Path],
    modes: Mapping[str, Sequence[str]],
    flags: Sequence[str],
    prefix: str,
    compiler: str | None = None,
) -> dict[str, ctypes.CDLL]:
    """``{mode: library}``: ``sources`` compiled with ``flags`` and each mode's options into
    ``out/lib{prefix}_{mode}.so`` (``-I csrc``, linked with ``-lm``), by ``compiler`` (a
    command on PATH; skips without it) or the system's C compiler."""
    if compiler is not None:
        cc = shutil.which(compiler)
        if cc is None:
            pytest.skip(f"no {compiler} on PATH")
    else:
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    if not all(Path(s).exists() for s in sources):
        pytest.skip("csrc/ is not beside the tests (installed package without sources)")
    libs = {}
    for mode, extra in modes.items():
        path = out / f"lib{prefix}_{mode}.so"
        build = subprocess.run(
            [cc, *flags, *extra, f"-I{CSRC}", *map(str, sources), "-o", str(path), "-lm"],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            pytest.skip(f"cannot build a shared library here: {build.stderr.strip()[:200]}")
        libs[mode] = ctypes.CDLL(str(path))
    return libs
