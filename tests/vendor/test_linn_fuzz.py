"""Thousands of seeded, mutated .linn documents fed to load_linn and `linncore inspect`: every
one must end in a clean LinnError or a valid network, never another exception or a hang."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _fuzz import _fuzz_mutations, fuzz_loader

from linncore import Dense, LinnError, Network, get_linn, load_linn
from linncore.cli import main

VENDOR = Path(__file__).resolve().parents[3] / "shared" / "data" / "vendor-linn"


def documents() -> list[str]:
    a = Network([Dense((3, 1), weight=[[0.1], [0.2], [0.3]], bias=[0.1])])
    b = Network(
        [
            Dense((6, 4), "tanh", seed=0),
            Dense((4, 2), "tanh", seed=1),
            Dense((2, 3), "sigmoid", seed=2),
        ]
    )
    b.set_theta(np.clip(b.theta, -1, 1))
    texts = [json.dumps(get_linn(a, 3, 1)), json.dumps(get_linn(b, 1, 3), indent=2)]
    if VENDOR.is_dir():
        texts.append((VENDOR / "autoencoder_32.linn").read_text())
    return texts


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_linn_documents_end_in_a_clean_error_or_a_valid_network(tmp_path, seed):
    path = tmp_path / "fuzz.linn"

    def load(data: bytes):
        path.write_bytes(data)
        return load_linn(path)

    def check(net) -> None:
        out = net.predict(np.zeros((1, net.input_size)))
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1)

    outcome = fuzz_loader(load, documents(), 1000, seed, LinnError, check)
    assert outcome["error"] > 500 and outcome["error"] + outcome["valid"] == 1000


def test_inspect_reports_mutated_documents_with_exit_codes_not_tracebacks(tmp_path, capsys):
    rng = np.random.default_rng(3)
    texts = documents()
    path = tmp_path / "fuzz.linn"
    codes: Counter = Counter()
    for k in range(200):
        path.write_bytes(_fuzz_mutations(texts[k % len(texts)], rng))
        codes[main(["inspect", str(path)])] += 1
    capsys.readouterr()
    assert set(codes) <= {0, 1} and codes[1] > 100
