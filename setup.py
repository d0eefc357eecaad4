"""Build script: one extension module, ``linncore._core._kernels``, from the C kernels in ``csrc/``.

The C kernels are plain C99 and know nothing of Python; ``linncore/_core/_kernels.pyx`` wraps them.
Set ``LINNCORE_BUILD_CORE=0`` to install without the compiled core (linncore then runs on
its NumPy engine), and ``LINNCORE_BASELINE_ONLY=1`` to compile the hot loops for the baseline
instruction set only (no AVX2 clones), to test that path on an AVX2 machine.
"""
import os
from glob import glob

from setuptools import Extension, setup


def extensions():
    if os.environ.get("LINNCORE_BUILD_CORE", "1") == "0":
        return []
    import numpy as np
    from Cython.Build import cythonize

    sources = ["linncore/_core/_kernels.pyx"] + sorted(glob("csrc/*.c"))
    ext = Extension(
        "linncore._core._kernels",
        sources=sources,
        include_dirs=["csrc", np.get_include()],
        depends=sorted(glob("csrc/*.h")) + sorted(glob("linncore/_core/*.pxi")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([("LC_BASELINE_ONLY", "1")] if os.environ.get("LINNCORE_BASELINE_ONLY") == "1" else []),
        # IEEE arithmetic on purpose: no -ffast-math (NaN checks, bit-reproducible runs),
        # no contraction into FMA (the same bits on every x86-64 machine).
        extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-ffp-contract=off", "-pthread"],
        extra_link_args=["-pthread"],
    )
    return cythonize(
        [ext],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )


setup(ext_modules=extensions())
