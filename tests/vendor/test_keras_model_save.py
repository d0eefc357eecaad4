"""``linn_model.model.save(path)``, as vendor scripts call it on the Keras model.

An earlier version of the vendor's Signal_ID tutorial saved its model with
``quant_mod.model.save('siginal_id.keras')`` before writing the ``.linn`` file; through
linncore that line raised AttributeError.  The view now writes save_keras's file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("h5py")

from linncore import LinnModel, load_keras, load_linn, save_linn

pytestmark = pytest.mark.optional  # needs the optional h5py


def _tutorial_model(scale: bool) -> LinnModel:
    """The Signal_ID tutorial's steps on a small stand-in: windows of a waveform, one-hot
    answers, relu layers and a sigmoid output, trained for a few epochs."""
    rng = np.random.default_rng(5)
    windows = np.sin(rng.uniform(20, 40, (60, 1)) * np.linspace(0.05, 1, 16))
    answers = np.eye(3)[rng.integers(0, 3, 60)]
    lm = LinnModel()
    lm.set_training_data(training_inputs=windows, training_outputs=answers, scale=scale)
    lm.construct_model([(16, "relu"), (8, "relu"), (3, "sigmoid")], seed=1)
    lm.fit_model(epochs=3, validation_split=0.1, verbose=0, seed=2)
    return lm


@pytest.mark.parametrize("name", ["signal_id.keras", "signal_id.h5"])
def test_model_save_then_save_linn_as_the_signal_id_tutorial_did(name, tmp_path):
    lm = _tutorial_model(scale=False)
    lm.model.save(str(tmp_path / name))
    save_linn(lm.model, input_channels=1, output_channels=3, file_name=tmp_path / "sid.linn")
    x = np.random.default_rng(0).uniform(-1, 1, (7, 16))
    expected = lm.network.predict(x)
    assert np.array_equal(load_keras(tmp_path / name).network.predict(x), expected)
    assert np.array_equal(load_linn(tmp_path / "sid.linn").predict(x), expected)


def test_model_save_warns_at_the_callers_line_that_the_scaling_is_left_out(tmp_path):
    lm = _tutorial_model(scale=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm.model.save(tmp_path / "m.keras")
    assert [w.filename for w in caught] == [__file__]
    assert "training scaling is not part of a Keras file" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _tutorial_model(scale=False).model.save(tmp_path / "n.keras")  # nothing to warn of


def test_model_save_refuses_other_names_and_an_existing_file_without_overwrite(tmp_path):
    lm = _tutorial_model(scale=False)
    with pytest.raises(ValueError, match=r"filepath: expected a name ending in '\.keras'"):
        lm.model.save(tmp_path / "m.weights.npz")
    with pytest.raises(TypeError, match="filepath: expected a path"):
        lm.model.save(3)
    target = tmp_path / "m.keras"
    target.write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        lm.model.save(target, overwrite=False)
    assert target.read_bytes() == b"earlier"
    with pytest.raises(TypeError, match="overwrite: expected true or false"):
        lm.model.save(target, overwrite="no")
    lm.model.save(target)  # overwrite=True, Keras's default
    assert load_keras(target).network.n_params == lm.network.n_params
