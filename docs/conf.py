"""Sphinx configuration for linncore's documentation.

Build with ``pip install ".[docs]"`` and ``sphinx-build -W -b html docs docs/_build``.
The package is imported from this checkout (the folder above this one), so the pages
document the source they sit beside, on the NumPy engine (no compiled core needed).
"""

from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))
# The pages are the same on either engine, and a checkout need not have the core built in
# place: document it on the NumPy engine, whatever LINNCORE_BACKEND the shell has.
os.environ["LINNCORE_BACKEND"] = "numpy"
with warnings.catch_warnings():
    # The API pages are the same on either engine: the fallback warning is noise here.
    warnings.simplefilter("ignore")
    import linncore

project = "linncore"
author = "the linncore authors"
copyright = "the linncore authors, MIT licence"
release = linncore.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False  # members come from autodoc, once
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"
nitpicky = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"linncore {release}"
