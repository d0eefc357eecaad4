"""LinnModel, the Keras-shaped model view and .linn documents: the vendor's tutorial networks,
round trips, atomic writes and the vendor's own files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import linncore
from linncore import Dense, LinnModel, Network, get_linn, load_linn, save_linn
from linncore.vendor.linn_model import describe_linn

VENDOR = Path(__file__).resolve().parents[3] / "shared" / "data" / "vendor-linn"
VENDOR_FILES = ["Sum.linn", "Autoencoder.linn", "autoencoder_32.linn", "SigID.linn"]


def _f32(a):
    """What the vendor writes for an array: float(float32(value))."""
    return np.asarray(a, dtype=np.float32).tolist()


def _rows(doc):
    return [(np.array(l["weights"]).shape, l["activation"]) for l in doc["layers"]]


# -- the vendor's tutorials ---------------------------------------------------------------
def test_simple_sine_tutorial_trains_and_writes_its_document(tmp_path):
    x = np.arange(0, 2 * np.pi, 0.01)
    y = np.cos(5 * x)
    lm = LinnModel()
    lm.set_training_data(x.reshape(-1, 1), y.reshape(-1, 1))
    lm.construct_model([(32, "relu"), (32, "relu"), (32, "tanh"), (1, "linear")], seed=0)
    history = lm.fit_model(epochs=5, validation_split=0.1, verbose=0, seed=0)
    assert len(history.history["loss"]) == 5 and len(history.history["val_loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert lm.predict(x).shape == (629, 1)  # the tutorial predicts on the 1-D x
    save_linn(lm.model, 1, 1, tmp_path / "sine.linn")
    doc = json.loads((tmp_path / "sine.linn").read_text())
    assert list(doc) == ["version", "num_input_channels", "num_output_channels", "layers"]
    assert (doc["version"], doc["num_input_channels"], doc["num_output_channels"]) == ("0.1", 1, 1)
    assert _rows(doc) == [
        ((32, 1), "relu"),
        ((32, 32), "relu"),
        ((32, 32), "tanh"),
        ((1, 32), "linear"),
    ]
    kernels = lm.get_weights()[0::2]
    biases = lm.get_weights()[1::2]
    for layer, k, b in zip(doc["layers"], kernels, biases):
        assert list(layer) == ["activation", "weights", "biases"]
        assert layer["weights"] == _f32(k.T) and layer["biases"] == _f32(b)


def test_sum_tutorial_without_scaling_learns_the_weighted_sum():
    # the vendor's Sum.linn: y = 0.1 a + 0.2 b + 0.3 c + 0.1 on unscaled inputs
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (256, 3))
    y = x @ np.array([[0.1], [0.2], [0.3]]) + 0.1
    lm = LinnModel()
    lm.set_training_data(x, y, scale=False)
    lm.construct_model([(1, "linear")], optimizer=linncore.Adam(learning_rate=0.01), seed=0)
    lm.fit_model(epochs=100, verbose=0, seed=0)
    doc = get_linn(lm, input_channels=3, output_channels=1)
    assert doc["num_input_channels"] == 3 and _rows(doc) == [((1, 3), "linear")]
    np.testing.assert_allclose(doc["layers"][0]["weights"][0], [0.1, 0.2, 0.3], atol=0.01)
    np.testing.assert_allclose(doc["layers"][0]["biases"], [0.1], atol=0.01)


def test_identity_tutorial_weights_set_by_hand_through_the_layer_list():
    x = np.random.default_rng(2).uniform(-1, 1, (20, 100))
    lm = LinnModel()
    lm.set_training_data(x, x, scale=False)
    lm.construct_model([(100, "linear")], seed=0)
    lm.model.layers[1].set_weights([np.identity(100), np.zeros(100)])
    np.testing.assert_array_equal(
        lm.predict(x, scale=False, unscale_output=False), x.astype(np.float32)
    )
    doc = get_linn(lm.model, input_channels=1, output_channels=1, output_mapping=[99])
    assert _rows(doc) == [((1, 100), "linear")]
    assert doc["layers"][0]["weights"][0] == [0.0] * 99 + [1.0]
    assert doc["layers"][0]["biases"] == [0.0]


def test_identity_nn_notebook_sequence_reads_1d_data_as_one_sample(tmp_path):
    # the vendor's Identity_NN notebook, step by step: 1-D data of 100 values is one sample of 100
    data = np.random.default_rng(3).uniform(-1, 1, 100)
    lm = LinnModel()
    lm.set_training_data(data, data, scale=False)
    assert lm.training_inputs.shape == (1, 100) and lm.training_outputs.shape == (1, 100)
    lm.construct_model([(100, "linear")])
    assert lm.network.input_size == 100 and lm.network.output_size == 100
    lm.set_weights([np.identity(100), np.zeros(100)])
    path = save_linn(lm, 1, 1, tmp_path / "Identity.linn", output_mapping=[99])
    doc = json.loads(path.read_text())
    assert _rows(doc) == [((1, 100), "linear")]
    assert doc["layers"][0]["weights"][0] == [0.0] * 99 + [1.0]
    out = lm.predict(data.reshape(1, -1))
    assert out.shape == (1, 100)
    np.testing.assert_array_equal(out[0], data.astype(np.float32))
    np.testing.assert_array_equal(lm.predict(data), out)  # 1-D of the input width: one sample
    lm.fit_model(epochs=2, verbose=0, seed=0)  # one sample trains (the vendor's Keras refuses)


def test_1d_training_data_is_scaled_by_its_own_range_as_the_vendor_does():
    data = np.linspace(-5.0, 5.0, 11)
    lm = LinnModel()
    lm.set_training_data(data, 3.0 * data)
    np.testing.assert_allclose(lm.training_inputs[0], data / 5.0)
    np.testing.assert_allclose(lm.training_outputs[0], data / 5.0)
    lm.construct_model([(11, "linear")], seed=0)
    lm.set_weights([np.identity(11), np.zeros(11)])
    np.testing.assert_allclose(lm.predict(data)[0], 3.0 * data, rtol=1e-6, atol=1e-5)


def test_a_refused_scale_flag_leaves_data_and_scaling_as_they_were():
    # scale=0 used to be refused only after the data and scalings were replaced, leaving a
    # model marked scaled without scalings: predict answered in [-1, 1] units, summary failed
    x = np.linspace(0.0, 10.0, 20)[:, None]
    lm = LinnModel()
    lm.set_training_data(x, 2.0 * x)
    lm.construct_model([(1,)], seed=0)
    lm.set_weights([np.ones((1, 1)), np.zeros(1)])
    inputs, scaling = lm.training_inputs.copy(), lm.scaling()
    for bad in (0, "no"):
        with pytest.raises(TypeError, match="scale: expected true or false"):
            lm.set_training_data(x / 20.0, x / 20.0, scale=bad)
        np.testing.assert_array_equal(lm.training_inputs, inputs)
        assert lm.scaling() == scaling
        np.testing.assert_allclose(lm.predict([[5.0]]), [[10.0]], rtol=1e-6)
        assert "input column 0: [0, 10]" in lm.summary_text()


def test_1d_outputs_beside_2d_inputs_say_how_to_mean_samples():
    lm = LinnModel()
    with pytest.raises(ValueError, match=r"one sample of 40 columns.*reshape\(-1, 1\)"):
        lm.set_training_data(np.zeros((40, 2)), np.linspace(0, 1, 40))


def test_autoencoder_tutorial_with_output_mapping_keeps_the_last_neuron():
    x = np.sin(np.linspace(0, 20, 200)[:, None] + np.linspace(0, 1, 32)[None, :])
    lm = LinnModel()
    lm.set_training_data(x, x)
    lm.construct_model([(16, "tanh"), (2, "tanh"), (16, "tanh"), (32, "linear")], seed=3)
    lm.fit_model(epochs=2, verbose=0, seed=0)
    doc = get_linn(lm, 1, 1, output_mapping=[31])
    assert _rows(doc) == [
        ((16, 32), "tanh"),
        ((2, 16), "tanh"),
        ((16, 2), "tanh"),
        ((1, 16), "linear"),
    ]
    kernel, bias = lm.model.layers[7].get_weights()
    assert doc["layers"][-1]["weights"] == _f32(kernel[:, [31]].T) and doc["layers"][-1][
        "biases"
    ] == _f32(bias[[31]])


def test_signal_id_tutorial_serial_inputs_and_three_parallel_outputs():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(90, 80))
    y = np.eye(3)[rng.integers(0, 3, 90)]
    lm = LinnModel()
    lm.set_training_data(x, y)
    lm.construct_model([(64, "relu"), (32, "relu"), (8, "relu"), (3, "sigmoid")], seed=0)
    lm.fit_model(epochs=2, verbose=0, seed=0)
    doc = get_linn(lm, input_channels=1, output_channels=3)
    assert _rows(doc) == [
        ((64, 80), "relu"),
        ((32, 64), "relu"),
        ((8, 32), "relu"),
        ((3, 8), "sigmoid"),
    ]
    assert "column depth 196 of 1024" in lm.summary_text()


def test_emitter_control_tutorial_four_parallel_channels(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (64, 4))
    y = np.tanh(x @ rng.normal(size=(4, 4)))
    lm = LinnModel()
    lm.set_training_data(x, y)
    lm.construct_model(
        [(80, "relu"), (80, "relu"), (64, "relu"), (64, "relu"), (4, "linear")], seed=0
    )
    lm.fit_model(epochs=2, verbose=0, seed=0)
    path = save_linn(lm, 4, 4, tmp_path / "emitter.linn")
    doc = json.loads(path.read_text())
    assert (doc["num_input_channels"], doc["num_output_channels"]) == (4, 4)
    assert [l["activation"] for l in doc["layers"]] == ["relu"] * 4 + ["linear"]
    assert describe_linn(path)["layers"][0] == {"activation": "Relu", "inputs": 4, "outputs": 80}


# -- LinnModel behaviour --------------------------------------------------------------------
def _small(scale=True, n=40):
    x = np.linspace(0.0, 4.0, n)[:, None]
    lm = LinnModel()
    lm.set_training_data(x, 2.0 * x - 3.0, scale=scale) if scale else lm.set_training_data(
        x / 4, x / 4, scale=False
    )
    lm.construct_model([(8, "tanh"), (1,)], seed=0)
    return lm


def test_training_defaults_to_float32_like_keras():
    lm = _small()
    assert lm.network.dtype == np.float32 and all(w.dtype == np.float32 for w in lm.get_weights())


def test_width_only_layer_is_linear():
    lm = _small()
    assert lm.model_definition == [(8, "tanh"), (1, "linear")]


def test_scaling_maps_columns_to_unit_interval_and_predict_undoes_it():
    lm = LinnModel()
    lm.set_training_data([[0.0, 10.0], [2.0, 30.0]], [[5.0], [7.0]])
    np.testing.assert_array_equal(lm.training_inputs, [[-1.0, -1.0], [1.0, 1.0]])
    lm.construct_model([(1,)], seed=0)
    lm.set_weights([np.array([[1.0], [0.0]]), np.zeros(1)])
    np.testing.assert_allclose(lm.predict([[1.0, 99.0]]), [[6.0]])
    np.testing.assert_allclose(lm.predict([[0.5, 0.0]], scale=False, unscale_output=False), [[0.5]])


def test_boundaries_replace_min_and_max():
    lm = LinnModel()
    lm.set_training_data(
        [[1.0], [2.0]],
        [[1.0], [2.0]],
        input_data_boundary=([0.0], [4.0]),
        output_data_boundary=([0.0], [2.0]),
    )
    np.testing.assert_array_equal(lm.training_inputs.ravel(), [-0.5, 0.0])
    np.testing.assert_array_equal(lm.training_outputs.ravel(), [0.0, 1.0])


def test_constant_column_is_an_error_naming_the_column():
    lm = LinnModel()
    with pytest.raises(
        ValueError, match=r"training_inputs: column 1 is constant .*constant_columns='zero'"
    ):
        lm.set_training_data([[0.0, 3.0], [1.0, 3.0]], [[0.0], [1.0]])


def test_constant_column_maps_to_zero_when_asked_and_back_to_its_value():
    lm = LinnModel()
    lm.set_training_data([[0.0, 3.0], [1.0, 3.0]], [[2.0], [2.0]], constant_columns="zero")
    np.testing.assert_array_equal(lm.training_inputs[:, 1], [0.0, 0.0])
    lm.construct_model([(1,)], seed=0)
    np.testing.assert_array_equal(lm.predict([[0.5, 3.0]]), [[2.0]])


def test_validation_data_is_scaled_with_the_training_scaling():
    lm = _small()
    x_raw = np.linspace(0.0, 4.0, 40)
    history = lm.fit_model(
        epochs=1, validation_data=(x_raw, 2.0 * x_raw - 3.0), verbose=0, seed=0, shuffle=False
    )
    expected = lm.network.loss(lm.training_inputs, lm.training_outputs)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-6)


def test_es_config_restore_best_weights_synonym_and_unknown_key_warning():
    lm = _small()
    calls = []
    lm_cb = linncore.LambdaCallback(on_epoch_end=lambda e, logs: calls.append(lm.get_weights()))
    with pytest.warns(UserWarning, match=r"unknown key\(s\) \['min_delta'\]"):
        history = lm.fit_model(
            epochs=30,
            es_config={
                "monitor": "loss",
                "patience": 100,
                "restore_best_weights": True,
                "min_delta": 1.0,
            },
            verbose=0,
            seed=0,
            callbacks=[lm_cb],
        )
    best = int(np.argmin(history.history["loss"]))
    for got, want in zip(lm.get_weights(), calls[best]):
        np.testing.assert_array_equal(got, want)


def test_es_config_patience_counts_epochs_without_improvement():
    # a frozen network (a learning rate far below float32 resolution, fixed order) never
    # improves after its first epoch
    x = np.linspace(0.0, 4.0, 40)[:, None]
    lm = LinnModel()
    lm.set_training_data(x, 2.0 * x - 3.0)
    lm.construct_model([(8, "tanh"), (1,)], optimizer=linncore.SGD(learning_rate=1e-30), seed=0)
    history = lm.fit_model(
        epochs=50, es_config={"monitor": "loss", "patience": 3}, verbose=0, shuffle=False
    )
    assert len(history.history["loss"]) == 4


def test_monitoring_val_loss_without_validation_data_fails_before_training():
    lm = _small()
    before = lm.get_weights()
    with pytest.raises(ValueError, match="monitors 'val_loss' but there is no validation data"):
        lm.fit_model(epochs=3, es_config={"patience": 10}, verbose=0)
    for a, b in zip(before, lm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_model_refuses_unknown_keyword():
    with pytest.raises(TypeError, match=r"\['epoch'\]"):
        _small().fit_model(3, epoch=4)


def test_construct_model_checks_the_last_width_and_activations():
    lm = LinnModel()
    lm.set_training_data([[0.0], [1.0]], [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"last layer must have 2 neuron\(s\).*got 3"):
        lm.construct_model([(3, "relu")])
    with pytest.raises(
        ValueError, match=r"layer_definition\[0\] activation: expected one of .*got 'leaky_relu'"
    ):
        lm.construct_model([(2, "leaky_relu")])
    with pytest.raises(ValueError, match="call set_training_data first"):
        LinnModel().construct_model([(1,)])


def test_show_summary_prints_budget_channels_and_voltage_windows(capsys):
    lm = LinnModel()
    lm.set_training_data(np.linspace(-2.0, 5.0, 10)[:, None], np.linspace(0.0, 1.0, 10)[:, None])
    lm.construct_model([(4, "tanh"), (1, "linear")], show_summary=True, seed=0)
    out = capsys.readouterr().out
    assert "column depth 11 of 1024" in out and "latency about 11 cycles" in out
    assert "input column 0: [-2, 5] -> set_input(channel, low_level=-2, high_level=5)" in out
    assert "output column 0: [0, 1] -> set_output" in out
    assert "params" in out and "      8" in out


def test_summary_names_serial_and_parallel_modes():
    lm = LinnModel()
    lm.set_training_data(
        np.random.default_rng(0).normal(size=(8, 3)),
        np.ones((8, 1)) * [[0.0]] + np.arange(8)[:, None],
    )
    lm.construct_model([(1,)], seed=0)
    assert "1 (serial, a window of 3 samples) or 3 (parallel, one per channel)" in lm.summary_text()
    assert "input channels: 1 (serial: a window of 3 samples on one channel)" in lm.summary_text(
        1, 1
    )


def test_list_activations_are_the_instruments_five():
    assert linncore.list_activations() == ["relu", "tanh", "sigmoid", "softsign", "linear"]
    assert len(linncore.all_activations()) == 7
    Dense((1, 1), "softplus")  # the Dense check still takes all seven


# -- the Keras-shaped view ------------------------------------------------------------------
def test_model_view_layer_list_matches_keras():
    lm = _small()
    names = [layer.name for layer in lm.model.layers]
    assert names == ["input_layer", "dense", "output_clip_layer", "dense_1", "output_clip_layer_1"]
    assert lm.model.layers[0].get_weights() == [] and lm.model.layers[2].get_weights() == []
    kernel, bias = lm.model.layers[3].get_weights()
    assert kernel.shape == (8, 1) and bias.shape == (1,)
    assert lm.model.input_shape == (None, 1) and lm.model.output_shape == (None, 1)


def test_model_view_set_weights_changes_the_network_and_checks_shapes():
    lm = _small()
    lm.model.layers[1].set_weights([np.full((1, 8), 0.5), np.zeros(8)])
    np.testing.assert_array_equal(lm.network.layers[0].weight, np.full((1, 8), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"dense kernel: expected shape \(1, 8\), got \(8, 1\)"):
        lm.model.layers[1].set_weights([np.zeros((8, 1)), np.zeros(8)])
    with pytest.raises(ValueError, match="has no weights"):
        lm.model.layers[2].set_weights([np.zeros(1)])


def test_model_view_predict_is_the_raw_network_and_history_exposes_the_view():
    lm = _small()
    x = np.array([[0.1], [0.2]])
    np.testing.assert_array_equal(lm.model.predict(x), lm.network.predict(x))
    history = lm.fit_model(epochs=1, verbose=0, seed=0)
    assert history.model is lm.model
    np.testing.assert_array_equal(history.model.layers[1].get_weights()[0], lm.get_weights()[0])
    lm.model.set_weights([w * 0 for w in lm.model.get_weights()])
    assert all(not w.any() for w in lm.get_weights())


def test_model_view_summary_prints_the_linn_summary(capsys):
    _small().model.summary()
    assert "instrument budget" in capsys.readouterr().out


# -- round trips and atomic writes ----------------------------------------------------------
def test_round_trip_save_load_get_is_exact(tmp_path):
    lm = _small()
    lm.fit_model(epochs=3, verbose=0, seed=0)
    path = save_linn(lm, 1, 1, tmp_path / "m.linn")
    text = path.read_text()
    net = load_linn(path)
    again = get_linn(net, 1, 1)
    assert again == json.loads(text) and json.dumps(again) == text
    x = np.linspace(-1, 1, 7)
    np.testing.assert_array_equal(net.predict(x), lm.network.predict(x))


def test_loaded_network_trains_further_and_writes_again(tmp_path):
    lm = _small()
    path = save_linn(lm, 1, 1, tmp_path / "m.linn")
    net = load_linn(path)
    x = np.linspace(-1, 1, 32)
    net.fit(x, x**2, epochs=3, verbose=0, seed=0)
    assert not np.array_equal(net.get_weights()[0], lm.get_weights()[0])
    save_linn(net, 1, 1, path)
    assert get_linn(load_linn(path), 1, 1) == get_linn(net, 1, 1)


def test_loaded_network_predicts_clipped_layers():
    doc = {
        "version": "0.1",
        "num_input_channels": 1,
        "num_output_channels": 1,
        "layers": [
            {"activation": "linear", "weights": [[1.0]], "biases": [0.5]},
            {"activation": "tanh", "weights": [[1.0]], "biases": [0.0]},
        ],
    }
    np.testing.assert_allclose(
        load_linn(doc).predict([0.0, 0.9]).ravel(), np.tanh([0.5, 1.0]), rtol=1e-6
    )


def test_failed_dump_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    lm = _small()
    path = save_linn(lm, 1, 1, tmp_path / "m.linn")
    before = path.read_bytes()
    lm.set_weights([w * 0.5 for w in lm.get_weights()])

    def broken_dump(obj, fh, **kw):
        fh.write('{"version": "0.1", "num_inp')
        raise OSError("disk full")

    monkeypatch.setattr(linncore.vendor.linn_model.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        save_linn(lm, 1, 1, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.linn"]


def test_failed_replace_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    lm = _small()
    path = save_linn(lm, 1, 1, tmp_path / "m.linn")
    before = path.read_bytes()
    lm.set_weights([w * 0.5 for w in lm.get_weights()])
    monkeypatch.setattr(
        linncore.vendor.linn_model.os,
        "replace",
        lambda a, b: (_ for _ in ()).throw(OSError("replace failed")),
    )
    with pytest.raises(OSError, match="replace failed"):
        save_linn(lm, 1, 1, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.linn"]


def test_a_broken_rule_writes_nothing(tmp_path):
    lm = _small()
    path = save_linn(lm, 1, 1, tmp_path / "m.linn")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="output channels"):
        save_linn(lm, 1, 2, path)
    assert path.read_bytes() == before


def test_save_requires_the_linn_extension_and_an_existing_folder(tmp_path):
    lm = _small()
    with pytest.raises(
        ValueError, match=r"file_name: expected a name ending in '.linn', got '.*m.json'"
    ):
        save_linn(lm, 1, 1, tmp_path / "m.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_linn(lm, 1, 1, tmp_path / "nope" / "m.linn")


def test_network_without_output_clipping_is_converted_with_a_warning():
    net = Network([Dense((1, 1), seed=0)], clip=False)
    with pytest.warns(UserWarning, match="does not clip"):
        get_linn(net, 1, 1)


# -- the vendor's own files -----------------------------------------------------------------
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(), reason="shared/data/vendor-linn is not in this checkout"
)


@needs_vendor
@pytest.mark.parametrize("name", VENDOR_FILES)
def test_vendor_files_load_and_round_trip_to_the_same_numbers(name, tmp_path):
    path = VENDOR / name
    doc = json.loads(path.read_text())
    net = load_linn(path)
    assert net.input_size == len(doc["layers"][0]["weights"][0])
    again = get_linn(net, doc["num_input_channels"], doc["num_output_channels"])
    assert again == doc
    out = save_linn(net, doc["num_input_channels"], doc["num_output_channels"], tmp_path / name)
    if (
        "\n" not in path.read_text().strip()
    ):  # the compact files are json.dump output: byte for byte
        assert out.read_text() == path.read_text()


@needs_vendor
def test_vendor_sum_file_predicts_its_weighted_sum():
    net = load_linn(VENDOR / "Sum.linn")
    w = np.array([0.10000008344650269, 0.1999998390674591, 0.29999980330467224], dtype=np.float32)
    x = np.array([[0.5, -0.25, 0.75]], dtype=np.float32)
    np.testing.assert_allclose(net.predict(x), x @ w[:, None] + np.float32(0.1), rtol=1e-6)


@needs_vendor
def test_vendor_sigid_description_matches_the_instrument_form():
    desc = describe_linn(VENDOR / "SigID.linn")
    assert (
        desc["inputs"],
        desc["outputs"],
        desc["num_input_channels"],
        desc["num_output_channels"],
    ) == (100, 3, 1, 3)
    assert [l["activation"] for l in desc["layers"]] == ["Relu"] * 4 + ["Sigmoid"]


def test_fit_model_callbacks_see_the_keras_shaped_model_and_score_in_data_units():
    from linncore import Callback, EvaluationCallback, evaluate

    r = np.random.default_rng(0)
    X = r.uniform(0, 50, (80, 2))
    Y = X.sum(axis=1, keepdims=True)
    lm = LinnModel()
    lm.set_training_data(X, Y)
    lm.construct_model([(8, "relu"), (1, "linear")], seed=0)

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.shape = self.model.layers[1].get_weights()[0].shape  # index 0 is the input layer

    peek, ev = Peek(), EvaluationCallback(X, Y, every=5)
    h = lm.fit_model(epochs=10, callbacks=[ev, peek], verbose=0)
    assert peek.model is lm.model and peek.shape == (2, 8)
    assert h.history["val_score"][-1] == pytest.approx(evaluate(lm, X, Y).score, rel=1e-12)


def test_none_means_the_default_in_es_config_and_batch_size_as_in_the_vendor_and_keras():
    lm = LinnModel()
    x = np.linspace(0, 1, 40)[:, None]
    lm.set_training_data(x, x**2)
    lm.construct_model([(4, "tanh"), (1, "linear")], seed=0)
    h = lm.fit_model(
        3,
        es_config={"monitor": "loss", "patience": None, "restore": None},
        batch_size=None,
        verbose=0,
    )
    assert h.params["batch_size"] == 32 and len(h.epoch) == 3
