"""Fixed-point throughput: linncore's core and NumPy engine against apytypes and fxpmath.

    python bench/bench_fixed.py [--n 1000000] [--repeat 5]

Measures quantization of n float64 values to fixed<16,1> per rounding mode (M values/s) and
the 64x64 by 64x1000 product of fixed<16,1> codes rounded once to fixed<16,1,RND_CONV,SAT>.
The wide section does the same for formats of 48 and 64 bits (fixed<48,16>, fixed<64,2>):
quantization of full-mantissa doubles, elementwise products, the exact product (128-bit sums
for 48-bit codes, 192-bit for 64-bit codes) and a 48-bit saturating accumulator fed 18- by
27-bit products (a DSP slice), with apytypes where it has the operation.

One run (wall clock, best of 5) on an AMD EPYC of the Zen 3 generation (family 25, model 1),
2 virtual CPUs shared with other jobs (load average about 10, so absolute rates are low and
noisy; the ratios compare runs made seconds apart), apytypes 0.5.1:

    operation (RND_CONV, SAT)                    native    numpy  apytypes  x apy
    quantize float64 -> fixed<48,16>  M values/s  860.9     1.89      6.25  137.8
    product a*b -> fixed<48,16>       M values/s   26.7     0.56     22.4     1.2
    (64x64)@(64x1000) 128-bit sums    M MAC/s     491.1     5.30    321.1     1.5
    quantize float64 -> fixed<64,2>   M values/s   19.6     0.60     13.2     1.5
    product a*b -> fixed<64,2>        M values/s   21.5     0.45     22.1     1.0
    (64x64)@(64x1000) 192-bit sums    M MAC/s     256.7     2.64     19.9    12.9
    18x27 -> 48-bit saturating acc.   M MAC/s      48.5    32.7       -       -

Every apytypes result agreed bit for bit.  In CPU time (not wall clock, same machine) the
48-bit exact product took about 1.1 ns per multiply-accumulate against apytypes' 1.3, the
64-bit one about 2.1 ns against 21.9.  The NumPy engine computes wide values with Python
integers (it is the specification, not the fast path).  Quantizing to fixed<64,2> is slower
than to fixed<48,16> because most values then need more than 50 bits of the grid, off the
vectorized block.
Peers are measured in the same run when importable; where their modes match linncore's the
script also checks that the results agree bit for bit.  It prints whether the targets are
met and never fails on them (exit status 0 unless a library raises).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from linncore import _backend
from linncore.fixed.formats import FixedFormat, Rounding, fixed_matmul, quantize, sat_mul

try:
    import apytypes as apy
except ImportError:
    apy = None
try:
    from fxpmath import Fxp
except ImportError:
    Fxp = None

W, I = 16, 1
F = W - I

# linncore rounding -> apytypes quantization mode / fxpmath rounding name (None: no match)
APY_MODES = {
    "TRN": "TO_NEG",
    "TRN_ZERO": "TO_ZERO",
    "RND": "TIES_POS",
    "RND_ZERO": "TIES_ZERO",
    "RND_INF": "TIES_AWAY",
    "RND_MIN_INF": "TIES_NEG",
    "RND_CONV": "TIES_EVEN",
    "STOCH": "STOCH_WEIGHTED",
}
FXP_MODES = {"TRN": "floor", "TRN_ZERO": "fix", "RND_CONV": "around"}


def best_time(fn, repeat: int) -> tuple[float, object]:
    out, best = None, float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def apy_quantize(x: np.ndarray, mode: str):
    # from_float rounds with RND_INF; the inputs lie on a 2^-24 grid, so 40 guard fraction
    # bits hold them exactly and only the cast rounds (the bit comparison checks this).
    a = apy.APyFixedArray.from_float(x, int_bits=I + 4, frac_bits=F + 40)
    return a.cast(
        int_bits=I,
        frac_bits=F,
        quantization=getattr(apy.QuantizationMode, mode),
        overflow=apy.OverflowMode.SAT,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    # values on a 2^-24 grid in [-1.5, 1.5): exactly representable with 40 guard bits, and
    # with exact ties at the 2^-15 grid (1 in 512 of them)
    x = rng.integers(-3 * 2**23, 3 * 2**23, args.n).astype(np.float64) * 2.0**-24
    engines = ["native", "numpy"] if _has_core() else ["numpy"]
    print(f"CPU: {_cpu()}; apytypes {getattr(apy, '__version__', 'not importable')}")
    print(f"quantization of {args.n:,} float64 values to fixed<{W},{I}> (saturating), M values/s")
    head = f"{'mode':<12}" + "".join(f"{e:>10}" for e in engines)
    head += f"{'apytypes':>10}{'fxpmath':>10}{'x apy':>8}{'x fxp':>8}  agreement"
    print(head)
    for mode in Rounding:
        f = FixedFormat(W, I, rounding=mode, overflow="SAT")
        rates, ref = {}, None
        for e in engines:
            with _backend.use(e):
                rep = args.repeat if e == "native" else 1
                t, q = best_time(lambda f=f: quantize(x, f, seed=1), rep)
            rates[e] = args.n / t / 1e6
            ref = q if ref is None else ref
        agree = []
        apy_rate = fxp_rate = None
        if apy is not None:
            t, a = best_time(lambda mode=mode: apy_quantize(x, APY_MODES[mode.name]), args.repeat)
            apy_rate = args.n / t / 1e6
            if mode != Rounding.STOCH:
                agree.append(f"apytypes {'==' if np.array_equal(a.to_numpy(), ref) else '!='}")
        if Fxp is not None and mode.name in FXP_MODES:
            m = min(args.n, 100_000)  # fxpmath is slow: rate measured on a prefix
            t, q = best_time(
                lambda m=m, mode=mode: Fxp(
                    x[:m], True, W, F, rounding=FXP_MODES[mode.name], overflow="saturate"
                ),
                1,
            )
            fxp_rate = m / t / 1e6
            agree.append(f"fxpmath {'==' if np.array_equal(q.get_val(), ref[:m]) else '!='}")
        row = f"{mode.name:<12}" + "".join(f"{rates[e]:>10.1f}" for e in engines)
        row += f"{_fmt(apy_rate):>10}{_fmt(fxp_rate):>10}"
        row += f"{_ratio(rates[engines[0]], apy_rate):>8}{_ratio(rates[engines[0]], fxp_rate):>8}"
        print(row + "  " + ", ".join(agree))
        if mode == Rounding.RND_CONV:
            _target("quantization >= 4x apytypes (RND_CONV)", rates[engines[0]], apy_rate, 4)
            _target("quantization >= 100x fxpmath (RND_CONV)", rates[engines[0]], fxp_rate, 100)

    print("\nproduct (64x64) @ (64x1000), fixed<16,1> codes, exact sum, one RND_CONV+SAT cast")
    fa = FixedFormat(W, I)
    A = rng.integers(fa.code_min, fa.code_max + 1, (64, 64))
    B = rng.integers(fa.code_min, fa.code_max + 1, (64, 1000))
    ms = {}
    for e in engines:
        with _backend.use(e):
            t, c = best_time(lambda: fixed_matmul(A, fa, B, fa, fa), args.repeat)
        ms[e] = t * 1e3
        ref = c if e == engines[0] else ref
        print(f"  linncore {e:<8} {ms[e]:8.2f} ms")
    if apy is not None:
        # the values are on the grid, so from_float is exact
        Aa = apy.APyFixedArray.from_float(fa.from_codes(A), int_bits=I, frac_bits=F)
        Ba = apy.APyFixedArray.from_float(fa.from_codes(B), int_bits=I, frac_bits=F)

        def peer():
            return (Aa @ Ba).cast(
                int_bits=I,
                frac_bits=F,
                quantization=apy.QuantizationMode.TIES_EVEN,
                overflow=apy.OverflowMode.SAT,
            )

        t, c = best_time(peer, args.repeat)
        same = np.array_equal(c.to_numpy(), fa.from_codes(ref))
        print(f"  apytypes          {t * 1e3:8.2f} ms   agreement: {'==' if same else '!='}")
        _target("product >= apytypes speed", 1 / ms[engines[0]], 1 / (t * 1e3), 1)
    else:
        print("  apytypes not importable: no product comparison")
    wide(args, engines, rng)


def _apy_codes(a, f: FixedFormat) -> np.ndarray:
    """Signed codes of f from an apytypes array's bit patterns."""
    b = np.asarray(a.to_bits(), dtype=object).reshape(-1)
    return np.array(
        [int(v) - (1 << f.bits) if int(v) >> (f.bits - 1) else int(v) for v in b], dtype=object
    )


def _apy_of_codes(codes: np.ndarray, f: FixedFormat):
    bits = (codes.astype(object) % (1 << f.bits)).reshape(-1).tolist()
    return apy.APyFixedArray(bits, int_bits=f.int_bits, frac_bits=f.frac_bits).reshape(codes.shape)


def _agree(ours: np.ndarray, theirs: np.ndarray) -> str:
    bad = int(np.sum(ours.reshape(-1).astype(object) != theirs.reshape(-1)))
    return "==" if bad == 0 else f"!= ({bad} of {ours.size} differ)"


def wide(args, engines: list[str], rng) -> None:
    """Formats of 48 and 64 bits: each operation on both engines and apytypes."""
    n = args.n
    x = rng.standard_normal(n) * 2.0 ** rng.integers(-8, 8, n)  # 53 significant bits each
    print("\nwide formats (RND_CONV, SAT)")
    print(
        f"{'operation':<58}"
        + "".join(f"{e:>10}" for e in engines)
        + f"{'apytypes':>10}{'x apy':>8}  agreement"
    )

    def row(name: str, unit: str, size: int, ours, peer, compare) -> None:
        rates, out = {}, None
        for e in engines:
            with _backend.use(e):
                t, r = best_time(ours, args.repeat if e == "native" else 1)
            rates[e] = size / t / 1e6
            out = r if out is None else out
        apy_rate, agree = None, ""
        if apy is not None and peer is not None:
            t, r = best_time(peer, args.repeat)
            apy_rate = size / t / 1e6
            agree = "apytypes " + _agree(out, compare(r))
        label = f"{name} ({unit})"
        line = f"{label:<58}" + "".join(f"{rates[e]:>10.2f}" for e in engines)
        print(line + f"{_fmt2(apy_rate):>10}{_ratio(rates[engines[0]], apy_rate):>8}  {agree}")

    for W_, I_ in ((48, 16), (64, 2)):
        _wide_rows(FixedFormat(W_, I_), x, rng, row)
    f18, f27, acc = FixedFormat(18, 1), FixedFormat(27, 1), FixedFormat(48, 8)
    A = f18.to_codes(rng.standard_normal((64, 64)) * 0.3)
    B = f27.to_codes(rng.standard_normal((64, 1000)) * 0.3)
    row(
        "(64x64)@(64x1000) 18x27 -> 48-bit sat. acc.",
        "M MAC/s",
        64 * 64 * 1000,
        lambda: fixed_matmul(A, f18, B, f27, acc, accumulator=acc),
        None,
        None,
    )
    print(
        "  (no apytypes row: its accumulator context does not saturate each addition at the"
        " register's width; apytypes issue 857)"
    )


def _cpu() -> str:
    """The CPU's model name and family/model numbers (Linux), else what platform reports."""
    info = {}
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    if "model name" in info:
        return (
            f"{info['model name']} (family {info.get('cpu family', '?')}, model "
            f"{info.get('model', '?')}), {os.cpu_count()} logical CPUs"
        )
    return platform.processor() or platform.machine()


def _wide_rows(f: FixedFormat, x: np.ndarray, rng, row) -> None:
    """Quantization, products and the exact product in format f, each through row()."""
    have = apy is not None
    if have:
        qm, om = apy.QuantizationMode.TIES_EVEN, apy.OverflowMode.SAT

    def apy_cast(a):
        return a.cast(int_bits=f.int_bits, frac_bits=f.frac_bits, quantization=qm, overflow=om)

    def codes(r):
        return _apy_codes(r, f)

    # from_float reads every double exactly at 110 fraction bits (|x| >= 2^-57)
    row(
        f"quantize float64 -> {f}",
        "M values/s",
        x.size,
        lambda: f.to_codes(x),
        (lambda: apy_cast(apy.APyFixedArray.from_float(x, int_bits=12, frac_bits=110)))
        if have
        else None,
        codes,
    )
    m = min(x.size, 200_000)
    a, b = f.to_codes(rng.standard_normal(m)), f.to_codes(rng.standard_normal(m))
    aa, bb = (_apy_of_codes(a, f), _apy_of_codes(b, f)) if have else (None, None)
    row(
        f"product a*b -> {f}",
        "M values/s",
        m,
        lambda: sat_mul(a, f, b, f, f),
        (lambda: apy_cast(aa * bb)) if have else None,
        codes,
    )
    A = f.to_codes(rng.standard_normal((64, 64)) * 0.1)
    B = f.to_codes(rng.standard_normal((64, 1000)) * 0.1)
    Aa, Ba = (_apy_of_codes(A, f), _apy_of_codes(B, f)) if have else (None, None)
    sums = "128" if f.bits <= 48 else "192"
    row(
        f"(64x64)@(64x1000) exact ({sums}-bit sums)",
        "M MAC/s",
        A.size * B.shape[1],
        lambda: fixed_matmul(A, f, B, f, f),
        (lambda: apy_cast(Aa @ Ba)) if have else None,
        codes,
    )


def _has_core() -> bool:
    try:
        import linncore._core  # noqa: F401
    except ImportError:
        return False
    return True


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _fmt2(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _ratio(a, b) -> str:
    return "-" if b is None else f"{a / b:.1f}"


def _target(name: str, ours: float, peer, factor: float) -> None:
    if peer is None:
        print(f"  target {name}: peer not importable")
        return
    ratio = ours / peer
    print(f"  target {name}: {ratio:.1f}x -> {'met' if ratio >= factor else 'NOT met'}")


if __name__ == "__main__":
    main()
