"""Run documentation code on its own, as a new user would: the README's and the pages'
examples (tests/test_readme.py, tests/test_docs_examples.py).

Each block is written to a file in an empty folder and run there in a new interpreter with
the linncore these tests import. A block whose first lines carry a comment
``# needs: NAME, NAME`` is skipped unless every NAME is present: a module that imports
(``dask.distributed``, ``h5py``) or an attribute of linncore (``linncore.load_keras``).
Blocks state what they claim with ``assert``, so a block that stops doing what its text
says fails.
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

NEEDS = re.compile(r"^# needs: (.+)$", re.M)


def needs(code: str) -> list[str]:
    """The names a block's ``# needs:`` comment lists (empty when it has none)."""
    m = NEEDS.search("\n".join(code.splitlines()[:3]))
    return [n.strip() for n in m.group(1).split(",") if n.strip()] if m else []


def missing(name: str) -> bool:
    """True when ``name`` (a module, or ``linncore.ATTR``) is not available here."""
    if name.startswith("linncore."):
        return not hasattr(linncore, name.split(".", 1)[1])
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:  # the parent package is absent
        return True


def block_param(code: str, where: str):
    """A pytest parameter for one block; blocks with ``# needs:`` are marked optional."""
    return pytest.param(code, id=where, marks=[pytest.mark.optional] if needs(code) else [])


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
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(linncore.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"block failed:\n{code}\n--- stdout\n{proc.stdout[-2000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
