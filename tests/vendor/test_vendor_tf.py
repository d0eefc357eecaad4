"""Optional: linncore against the vendor's own package (moku.nn on TensorFlow/Keras 3).

Skipped unless both TensorFlow and the vendor package are installed.  Both train the same
network from the same initial weights with ``shuffle=False``; the weights after every epoch
and the per-epoch losses must agree to float32 rounding (tolerances below)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import linncore

pytestmark = pytest.mark.optional
pytest.importorskip("tensorflow")
moku_nn = pytest.importorskip("moku.nn")

EPOCHS = 10
WEIGHT_ATOL = 2e-5  # float32 rounding, accumulated over EPOCHS * steps Adam updates
LOSS_RTOL = 1e-4


def _pair(layers, x, y, scale=True):
    vendor = moku_nn.LinnModel()
    vendor.set_training_data(x, y, scale=scale)
    vendor.construct_model(layers)
    ours = linncore.LinnModel()
    ours.set_training_data(x, y, scale=scale)
    ours.construct_model(layers)
    ours.set_weights(vendor.model.get_weights())
    return vendor, ours


@pytest.mark.parametrize(
    "layers",
    [
        [(32, "relu"), (32, "relu"), (32, "tanh"), (1, "linear")],
        [(8, "sigmoid"), (4, "softsign"), (1, "linear")],
    ],
)
def test_simple_sine_tracks_keras_epoch_by_epoch(layers):
    x = np.arange(0, 2 * np.pi, 0.01).reshape(-1, 1)
    y = np.cos(5 * x)
    vendor, ours = _pair(layers, x, y)
    np.testing.assert_array_equal(vendor.training_inputs, ours.training_inputs)
    for epoch in range(EPOCHS):
        hv = vendor.fit_model(1, validation_split=0.1, shuffle=False, verbose=0)
        ho = ours.fit_model(1, validation_split=0.1, shuffle=False, verbose=0)
        for a, b in zip(vendor.model.get_weights(), ours.get_weights()):
            np.testing.assert_allclose(b, a, atol=WEIGHT_ATOL, err_msg=f"epoch {epoch + 1}")
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(
                ho.history[key],
                hv.history[key],
                rtol=LOSS_RTOL,
                err_msg=f"{key}, epoch {epoch + 1}",
            )


def test_converters_write_the_same_document():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 3))
    vendor, ours = _pair([(1, "linear")], x, x @ np.array([[0.1], [0.2], [0.3]]) + 0.1, scale=False)
    vendor.model.layers[1].set_weights([np.array([[0.1], [0.2], [0.3]]), np.array([0.1])])
    ours.model.layers[1].set_weights([np.array([[0.1], [0.2], [0.3]]), np.array([0.1])])
    # the vendor exports get_linn only from its private module
    assert linncore.get_linn(ours, 3, 1) == moku_nn._linn.get_linn(vendor.model, 3, 1)


def test_identity_nn_notebook_gives_the_vendors_document_and_predictions(tmp_path):
    # 1-D data: the vendor reads its width from the last axis; so does linncore
    data = np.random.default_rng(3).uniform(-1, 1, 100)
    vendor, ours = _pair([(100, "linear")], data, data, scale=False)
    assert ours.network.input_size == vendor.model.input_shape[-1] == 100
    for m in (vendor.model.layers[1], ours.model.layers[1]):
        m.set_weights([np.identity(100), np.zeros(100)])
    moku_nn.save_linn(vendor, 1, 1, str(tmp_path / "vendor.linn"), output_mapping=[99])
    linncore.save_linn(ours, 1, 1, tmp_path / "ours.linn", output_mapping=[99])
    ours_doc = json.loads((tmp_path / "ours.linn").read_text())
    assert ours_doc == json.loads((tmp_path / "vendor.linn").read_text())
    np.testing.assert_array_equal(
        ours.predict(data.reshape(1, -1)), vendor.predict(data.reshape(1, -1), verbose=0)
    )


def test_1d_scaled_training_data_matches_the_vendors_scaling():
    data = np.random.default_rng(4).uniform(-3, 7, 50)
    vendor, ours = moku_nn.LinnModel(), linncore.LinnModel()
    vendor.set_training_data(data, 2.0 * data)
    ours.set_training_data(data, 2.0 * data)
    np.testing.assert_allclose(ours.training_inputs[0], vendor.training_inputs, atol=1e-12)
    np.testing.assert_allclose(ours.training_outputs[0], vendor.training_outputs, atol=1e-12)
