/* lc_qat.h: quantization-aware training, one fused epoch per call.
 *
 * Per layer and field (input, weight, bias, accumulator, activation, gradient, update) a
 * fixed-point format or none (float).  Forward: q_in(x); z = q_acc(q_in(x) q_w(W)) + q_b(b);
 * a = q_act(clip(act(z))).  Gradients pass the quantizers with the straight-through estimator
 * (identity where the value lay inside [lo, hi] of the format, zero where it lay outside), and
 * are then quantized with the gradient format.  Update: delta = q_upd(optimizer increment);
 * theta += delta; clip to [-1, 1] when asked; kernels stored through q_w, biases through q_b.
 * With every field float the arithmetic is that of lc_train_epoch, bit for bit. */
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
    LC_RAIL_WEIGHT_SAT = 0,   /* stored kernels and biases: saturated fraction */
    LC_RAIL_WEIGHT_NEAR = 1,  /* stored kernels and biases: near-rail fraction */
    LC_RAIL_GRAD_SAT = 2,
    LC_RAIL_GRAD_NEAR = 3,
    LC_RAIL_UPDATE_SAT = 4,
    LC_RAIL_UPDATE_UNDER = 5  /* updates nonzero before quantization and zero after */
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

#define LC_DECLARE_QAT(REAL, SFX)                                                                \
    /* lc_train_epoch with quantization q (see above); rail (ceil(N / batch_size), LC_RAIL_N)    \
     * receives the rail statistics of each step when not NULL.  Returns LC_OK, a non-finite   \
     * status as lc_train_epoch, or a fixed-point status (LC_FIX_ERR_*). */                      \
    int lc_train_epoch_qat_##SFX(const lc_net *net, REAL *theta, const REAL *X, const REAL *Y,   \
                                 int64_t N, const int64_t *perm, int64_t batch_size,             \
                                 int32_t loss, const lc_optim *opt, REAL *m, REAL *v,            \
                                 int64_t *step, int32_t clip_params, const lc_qat *q,            \
                                 double *rail, double *loss_sum, int64_t *n_done);

#define LC_DECLARE_QAT_STEP(REAL, SFX)                                                           \
    /* The two halves of a QAT step, for loops that act between them (the ablation           \
     * controller).  loss_grad: quantized forward, straight-through backward and gradient     \
     * quantization of the B samples X, Y at theta -> grad (theta's layout), the loss, and     \
     * rail[LC_RAIL_GRAD_*].  apply: the increment delta through the update formats, theta +=  \
     * delta, clip when asked, storage through the weight and bias formats -> rail's weight    \
     * and update columns.  step seeds stochastic rounding (lc_qat_seed) as in the epoch. */    \
    int lc_qat_loss_grad_##SFX(const lc_net *net, const REAL *theta, const REAL *X,              \
                               const REAL *Y, int64_t B, int32_t loss, const lc_qat *q,          \
                               int64_t step, REAL *grad, double *rail, double *loss_out);        \
    int lc_qat_apply_##SFX(const lc_net *net, REAL *theta, const REAL *delta, const lc_qat *q,   \
                           int64_t step, int32_t clip_params, double *rail);

LC_DECLARE_QAT_STEP(float, f32)
LC_DECLARE_QAT_STEP(double, f64)
LC_DECLARE_QAT(float, f32)
LC_DECLARE_QAT(double, f64)

#endif
