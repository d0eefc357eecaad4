/* lc_optim.h: optimizer updates over one flat parameter vector (Keras 3 rules), and clipping.
 *
 * Scalars are computed in the parameters' own precision, as Keras does for its variables. */
#ifndef LC_OPTIM_H
#define LC_OPTIM_H

#include "lc_common.h"

#define LC_DECLARE_OPTIM(REAL, SFX)                                                                 \
    /* One step t (counted from 1) of opt on theta (P) with gradient g; m and v are the          \
     * optimizer state (Adam: first and second moments; SGD: m is the velocity, v unused). */  \
    void lc_optim_step_##SFX(const lc_optim *opt, REAL *theta, const REAL *g, REAL *m, REAL *v,     \
                             int64_t P, int64_t t);                                                 \
    /* The step of lc_optim_step as an increment: delta := the change to theta (m, v updated). */   \
    void lc_optim_delta_##SFX(const lc_optim *opt, const REAL *g, REAL *m, REAL *v, int64_t P,      \
                              int64_t t, REAL *delta);                                              \
    /* lc_optim_step written to next (theta unchanged), clipped to [-1, 1] when clip, in one    \
     * pass: 1 when every value of next is finite, else 0 (m, v updated either way).  The same   \
     * bits as lc_optim_delta followed by lc_add_clip_finite. */   \
    int lc_optim_next_##SFX(const lc_optim *opt, const REAL *theta, const REAL *g, REAL *m,         \
                            REAL *v, int64_t P, int64_t t, int32_t clip, REAL *next);               \
    /* next := theta + delta, clipped to [-1, 1] when clip (NaN stays NaN); 1 when every value    \
     * of next is finite, else 0.  One pass, vectorized: no early exit. */ \
    int lc_add_clip_finite_##SFX(const REAL *theta, const REAL *delta, REAL *next, int64_t P,       \
                                 int32_t clip);                                                     \
    /* theta := clip(theta, lo, hi); NaN stays NaN. */                                              \
    void lc_clip_##SFX(REAL *theta, int64_t P, REAL lo, REAL hi);                                   \
    /* 1 when all P values are finite. */                                                           \
    int lc_all_finite_##SFX(const REAL *x, int64_t P);

LC_DECLARE_OPTIM(float, f32)
LC_DECLARE_OPTIM(double, f64)

#endif
