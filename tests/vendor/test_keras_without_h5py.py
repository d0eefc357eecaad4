"""Without h5py (an optional extra), linncore imports and the Keras functions say how to get it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import linncore

ROOT = Path(__file__).resolve().parents[2]


def test_keras_functions_without_h5py_say_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now fails
    path = tmp_path / "m.keras"
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with pytest.raises(ImportError, match=r'pip install "linncore\[keras\]"'):
        linncore.load_keras(path)
    net = linncore.Network([linncore.Dense((1, 1), seed=0)])
    with pytest.raises(ImportError, match=r'pip install "linncore\[keras\]"'):
        linncore.save_keras(net, tmp_path / "out.keras")
    assert not (tmp_path / "out.keras").exists()


def test_linncore_imports_without_h5py():
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "import linncore, linncore.cli\n"
        "assert 'h5py' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(linncore.load_keras.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "load_keras"
