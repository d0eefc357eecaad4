"""Batch normalisation in the compiled core: Keras semantics, gradients, folding into .linn."""

from __future__ import annotations

import numpy as np
import pytest
from _numeric import fd_gradient

from linncore import (
    SGD,
    BatchNormalization,
    Dense,
    LinearBlockModel,
    LinearTeacherDataset,
    Network,
    get_linn,
    load_linn,
    save_model,
    train_instrumented,
)
from linncore.fixed.quantized import QuantizedNetwork


def _net(dtype="float64", clip=False, last_bn=False):
    layers = [
        Dense((3, 5), "tanh", seed=1),
        BatchNormalization(),
        Dense((5, 4), "relu", seed=2),
        BatchNormalization(momentum=0.9, epsilon=1e-2),
        Dense((4, 2), seed=3),
    ]
    if last_bn:
        layers.append(BatchNormalization())
    return Network(layers, clip=clip, dtype=dtype)


def _data(n=40, seed=0):
    r = np.random.default_rng(seed)
    X = r.uniform(-1, 1, (n, 3))
    return X, np.stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]], axis=1)


def test_layout_follows_keras(engine):
    net = _net()
    w = net.get_weights()
    assert [a.shape for a in w] == [
        (3, 5),
        (5,),
        (5,),
        (5,),
        (5,),
        (5,),
        (5, 4),
        (4,),
        (4,),
        (4,),
        (4,),
        (4,),
        (4, 2),
        (2,),
    ]
    np.testing.assert_array_equal(w[2], 1) and np.testing.assert_array_equal(
        w[5], 1
    )  # gamma, moving variance
    assert net.n_params == 3 * 5 + 5 + 10 + 5 * 4 + 4 + 8 + 4 * 2 + 2 and net.bn_state.shape == (
        18,
    )
    other = _net()
    w[4][:] = 0.25
    other.set_weights(w)
    assert np.all(other.batch_norms[0].moving_mean == 0.25)


def _reference_forward(net, X, training):
    """Keras's BatchNormalization written out: (a - mean) / sqrt(var + eps) * gamma + beta."""
    a = X
    stats = []
    for layer, bn in zip(net.layers, net.batch_norms):
        a = a @ layer.weight + layer.bias
        a = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v}[
            layer.activation
        ](a)
        if bn is not None:
            if training:
                mean, var = a.mean(axis=0), a.var(axis=0)
                stats.append((mean, var))
            else:
                mean, var = bn.moving_mean, bn.moving_variance
            a = (a - mean) / np.sqrt(var + bn.epsilon) * bn.gamma + bn.beta
    return a, stats


def test_training_uses_batch_statistics_and_moves_the_averages(engine):
    net = _net()
    X, Y = _data()
    bn0, bn1 = net.batch_norms[0], net.batch_norms[2 - 1]
    bn0.gamma[:] = [0.5, 1.5, 1.0, 2.0, 0.7]
    bn1.beta[:] = 0.1
    before = net.copy()
    _, stats = _reference_forward(before, X, training=True)
    # one full-batch SGD step with learning rate 0: parameters stay, statistics move once
    net.fit(X, Y, epochs=1, batch_size=len(X), optimizer=SGD(1e-30), shuffle=False, verbose=0)
    np.testing.assert_allclose(bn0.moving_mean, 0.01 * stats[0][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn0.moving_variance, 0.99 + 0.01 * stats[0][1], rtol=1e-12)
    np.testing.assert_allclose(
        bn1.moving_mean, 0.1 * stats[1][0], rtol=1e-12, atol=1e-15
    )  # momentum 0.9
    # inference uses the moving statistics
    np.testing.assert_allclose(
        net.predict(X), _reference_forward(net, X, training=False)[0], rtol=1e-12, atol=1e-14
    )
    # the training loss uses the batch's statistics
    out, _ = _reference_forward(before, X, training=True)
    assert before.loss(X, Y) == pytest.approx(np.mean((out - Y) ** 2), rel=1e-12)


def test_gradients_match_finite_differences_through_batch_normalisation(engine):
    net = _net()
    X, Y = _data(12)
    _, grads = net.loss_and_grad(X, Y, "mse")
    flat = np.concatenate([g.ravel() for g in grads])
    np.testing.assert_allclose(flat, fd_gradient(net, X, Y, "mse", h=1e-5), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_core_matches_the_numpy_twin_with_batch_normalisation(core, dtype):
    from linncore import _backend

    X, Y = _data(70)
    out = []
    for name in ("native", "numpy"):
        with _backend.use(name):
            net = _net(dtype)
            h = net.fit(X, Y, epochs=3, batch_size=16, verbose=0, seed=4, validation_split=0.2)
            out.append((net.theta.copy(), net.bn_state.copy(), h.history["val_loss"]))
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(out[0], out[1]):
        np.testing.assert_allclose(a, b, **tol)


def test_batch_normalised_network_folds_into_a_linn_document(engine):
    net = _net(clip=True)
    X, Y = _data(64)
    net.fit(X, Y, epochs=20, batch_size=16, verbose=0, seed=0)
    # the folded dense layers compute what the normalised network computes in inference
    folded = Network(
        [Dense(W.shape, act, weight=W, bias=b) for W, b, act in net.folded_layers()],
        clip=True,
        dtype="float64",
    )
    np.testing.assert_allclose(folded.predict(X), net.predict(X), rtol=1e-12, atol=1e-13)
    doc = get_linn(net, 1, 2, clip=True)
    assert len(doc["layers"]) == 3  # three dense layers, no normalisation layers
    expected = np.clip(folded.layers[1].weight, -1, 1).T.astype(np.float32)
    np.testing.assert_array_equal(np.array(doc["layers"][1]["weights"], dtype=np.float32), expected)
    assert load_linn(doc).predict(X).shape == (64, 2)


def test_batch_normalisation_after_the_last_layer_cannot_fold(engine):
    with pytest.raises(
        ValueError, match=r"rule: only dense layers.*after the last dense layer \(dense2\)"
    ):
        get_linn(_net(clip=True, last_bn=True), 1, 2)


def test_linear_block_model_with_batchnorm_trains_and_runs_instrumented(engine):
    ds = LinearTeacherDataset(128, 4, 2, seed=0)
    model = LinearBlockModel(ds, num_hidden=[8, 8], activation="relu", use_batchnorm=True, seed=0)
    assert sum(bn is not None for bn in model.network.batch_norms) == 2
    h = model.train(epochs=3, optimizer=SGD(0.05))
    assert np.isfinite(h.history["loss"][-1])
    hi = model.train_instrumented(epochs=1, compute_analytic_hessian=False, seed=0)
    assert np.all(np.isnan(hi.hessian_lambda_max)) and np.all(hi.finite == 1)
    with pytest.raises(ValueError, match="compute_analytic_hessian"):
        model.train_instrumented(epochs=1)


def test_model_files_keep_batch_normalisation_exactly(engine, tmp_path):
    from linncore import load_model
    from linncore.io.model_files import ModelFileError, from_json, to_json

    net = _net()
    X, Y = _data()
    net.fit(X, Y, epochs=2, verbose=0, seed=0)
    save_model(net, tmp_path / "m.json")
    back = load_model(tmp_path / "m.json").network
    for a, b in zip(back.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.batch_norms[2 - 1].momentum == 0.9 and back.batch_norms[1].epsilon == 1e-2
    bad = to_json(net).replace(
        '"momentum": 0.9,', '"momentum": 1.5,'
    )  # the second layer's (0.99 stays)
    with pytest.raises(
        ModelFileError,
        match=r"network.layers\[1\].batchnorm.momentum: expected a number in \[0, 1\]",
    ):
        from_json(bad)


def test_paths_without_batch_normalisation_support_say_so(engine, tmp_path):
    net = _net()
    X, Y = _data()
    with pytest.raises(ValueError, match="quantization-aware training.*batch normalisation"):
        net.fit(X, Y, verbose=0, precision={"default": {"weight": "fixed<8,1>"}})
    with pytest.raises(ValueError, match="quantized inference.*batch normalisation"):
        QuantizedNetwork(net)
    from linncore import hessian

    with pytest.raises(ValueError, match="the exact Hessian.*batch normalisation"):
        hessian.lambda_max(net, X, Y)
    with pytest.raises(ValueError, match="the exact Hessian.*batch normalisation"):
        hessian.hvp(net, X, Y, np.ones(net.n_params))
    with pytest.raises(ValueError, match="precision_dict"):
        train_instrumented(
            net, X, Y, compute_analytic_hessian=False, precision_dict={"default": {}}
        )


def test_batchnorm_placement_and_arguments_are_checked():
    with pytest.raises(ValueError, match=r"layers\[0\]: a BatchNormalization must follow a Dense"):
        Network([BatchNormalization(), Dense((1, 1))])
    with pytest.raises(ValueError, match=r"layers\[2\]: a BatchNormalization must follow a Dense"):
        Network([Dense((1, 1)), BatchNormalization(), BatchNormalization()])
    with pytest.raises(ValueError, match="epsilon"):
        BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(momentum=1.5)
