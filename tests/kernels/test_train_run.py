"""``prepare_train``: a fit's epochs over arrays checked once.

Each epoch of a run is ``train_epoch`` on the run's arrays (bit for bit, on each engine), its
validation loss ``net_loss``, its order what ``rng.shuffle(arange(N))`` gives (the same values
and the generator left in the same state, for every bit generator NumPy ships), and its undo
copy puts back theta, the moments and the batch-norm state exactly.  Both engines refuse the
same bad input with the same exception type.
"""

from __future__ import annotations

import numpy as np
import pytest
from _nets import net_of

from linncore import BatchNormalization, Dense, Network
from linncore._util.codes import LOSSES, OPT_ADAM, OPT_SGD
from linncore._util.kernel_args import OptimizerConfig

ADAM = OptimizerConfig(OPT_ADAM, 0.01, 0.9, 0.999, 1e-7, 0.0, False)
SGD_M = OptimizerConfig(OPT_SGD, 0.05, 0.0, 0.0, 0.0, 0.9, True)
BIT_GENERATORS = [
    np.random.PCG64,
    np.random.PCG64DXSM,
    np.random.MT19937,
    np.random.Philox,
    np.random.SFC64,
]


def _bn_net(dtype):
    layers = [Dense((3, 6), "tanh", seed=0), BatchNormalization(), Dense((6, 2), seed=1)]
    return Network(layers, dtype=dtype)


def _case(dtype, bn, n=45, n_val=9):
    net = _bn_net(dtype) if bn else net_of(dtype)
    r = np.random.default_rng(3)
    X = r.uniform(-1, 1, (n + n_val, 3)).astype(dtype)
    Y = np.tanh(X @ r.normal(size=(3, 2))).astype(dtype)
    return net, X[:n], Y[:n], X[n:], Y[n:]


def _state(net):
    return net.bn_state if net.has_batchnorm else None


def _bits(*arrays):
    return [a.view(np.uint32 if a.dtype == np.float32 else np.uint64).copy() for a in arrays]


def _same_bits(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def _prepare(engine, net, X, Y, **change):
    """prepare_train of net on (X, Y): batches of 8, MSE, fresh moments, clipped, net's
    batch-norm state; ``change`` replaces or adds arguments."""
    args = dict(
        batch_size=8,
        loss=LOSSES["mse"],
        m=np.zeros_like(net.theta),
        v=np.zeros_like(net.theta),
        clip_params=True,
        bn_state=_state(net),
    )
    args.update(change)
    return engine.prepare_train(engine.prepare_net(net.spec), net.theta, X, Y, **args)


@pytest.mark.parametrize("bit_generator", BIT_GENERATORS, ids=lambda g: g.__name__)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 566, 5000])
def test_shuffle_draws_what_generator_shuffle_draws(engine, bit_generator, n):
    net = net_of()
    X = np.zeros((n, 3), np.float32)
    Y = np.zeros((n, 2), np.float32)
    ours, numpys = (np.random.Generator(bit_generator(42)) for _ in range(2))
    for g in (ours, numpys):  # a used generator: a buffered 32-bit half, a moved state
        g.integers(0, 10, 3)
        g.random()
    run = _prepare(engine, net, X, Y, rng=ours)
    np.testing.assert_array_equal(run.perm, np.arange(n))  # the samples' order until shuffled
    for _ in range(3):
        run.shuffle()
        want = np.arange(n, dtype=np.int64)
        numpys.shuffle(want)
        np.testing.assert_array_equal(run.perm, want)
    assert repr(ours.bit_generator.state) == repr(numpys.bit_generator.state)
    assert ours.integers(0, 2**62) == numpys.integers(0, 2**62)


def test_perm_is_a_copy_so_the_order_cannot_be_corrupted(core):
    net = net_of()
    X = np.zeros((10, 3), np.float32)
    Y = np.zeros((10, 2), np.float32)
    run = _prepare(core, net, X, Y, batch_size=4, rng=np.random.default_rng(0))
    run.perm[:] = 10**9  # a copy: the order the kernel reads is unchanged
    np.testing.assert_array_equal(run.perm, np.arange(10))
    assert run.epoch(ADAM, 0)[2] == 10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bn", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
@pytest.mark.parametrize("opt", [ADAM, SGD_M], ids=["adam", "sgd-nesterov"])
def test_run_epochs_are_train_epoch_and_net_loss_bit_for_bit(engine, dtype, bn, shuffle, opt):
    net, X, Y, Xv, Yv = _case(dtype, bn)
    twin_net, *_ = _case(dtype, bn)
    desc = engine.prepare_net(net.spec)
    m, v = np.zeros_like(net.theta), np.zeros_like(net.theta)
    m2, v2 = np.zeros_like(net.theta), np.zeros_like(net.theta)
    rng, rng2 = np.random.default_rng(8), np.random.default_rng(8)
    run = _prepare(engine, net, X, Y, m=m, v=v, X_val=Xv, Y_val=Yv, rng=rng if shuffle else None)
    step = step2 = 0
    for _ in range(4):
        perm = None
        if shuffle:
            run.shuffle()
            perm = np.arange(X.shape[0], dtype=np.int64)
            rng2.shuffle(perm)
        status, loss_sum, n_done, step = run.epoch(opt, step)
        want = engine.train_epoch(
            desc,
            twin_net.theta,
            X,
            Y,
            perm=perm,
            batch_size=8,
            loss=LOSSES["mse"],
            optimizer=opt,
            m=m2,
            v=v2,
            step=step2,
            clip_params=True,
            bn_state=_state(twin_net),
        )
        step2 = want[3]
        assert (status, loss_sum, n_done, step) == want
        got_val = run.val_loss()
        want_val = engine.net_loss(
            desc, twin_net.theta, Xv, Yv, loss=LOSSES["mse"], bn_state=_state(twin_net)
        )
        assert got_val == want_val
    live = [net.theta, m, v] + ([net.bn_state] if bn else [])
    ref = [twin_net.theta, m2, v2] + ([twin_net.bn_state] if bn else [])
    assert _same_bits(_bits(*live), _bits(*ref))


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "batchnorm"])
def test_restore_puts_back_what_save_copied(engine, bn):
    net, X, Y, _, _ = _case("float32", bn)
    m, v = np.zeros_like(net.theta), np.zeros_like(net.theta)
    run = _prepare(engine, net, X, Y, m=m, v=v, rng=np.random.default_rng(1))
    live = [net.theta, m, v] + ([net.bn_state] if bn else [])
    run.shuffle()
    run.epoch(ADAM, 0)
    before = _bits(*live)
    run.save()
    run.shuffle()
    run.epoch(ADAM, 6)
    assert not _same_bits(_bits(*live), before)
    run.restore()
    assert _same_bits(_bits(*live), before)


def test_core_run_matches_twin_run(core, twin):
    out = []
    for mod in (core, twin):
        net, X, Y, Xv, Yv = _case("float64", False)
        run = _prepare(mod, net, X, Y, X_val=Xv, Y_val=Yv, rng=np.random.default_rng(4))
        perms, results = [], []
        for step in range(0, 18, 6):
            run.shuffle()
            perms.append(run.perm)
            results.append(run.epoch(ADAM, step) + (run.val_loss(),))
        out.append((perms, results, net.theta.copy()))
    (p_core, r_core, t_core), (p_twin, r_twin, t_twin) = out
    for a, b in zip(p_core, p_twin, strict=True):
        np.testing.assert_array_equal(a, b)  # the same draws on both engines
    for a, b in zip(r_core, r_twin, strict=True):
        assert a[0] == b[0] and a[2:4] == b[2:4]
        assert a[1] == pytest.approx(b[1], rel=1e-10) and a[4] == pytest.approx(b[4], rel=1e-10)
    np.testing.assert_allclose(t_core, t_twin, rtol=1e-10, atol=1e-12)  # float64 sums' order


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"batch_size": 0}, ValueError),
        ({"loss": 9}, ValueError),
        ({"rng": 5}, TypeError),
        ({"X_val": np.zeros((2, 3), np.float32)}, ValueError),
    ],
    ids=["batch_size", "loss", "rng", "X_val-alone"],
)
def test_both_engines_refuse_bad_arguments_alike(engine, change, error):
    net, X, Y, _, _ = _case("float32", False)
    with pytest.raises(error):
        _prepare(engine, net, X, Y, **change)


def test_a_batchnorm_run_needs_its_state_on_both_engines(engine):
    net, X, Y, _, _ = _case("float32", True)
    with pytest.raises(ValueError, match="bn_state"):
        _prepare(engine, net, X, Y, bn_state=None)


def test_shuffle_and_val_loss_need_what_they_read(engine):
    net, X, Y, _, _ = _case("float32", False)
    run = _prepare(engine, net, X, Y)
    with pytest.raises(ValueError, match="rng"):
        run.shuffle()
    with pytest.raises(ValueError, match="validation"):
        run.val_loss()
