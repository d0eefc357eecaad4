"""The portable build of csrc/ (LC_PORTABLE=1: no vector types, no function clones, as on a
compiler without them) and the build that takes the products' AVX-512 path on any CPU
(LC_TEST_WIDE=1) give the same bits as the default build.

The dense kernels are compiled three times into shared libraries and called through ctypes on
the same inputs: every activation on special values and a dense sweep of floats, products of
awkward shapes, and whole training epochs of float32 and float64 networks, narrow and as wide
as the vendor's examples.  Outputs are compared byte for byte.  Skipped without a C
compiler."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from _cbuild import CSRC, KERNEL_SOURCES, CNet, Optim, Train, build_libraries
from _cbuild import ptr as _ptr
from _products import product

# The build's options for GCC and Clang (setup.py), at -O2: the bits must not depend on it.
FLAGS = ["-O2", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-fPIC", "-shared"]

N_ACTIVATIONS = 7


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The default, the portable and the wide-path library, as ctypes handles."""
    modes = {"default": [], "portable": ["-DLC_PORTABLE=1"], "wide": ["-DLC_TEST_WIDE=1"]}
    sources = [CSRC / s for s in KERNEL_SOURCES]
    return build_libraries(tmp_path_factory.mktemp("portable"), sources, modes, FLAGS, "lc")


def _special_and_sweep(dtype) -> np.ndarray:
    special = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        0.0625,
        -0.0625,
        0.06249,
        19.99,
        20.0,
        20.01,
        -20.0,
        88.0,
        -88.0,
        700.0,
        -700.0,
        701.0,
        -750.0,
        1e30,
        -1e30,
        np.inf,
        -np.inf,
        np.nan,
        np.finfo(dtype).tiny,
        np.finfo(dtype).max,
        -np.finfo(dtype).max,
    ]
    sweep = np.random.default_rng(7).standard_normal(20_003) * 6.0
    fine = np.linspace(-0.2, 0.2, 4_001)
    return np.concatenate([special, sweep, fine]).astype(dtype)


OTHER_BUILDS = ["portable", "wide"]


@pytest.mark.parametrize("build", OTHER_BUILDS)
@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_every_activation_gives_the_same_bits_in_every_build(builds, build, sfx, dtype):
    z = _special_and_sweep(dtype)
    for act in range(N_ACTIVATIONS):
        outs = []
        for lib in (builds["default"], builds[build]):
            h = np.zeros_like(z)
            d = np.zeros_like(z)
            getattr(lib, f"lc_act_forward_{sfx}")(
                ctypes.c_int32(act), _ptr(z), _ptr(h), ctypes.c_int64(z.size)
            )
            getattr(lib, f"lc_act_deriv_{sfx}")(
                ctypes.c_int32(act), _ptr(z), _ptr(h), _ptr(d), ctypes.c_int64(z.size)
            )
            outs.append((h, d))
        for got, want in zip(outs[1], outs[0]):
            assert got.tobytes() == want.tobytes(), f"activation {act} differs"


@pytest.mark.parametrize("build", OTHER_BUILDS)
@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_products_of_awkward_shapes_give_the_same_bits_in_every_build(builds, build, sfx, dtype):
    rng = np.random.default_rng(11)
    shapes = [(1, 1, 1), (3, 5, 7), (4, 9, 16), (9, 3, 33), (17, 31, 5), (8, 64, 40), (33, 40, 100)]
    for rows, K, N in shapes:
        A = rng.standard_normal((rows, K)).astype(dtype)
        M = rng.standard_normal((K, N)).astype(dtype)
        outs = [
            product(getattr(lib, f"lc_matmul_{sfx}"), A, K, 1, M, rows, K, N)
            for lib in (builds["default"], builds[build])
        ]
        assert outs[1].tobytes() == outs[0].tobytes(), (rows, K, N)


def _train(lib, sfx, dtype, acts, kind, sizes):
    sizes = np.array(sizes, np.int64)
    c = CNet(lib, sizes, acts, np.ones(3, np.int32))
    n_params = int(sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(3)))
    rng = np.random.default_rng(5)
    theta = (rng.standard_normal(n_params) * np.sqrt(1.0 / sizes[:-1].max())).astype(dtype)
    X = rng.uniform(-2, 2, (101, sizes[0])).astype(dtype)
    Y = np.stack([np.sin(X[:, 0]) * X[:, 1], np.tanh(X[:, 2])], axis=1).astype(dtype)
    opt = Optim(kind, 0.01, 0.9, 0.999, 1e-7, 0.9, 1)
    m = np.zeros(n_params, dtype)
    v = np.zeros(n_params, dtype)
    step = ctypes.c_int64(0)
    losses = []
    train = Train(ctypes.pointer(c.net), _ptr(c.layout), 0, ctypes.pointer(opt), 0, None)
    for _ in range(30):
        perm = rng.permutation(101).astype(np.int64)
        loss_sum, n_done = ctypes.c_double(0), ctypes.c_int64(0)
        status = getattr(lib, f"lc_train_epoch_{sfx}")(
            ctypes.byref(train),
            _ptr(theta),
            _ptr(m),
            _ptr(v),
            None,
            _ptr(X),
            _ptr(Y),
            ctypes.c_int64(101),
            _ptr(perm),
            ctypes.c_int64(16),
            ctypes.byref(step),
            None,
            ctypes.byref(loss_sum),
            ctypes.byref(n_done),
        )
        assert status == 0
        losses.append(loss_sum.value)
    return theta, m, v, np.array(losses)


@pytest.mark.parametrize("build", OTHER_BUILDS)
@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
@pytest.mark.parametrize("acts,kind", [([2, 3, 0], 1), ([6, 4, 0], 0), ([1, 5, 2], 1)])
@pytest.mark.parametrize("sizes", [[3, 13, 9, 2], [5, 70, 40, 2]])
def test_training_epochs_give_the_same_bits_in_every_build(
    builds, build, sfx, dtype, acts, kind, sizes
):
    default = _train(builds["default"], sfx, dtype, acts, kind, sizes)
    other = _train(builds[build], sfx, dtype, acts, kind, sizes)
    assert default[3][-1] < default[3][0]  # it trained
    for got, want in zip(other, default):
        assert got.tobytes() == want.tobytes()
