"""Every python block of README.md runs on its own in a fresh interpreter.

Each block is written to a file in an empty folder and run there with the linncore these
tests import, as a new user would run a block copied into a script. A block whose first
lines carry a comment ``# needs: NAME, NAME`` is skipped unless every NAME is present: a
module that imports (``dask.distributed``, ``h5py``) or an attribute of linncore
(``linncore.load_keras``). Blocks state what they claim with ``assert``, so a block that
stops doing what its text says fails here.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import linncore

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NEEDS = re.compile(r"^# needs: (.+)$", re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def needs(code: str) -> list[str]:
    """The names a block's ``# needs:`` comment lists (empty when it has none)."""
    m = NEEDS.search("\n".join(code.splitlines()[:3]))
    return [n.strip() for n in m.group(1).split(",") if n.strip()] if m else []


def missing(name: str) -> bool:
    if name.startswith("linncore."):
        return not hasattr(linncore, name.split(".", 1)[1])
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:  # the parent package is absent
        return True


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 8


def test_needs_comment_is_read():
    code = "# needs: h5py, linncore.load_keras\nimport h5py\n"
    assert needs(code) == ["h5py", "linncore.load_keras"]
    assert needs("import numpy\n") == []
    assert missing("linncore.no_such_name") and missing("no_such_module.sub")
    assert not missing("numpy")


def _param(line: int, code: str):
    marks = [pytest.mark.optional] if needs(code) else []
    return pytest.param(code, id=f"README.md:{line}", marks=marks)


@pytest.mark.parametrize("code", [_param(line, code) for line, code in BLOCKS])
def test_readme_block_runs_alone(code, tmp_path):
    run_alone(code, tmp_path)


def run_alone(code: str, tmp_path: Path) -> None:
    """Run ``code`` as a script in ``tmp_path`` in a new interpreter; skip it when its
    ``# needs:`` names are absent."""
    absent = [n for n in needs(code) if missing(n)]
    if absent:
        pytest.skip(f"needs {', '.join(absent)}")
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    # the linncore under test, whether installed or imported from the checkout
    env["PYTHONPATH"] = os.pathsep.join([str(Path(linncore.__file__).resolve().parent.parent),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, (f"block failed:\n{code}\n--- stdout\n{proc.stdout[-2000:]}"
                                  f"\n--- stderr\n{proc.stderr[-3000:]}")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
