"""Shared fixtures: the engines to compare, and reference data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from linncore import _backend

# The shared test helpers (_fuzz, _numeric) sit beside this file; the tests live in folders
# that mirror the package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    from linncore import _core as _native_core
except ImportError:  # the NumPy engine alone
    _native_core = None

ENGINES = ["numpy"] + (["native"] if _native_core is not None else [])


@pytest.fixture(params=ENGINES)
def engine(request):
    """Runs the test once per available engine, with that engine active."""
    with _backend.use(request.param) as module:
        yield module


@pytest.fixture
def core():
    """The compiled core (skips when it is not built)."""
    if _native_core is None:
        pytest.skip("the compiled core is not built")
    return _native_core


@pytest.fixture
def twin():
    from linncore._numpy import kernels

    return kernels


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)
