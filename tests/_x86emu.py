"""Call functions of an x86-64 shared library on an emulated CPU (BochsCPU, through the optional
``bochscpu-python`` package), for code this machine's own CPU cannot run: the AVX-512 products.

The emulated CPU runs in 64-bit user mode over page tables built here.  The library's loadable
segments are mapped at a fixed base and its dynamic relocations applied, as the system's loader
would: relative ones, symbols the library defines (an IFUNC's resolver is itself run on the
emulated CPU, so ``target_clones`` pick their clone from the emulated CPU's CPUID), every weak
symbol nobody defines bound to 0, and every other symbol it does not define (libc, libm) to a
trap page, so a call out of the library ends the run with a clear error instead of running host
code.  Then its constructors run (DT_INIT, DT_INIT_ARRAY: the C runtime's CPU detection among
them).  A call returns into a ``hlt``, which user mode may not execute: the general-protection
fault it raises ends the run.

Where the register ``XCR0`` is set without the AVX-512 state (opmask and ZMM), the emulated
operating system has not enabled AVX-512: CPUID still lists AVX-512F, but ``xgetbv`` tells the
program it may not use it, as on a real machine whose kernel does not save those registers."""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

PAGE = 4096
XCR0_AVX512 = 0xE7  # x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
XCR0_AVX = 0x07  # x87, SSE, AVX: an operating system that does not save the AVX-512 state
XCR0_SSE = 0x03  # x87, SSE: one that saves no AVX state either (AVX and AVX2 unusable)
GP_FAULT, UD_FAULT = 13, 6

# The wheels of bochscpu-python 0.4.0 are tagged manylinux_2_28 but call glibc 2.38's C23
# names of strtoull and sscanf; on an older glibc these two forward to the classic functions.
_SHIM = r"""
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
unsigned long long __isoc23_strtoull(const char *s, char **end, int base)
{
    return strtoull(s, end, base);
}
int __isoc23_sscanf(const char *s, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    const int n = vsscanf(s, format, args);
    va_end(args);
    return n;
}
"""


def load_bochscpu() -> ModuleType:
    """The ``bochscpu`` module; ImportError when it is not installed or cannot be loaded."""
    try:
        import bochscpu
    except ImportError as exc:
        if "__isoc23_" not in str(exc):
            raise
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is None:
            raise
        folder = Path(tempfile.mkdtemp(prefix="linncore-bochs-shim-"))
        (folder / "shim.c").write_text(_SHIM)
        lib = folder / "libshim.so"
        build = subprocess.run(
            [cc, "-shared", "-fPIC", "-O1", str(folder / "shim.c"), "-o", str(lib)],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            raise ImportError(f"bochscpu needs glibc 2.38's C23 names: {exc}") from exc
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        import bochscpu
    import bochscpu.cpu
    import bochscpu.memory

    return bochscpu


class EmulationFault(RuntimeError):
    """The emulated call ended other than by returning: a fault, or a call out of the library."""


def _program_headers(image: bytes) -> list[tuple[int, int, int, int]]:
    """The loadable segments: (file offset, virtual address, size in the file, size in memory)."""
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1 or image[18] != 62:
        raise ValueError("expected a 64-bit little-endian x86-64 ELF file")
    (phoff,) = struct.unpack_from("<Q", image, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
    segments = []
    for i in range(phnum):
        kind, _, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", image, phoff + i * phentsize
        )
        if kind == 1:  # PT_LOAD
            segments.append((offset, vaddr, filesz, memsz))
    return segments


def _dynamic_symbols(path: Path) -> dict[str, tuple[int, str, str]]:
    """name -> (value, type, where) from ``readelf --dyn-syms`` (binutils, beside the
    compiler), where is "defined", "weak" (undefined weak: 0 when nobody defines it, as the
    system's loader binds it here) or "undefined"; versioned names are also listed without
    their version."""
    out = subprocess.run(
        ["readelf", "--dyn-syms", "--wide", str(path)], capture_output=True, text=True, check=True
    ).stdout
    symbols = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":") and f[0][:-1].isdigit():
            value, kind, bind, ndx, name = int(f[1], 16), f[3], f[4], f[6], f[7]
            where = "defined" if ndx != "UND" else ("weak" if bind == "WEAK" else "undefined")
            entry = (value, kind, where)
            symbols[name] = entry
            symbols.setdefault(name.split("@")[0], entry)
    return symbols


def _constructors(path: Path) -> tuple[int | None, int | None, int]:
    """The library's DT_INIT function, DT_INIT_ARRAY and its size in bytes (``readelf -d``)."""
    out = subprocess.run(
        ["readelf", "-d", "--wide", str(path)], capture_output=True, text=True, check=True
    ).stdout
    tags: dict[str, int] = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] in ("(INIT)", "(INIT_ARRAY)", "(INIT_ARRAYSZ)"):
            tags[f[1][1:-1]] = int(f[2], 0)
    return tags.get("INIT"), tags.get("INIT_ARRAY"), tags.get("INIT_ARRAYSZ", 0)


def _relocations(path: Path) -> list[tuple[int, str, str | None, int]]:
    """(offset, type, symbol name or None, addend) from ``readelf -r``."""
    out = subprocess.run(
        ["readelf", "-r", "--wide", str(path)], capture_output=True, text=True, check=True
    ).stdout
    relocs = []
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4 or not f[2].startswith("R_X86_64_"):
            continue
        offset, kind = int(f[0], 16), f[2][len("R_X86_64_") :]
        if kind.startswith("IRELATIV"):  # readelf shortens it without --wide
            kind = "IRELATIVE"
        if kind in ("RELATIVE", "IRELATIVE"):  # offset, info, type, addend
            relocs.append((offset, kind, None, int(f[3], 16)))
        else:  # offset, info, type, value, name, "+", addend
            addend = int(f[-1], 16) if len(f) >= 7 and f[-2] == "+" else 0
            relocs.append((offset, kind, f[4], addend))
    return relocs


class Machine:
    """One emulated CPU with ``library`` loaded; ``call`` runs one of its functions.

    Parameters
    ----------
    library : path
        A shared library built for x86-64 (``-fPIC -shared``).
    xcr0 : int
        The extended-state register the emulated operating system sets (``XCR0_AVX512``: AVX-512
        enabled; ``XCR0_AVX``: up to AVX2; ``XCR0_SSE``: SSE alone).
    """

    BASE = 0x0040_0000  # the library
    STACK, STACK_SIZE = 0x1000_0000, 256 * 1024
    RETURN = 0x2000_0000  # the hlt a call returns into
    TRAP = 0x2000_1000  # where the symbols the library does not define point
    DATA, DATA_SIZE = 0x3000_0000, 8 << 20  # the arguments' arrays
    PML4 = 0x0010_0000

    def __init__(self, library: str | os.PathLike[str], xcr0: int = XCR0_AVX512):
        if Machine._live:
            raise RuntimeError("one Machine at a time: BochsCPU's physical memory is global")
        self.bx = load_bochscpu()
        self.path = Path(library)
        self.image = self.path.read_bytes()
        self.segments = _program_headers(self.image)
        self.symbols = _dynamic_symbols(self.path)
        self.relocations = _relocations(self.path)
        self.session = self.bx.Session()

        def missing_page(gpa):
            raise EmulationFault(f"the emulated program touched unmapped memory at {gpa:#x}")

        self.session.missing_page_handler = missing_page
        self.tables = self.bx.memory.PageMapLevel4Table()
        self.pages: list[tuple[int, int]] = []  # (guest physical, host page)
        self.table_pages: list[int] = []
        Machine._live = True
        try:
            for _, vaddr, _, memsz in self.segments:
                self._map(self.BASE + vaddr, memsz)
            self._map(self.STACK, self.STACK_SIZE)
            self._map(self.RETURN, PAGE)
            self._map(self.TRAP, PAGE)
            self._map(self.DATA, self.DATA_SIZE)
            for hva, gpa in self.tables.commit(self.PML4):
                self.bx.memory.page_insert(gpa, hva)  # the tables' own pages: theirs to free
                self.table_pages.append(gpa)
            self.write(self.RETURN, b"\xf4")
            self.write(self.TRAP, b"\xf4" * PAGE)
            self.reset(xcr0)
        except BaseException:
            self.close()
            raise

    _live = False

    def reset(self, xcr0: int) -> None:
        """Loads the library afresh (its data as in the file: the CPU features the C runtime
        found are forgotten) for an operating system that sets ``xcr0``."""
        self.xcr0 = xcr0
        for offset, vaddr, filesz, memsz in self.segments:
            body = self.image[offset : offset + filesz] + bytes(memsz - filesz)
            self.write(self.BASE + vaddr, body)
        self._relocate()
        init, array, size = _constructors(self.path)  # then the constructors, as ld.so runs them
        if init is not None:
            self.call_address(self.BASE + init)
        if array is not None:
            for (fn,) in struct.iter_unpack("<Q", self.read(self.BASE + array, size)):
                if fn not in (0, 2**64 - 1):
                    self.call_address(fn)

    def close(self) -> None:
        """Unmaps and frees the emulated memory."""
        for gpa, hva in self.pages:
            self.bx.memory.page_remove(gpa)
            self.bx.memory.release_host_page(hva)
        for gpa in self.table_pages:
            self.bx.memory.page_remove(gpa)
        self.pages, self.table_pages = [], []
        self.session = self.tables = None  # freed now, before any other Machine is made
        Machine._live = False

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, gva: int, size: int) -> None:
        for page in range(gva & ~(PAGE - 1), (gva + size + PAGE - 1) & ~(PAGE - 1), PAGE):
            if self.tables.translate(page) is None:  # guest physical = guest virtual
                host = self.bx.memory.allocate_host_page()
                self.bx.memory.page_insert(page, host)
                self.pages.append((page, host))
                self.tables.insert(page, page, 1)

    def write(self, gva: int, data: bytes) -> None:
        """Copies data into the emulated memory at gva."""
        if not self.bx.memory.virt_write(self.PML4, gva, bytearray(data)):
            raise EmulationFault(f"cannot write {len(data)} bytes at {gva:#x}")

    def read(self, gva: int, size: int) -> bytes:
        """size bytes of the emulated memory at gva."""
        return bytes(self.bx.memory.virt_read(self.PML4, gva, size))

    def _relocate(self) -> None:
        for offset, kind, name, addend in self.relocations:
            if kind == "RELATIVE":
                value = self.BASE + addend
            elif kind == "IRELATIVE":
                value = self.call_address(self.BASE + addend)
            elif kind in ("JUMP_SLOT", "GLOB_DAT", "64"):
                value = self.resolve(name) + addend
            else:
                raise EmulationFault(f"relocation R_X86_64_{kind} is not handled")
            self.write(self.BASE + offset, struct.pack("<Q", value))

    def resolve(self, name: str) -> int:
        """The address a call of ``name`` reaches (an IFUNC's choice made on the emulated CPU);
        the trap page for symbols the library does not define."""
        value, kind, where = self.symbols.get(name, (0, "NOTYPE", "undefined"))
        if where == "weak":
            return 0
        if where == "undefined":
            return self.TRAP
        if kind == "IFUNC":
            return self.call_address(self.BASE + value)
        return self.BASE + value

    def has_symbol(self, name: str) -> bool:
        """Whether the library has a symbol ``name``, its static ones included."""
        try:
            self.address(name)
        except KeyError:
            return False
        return True

    def address(self, name: str) -> int:
        """The address of a symbol the library defines, its static ones included (``nm``)."""
        out = subprocess.run(["nm", str(self.path)], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[2] == name:
                return self.BASE + int(f[0], 16)
        raise KeyError(f"{name} is not a symbol of {self.path.name}")

    def call(self, name: str, *args: int) -> int:
        """Runs ``name(*args)`` (integer and pointer arguments, System V order) and returns rax."""
        return self.call_address(
            self.resolve(name) if name in self.symbols else self.address(name), *args
        )

    def call_address(self, rip: int, *args: int) -> int:
        """Runs the function at ``rip`` with ``args`` and returns rax."""
        bx = self.bx
        state = bx.State()
        bx.cpu.set_long_mode(state)
        cr4 = bx.cpu.ControlRegister(state.cr4)
        cr4.OSFXSR = cr4.OSXMMEXCPT = cr4.OSXSAVE = True
        state.cr4 = int(cr4)
        state.xcr0 = self.xcr0
        state.mxcsr, state.mxcsr_mask = 0x1F80, 0xFFFF
        state.cr3 = self.PML4
        for register, value in zip(("rdi", "rsi", "rdx", "rcx", "r8", "r9"), args):
            setattr(state, register, value)
        rsp = (self.STACK + self.STACK_SIZE - 8 * (len(args) + 8)) & ~0xF  # 16-aligned at the call
        stacked = [self.RETURN, *args[6:]]
        self.write(rsp - 8, struct.pack(f"<{len(stacked)}Q", *stacked))
        state.rsp, state.rip, state.rflags = rsp - 8, rip, 0x202
        code, data = bx.Segment(), bx.Segment()
        code.present, code.selector, code.base, code.limit, code.attr = (
            True,
            0x33,
            0,
            0xFFFFFFFF,
            0x22FB,
        )
        data.present, data.selector, data.base, data.limit, data.attr = (
            True,
            0x2B,
            0,
            0xFFFFFFFF,
            0xCF3,
        )
        state.cs = code
        state.ds = state.ss = state.es = state.fs = state.gs = data
        self.session.cpu.state = state
        seen = {}

        def exception(session, cpu_id, vector, error_code):
            seen["fault"] = (int(vector), int(error_code))
            session.stop()

        hook = bx.Hook()
        hook.exception = exception
        self.session.run([hook])
        end = self.session.cpu.state
        if seen.get("fault") == (GP_FAULT, 0) and end.rip in (self.RETURN, self.RETURN + 1):
            return end.rax
        if self.TRAP <= end.rip < self.TRAP + PAGE:
            raise EmulationFault("the emulated function called a function outside the library")
        raise EmulationFault(f"fault {seen.get('fault')} at {end.rip:#x}")
