"""csrc/lc_vmath.h gives the same bits with and without vector types.

With vector types, the float32 tanh and sigmoid loops evaluate a shorter exp and fall back on
the defining functions where the rounding to float could differ; the portable build
(LC_PORTABLE=1, one lane) evaluates the defining functions alone.  Both are compiled here from
a few lines that call the loops, with the build's options, and compared byte for byte on a
million random float32 bit patterns (every float, all 2^32, is checked by bench/check_vmath.c)
and on float64 tanh.  Skipped without a C compiler."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from _cbuild import CSRC, build_libraries

FLAGS = ["-O2", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-Wno-psabi", "-fPIC"]
SHIM = r"""
#include <stdint.h>
#include "lc_vmath.h"
LC_HOT void vm_tanh_f32(const float *z, float *h, int64_t n) { LC_V4F_APPLY(tanh, z, h, n); }
LC_HOT void vm_sigmoid_f32(const float *z, float *h, int64_t n) { LC_V4F_APPLY(sigmoid, z, h, n); }
LC_HOT void vm_tanh_f64(const double *z, double *h, int64_t n)
{
    LC_V4D_APPLY(lc_tanh_f64_ways, z, h, n);
}
"""


@pytest.fixture(scope="module")
def shims(tmp_path_factory):
    if not (CSRC / "lc_vmath.h").exists():
        pytest.skip("csrc/ is not beside the tests (installed package without sources)")
    out = tmp_path_factory.mktemp("vmath")
    source = out / "shim.c"
    source.write_text(SHIM)
    modes = {"vector": [], "portable": ["-DLC_PORTABLE=1"]}
    return build_libraries(out, [source], modes, [*FLAGS, "-shared"], "vm")


def _run(lib, name: str, z: np.ndarray) -> np.ndarray:
    ctype = ctypes.c_float if z.dtype == np.float32 else ctypes.c_double
    h = np.zeros_like(z)
    getattr(lib, name)(
        z.ctypes.data_as(ctypes.POINTER(ctype)),
        h.ctypes.data_as(ctypes.POINTER(ctype)),
        ctypes.c_int64(z.size),
    )
    return h


@pytest.mark.parametrize("name", ["vm_tanh_f32", "vm_sigmoid_f32"])
def test_float32_loops_give_the_defining_functions_bits_on_random_bit_patterns(shims, name):
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32)
    z = np.concatenate([bits.view(np.float32), np.linspace(-30, 30, 100_003, dtype=np.float32)])
    for n in (z.size, 1, 3, 5, 31, 33):  # the tails of the loops too
        got = _run(shims["vector"], name, z[:n])
        want = _run(shims["portable"], name, z[:n])
        assert got.tobytes() == want.tobytes(), n


def test_float32_loops_work_in_place(shims):
    z = np.linspace(-12, 12, 1_001, dtype=np.float32)
    for name in ("vm_tanh_f32", "vm_sigmoid_f32"):
        want = _run(shims["portable"], name, z)
        h = z.copy()
        ptr = h.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        getattr(shims["vector"], name)(ptr, ptr, ctypes.c_int64(h.size))
        assert h.tobytes() == want.tobytes()


def test_float64_tanh_gives_the_same_bits_with_and_without_vector_types(shims):
    rng = np.random.default_rng(6)
    z = np.concatenate(
        [
            rng.integers(0, 2**63, size=200_000, dtype=np.int64).view(np.float64),
            rng.standard_normal(200_000) * 4.0,
            np.linspace(0.39, 0.41, 20_001),
        ]
    )
    z = np.concatenate([z, -z])
    got = _run(shims["vector"], "vm_tanh_f64", z)
    want = _run(shims["portable"], "vm_tanh_f64", z)
    assert got.tobytes() == want.tobytes()
