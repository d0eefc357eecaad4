"""The compiled core: Cython wrappers over the C kernels in ``csrc/``.

The extension ``linncore._core._kernels`` holds every wrapper; this package re-exports them, so
``from linncore import _core`` gives the kernels under the names their NumPy twins in
``linncore._numpy.kernels`` have.  Importing it raises ``ImportError`` when the core is not built.
"""

from ._kernels import *  # noqa: F403
