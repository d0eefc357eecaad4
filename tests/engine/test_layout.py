"""A network's layers view its parameter vector where the kernels' layout table says."""

from __future__ import annotations

import numpy as np

from linncore import BatchNormalization, Dense, Network
from linncore._util.codes import LOSSES


def _offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // (
        base.itemsize
    )


def test_layers_and_gradients_sit_at_the_offsets_of_the_kernels_layout_table(engine):
    net = Network(
        [
            Dense((3, 5), "tanh", seed=0),
            BatchNormalization(),
            Dense((5, 4), "relu", has_bias=False, seed=1),
            Dense((4, 2), seed=2),
        ],
        dtype="float64",
    )
    table = engine.net_layout(net.spec)
    for row, layer, bn in zip(table, net.layers, net.batch_norms):
        w_at, b_at, g_at, s_at = (int(o) for o in row)
        assert np.shares_memory(layer.weight, net.theta)
        assert _offset(layer.weight, net.theta) == w_at
        assert (layer.bias is None) == (b_at < 0)
        if layer.bias is not None:
            assert _offset(layer.bias, net.theta) == b_at
        assert (bn is None) == (g_at < 0) == (s_at < 0)
        if bn is not None:
            assert _offset(bn.gamma, net.theta) == g_at
            assert _offset(bn.beta, net.theta) == g_at + layer.size_out
            assert _offset(bn.moving_mean, net.bn_state) == s_at
            assert _offset(bn.moving_variance, net.bn_state) == s_at + layer.size_out
    x = np.random.default_rng(0).uniform(-1, 1, (6, 3))
    _, grads = net.loss_and_grad(x, np.zeros((6, 2)))
    y = np.zeros((6, 2))
    _, flat, _ = engine.net_loss_grad(net.spec, net.theta, x, y, LOSSES["mse"])
    assert [g.shape for g in grads] == [(3, 5), (5,), (5,), (5,), (5, 4), (4, 2), (2,)]
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in grads]), flat)
