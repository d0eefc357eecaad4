/* lc_qat.h: quantization-aware training, one fused epoch per call.
 *
 * Per layer and field (input, weight, bias, accumulator, activation, gradient, update) a
 * fixed-point format or none (float).  Forward: q_in(x); z = q_acc(q_in(x) q_w(W)) + q_b(b);
 * a = q_act(clip(act(z))).  Gradients pass the quantizers with the straight-through estimator
 * (identity where the value lay inside [lo, hi] of the format, zero where it lay outside), and
 * are then quantized with the gradient format.  Update: delta = q_upd(optimizer increment);
 * theta += delta; clip to [-1, 1] when asked; kernels stored through q_w, biases through q_b.
 * The training step itself is lc_train_epoch (lc_dense.h), one kernel for float and QAT: every
 * quantization is a hook it calls where a field is on, so float training is QAT with every
 * field float by construction. */
#ifndef LC_QAT_H
#define LC_QAT_H

#include "lc_common.h"
#include "lc_fixed.h"

typedef enum {
    LC_QF_INPUT = 0,
    LC_QF_WEIGHT = 1,
    LC_QF_BIAS = 2,
    LC_QF_ACCUMULATOR = 3,
    LC_QF_ACTIVATION = 4,
    LC_QF_GRADIENT = 5,
    LC_QF_UPDATE = 6
} lc_qat_field;
#define LC_QF_N 7

/* Rail statistics written per step: each the maximum over the quantized variables, NaN when
 * no variable of that role is quantized. */
typedef enum {
    LC_RAIL_WEIGHT_SAT = 0,  /* stored kernels and biases: saturated fraction */
    LC_RAIL_WEIGHT_NEAR = 1, /* stored kernels and biases: near-rail fraction */
    LC_RAIL_GRAD_SAT = 2,
    LC_RAIL_GRAD_NEAR = 3,
    LC_RAIL_UPDATE_SAT = 4,
    LC_RAIL_UPDATE_UNDER = 5 /* updates nonzero before quantization and zero after */
} lc_rail_column;
#define LC_RAIL_N 6

typedef struct {
    const lc_fixfmt *fmts; /* n_layers * LC_QF_N formats, layer-major */
    const int32_t *on;     /* n_layers * LC_QF_N flags: 0 = float */
    uint64_t seed;         /* stochastic rounding: see lc_qat_seed */
    double near_rail;      /* threshold of the near-rail fraction */
} lc_qat;

/* The STOCH seed of one quantization: step (counted as the optimizer's iterations, from 0),
 * layer, field, and part 0 (forward/gradient) or 1 (storage). */
uint64_t lc_qat_seed(uint64_t seed, int64_t step, int64_t n_layers, int64_t layer, int64_t field,
                     int64_t part);

#define LC_DECLARE_QAT_HOOK(REAL, SFX)                                                             \
    /* The quantization hook of the training step (lc_train_epoch in lc_dense.h).  quantize:    \
     * out := q_f(x) (out may be x); mask[i] := lo <= x[i] <= hi of f (the straight-through      \
     * estimator's pass region) when mask is not NULL; *st := the rail counts when st is not     \
     * NULL.  scratch: n doubles.  Returns LC_OK or a fixed-point status.  gate: x[i] := 0       \
     * where mask[i] is 0 (a select, so an infinite x behind a closed gate is 0). */  \
    int lc_qat_quantize_##SFX(const lc_fixfmt *f, const REAL *x, REAL *out, uint8_t *mask,         \
                              int64_t n, uint64_t seed, double near_rail, lc_rail_counts *st,      \
                              double *scratch);                                                    \
    void lc_qat_gate_##SFX(REAL *x, const uint8_t *mask, int64_t n);

LC_DECLARE_QAT_HOOK(float, f32)
LC_DECLARE_QAT_HOOK(double, f64)

#endif
