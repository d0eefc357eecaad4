"""Every example in the public docstrings runs and prints what it says.

The examples run on the installed package.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import linncore

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(linncore.__path__, "linncore.")
    if not m.name.startswith(("linncore._core", "linncore.__main__"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    if result.attempted == 0:
        pytest.skip(f"{name} has no examples")
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
