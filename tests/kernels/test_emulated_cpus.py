"""The products on emulated CPUs: as AVX-512 code on one that has it, and through the dispatch
on systems that enable only AVX2 or only SSE.

The project's machine has no AVX-512, so test_products can only run the wide tiles' source
compiled for AVX2 (LC_TEST_WIDE).  Here csrc/ is built as the extension is (the default build,
whose matmul_wide is compiled for AVX-512F) and its functions are called on BochsCPU's emulated
x86-64 CPU, which executes the EVEX instructions themselves (tests/_x86emu.py):

- the dispatch: the C runtime's CPU detection, run on the emulated CPU, finds AVX-512F, and
  lc_products_path names the AVX-512 products only where the emulated operating system enables
  the AVX-512 registers (XCR0), the AVX2 ones where it enables AVX, and the baseline tiles
  where it enables SSE alone (as on a processor without AVX);
- the products: lc_matmul, through the clone its resolver picks on each of these, gives the
  ordered sum byte for byte on every shape and width of test_products, A in three layouts,
  built by GCC and by Clang;
- the tiles are AVX-512 code: without the AVX-512 state they fault at their first instruction;
- the opt-in FMA products give the fused ordered sum on the AVX-512 and AVX2 systems, and are
  refused on the SSE one.

Needs ``bochscpu-python`` (an x86-64 Linux wheel; CI installs it); skipped without it, or
without a C compiler.  LINNCORE_REQUIRE_EMULATOR=1 turns the skip into a failure, so that CI
cannot pass without running these."""

from __future__ import annotations

import os
import platform
import struct

import numpy as np
import pytest
from _cbuild import CSRC, KERNEL_SOURCES, build_libraries
from _products import (
    FLAGS,
    SHAPES,
    WIDTHS,
    fma_reference,
    layouts,
    operands,
    ordered_product,
    product,
)
from _x86emu import (
    UD_FAULT,
    XCR0_AVX,
    XCR0_AVX512,
    XCR0_SSE,
    EmulationFault,
    Machine,
    load_bochscpu,
)

# LC_PRODUCTS_VECTOR, LC_PRODUCTS_AVX2, LC_PRODUCTS_AVX512 (csrc/lc_dense.h)
PRODUCTS_VECTOR, PRODUCTS_AVX2, PRODUCTS_AVX512 = 1, 2, 3
# What the emulated operating system enables (XCR0), the products lc_matmul then takes, and
# the target_clones copy GCC's resolver picks: the same CPU, seen as an AVX-512 machine, an
# AVX2 one, and one with SSE2 alone (an old processor, or a system that saves no AVX state).
SYSTEMS = {
    "avx512": (XCR0_AVX512, PRODUCTS_AVX512, "avx2"),
    "avx2": (XCR0_AVX, PRODUCTS_AVX2, "avx2"),
    "sse2": (XCR0_SSE, PRODUCTS_VECTOR, "default"),
}


def _require_or_skip(reason: str):
    if os.environ.get("LINNCORE_REQUIRE_EMULATOR") == "1":
        pytest.fail(f"LINNCORE_REQUIRE_EMULATOR=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["gcc", "clang"])
def machine(request, tmp_path_factory):
    """The default build by GCC, then by Clang, loaded on the emulated CPU."""
    if platform.machine() != "x86_64" or platform.system() != "Linux":
        _require_or_skip("the emulator runs x86-64 Linux builds of the core")
    try:
        load_bochscpu()
    except ImportError as exc:
        _require_or_skip(f"bochscpu-python is not usable: {exc}")
    libs = build_libraries(
        tmp_path_factory.mktemp("emulated"),
        [CSRC / s for s in KERNEL_SOURCES],
        {"default": []},
        FLAGS,
        "lc",
        compiler=request.param,
    )
    path = libs["default"]._name
    m = Machine(path, XCR0_AVX512)
    yield m
    m.close()


def _emulated_matmul(
    m: Machine,
    sfx: str,
    A: np.ndarray,
    ars: int,
    acs: int,
    M: np.ndarray,
    rows: int,
    K: int,
    N: int,
) -> np.ndarray:
    dtype = M.dtype
    a, w, c = m.DATA, m.DATA + (2 << 20), m.DATA + (4 << 20)
    m.write(a, A.tobytes())
    m.write(w, M.tobytes())
    m.write(c, np.full((rows, N), np.nan, dtype).tobytes())
    m.call(f"lc_matmul_{sfx}", a, ars, acs, w, c, rows, K, N)
    return np.frombuffer(m.read(c, rows * N * dtype.itemsize), dtype).reshape(rows, N)


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_dispatch_takes_what_the_system_enables(machine, system):
    """AVX-512 products only where XCR0 enables the AVX-512 state, AVX2 where it enables AVX,
    the baseline vector tiles with SSE alone."""
    xcr0, path, clone = SYSTEMS[system]
    machine.reset(xcr0)
    assert machine.call("lc_products_path") == path
    if machine.has_symbol(f"lc_matmul_f32.{clone}"):  # GCC's target_clones
        assert machine.resolve("lc_matmul_f32") == machine.address(f"lc_matmul_f32.{clone}")


def test_the_wide_tiles_are_avx512_code(machine):
    """Without the AVX-512 state (XCR0) the wide tiles' first EVEX instruction is undefined:
    so the products above ran AVX-512 instructions, not narrower ones."""
    machine.reset(XCR0_AVX)
    try:
        A = np.ones((8, 4), np.float32)
        M = np.ones((4, 16), np.float32)
        a, w, c = machine.DATA, machine.DATA + 4096, machine.DATA + 8192
        machine.write(a, A.tobytes())
        machine.write(w, M.tobytes())
        for sfx in ("f32", "f64"):
            with pytest.raises(EmulationFault, match=rf"fault \({UD_FAULT}, 0\)"):
                machine.call(f"matmul_wide_{sfx}", a, 4, 1, w, c, 8, 4, 16 if sfx == "f32" else 8)
    finally:
        machine.reset(XCR0_AVX512)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_products_give_the_ordered_sum_on_each_system(machine, sfx, dtype, system):
    machine.reset(SYSTEMS[system][0])
    # every width on the AVX-512 system; a third of them on the others (the host's own build
    # runs every width through these clones in test_products)
    for rows, K, N in SHAPES + (WIDTHS if system == "avx512" else WIDTHS[::3]):
        A, M = operands(rows, K, N, dtype)
        want = ordered_product(A, M).tobytes()
        for label, src, ars, acs in layouts(A):
            got = _emulated_matmul(machine, sfx, src, ars, acs, M, rows, K, N)
            assert got.tobytes() == want, (label, rows, K, N)


def test_the_emulator_returns_what_the_function_computes(machine):
    """A check of the harness itself: lc_net_n_params of a small network, whose structure is
    written into the emulated memory, is its parameter count."""
    sizes = np.array([3, 5, 2], np.int64)
    acts = np.zeros(2, np.int32)
    bias = np.ones(2, np.int32)
    base = machine.DATA
    machine.write(base + 256, sizes.tobytes())
    machine.write(base + 512, acts.tobytes())
    machine.write(base + 768, bias.tobytes())
    # lc_net: n_layers, sizes, acts, has_bias, clip_out (and padding), bn, bn_momentum, bn_epsilon
    net = struct.pack("<qQQQiiQQQ", 2, base + 256, base + 512, base + 768, 0, 0, 0, 0, 0)
    machine.write(base, net)
    assert machine.call("lc_net_n_params", base) == 3 * 5 + 5 + 5 * 2 + 2


@pytest.fixture(scope="module")
def fma_ref(tmp_path_factory):
    """The C library's fused ordered sums (tests/_products.py), on the host."""
    return fma_reference(tmp_path_factory.mktemp("fma_reference"))


@pytest.mark.parametrize("sfx,dtype", [("f32", np.float32), ("f64", np.float64)])
def test_fma_products_on_each_system(machine, fma_ref, sfx, dtype):
    """The opt-in FMA products (lc_set_fma): AVX-512's fused tiles on the AVX-512 system,
    AVX2's on the AVX2 one, each the C library's fused ordered sum byte for byte; refused on the
    SSE one (and by a Clang build everywhere: GCC's attribute makes them)."""
    reference = getattr(fma_ref, f"ref_fma_{sfx}")
    for system, (xcr0, _, _) in SYSTEMS.items():
        machine.reset(xcr0)
        available = machine.call("lc_fma_available")
        if system == "sse2" or not machine.has_symbol(f"matmul_fma_{sfx}"):
            assert available == 0, system
            assert machine.call("lc_set_fma", 1) == 4  # LC_ERR_ARGS
            assert machine.call("lc_get_fma") == 0
            continue
        assert available == 1, system
        assert machine.call("lc_set_fma", 1) == 0 and machine.call("lc_get_fma") == 1
        for rows, K, N in SHAPES[::3] + WIDTHS[::7]:
            A, M = operands(rows, K, N, dtype)
            want = product(reference, A, K, 1, M, rows, K, N)
            got = _emulated_matmul(machine, sfx, A, K, 1, M, rows, K, N)
            assert got.tobytes() == want.tobytes(), (system, rows, K, N)
    machine.reset(XCR0_AVX512)  # fresh data: FMA off again
    assert machine.call("lc_get_fma") == 0
