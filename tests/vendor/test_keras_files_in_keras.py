"""Optional: Keras 3 loads the files save_keras writes, and predicts as linncore (skipped
unless Keras and h5py are installed)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from linncore import Dense, Network, all_activations

pytestmark = pytest.mark.optional
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

from linncore import load_keras, save_keras  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "keras"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize(
    "clip, dtype", [(True, "float32"), (False, "float32"), (False, "float64"), (True, "float64")]
)
def test_keras_loads_save_keras_files_and_predicts_as_linncore(suffix, clip, dtype, tmp_path):
    acts = all_activations()
    widths = [3, 6, 5, 4, 6, 5, 4, 2]
    rng = np.random.default_rng(7)
    layers = [
        Dense((widths[i], widths[i + 1]), acts[i], has_bias=i % 3 != 1, seed=i)
        for i in range(len(acts))
    ]
    net = Network(layers, clip=clip, dtype=dtype)
    net.set_weights([rng.uniform(-1.5, 1.5, w.shape) for w in net.get_weights()])
    path = save_keras(net, tmp_path / f"m{suffix}")
    km = keras.saving.load_model(path)  # plain Keras: no custom objects
    x = rng.uniform(-2, 2, (64, 3)).astype(np.float32)
    theirs = km.predict(x, verbose=0)
    ours = net.predict(x)
    assert theirs.dtype == ours.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    if clip:
        assert np.abs(theirs).max() <= 1.0


def test_committed_keras_files_pass_through_linncore_and_back_into_keras(tmp_path):
    data = DATA
    manifest = json.loads((data / "manifest.json").read_text())
    checked = 0
    for model in manifest["models"]:
        if model["expect"] != "load":
            continue
        stored = np.load(data / f"{model['name']}.npz")
        for name in model["files"]:
            if name.endswith(".npz"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                lm = load_keras(data / name)
            path = save_keras(lm, tmp_path / f"{model['name']}{Path(name).suffix}")
            km = keras.saving.load_model(path)
            np.testing.assert_allclose(
                km.predict(stored["x"], verbose=0), stored["y"], rtol=1e-6, atol=1e-6, err_msg=name
            )
            checked += 1
    assert checked >= 10
