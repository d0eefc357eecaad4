"""The opt-in FMA products (lc_set_fma) give the FMA ordered sum on every shape.

With lc_set_fma(1), lc_matmul computes each C[i][j] as fma(A[i][K-1], M[K-1][j], ...
fma(A[i][0], M[0][j], 0)): one rounding per term.  csrc/ is compiled as the extension is and
compared byte for byte with a reference that calls the C library's fmaf / fma in the same
order (tests/_products.py), on every shape and width of test_products with A in three
layouts; the default products must come back when it is turned off, and where the build or
CPU has no FMA products lc_set_fma(1) must refuse and change nothing.  Skipped without a C
compiler."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from _cbuild import CSRC, KERNEL_SOURCES, build_libraries
from _cbuild import ptr as _ptr
from _products import FLAGS, FMA_REFERENCE, REFERENCE_FLAGS, SHAPES, WIDTHS, ordered_product

LC_OK, LC_ERR_ARGS = 0, 4


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    out = tmp_path_factory.mktemp("fma")
    core = build_libraries(
        out,
        [CSRC / s for s in KERNEL_SOURCES],
        {"default": [], "portable": ["-DLC_PORTABLE=1"]},
        FLAGS,
        "lc",
    )
    (out / "ref.c").write_text(FMA_REFERENCE)
    ref = build_libraries(out, [out / "ref.c"], {"fma": []}, REFERENCE_FLAGS, "ref")
    return core, ref["fma"]


def _call(fn, A, ars, acs, M, rows, K, N, dtype):
    C = np.full((rows, N), np.nan, dtype)
    i64 = ctypes.c_int64
    fn(_ptr(A), i64(ars), i64(acs), _ptr(M), _ptr(C), i64(rows), i64(K), i64(N))
    return C


def _cases(dtype):
    for rows, K, N in SHAPES + WIDTHS:
        rng = np.random.default_rng(rows * 10_000 + K * 100 + N)
        A = rng.standard_normal((rows, K)).astype(dtype)
        M = rng.standard_normal((K, N)).astype(dtype)
        Apad = np.zeros((rows, K + 3), dtype)
        Apad[:, :K] = A
        layouts = (
            ("row-major", A, K, 1),
            ("transposed", np.ascontiguousarray(A.T), 1, rows),
            ("row stride K + 3", Apad, K + 3, 1),
        )
        yield (rows, K, N), A, M, layouts


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_fma_products_give_the_fused_ordered_sum(libs, sfx, dtype):
    core, ref = libs
    lib = core["default"]
    if not lib.lc_fma_available():
        pytest.skip("no FMA products in this build or on this CPU")
    matmul, reference = getattr(lib, f"lc_matmul_{sfx}"), getattr(ref, f"ref_fma_{sfx}")
    differ = 0
    try:
        assert lib.lc_set_fma(1) == LC_OK and lib.lc_get_fma() == 1
        for shape, A, M, layouts in _cases(dtype):
            want = _call(reference, A, shape[1], 1, M, *shape, dtype).tobytes()
            differ += want != ordered_product(A, M).tobytes()
            for label, src, ars, acs in layouts:
                got = _call(matmul, src, ars, acs, M, *shape, dtype)
                assert got.tobytes() == want, (label, shape)
    finally:
        lib.lc_set_fma(0)
    assert differ > len(SHAPES)  # the fused sums are other bits on most shapes
    assert lib.lc_get_fma() == 0
    for shape, A, M, _ in _cases(dtype):  # off again: the default products
        got = _call(matmul, A, shape[1], 1, M, *shape, dtype)
        assert got.tobytes() == ordered_product(A, M).tobytes(), shape


def test_a_build_without_fma_products_refuses_them(libs):
    core, _ = libs
    lib = core["portable"]
    assert lib.lc_fma_available() == 0
    assert lib.lc_set_fma(1) == LC_ERR_ARGS
    assert lib.lc_get_fma() == 0
    assert lib.lc_set_fma(0) == LC_OK
