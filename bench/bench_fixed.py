"""Fixed-point throughput: linncore's core and NumPy engine against apytypes and fxpmath.

    python bench/bench_fixed.py [--n 1000000] [--repeat 5]

Measures quantization of n float64 values to fixed<16,1> per rounding mode (M values/s) and
the 64x64 by 64x1000 product of fixed<16,1> codes rounded once to fixed<16,1,RND_CONV,SAT>.
Peers are measured in the same run when importable; where their modes match linncore's the
script also checks that the results agree bit for bit.  It prints whether the targets are
met and never fails on them (exit status 0 unless a library raises).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from linncore import _backend
from linncore.fixed.formats import FixedFormat, Rounding, fixed_matmul, quantize

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
    "TRN": "TO_NEG", "TRN_ZERO": "TO_ZERO", "RND": "TIES_POS", "RND_ZERO": "TIES_ZERO",
    "RND_INF": "TIES_AWAY", "RND_MIN_INF": "TIES_NEG", "RND_CONV": "TIES_EVEN",
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
    return a.cast(int_bits=I, frac_bits=F, quantization=getattr(apy.QuantizationMode, mode),
                  overflow=apy.OverflowMode.SAT)


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
                t, q = best_time(lambda: quantize(x, f, seed=1), rep)
            rates[e] = args.n / t / 1e6
            ref = q if ref is None else ref
        agree = []
        apy_rate = fxp_rate = None
        if apy is not None:
            t, a = best_time(lambda: apy_quantize(x, APY_MODES[mode.name]), args.repeat)
            apy_rate = args.n / t / 1e6
            if mode != Rounding.STOCH:
                agree.append(f"apytypes {'==' if np.array_equal(a.to_numpy(), ref) else '!='}")
        if Fxp is not None and mode.name in FXP_MODES:
            m = min(args.n, 100_000)  # fxpmath is slow: rate measured on a prefix
            t, q = best_time(lambda: Fxp(x[:m], True, W, F, rounding=FXP_MODES[mode.name],
                                         overflow="saturate"), 1)
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
            return (Aa @ Ba).cast(int_bits=I, frac_bits=F,
                                  quantization=apy.QuantizationMode.TIES_EVEN,
                                  overflow=apy.OverflowMode.SAT)

        t, c = best_time(peer, args.repeat)
        same = np.array_equal(c.to_numpy(), fa.from_codes(ref))
        print(f"  apytypes          {t * 1e3:8.2f} ms   agreement: {'==' if same else '!='}")
        _target("product >= apytypes speed", 1 / ms[engines[0]], 1 / (t * 1e3), 1)
    else:
        print("  apytypes not importable: no product comparison")


def _has_core() -> bool:
    try:
        import linncore._core  # noqa: F401
    except ImportError:
        return False
    return True


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


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
