"""Engine choice at import (LINNCORE_BACKEND), each case in a fresh interpreter.

A compiled core that fails to load (say, a wheel built against a newer glibc) is simulated by
an import hook that raises the loader's kind of ImportError for ``linncore._core``; the
fallback warning and the ``native`` error must both quote it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import linncore

# The fresh interpreters import the linncore these tests import (the source tree's or an
# installed one), from a neutral working directory.
LINNCORE_HOME = str(Path(linncore.__file__).resolve().parents[1])
LOAD_ERROR = "/lib/libc.so.6: version `GLIBC_2.99' not found (required by _core.so)"

PROBE = r"""
import json, sys, warnings
if {broken!r}:
    class BrokenCore:
        def find_spec(self, name, path=None, target=None):
            if name == "linncore._core" or name.startswith("linncore._core."):
                raise ImportError({error!r})
            return None
    sys.meta_path.insert(0, BrokenCore())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        import linncore
    except Exception as exc:
        print(json.dumps({{"raised": type(exc).__name__, "message": str(exc)}}))
        raise SystemExit(0)
print(json.dumps({{
    "backend": linncore.backend(),
    "warnings": [(type(w.message).__name__, str(w.message)) for w in caught
                 if w.category.__name__ == "NumpyBackendWarning"],
}}))
"""


def probe(backend: str | None, broken: bool, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LINNCORE_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([LINNCORE_HOME] + [p for p in [env.get("PYTHONPATH")] if p])
    if backend is not None:
        env["LINNCORE_BACKEND"] = backend
    run = subprocess.run(
        [sys.executable, "-c", PROBE.format(broken=broken, error=LOAD_ERROR)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_fallback_warning_quotes_why_the_compiled_core_did_not_import(tmp_path):
    out = probe(None, broken=True, cwd=tmp_path)
    assert out["backend"] == "numpy"
    assert len(out["warnings"]) == 1
    message = out["warnings"][0][1]
    assert LOAD_ERROR in message
    assert "LINNCORE_BACKEND=native" in message  # how to make it an error


def test_fallback_warning_says_kernels_agree_within_rounding_not_the_same_results(tmp_path):
    message = probe(None, broken=True, cwd=tmp_path)["warnings"][0][1]
    assert "within floating-point rounding" in message
    assert "bit for bit" in message
    assert "same results" not in message and "results are the same" not in message


def test_backend_native_raises_import_error_quoting_the_load_failure(tmp_path):
    out = probe("native", broken=True, cwd=tmp_path)
    assert out["raised"] == "ImportError"
    assert "LINNCORE_BACKEND=native" in out["message"]
    assert LOAD_ERROR in out["message"]


def test_backend_numpy_forces_the_twin_and_says_why(tmp_path):
    out = probe("numpy", broken=False, cwd=tmp_path)
    assert out["backend"] == "numpy"
    assert len(out["warnings"]) == 1
    assert "LINNCORE_BACKEND=numpy is set" in out["warnings"][0][1]


def test_backend_native_with_a_working_core_is_silent(core, tmp_path):
    out = probe("native", broken=False, cwd=tmp_path)
    assert out == {"backend": "native", "warnings": []}


def test_backend_with_an_unknown_value_is_refused_naming_the_variable(tmp_path):
    out = probe("fortran", broken=False, cwd=tmp_path)
    assert out["raised"] == "ValueError"
    assert "LINNCORE_BACKEND" in out["message"] and "'fortran'" in out["message"]


@pytest.mark.parametrize("value", ["NumPy", " numpy "])
def test_backend_value_ignores_case_and_spaces(value, tmp_path):
    assert probe(value, broken=False, cwd=tmp_path)["backend"] == "numpy"
