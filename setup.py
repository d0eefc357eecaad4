"""Build script: one extension module, ``linncore._core._kernels``, from the C kernels in ``csrc/``.

The C kernels are plain C (C99, C11 where the compiler has it) and know nothing of Python;
``linncore/_core/_kernels.pyx`` wraps them.  Environment variables read at build time:

- ``LINNCORE_BUILD_CORE=0``: install without the compiled core (linncore then runs on its
  NumPy engine); the build then needs neither Cython nor NumPy (see ``_build_backend.py``).
- ``LINNCORE_BASELINE_ONLY=1``: compile the hot loops for the baseline instruction set only
  (no AVX2 clones), to test that path on an AVX2 machine.
- ``LINNCORE_TEST_WIDE=1``: compile the products' AVX-512 path for the build's own instruction
  set and take it on every CPU, to test its logic and bits on a machine without AVX-512.
- ``LINNCORE_PORTABLE=1``: compile without any compiler extension (no vector types, no
  function clones), as a compiler without them would (``csrc/lc_portable.h``); same bits.

The compiler options depend on the compiler, which is known only once the build has chosen
it, so they are set in a ``build_ext`` subclass.  Both sets ask for IEEE arithmetic: no fast
math (NaN checks, bit-reproducible runs), no contraction of a * b + c into one fused
operation, so every machine and compiler gives the same bits.
"""

import os
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# GCC, Clang and compilers that take their options (the "unix" and "mingw32" compilers).
# -Wno-psabi: GCC's note that 32-byte vector arguments changed ABI in GCC 4.6, printed even for
# the static inline functions of csrc/lc_vmath.h, where it cannot matter.
GNU_COMPILE = ["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-Wno-psabi"]
GNU_LINK = ["-pthread"]
# Microsoft's C compiler: /fp:precise keeps IEEE semantics and, with /fp:contract absent,
# does not fuse a * b + c.  Its threads are Win32 threads (csrc/lc_threads.h).
MSVC_COMPILE = ["/O2", "/fp:precise"]
MSVC_LINK = []


class build_ext_per_compiler(build_ext):
    """build_ext that cythonizes, finds NumPy's headers and adds the compiler's options.

    Cython and NumPy are imported here, when the extension is built, never when setup.py is
    read: the build backend reads it first to learn what to install (``_build_backend.py``),
    before they are there.
    """

    def finalize_options(self):
        # Before the base class copies the distribution's extensions and sets up each one.
        # egg_info and sdist finalize this command too, only to list sources, possibly before
        # Cython and NumPy are installed; building without them fails in run().
        self._tools_missing = None
        if self.distribution.ext_modules:
            try:
                import numpy as np
                from Cython.Build import cythonize
            except ImportError as exc:
                self._tools_missing = exc
            else:
                for ext in self.distribution.ext_modules:
                    ext.include_dirs.append(np.get_include())
                self.distribution.ext_modules = cythonize(
                    self.distribution.ext_modules,
                    language_level=3,
                    compiler_directives={
                        "boundscheck": False,
                        "wraparound": False,
                        "cdivision": True,
                    },
                )
        super().finalize_options()

    def run(self):
        if self._tools_missing is not None and self.extensions:
            raise RuntimeError(
                "building the compiled core needs Cython and NumPy "
                f"({self._tools_missing}); install them, or set LINNCORE_BUILD_CORE=0 to "
                "install linncore without it (it then runs on its NumPy engine)"
            ) from self._tools_missing
        super().run()

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            compile_args, link_args = (MSVC_COMPILE, MSVC_LINK) if msvc else (GNU_COMPILE, GNU_LINK)
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
        super().build_extensions()


def _flag(name):
    return os.environ.get(name, "0").strip() == "1"


def extensions():
    if os.environ.get("LINNCORE_BUILD_CORE", "1").strip() == "0":
        return []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if _flag("LINNCORE_BASELINE_ONLY"):
        macros.append(("LC_BASELINE_ONLY", "1"))
    if _flag("LINNCORE_PORTABLE"):
        macros.append(("LC_PORTABLE", "1"))
    if _flag("LINNCORE_TEST_WIDE"):
        macros.append(("LC_TEST_WIDE", "1"))
    return [
        Extension(
            "linncore._core._kernels",
            sources=["linncore/_core/_kernels.pyx"] + sorted(glob("csrc/*.c")),
            include_dirs=["csrc"],  # and NumPy's, added at build time
            depends=sorted(glob("csrc/*.h")) + sorted(glob("linncore/_core/*.pxi")),
            define_macros=macros,
        )
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": build_ext_per_compiler})
