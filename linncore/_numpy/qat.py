"""NumPy twin of csrc/lc_qat.c: the quantization hook of the training step.

Per layer and field (input, weight, bias, accumulator, activation, gradient, update) a format
or none.  Forward: z = q_acc(q_in(x) q_w(W)) + q_b(b); a = q_act(clip(act(z))).  Backward:
the straight-through estimator (the gradient passes where the value lay inside [lo, hi] of
its format, else 0), then the gradient quantized.  Update: delta = q_upd(optimizer
increment), theta += delta, clip, kernels and biases stored through q_w and q_b.  The step
that calls these hooks is the one training step of ``linncore._numpy.dense``.
"""

from __future__ import annotations

import math

import numpy as np

from .._util.codes import QAT_FIELDS
from .fixed import fix_quantize

__all__ = ["qat_seed"]

INPUT, WEIGHT, BIAS, ACC, ACT, GRAD, UPDATE = (
    QAT_FIELDS.index(f)
    for f in ("input", "weight", "bias", "accumulator", "activation", "gradient", "update")
)
_N_FIELDS = len(QAT_FIELDS)
_M64 = (1 << 64) - 1


def qat_seed(seed: int, step: int, n_layers: int, layer: int, field: int, part: int) -> int:
    """seed + golden * (slot + 1) mod 2^64, slot = ((step L + layer) fields + field) 2 + part."""
    slot = (((step * n_layers + layer) * _N_FIELDS + field) * 2 + part) & _M64
    return (seed + 0x9E3779B97F4A7C15 * (slot + 1)) & _M64


def qat_quantize(x, fmt, seed, near_rail, want_mask):
    """(q(x) in x's dtype, straight-through mask or None, (saturated, near_rail, underflow))."""
    f = tuple(int(v) for v in fmt)
    _, vals, counts = fix_quantize(
        np.ascontiguousarray(x), f, seed=seed, codes=False, values=True, near_rail=near_rail
    )
    mask = None
    if want_mask:
        bits, int_bits, signed, _, overflow = f
        lsb = math.ldexp(1.0, int_bits - bits)
        cmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        cmin = (-cmax if overflow == 1 else -(1 << (bits - 1))) if signed else 0
        xd = x.astype(np.float64)
        mask = (xd >= cmin * lsb) & (xd <= cmax * lsb)
    return vals.astype(x.dtype), mask, counts
