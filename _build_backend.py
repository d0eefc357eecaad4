"""The build backend of linncore: setuptools' own, asking for the compiled core's tools only
when the core is built.

``pyproject.toml`` names this module as its backend (``backend-path = ["."]``).  Every hook is
setuptools' ``build_meta`` hook; those asking what a wheel or an editable install needs add
Cython and NumPy (the compiled core is Cython wrapping C, built against NumPy's headers) unless
``LINNCORE_BUILD_CORE=0``.  An sdist needs neither: setup.py imports them only when it builds
the extension.  So a pure-Python build or install needs only setuptools and wheel:
``LINNCORE_BUILD_CORE=0 pip install --no-index --find-links DIR .`` works with a wheelhouse
holding just those two, and so does a build without isolation on a machine without Cython.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook unchanged)

CORE_REQUIRES = ["Cython>=3.0", "numpy>=1.25"]


def _core_requires() -> list[str]:
    if os.environ.get("LINNCORE_BUILD_CORE", "1").strip() == "0":
        return []
    return list(CORE_REQUIRES)


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _core_requires()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _core_requires()
