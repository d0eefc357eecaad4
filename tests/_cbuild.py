"""Build csrc/ (or a test's own C file against csrc/'s headers) into shared libraries, one per
set of preprocessor options, and open them with ctypes: the kernel tests that compare build
variants byte for byte (test_products, test_portable, test_vmath) share this.  Skips the test
without a C compiler, without csrc/ beside the tests, or when the library cannot be built."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[1] / "csrc"
# The kernels' translation units (csrc/*.c without the Hessian's).
KERNEL_SOURCES = ["lc_dense.c", "lc_fixed.c", "lc_optim.c", "lc_parallel.c", "lc_qat.c"]


def build_libraries(
    out: Path,
    sources: Sequence[Path],
    modes: Mapping[str, Sequence[str]],
    flags: Sequence[str],
    prefix: str,
) -> dict[str, ctypes.CDLL]:
    """``{mode: library}``: ``sources`` compiled with ``flags`` and each mode's options into
    ``out/lib{prefix}_{mode}.so`` (``-I csrc``, linked with ``-lm``)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    if not all(Path(s).exists() for s in sources):
        pytest.skip("csrc/ is not beside the tests (installed package without sources)")
    libs = {}
    for mode, extra in modes.items():
        path = out / f"lib{prefix}_{mode}.so"
        build = subprocess.run(
            [cc, *flags, *extra, f"-I{CSRC}", *map(str, sources), "-o", str(path), "-lm"],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            pytest.skip(f"cannot build a shared library here: {build.stderr.strip()[:200]}")
        libs[mode] = ctypes.CDLL(str(path))
    return libs
