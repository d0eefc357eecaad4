"""What the benchmarks in bench/ share: child processes for each library, the BLAS threads of
each process, the float32 GEMM peak, and the description of the machine.

Why child processes: TensorFlow, PyTorch, JAX (XLA's Eigen pool) and NumPy's OpenBLAS keep
thread pools alive after their own work, and those threads spin, sleep and wake on the cores
the next measurement needs.  With every library in a process of its own, no library's pool
exists while another is timed, and the parent only starts processes and prints.

A worker is this same script run as ``python SCRIPT --worker KIND ...``.  It prints one line
``RESULT_MARK + json`` on stdout (the libraries may print other lines; they are ignored) and
exits; a library that cannot be imported gives ``{"error": "not installed: ..."}``, a failure
``{"error": "<exception>: <message>"}``, so the parent reports it and goes on.

The BLAS of a process is set through the environment before the interpreter starts
(``OPENBLAS_NUM_THREADS`` and its MKL, BLIS and OpenMP equivalents): with one thread OpenBLAS
creates no worker threads at all, which no call made after import can undo or redo.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

RESULT_MARK = "@@bench-result "

#: The variables through which the BLAS libraries NumPy and the peers may load take their
#: thread count (OpenBLAS reads the first three in this order).
BLAS_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def blas_env(threads: int | None) -> dict[str, str]:
    """This process's environment, with every BLAS limited to ``threads`` (None: untouched, so
    the BLAS takes all cores unless the user said otherwise)."""
    env = dict(os.environ)
    if threads is not None:
        for name in BLAS_VARIABLES:
            env[name] = str(threads)
    return env


def products_path() -> str:
    """Which matrix products linncore's compiled core runs in this process (its build and this
    CPU: "AVX-512", "AVX2", ...), or why none."""
    try:
        from linncore._core import _kernels
    except ImportError:
        return "no compiled core"
    return _kernels.products_path()


def blas_info() -> str:
    """The BLAS libraries loaded in this process and their thread counts (threadpoolctl, when
    installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: BLAS threads unknown"
    pools = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture') or '?'} kernels), "
        f"{p.get('num_threads')} thread(s)"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return "; ".join(pools) or "no BLAS loaded"


def cpu_name() -> str:
    """Model name, logical CPUs and the widest vector extension of this machine."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
        name = next(
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        )
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (
                line.partition(":") for line in text.split("\n\n")[0].splitlines()
            )
        )
        simd = "AVX-512" if "avx512f" in text else "AVX2" if "avx2" in text else "SSE"
        fma = "+FMA" if " fma " in text else ""
        where = ", virtual machine" if " hypervisor" in text else ""
        return (
            f"{name} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}), "
            f"{os.cpu_count()} logical CPUs ({cores()} usable), {simd}{fma}{where}"
        )
    except (OSError, StopIteration):
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"


def nominal_peak() -> tuple[float, str] | None:
    """float32 GFLOP/s of all cores from the clock the kernel reports: two FMA pipes of 8 lanes
    (AVX2) or 16 (AVX-512) make 32 or 64 flops per cycle and core.  A measured peak far below
    this means other work held the cores (boost clocks can take it somewhat above)."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
        mhz = float(
            next(line for line in text.splitlines() if line.startswith("cpu MHz")).split(":")[1]
        )
    except (OSError, StopIteration, ValueError):
        return None
    if " fma " not in text or "avx2" not in text:
        return None
    per_cycle = 64 if "avx512f" in text else 32
    return cores() * mhz * per_cycle / 1e3, f"{cores()} x {mhz:.0f} MHz x {per_cycle} flops"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def load() -> str:
    """The load averages of the machine (1, 5, 15 minutes): other work shares these cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def versions(distributions: Sequence[str]) -> str:
    """Installed versions, read from the package metadata (nothing is imported)."""
    out = [f"Python {platform.python_version()}"]
    for name in distributions:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def progress(message: str) -> None:
    """A line on stderr, so a long run shows where it is; the results go to stdout at the end."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_peak(repeat: int = 7, n: int = 1024) -> dict[str, Any]:
    """float32 GFLOP/s of NumPy's ``n x n`` product at this process's BLAS threads: two
    products to warm up, then the fastest and the median of ``repeat`` timed one by one."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), np.float32)
    for _ in range(2):
        np.matmul(a, b, out=c)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t)
    times.sort()
    flops = 2.0 * n**3
    return {
        "best": flops / times[0] / 1e9,
        "median": flops / times[len(times) // 2] / 1e9,
        "blas": blas_info(),
    }


def emit(result: dict[str, Any]) -> None:
    """A worker's answer to the parent: one marked line of JSON on stdout."""
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result), flush=True)


def serve(work: Callable[[], dict[str, Any]]) -> None:
    """Run a worker's measurement and emit its result, or what kept it from one."""
    try:
        result = work()
    except ImportError as exc:
        result = {"error": f"not installed ({exc})"}
    except Exception as exc:  # a peer failing must not end the benchmark
        result = {"error": f"failed ({type(exc).__name__}: {exc})"}
    emit(result)


def run_worker(
    script: str, args: Sequence[str], *, blas_threads: int | None, timeout: float = 3600.0
) -> dict[str, Any]:
    """Run ``script --worker ...`` in a child process and return its result; on a crash or a
    timeout, ``{"error": ...}`` with the last line the child wrote on stderr."""
    cmd = [sys.executable, script, "--worker", *args]
    try:
        proc = subprocess.run(
            cmd,
            env=blas_env(blas_threads),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"failed (no result after {timeout:.0f} s)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["no output"]
    return {"error": f"failed (exit status {proc.returncode}: {tail[0][:200]})"}
