"""Every python block of README.md runs on its own in a fresh interpreter (see
tests/_blocks.py for how, and for the ``# needs:`` comment that marks optional blocks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _blocks import block_param, missing, needs, run_alone

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 8


def test_needs_comment_is_read():
    code = "# needs: h5py, linncore.load_keras\nimport h5py\n"
    assert needs(code) == ["h5py", "linncore.load_keras"]
    assert needs("import numpy\n") == []
    assert missing("linncore.no_such_name") and missing("no_such_module.sub")
    assert not missing("numpy")


@pytest.mark.parametrize("code", [block_param(code, f"README.md:{line}") for line, code in BLOCKS])
def test_readme_block_runs_alone(code, tmp_path):
    run_alone(code, tmp_path)
