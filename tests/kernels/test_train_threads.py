"""The training step on both cores: the same bits for every thread count, and the serial step's.

lc_train_epoch splits each batch into row parts and the parameter gradient and optimizer into
parameter ranges, both fixed by the problem's size; these tests run the same epochs at 1, 2, 3
and 8 threads and compare every output bit for bit (at 1 thread the epoch runs the serial step,
so these compare it with the parts too), and compare the parallel epoch with the
step composed from the serial kernels (lc_train_loss_grad, the optimizer increment,
lc_train_apply), which is the step of the epoch as it was before it had parts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from linncore._util.codes import LOSSES, OPT_ADAM, OPT_SGD, QAT_FIELDS, RAIL_NAMES
from linncore._util.kernel_args import OptimizerConfig, QuantConfig
from linncore.engine.network import NetSpec

ADAM = OptimizerConfig(
    OPT_ADAM, 1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, momentum=0.0, nesterov=False
)
SGD = OptimizerConfig(
    OPT_SGD, 0.05, beta_1=0.0, beta_2=0.0, epsilon=0.0, momentum=0.9, nesterov=True
)
THREADS = (1, 2, 3, 8)

# (widths, activations): the vendor's two medium networks (parallel at batch 32) and the
# tutorial network (serial at batch 32, parallel at batch 256)
NETS = {
    "medium1": ((100, 80, 64, 64, 32, 1), (1, 1, 1, 1, 2)),
    "medium2": ((4, 80, 80, 64, 64, 4), (1, 1, 1, 1, 0)),
    "small": ((1, 32, 32, 32, 1), (1, 1, 2, 0)),
}
F = {name: i for i, name in enumerate(QAT_FIELDS)}
STOCH, RND = 7, 2  # lc_rounding codes


def _quant(n_layers, fields, stoch=()):
    """16-bit formats (3 integer bits, saturating) on the named fields, stochastic rounding on
    those in stoch, nearest on the others."""
    fmts = np.zeros((n_layers, len(QAT_FIELDS), 5), np.int32)
    on = np.zeros((n_layers, len(QAT_FIELDS)), np.int32)
    for f in fields:
        on[:, F[f]] = 1
        fmts[:, F[f]] = (16, 3, 1, STOCH if f in stoch else RND, 0)
    return QuantConfig(fmts, on, seed=11, near_rail=0.9)


QUANTS = {
    "float": None,
    # per-row fields only: the whole step in parts, optimizer included
    "rows": ("input", "accumulator", "activation"),
    # every field: the kernels' quantization and the step's tail on the calling thread
    "all": tuple(QAT_FIELDS),
    # stochastic rounding of a per-row field: the serial step
    "stoch": ("input", "weight", "activation", "gradient"),
}


def _problem(net, dt, n=300, seed=5):
    sizes, acts = NETS[net]
    spec = NetSpec(
        np.array(sizes, np.int64),
        np.array(acts, np.int32),
        np.ones(len(acts), np.int32),
        True,
    )
    rng = np.random.default_rng(seed)
    P = sum((sizes[l] + 1) * sizes[l + 1] for l in range(len(acts)))
    theta = (rng.normal(size=P) * 0.2).astype(dt)
    X = rng.uniform(-1, 1, size=(n, sizes[0])).astype(dt)
    Y = rng.uniform(-1, 1, size=(n, sizes[-1])).astype(dt)
    return spec, theta, X, Y, rng.permutation(n).astype(np.int64)


def _qz(spec, name):
    fields = QUANTS[name]
    if fields is None:
        return None
    return _quant(len(spec.acts), fields, stoch=("input", "gradient") if name == "stoch" else ())


def _epochs(core, threads, spec, theta, X, Y, perm, *, opt, clip, quant, loss="mse", bs=32):
    """Three epochs (shuffled, stored order, shuffled) at the given thread count: every output."""
    before = core.get_num_threads()
    core.set_num_threads(threads)
    try:
        theta = theta.copy()
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        rail = None if quant is None else np.zeros((-(-len(X) // bs), len(RAIL_NAMES)))
        out, step = [], 0
        for e in range(3):
            status, loss_sum, n_done, step = core.train_epoch(
                spec,
                theta,
                X,
                Y,
                perm=None if e == 1 else perm,
                batch_size=bs,
                loss=LOSSES[loss],
                optimizer=opt,
                m=m,
                v=v,
                step=step,
                clip_params=clip,
                quant=quant,
                rail=rail,
            )
            out.append(np.array([status, loss_sum, n_done, step], np.float64))
            if rail is not None:
                out.append(rail.copy())
        return out + [theta, m, v]
    finally:
        core.set_num_threads(before)


@pytest.fixture
def keep_threads(core):
    """Restores the core's thread count after the test."""
    before = core.get_num_threads()
    yield
    core.set_num_threads(before)


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("net", ["medium1", "medium2"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("opt", [ADAM, SGD])
@pytest.mark.parametrize("clip", [False, True])
def test_float_epoch_same_bits_for_every_thread_count(core, net, dt, opt, clip):
    spec, theta, X, Y, perm = _problem(net, dt)
    runs = [
        _epochs(core, t, spec, theta, X, Y, perm, opt=opt, clip=clip, quant=None) for t in THREADS
    ]
    for r in runs[1:]:
        _assert_same(runs[0], r)
    assert not np.array_equal(runs[0][-3], theta)  # it trained


@pytest.mark.parametrize("net", ["medium1", "medium2", "small"])
@pytest.mark.parametrize("quant", ["rows", "all", "stoch"])
def test_qat_epoch_same_bits_for_every_thread_count(core, net, quant):
    spec, theta, X, Y, perm = _problem(net, np.float32)
    qz = _qz(spec, quant)
    runs = [
        _epochs(core, t, spec, theta, X, Y, perm, opt=ADAM, clip=True, quant=qz) for t in THREADS
    ]
    for r in runs[1:]:
        _assert_same(runs[0], r)


@pytest.mark.parametrize("loss", ["mse", "half_mse", "mae"])
@pytest.mark.parametrize("bs", [32, 256])
def test_small_network_and_other_losses_same_bits_for_every_thread_count(core, loss, bs):
    spec, theta, X, Y, perm = _problem("small", np.float32, n=700)
    runs = [
        _epochs(core, t, spec, theta, X, Y, perm, opt=ADAM, clip=True, quant=None, loss=loss, bs=bs)
        for t in THREADS
    ]
    for r in runs[1:]:
        _assert_same(runs[0], r)


def _serial_epoch(core, spec, theta, X, Y, perm, *, opt, clip, quant, bs):
    """One epoch composed from the serial kernels: per batch lc_train_loss_grad, the optimizer
    increment and lc_train_apply, the same arithmetic as the epoch's one step."""
    theta = theta.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    rails, loss_sum = [], 0.0
    for step, s in enumerate(range(0, len(X), bs)):
        idx = perm[s : s + bs]
        rail = np.zeros(len(RAIL_NAMES))
        status, value, grad = core.qat_loss_grad(
            spec, theta, X[idx], Y[idx], loss=LOSSES["mse"], quant=quant, step=step, rail=rail
        )
        assert status == 0
        delta = core.optim_delta(opt, grad, m, v, step + 1)
        status = core.qat_apply(
            spec, theta, delta, quant=quant, step=step, clip_params=clip, rail=rail
        )
        assert status == 0
        rails.append(rail)
        loss_sum += value * len(idx)
    return theta, m, v, loss_sum, np.array(rails)


@pytest.mark.parametrize("net", ["medium1", "medium2"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("quant", ["float", "rows", "all"])
def test_parallel_epoch_is_the_serial_step_bit_for_bit(core, net, dt, quant):
    spec, theta, X, Y, perm = _problem(net, dt, n=250)
    qz = _qz(spec, quant)
    want = _serial_epoch(core, spec, theta, X, Y, perm, opt=ADAM, clip=True, quant=qz, bs=32)
    before = core.get_num_threads()
    core.set_num_threads(2)
    try:
        got = theta.copy()
        m, v = np.zeros_like(got), np.zeros_like(got)
        rail = np.zeros((8, len(RAIL_NAMES)))
        status, loss_sum, n_done, step = core.train_epoch(
            spec,
            got,
            X,
            Y,
            perm=perm,
            batch_size=32,
            loss=LOSSES["mse"],
            optimizer=ADAM,
            m=m,
            v=v,
            step=0,
            clip_params=True,
            quant=qz,
            rail=rail,
        )
    finally:
        core.set_num_threads(before)
    assert (status, n_done, step) == (0, 250, 8)
    for x, y in zip((got, m, v), want[:3]):
        np.testing.assert_array_equal(x, y)
    assert loss_sum == want[3]
    if qz is not None:
        np.testing.assert_array_equal(rail, want[4])


def test_non_finite_loss_stops_at_the_same_batch_for_every_thread_count(core, keep_threads):
    spec, theta, X, Y, _ = _problem("medium1", np.float32)
    Y = Y.copy()
    Y[100] = np.nan  # the fourth batch of 32
    runs = []
    for t in THREADS:
        core.set_num_threads(t)
        th = theta.copy()
        m, v = np.zeros_like(th), np.zeros_like(th)
        out = core.train_epoch(
            spec,
            th,
            X,
            Y,
            perm=None,
            batch_size=32,
            loss=LOSSES["mse"],
            optimizer=ADAM,
            m=m,
            v=v,
            step=0,
            clip_params=False,
        )
        runs.append((out, th, m, v))
    for out, th, m, v in runs:
        assert out[0] == 1 and out[2] == 96 and out[3] == 3
        for x, y in zip((th, m, v), runs[0][1:]):
            np.testing.assert_array_equal(x, y)


def test_quantization_error_is_the_serial_one_for_every_thread_count(core, keep_threads):
    """An infinity under WRAP overflow in one row part: the step reruns serially and names the
    same error whatever the thread count."""
    spec, theta, X, Y, _ = _problem("medium1", np.float32)
    X = X.copy()
    X[70, 3] = np.inf
    qz = _quant(len(spec.acts), ("input",))
    qz.fmts[:, F["input"], 4] = 2  # LC_OVF_WRAP
    messages = set()
    for t in THREADS:
        core.set_num_threads(t)
        th = theta.copy()
        with pytest.raises(ValueError) as err:
            core.train_epoch(
                spec,
                th,
                X,
                Y,
                perm=None,
                batch_size=32,
                loss=LOSSES["mse"],
                optimizer=ADAM,
                m=np.zeros_like(th),
                v=np.zeros_like(th),
                step=0,
                clip_params=False,
                quant=qz,
            )
        messages.add(str(err.value))
    assert len(messages) == 1


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("bn", [False, True])
def test_forward_same_bits_for_every_thread_count_and_any_rows(core, keep_threads, dt, bn):
    spec, theta, X, _, _ = _problem("medium1", dt, n=3000)
    state = None
    if bn:  # batch normalisation of the second layer, inference with moving statistics
        L = len(spec.acts)
        spec = NetSpec(
            spec.sizes,
            spec.acts,
            spec.has_bias,
            True,
            bn=np.array([0, 1, 0, 0, 0], np.int32),
            bn_momentum=np.full(L, 0.9),
            bn_epsilon=np.full(L, 1e-3),
        )
        rng = np.random.default_rng(3)
        after = 101 * 80 + 81 * 64  # gamma and beta follow the second layer's bias
        gb = np.concatenate([rng.uniform(0.5, 1.5, 64), rng.normal(size=64) * 0.1]).astype(dt)
        theta = np.concatenate([theta[:after], gb, theta[after:]])
        state = np.concatenate([rng.normal(size=64), rng.uniform(0.5, 2, 64)]).astype(dt)
    outs = []
    for t in THREADS:
        core.set_num_threads(t)
        outs.append(core.net_forward(spec, theta, X, bn_state=state))
    for y in outs[1:]:
        np.testing.assert_array_equal(outs[0], y)
    core.set_num_threads(1)
    for lo, hi in ((0, 1), (7, 300), (2999, 3000)):  # rows alone give the same bits
        np.testing.assert_array_equal(
            core.net_forward(spec, theta, X[lo:hi], bn_state=state), outs[0][lo:hi]
        )


CSRC = Path(__file__).resolve().parents[2] / "csrc"

# Three epochs of the first medium network at 1 and 3 threads (float, per-row quantization,
# every field quantized: env FLOAT, QAT, QAT + ALLQ), then a forward pass; the two runs must
# agree bit for bit.
TSAN_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lc_dense.h"
#include "lc_parallel.h"

int main(void)
{
    int64_t sizes[] = {100, 80, 64, 64, 32, 1};
    int32_t acts[] = {1, 1, 1, 1, 2}, bias[] = {1, 1, 1, 1, 1};
    lc_net net = {0};
    net.n_layers = 5;
    net.sizes = sizes;
    net.acts = acts;
    net.has_bias = bias;
    net.clip_out = 1;
    const int64_t P = lc_net_n_params(&net), N = 600; /* forward: 3 chunks */
    lc_layer_offsets lay[5];
    lc_net_layout(&net, lay);
    lc_optim opt = {LC_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-7, 0, 0};
    static lc_fixfmt fm[5 * LC_QF_N];
    static int32_t on[5 * LC_QF_N];
    for (int i = 0; i < 5 * LC_QF_N; i++) {
        const int f = i % LC_QF_N;
        lc_fixfmt x = {16, 3, 1, 2, 0};
        fm[i] = x;
        on[i] = f == LC_QF_INPUT || f == LC_QF_ACCUMULATOR || f == LC_QF_ACTIVATION ||
                getenv("ALLQ") != NULL;
    }
    lc_qat q = {fm, on, 11, 0.9};
    lc_train t = {&net, lay, 0, &opt, 1, getenv("QAT") ? &q : NULL};
    float *theta[2], *m[2], *v[2], *out[2];
    float *X = malloc(sizeof(float) * N * 100), *Y = malloc(sizeof(float) * N);
    int64_t *perm = malloc(sizeof(int64_t) * N);
    srand(1);
    for (int64_t i = 0; i < N * 100; i++) X[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t i = 0; i < N; i++) {
        Y[i] = (float)rand() / RAND_MAX - 0.5f;
        perm[i] = (i * 37) % N;
    }
    for (int k = 0; k < 2; k++) {
        theta[k] = malloc(sizeof(float) * P);
        m[k] = calloc(P, sizeof(float));
        v[k] = calloc(P, sizeof(float));
        out[k] = malloc(sizeof(float) * N);
        srand(2);
        for (int64_t i = 0; i < P; i++) theta[k][i] = ((float)rand() / RAND_MAX - 0.5f) * 0.3f;
        lc_set_num_threads(k ? 3 : 1);
        int64_t step = 0, done = 0;
        double ls = 0;
        for (int e = 0; e < 3; e++) {
            const int64_t *p = e == 1 ? NULL : perm;
            int s = lc_train_epoch_f32(&t, theta[k], m[k], v[k], NULL, X, Y, N, p, 32, &step,
                                       NULL, &ls, &done);
            if (s) {
                printf("status %d\n", s);
                return 1;
            }
        }
        if (lc_net_forward_f32(&net, theta[k], NULL, X, N, out[k])) return 1;
    }
    const size_t bytes = sizeof(float) * (size_t)P;
    if (memcmp(theta[0], theta[1], bytes) || memcmp(m[0], m[1], bytes) ||
        memcmp(v[0], v[1], bytes) || memcmp(out[0], out[1], sizeof(float) * N)) {
        puts("DIFF");
        return 1;
    }
    puts("ok");
    return 0;
}
"""


@pytest.mark.parametrize("env", [{"FLOAT": "1"}, {"QAT": "1"}, {"QAT": "1", "ALLQ": "1"}])
def test_training_epoch_is_race_free_under_thread_sanitizer(tmp_path, env):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    if not (CSRC / "lc_dense.c").exists():
        pytest.skip("csrc/ is not beside the tests (installed package without sources)")
    (tmp_path / "epoch.c").write_text(TSAN_HARNESS)
    exe = tmp_path / "epoch"
    sources = ["lc_dense.c", "lc_parallel.c", "lc_optim.c", "lc_qat.c", "lc_fixed.c"]
    build = subprocess.run(
        # baseline only: ThreadSanitizer cannot start a program whose ifunc resolvers run
        # before it (target_clones)
        [cc, "-std=c11", "-O1", "-g", "-fsanitize=thread", "-DLC_BASELINE_ONLY"]
        + ["-ffp-contract=off", "-pthread", f"-I{CSRC}", str(tmp_path / "epoch.c")]
        + [str(CSRC / f) for f in sources]
        + ["-lm", "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build with -fsanitize=thread: {build.stderr.strip()[:200]}")
    run = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"TSAN_OPTIONS": "halt_on_error=1 exitcode=66", **env},
    )
    if run.returncode != 0 and "FATAL: ThreadSanitizer" in run.stderr:
        pytest.skip(f"ThreadSanitizer cannot run here: {run.stderr.strip()[:200]}")
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr[:4000]
    assert run.returncode == 0 and run.stdout.strip() == "ok", (
        run.returncode,
        run.stdout,
        run.stderr[:2000],
    )
