"""The documentation's examples run: docs/examples/*.py and every python code block of the
pages, each on its own in a fresh interpreter (the same runner as the README's blocks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _blocks import block_param, run_alone

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^\.\. code-block:: python\n((?:\n|   .*\n)+)", re.M)


def rst_blocks() -> list:
    out = []
    for page in sorted(DOCS.rglob("*.rst")):
        if "_build" in page.parts or "generated" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            code = "\n".join(line[3:] for line in m.group(1).splitlines()).strip("\n") + "\n"
            line = text.count("\n", 0, m.start()) + 1
            out.append(block_param(code, f"{page.relative_to(DOCS)}:{line}"))
    return out


BLOCKS = rst_blocks()
SCRIPTS = sorted((DOCS / "examples").glob("*.py"))


def test_the_pages_have_examples():
    assert len(BLOCKS) >= 6 and SCRIPTS


@pytest.mark.parametrize("code", BLOCKS)
def test_page_block_runs_alone(code, tmp_path):
    run_alone(code, tmp_path)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_script_runs(script, tmp_path):
    run_alone(script.read_text(encoding="utf-8"), tmp_path)
