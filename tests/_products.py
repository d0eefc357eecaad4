"""What the product tests share: the build's compiler options, the shapes every product path
is checked on and their operands, the layouts A is read in, the ordered sum each path must
compute, and the C reference of the opt-in FMA products (test_products, test_emulated_cpus)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
from _cbuild import build_libraries, ptr

# The build's options for GCC and Clang (setup.py).
FLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-fPIC", "-shared"]

# Widths 1..100 around the block sizes (half a vector: 4 floats or 2 doubles; a vector: 8 or
# 4; two vectors, one AVX-512 vector: 16 or 8; two AVX-512 vectors: 32 or 16; strips of five
# and four rows; blocks of 40 float or 20 double
# rows; the narrow path's 4 vectors of rows: 32 or 16), the shapes of the networks trained in
# bench/ (batch 32), and sizes past the 2,048-element packing buffer of the narrow path.
SHAPES = [
    (1, 1, 1),
    (3, 5, 7),
    (4, 9, 16),
    (9, 3, 33),
    (17, 31, 5),
    (8, 64, 40),
    (32, 32, 1),
    (32, 64, 4),
    (32, 16, 1),
    (33, 7, 3),
    (31, 100, 6),
    (65, 17, 2),
    (100, 32, 1),
    (64, 32, 4),
    (16, 32, 7),
    (40, 80, 3),
    (100, 21, 5),
    (32, 100, 80),
    (32, 80, 100),
    (100, 32, 80),
    (32, 1, 32),
    (5, 47, 63),
    (7, 15, 12),
    (13, 2, 100),
    (47, 63, 99),
    (6, 10, 5),
    (5, 9, 3),
    (7, 33, 4),
    (8, 64, 4),  # a row part of the 4-output layer (8 rows)
    (41, 9, 17),  # one row past a block of 40 float rows (20 double ones)
    (44, 5, 24),  # a block of 40 as 5 x 8, then 4; 20 + 20 + 4 in float64
    (81, 3, 20),  # 40 + 40 + 1: a one-row strip after two blocks
    (11, 6, 9),  # 4 + 4 + 3: too few rows for fives
    (32, 64, 64),  # two AVX-512 vectors of floats, twice
    (8, 80, 64),  # a row part of the 100-80-64 layers
    (33, 40, 100),  # 3 x 32 + 4 float columns: one of each wide kind, then 16 bytes
    (12, 20, 47),  # 32 + 8 + 4 + 3 float columns, 16 + 16 + 8 + 4 + 3 double ones
]

# Every width from 1 to 100, each with its own number of rows and inner size.
WIDTHS = [(1 + (7 * N) % 67, 1 + (13 * N) % 45, N) for N in range(1, 101)]


def ordered_product(A: np.ndarray, M: np.ndarray) -> np.ndarray:
    """C = A M with each C[i][j] = ((0 + A[i,0] M[0,j]) + A[i,1] M[1,j]) + ..., rounded at
    every product and every sum in A's precision."""
    C = np.zeros((A.shape[0], M.shape[1]), A.dtype)
    for k in range(A.shape[1]):
        C = C + A[:, k : k + 1] * M[k : k + 1, :]
    return C


def operands(rows: int, K: int, N: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """A (rows, K) and M (K, N) of standard normal values, from a seed fixed by the shape."""
    rng = np.random.default_rng(rows * 10_000 + K * 100 + N)
    return rng.standard_normal((rows, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)


def layouts(A: np.ndarray) -> tuple[tuple[str, np.ndarray, int, int], ...]:
    """The same A stored three ways, as (label, array, row stride, column stride): row-major,
    transposed (x^T dz reads x this way), and with a row stride above K (no packing)."""
    rows, K = A.shape
    padded = np.zeros((rows, K + 3), A.dtype)
    padded[:, :K] = A
    return (
        ("row-major", A, K, 1),
        ("transposed", np.ascontiguousarray(A.T), 1, rows),
        ("row stride K + 3", padded, K + 3, 1),
    )


def product(fn, A: np.ndarray, ars: int, acs: int, M: np.ndarray, rows: int, K: int, N: int):
    """C from fn(A, ars, acs, M, C, rows, K, N) (lc_matmul's signature) through ctypes, C
    filled with NaN first."""
    C = np.full((rows, N), np.nan, M.dtype)
    i64 = ctypes.c_int64
    fn(ptr(A), i64(ars), i64(acs), ptr(M), ptr(C), i64(rows), i64(K), i64(N))
    return C


def fma_reference(out: Path):
    """The library of FMA_REFERENCE (ref_fma_f32, ref_fma_f64), built in out."""
    (out / "ref.c").write_text(FMA_REFERENCE)
    return build_libraries(out, [out / "ref.c"], {"fma": []}, REFERENCE_FLAGS, "ref")["fma"]


# The FMA products' reference: the same ordered sums with each term one call of the C library's
# fmaf / fma (correctly rounded), compiled without vector code or contraction.
FMA_REFERENCE = r"""
#include <math.h>
#include <stdint.h>
#define REF(NAME, REAL, FMA)                                                                   \
    void NAME(const REAL *A, int64_t ars, int64_t acs, const REAL *M, REAL *C, int64_t rows,  \
              int64_t K, int64_t N)                                                            \
    {                                                                                          \
        for (int64_t i = 0; i < rows; i++)                                                     \
            for (int64_t j = 0; j < N; j++) {                                                  \
                REAL c = 0;                                                                    \
                for (int64_t k = 0; k < K; k++) c = FMA(A[i * ars + k * acs], M[k * N + j], c); \
                C[i * N + j] = c;                                                              \
            }                                                                                  \
    }
REF(ref_fma_f32, float, fmaf)
REF(ref_fma_f64, double, fma)
"""
REFERENCE_FLAGS = [
    "-O1",
    "-std=c11",
    "-ffp-contract=off",
    "-fno-tree-vectorize",
    "-fPIC",
    "-shared",
]
