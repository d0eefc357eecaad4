"""The API reference lists every public name: each entry of ``linncore.__all__`` and of
``linncore.hessian.__all__`` has a line in docs/api.rst's autosummary tables."""

from __future__ import annotations

import re
from pathlib import Path

import linncore
from linncore import hessian

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"


def _listed(text: str, module: str) -> set[str]:
    """Names in the autosummary tables that follow ``.. currentmodule:: module``."""
    names: set[str] = set()
    current = None
    for line in text.splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            current = m.group(1)
        elif current == module and re.match(r"   [A-Za-z_][A-Za-z0-9_]*$", line):
            names.add(line.strip())
    return names


def test_every_public_name_of_linncore_is_in_the_reference():
    listed = _listed(API.read_text(encoding="utf-8"), "linncore")
    public = set(linncore.__all__) - {"__version__", "hessian"}  # hessian has its own section
    assert public - listed == set()
    assert listed - public == set()


def test_every_name_of_linncore_hessian_is_in_the_reference():
    listed = _listed(API.read_text(encoding="utf-8"), "linncore.hessian")
    assert set(hessian.__all__) - listed == set()
    assert listed - set(hessian.__all__) == set()
