"""The product and activation-backward kernels give the same bits on every path.

lc_matmul chooses among register-blocked vector paths by shape (5 or 4 rows by two, one or
half a vector of columns; narrow products with vectors over rows, packing a row-major A
first), on x86-64 with GCC between an AVX2 and a baseline clone at load time, and an AVX-512
path for products of 16 float (8 double) columns or more where the CPU has AVX-512F; the
portable build (LC_PORTABLE=1) has the plain loops only.  Each path must compute every C[i][j]
as the same ordered sum over k from zero, and lc_act_backward the same elements with and
without its vectorized clip select.  csrc/ is compiled four times into shared libraries
(default: the AVX2 clone on a machine that has AVX2, and the AVX-512 path on one that has
that; LC_BASELINE_ONLY: the baseline clone alone; LC_PORTABLE: plain loops; LC_TEST_WIDE: the
AVX-512 path's source on any CPU, its 64-byte vectors lowered to narrower operations) and
called through ctypes; each result is compared byte for byte with the others and with a NumPy
reference of the same arithmetic (a rounded product added to a rounded sum, k in increasing
order).  The opt-in FMA products (lc_set_fma) are compared with the C library's fused sums in
the same order, and the builds that have none must refuse them.  Skipped without a C
compiler."""

from __future__ import annotations

import ctypes
import platform

import numpy as np
import pytest
from _cbuild import CSRC, KERNEL_SOURCES, build_libraries
from _cbuild import ptr as _ptr
from _products import (
    FLAGS,
    SHAPES,
    WIDTHS,
    fma_reference,
    layouts,
    operands,
    ordered_product,
    product,
)

MODES = {
    "default": [],
    "baseline": ["-DLC_BASELINE_ONLY=1"],
    "portable": ["-DLC_PORTABLE=1"],
    "wide": ["-DLC_TEST_WIDE=1"],
}
N_ACTIVATIONS = 7


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    sources = [CSRC / s for s in KERNEL_SOURCES]
    return build_libraries(tmp_path_factory.mktemp("products"), sources, MODES, FLAGS, "lc")


def _matmul(lib, sfx, A, ars, acs, M, rows, K, N):
    return product(getattr(lib, f"lc_matmul_{sfx}"), A, ars, acs, M, rows, K, N)


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
@pytest.mark.parametrize("rows,K,N", SHAPES)
def test_every_product_path_gives_the_ordered_sum(libs, sfx, dtype, rows, K, N):
    A, M = operands(rows, K, N, dtype)
    want = ordered_product(A, M)
    for mode, lib in libs.items():
        for label, src, ars, acs in layouts(A):
            got = _matmul(lib, sfx, src, ars, acs, M, rows, K, N)
            assert got.tobytes() == want.tobytes(), (mode, label)


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_every_product_width_from_1_to_100_matches(libs, sfx, dtype):
    rng = np.random.default_rng(3)
    for rows, K, N in WIDTHS:
        A = rng.standard_normal((rows, K)).astype(dtype)
        M = rng.standard_normal((K, N)).astype(dtype)
        want = ordered_product(A, M)
        for mode, lib in libs.items():
            got = _matmul(lib, sfx, A, K, 1, M, rows, K, N)
            assert got.tobytes() == want.tobytes(), (mode, rows, K, N)
            got = _matmul(lib, sfx, np.ascontiguousarray(A.T), 1, rows, M, rows, K, N)
            assert got.tobytes() == want.tobytes(), (mode, "transposed", rows, K, N)


def _values(dtype) -> np.ndarray:
    special = [0.0, -0.0, 1.0, -1.0, 1.0000001, -1.0000001, 2.0, -2.0, 0.5, np.inf, -np.inf]
    special += [np.nan, np.finfo(dtype).tiny, 1e30, -1e30]
    sweep = np.random.default_rng(9).standard_normal(2_001) * 1.5
    return np.concatenate([special, sweep]).astype(dtype)


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_activation_backward_with_and_without_clip_matches_on_every_path(libs, sfx, dtype):
    z = _values(dtype)
    rng = np.random.default_rng(4)
    da = rng.standard_normal(z.size).astype(dtype)
    i32, i64 = ctypes.c_int32, ctypes.c_int64
    for act in range(N_ACTIVATIONS):
        h = np.zeros_like(z)
        getattr(libs["portable"], f"lc_act_forward_{sfx}")(i32(act), _ptr(z), _ptr(h), i64(z.size))
        d = np.zeros_like(z)
        getattr(libs["portable"], f"lc_act_deriv_{sfx}")(
            i32(act), _ptr(z), _ptr(h), _ptr(d), i64(z.size)
        )
        one, zero = dtype(1), dtype(0)
        with np.errstate(invalid="ignore", over="ignore"):
            plain = {
                0: da,
                1: np.where(z > 0, da, zero),
                2: da * (one - h * h),
                3: da * (h * (one - h)),
            }.get(act, da * d)
            clipped = np.where(np.abs(h) <= 1, plain, zero)
        for clip, want in ((0, plain), (1, clipped)):
            for n in (1, 3, 7, 8, 9, 31, 33, z.size):
                for mode, lib in libs.items():
                    dz = np.full(n, np.nan, dtype)
                    getattr(lib, f"lc_act_backward_{sfx}")(
                        i32(act), i32(clip), _ptr(z), _ptr(h), _ptr(da), _ptr(dz), i64(n)
                    )
                    assert dz.tobytes() == want[:n].tobytes(), (mode, act, clip, n)


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_each_build_reports_the_products_it_runs(libs):
    got = {mode: lib.lc_products_path() for mode, lib in libs.items()}
    # LC_PRODUCTS_PLAIN, _VECTOR, _AVX2, _AVX512, _WIDE_TEST (csrc/lc_dense.h)
    assert got["portable"] == 0
    assert got["baseline"] == 1
    assert got["wide"] == 4
    flags = _cpu_flags()
    if platform.machine() == "x86_64" and flags is not None:
        assert got["default"] == (3 if "avx512f" in flags else 2 if "avx2" in flags else 1)
    else:
        assert got["default"] in (1, 2, 3)


def test_the_compiled_core_names_its_products():
    kernels = pytest.importorskip("linncore._core._kernels")
    names = {
        "AVX-512",
        "AVX2",
        "vector tiles, baseline instruction set",
        "plain loops",
        "AVX-512 tiles' source, compiled for the build's instruction set",
    }
    assert kernels.products_path() in names


LC_OK, LC_ERR_ARGS = 0, 4


@pytest.fixture(scope="module")
def fma_ref(tmp_path_factory):
    """The C library's fused ordered sums (tests/_products.py)."""
    return fma_reference(tmp_path_factory.mktemp("fma_reference"))


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_fma_products_give_the_fused_ordered_sum(libs, fma_ref, sfx, dtype):
    """With lc_set_fma(1), lc_matmul computes each C[i][j] as fma(A[i][K-1], M[K-1][j], ...
    fma(A[i][0], M[0][j], 0)): one rounding per term, the C library's fmaf / fma in the same
    order; turned off, the default products come back."""
    lib, ref = libs["default"], fma_ref
    if not lib.lc_fma_available():
        pytest.skip("no FMA products in this build or on this CPU")
    matmul, reference = getattr(lib, f"lc_matmul_{sfx}"), getattr(ref, f"ref_fma_{sfx}")
    differ = 0
    try:
        assert lib.lc_set_fma(1) == LC_OK and lib.lc_get_fma() == 1
        for shape in SHAPES + WIDTHS:
            A, M = operands(*shape, dtype)
            want = product(reference, A, shape[1], 1, M, *shape).tobytes()
            differ += want != ordered_product(A, M).tobytes()
            for label, src, ars, acs in layouts(A):
                got = product(matmul, src, ars, acs, M, *shape)
                assert got.tobytes() == want, (label, shape)
    finally:
        lib.lc_set_fma(0)
    assert differ > len(SHAPES)  # the fused sums are other bits on most shapes
    assert lib.lc_get_fma() == 0
    for shape in SHAPES + WIDTHS:  # off again: the default products
        A, M = operands(*shape, dtype)
        got = product(matmul, A, shape[1], 1, M, *shape)
        assert got.tobytes() == ordered_product(A, M).tobytes(), shape


def test_builds_without_fma_products_refuse_them(libs):
    for mode in ("portable", "baseline"):
        lib = libs[mode]
        assert lib.lc_fma_available() == 0, mode
        assert lib.lc_set_fma(1) == LC_ERR_ARGS and lib.lc_get_fma() == 0, mode
        assert lib.lc_set_fma(0) == LC_OK, mode
