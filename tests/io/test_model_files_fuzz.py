"""Thousands of seeded, mutated model files and bundles fed to the loaders: every one must end
in a clean ModelFileError or a valid model, never another exception."""

from __future__ import annotations

import numpy as np
from _fuzz import _fuzz_mutations, fuzz_loader

from linncore import Dense, Network
from linncore.io.model_files import (
    ModelFile,
    ModelFileError,
    bundle_from_json,
    bundle_to_json,
    from_json,
    load_model,
    to_json,
)


def seeds() -> list[str]:
    a = Network([Dense((2, 4), "tanh", seed=0), Dense((4, 1), "relu", has_bias=False, seed=1)])
    b = Network([Dense((3, 2), "sigmoid", seed=2)], clip=False, dtype="float64")
    return [
        to_json(a),
        to_json(
            b,
            scaling={
                "inputs": {"lo": [0, 0, 0], "hi": [1, 2, 3]},
                "outputs": {"lo": [-1, -1], "hi": [1, 1]},
            },
            precision={"bits": 16, "layers": {"dense0": [16, 2]}},
            training={"optimizer": "adam", "epochs": 10, "lr": 1e-3},
        ),
    ]


def _valid_models(result) -> None:
    models = result.values() if isinstance(result, dict) else [result]
    for m in models:
        assert isinstance(m, ModelFile)
        out = m.network.predict(np.zeros((1, m.network.input_size)))
        assert np.all(np.isfinite(out))


def check_loader(load, texts, n, seed):
    return fuzz_loader(load, texts, n, seed, ModelFileError, _valid_models)


def test_mutated_model_documents_end_in_a_clean_error_or_a_valid_model():
    outcome = check_loader(from_json, seeds(), 3000, seed=20240501)
    assert outcome["error"] > 1500  # the mutations do damage
    assert outcome["error"] + outcome["valid"] == 3000


def test_mutated_bundles_end_in_a_clean_error_or_a_valid_bundle():
    nets = [from_json(t) for t in seeds()]
    text = bundle_to_json({"a": nets[0], "b": nets[1]})
    outcome = check_loader(bundle_from_json, [text], 1000, seed=7)
    assert outcome["error"] > 500


def test_mutated_model_files_on_disk_end_in_a_clean_error(tmp_path):
    path = tmp_path / "m.json"

    def load(data: bytes):
        path.write_bytes(data)
        return load_model(path)

    outcome = check_loader(load, seeds(), 300, seed=3)
    assert outcome["error"] > 150


def test_the_mutations_are_reproducible_from_the_seed():
    text = seeds()[0]
    first = [_fuzz_mutations(text, np.random.default_rng(5)) for _ in range(3)]
    assert len(set(first)) == 1
    many = {_fuzz_mutations(text, np.random.default_rng(s)) for s in range(50)}
    assert len(many) > 40 and text.encode() not in many
