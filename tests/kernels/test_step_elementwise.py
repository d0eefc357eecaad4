"""The training step's elementwise passes give the bits of the separate loops they replace.

The step's forward runs a layer's bias, activation and clip (or copy) as one epilogue (one
pass over each row for relu and linear), the bias gradient as column sums held in registers,
and a shuffled batch's gather as one loop of inline copies; each is compiled for AVX2 too.
Every value must come from the same IEEE operations in the same order as before:

- one layer through ``net_forward`` (the step's forward) against ``dense_forward``, whose
  separate passes are the reference, byte for byte, on widths that reach every vector block
  and tail, on special values (NaN, infinities, signed zeros, values at and beyond +-1);
- the kernel and bias gradients of ``net_loss_grad`` against ``dense_backward``'s;
- an epoch over a permutation against the same epoch over the rows copied in that order, on
  input and output widths that take each path of the gather, serial and in parts;
- csrc/ built with the baseline instruction set alone (LC_BASELINE_ONLY, through ctypes)
  against the compiled core, whose hot loops run their AVX2 copy on a machine with AVX2.
"""

from __future__ import annotations

import ctypes
import itertools

import numpy as np
import pytest
from _cbuild import CSRC, KERNEL_SOURCES, CNet, Optim, Train, build_libraries
from _cbuild import ptr as _ptr

from linncore._util.codes import ACTIVATIONS, LOSSES, OPT_ADAM
from linncore._util.kernel_args import OptimizerConfig
from linncore.engine.network import NetSpec

ACTS = sorted(ACTIVATIONS.values())
DTYPES = [np.float32, np.float64]
# widths: below one vector, at and past the 8-, 16- and 32-element blocks, a vendor width
WIDTHS = [1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 80, 100]
MSE = LOSSES["mse"]
ADAM = OptimizerConfig(
    OPT_ADAM, 1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-7, momentum=0.0, nesterov=False
)


def _spec(sizes, acts, bias, clip):
    return NetSpec(
        np.array(sizes, np.int64), np.array(acts, np.int32), np.array(bias, np.int32), clip
    )


def _special_inputs(dt, rows, n_in, seed):
    """Inputs of a layer whose pre-activations include NaN, infinities, signed zeros, +-1 and
    the floats next to them, and ordinary values of either sign."""
    r = np.random.default_rng(seed)
    X = r.uniform(-2.5, 2.5, (rows, n_in)).astype(dt)
    one = dt(1)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, np.nextafter(one, dt(2))]
    special += [np.nextafter(one, dt(0)), -np.nextafter(one, dt(2)), 1e30, -1e30, 1e-30]
    flat = X.reshape(-1)
    where = r.choice(flat.size, size=min(flat.size, 3 * len(special)), replace=False)
    flat[where] = np.resize(np.array(special, dt), where.size)
    return X


def _layer(dt, n_in, n_out, bias, seed):
    r = np.random.default_rng(seed)
    W = r.normal(0.0, 0.8, (n_in, n_out)).astype(dt)
    W[0, :: max(1, n_out // 3)] = 1.0  # some outputs pass an input's special value through
    b = r.normal(0.0, 0.5, n_out).astype(dt) if bias else None
    theta = np.concatenate([W.ravel(), b]) if bias else W.ravel().copy()
    return W, b, theta


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_step_forward_is_the_separate_passes_bit_for_bit(core, dt, act, clip, bias):
    for n_out in WIDTHS:
        X = _special_inputs(dt, 37, 3, seed=n_out)
        W, b, theta = _layer(dt, 3, n_out, bias, seed=100 + n_out)
        spec = _spec([3, n_out], [act], [int(bias)], clip)
        with np.errstate(all="ignore"):
            got = core.net_forward(spec, theta, X)
            z, _, a = core.dense_forward(X, W, b, act, clip)
        assert got.tobytes() == a.tobytes(), f"width {n_out}"
        assert np.isnan(z).any() and (np.abs(z) > 1).any()  # the special values reached it


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clip", [False, True])
def test_step_gradient_is_the_layer_kernels_bit_for_bit(core, rng, dt, act, clip):
    for n_out in WIDTHS:
        X = rng.uniform(-2.5, 2.5, (41, 5)).astype(dt)
        X[::7, 0] = 0.0
        W, b, theta = _layer(dt, 5, n_out, True, seed=n_out)
        Y = rng.uniform(-1, 1, (41, n_out)).astype(dt)
        spec = _spec([5, n_out], [act], [1], clip)
        value, grad, _ = core.net_loss_grad(spec, theta, X, Y, MSE)
        z, h, a = core.dense_forward(X, W, b, act, clip)
        want_value, da = core.loss_grad(MSE, a, Y)
        gW, gb, _ = core.dense_backward(X, W, z, h, da, act, clip, True, False)
        assert value == want_value
        assert grad[: W.size].tobytes() == gW.tobytes(), f"kernel, width {n_out}"
        assert grad[W.size :].tobytes() == gb.tobytes(), f"bias, width {n_out}"
        assert np.any(gb != 0)


@pytest.fixture
def threads(core):
    before = core.get_num_threads()
    yield core.set_num_threads
    core.set_num_threads(before)


# (input width, output width): the gather's inline loops (1-8 elements) and memcpy;
# the 100- and 300-input networks are large enough to run their steps in parts
@pytest.mark.parametrize("n_in,n_out", [(1, 1), (3, 2), (9, 5), (8, 7), (100, 1), (300, 3)])
@pytest.mark.parametrize("dt", DTYPES)
def test_epoch_over_a_permutation_is_the_epoch_over_the_rows_in_that_order(
    core, threads, n_in, n_out, dt
):
    r = np.random.default_rng(n_in)
    spec = _spec([n_in, 64, 64, n_out], [1, 2, 0], [1, 1, 1], True)
    P = n_in * 64 + 64 + 64 * 64 + 64 + 64 * n_out + n_out
    theta0 = r.normal(0.0, 0.2, P).astype(dt)
    N = 150  # a short last batch
    X = r.uniform(-1, 1, (N, n_in)).astype(dt)
    Y = r.uniform(-0.8, 0.8, (N, n_out)).astype(dt)
    perm = r.permutation(N).astype(np.int64)
    epoch = dict(batch_size=32, loss=MSE, optimizer=ADAM, clip_params=True, step=0)
    results = []
    for t, shuffled in ((1, False), (1, True), (2, True)):
        threads(t)
        theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
        if shuffled:
            out = core.train_epoch(spec, theta, X, Y, perm=perm, m=m, v=v, **epoch)
        else:
            Xp, Yp = np.ascontiguousarray(X[perm]), np.ascontiguousarray(Y[perm])
            out = core.train_epoch(spec, theta, Xp, Yp, perm=None, m=m, v=v, **epoch)
        assert out[0] == 0
        results.append((out, theta.tobytes(), m.tobytes(), v.tobytes()))
    assert results[1] == results[0]
    assert results[2] == results[0]
    assert results[0][1] != theta0.tobytes()


# ---- the baseline build against the compiled core's AVX2 copies ----------------------------

# The build's options for GCC and Clang (setup.py).
FLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-fPIC", "-shared"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """csrc/'s kernels with the hot loops for the baseline instruction set only."""
    sources = [CSRC / s for s in KERNEL_SOURCES]
    modes = {"baseline": ["-DLC_BASELINE_ONLY=1"]}
    return build_libraries(tmp_path_factory.mktemp("step"), sources, modes, FLAGS, "lc")["baseline"]


def _cnet(lib, spec: NetSpec) -> CNet:
    return CNet(lib, spec.sizes, spec.acts, spec.has_bias, spec.clip_out)


@pytest.mark.parametrize("dt,sfx", [(np.float32, "f32"), (np.float64, "f64")])
@pytest.mark.parametrize("clip", [False, True])
def test_baseline_forward_is_the_cores_bit_for_bit(core, baseline, dt, sfx, clip):
    for act in ACTS:
        for n_out in WIDTHS:
            X = _special_inputs(dt, 37, 3, seed=n_out)
            _, _, theta = _layer(dt, 3, n_out, True, seed=100 + n_out)
            spec = _spec([3, n_out], [act], [1], clip)
            with np.errstate(all="ignore"):
                want = core.net_forward(spec, theta, X)
            c = _cnet(baseline, spec)
            got = np.full_like(want, 7.0)
            status = getattr(baseline, f"lc_net_forward_{sfx}")(
                ctypes.byref(c.net), _ptr(theta), None, _ptr(X), ctypes.c_int64(37), _ptr(got)
            )
            assert status == 0
            assert got.tobytes() == want.tobytes(), f"activation {act}, width {n_out}"


@pytest.mark.parametrize("dt,sfx", [(np.float32, "f32"), (np.float64, "f64")])
@pytest.mark.parametrize("sizes", [(1, 32, 32, 32, 1), (100, 80, 64, 32, 3)])
def test_baseline_epoch_is_the_cores_bit_for_bit(core, threads, baseline, dt, sfx, sizes):
    r = np.random.default_rng(len(sizes) + sizes[0])
    acts = [1, 1, 2, 0][: len(sizes) - 1]
    spec = _spec(sizes, acts, [1] * (len(sizes) - 1), True)
    P = sum(a * b + b for a, b in itertools.pairwise(sizes))
    theta0 = r.normal(0.0, 0.3, P).astype(dt)
    N = 200
    X = r.uniform(-1, 1, (N, sizes[0])).astype(dt)
    Y = r.uniform(-0.8, 0.8, (N, sizes[-1])).astype(dt)
    perm = r.permutation(N).astype(np.int64)
    threads(1)
    want, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    out = core.train_epoch(
        spec,
        want,
        X,
        Y,
        perm=perm,
        batch_size=32,
        loss=MSE,
        optimizer=ADAM,
        m=m,
        v=v,
        step=0,
        clip_params=True,
    )
    assert out[0] == 0
    c = _cnet(baseline, spec)
    opt = Optim(ADAM.kind, ADAM.learning_rate, ADAM.beta_1, ADAM.beta_2, ADAM.epsilon, 0.0, 0)
    train = Train(ctypes.pointer(c.net), _ptr(c.layout), MSE, ctypes.pointer(opt), 1, None)
    got, gm, gv = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    step, loss_sum, n_done = ctypes.c_int64(0), ctypes.c_double(0), ctypes.c_int64(0)
    status = getattr(baseline, f"lc_train_epoch_{sfx}")(
        ctypes.byref(train),
        _ptr(got),
        _ptr(gm),
        _ptr(gv),
        None,
        _ptr(X),
        _ptr(Y),
        ctypes.c_int64(N),
        _ptr(perm),
        ctypes.c_int64(32),
        ctypes.byref(step),
        None,
        ctypes.byref(loss_sum),
        ctypes.byref(n_done),
    )
    assert status == 0
    assert (loss_sum.value, n_done.value, step.value) == (out[1], out[2], out[3])
    assert got.tobytes() == want.tobytes()
    assert gm.tobytes() == m.tobytes() and gv.tobytes() == v.tobytes()
