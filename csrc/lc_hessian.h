/* lc_hessian.h: exact Hessian-vector products of a network's loss by the R-operator
 * (Pearlmutter 1994), and the Gauss-Newton product J^T H_loss J v.
 *
 * Notation for layer l (input a_{l-1}, a_{-1} = X):  z = a_{l-1} W + b,  h = act(z),
 * a = clip(h) (identity without clipping).  The clip has derivative 1 on [-1, 1] (bounds
 * included), 0 outside, and second derivative 0.  Loss L = s * sum r^2, r = a_{L-1} - Y,
 * s = 1/(2N) (half_mse, code 1) or 1/(N m) (mse, code 0); the whole set is one batch.
 *
 * Two steps, so that many products share one forward and backward pass:
 *   lc_hvp_prepare: forward and backward pass at theta; stores in `state` (caller-allocated,
 *                   lc_hvp_state_len values) per layer, each (N, width) row-major:
 *                   a, d1 = clip'(h) act'(z), d2 = clip'(h) act''(z) dL/da, dz = dL/dz,
 *                   preceded by X.  Also gives the loss and its gradient.
 *   lc_hvp_apply:   HV := H V for k directions, V and HV (P, k) row-major (column c is one
 *                   direction in theta's order).  Per direction:
 *                   forward   Rz = Ra_{l-1} W + a_{l-1} V_l + vb_l,  Ra = d1 Rz
 *                   backward  Rda_{L-1} = 2 s Ra_{L-1}
 *                             Rdz = d1 Rda + d2 Rz
 *                             H v|W_l = a_{l-1}^T Rdz + Ra_{l-1}^T dz,  H v|b_l = sum_n Rdz
 *                             Rda_{l-1} = Rdz W^T + dz V_l^T
 *                   With gauss_newton the terms in d2, Ra_{l-1}^T dz and dz V_l^T are dropped,
 *                   which leaves J^T (2 s I) J v.
 * lc_hvp_dense assembles H without products.  Per sample, with abar_l = (a_{l-1}, 1) (the 1
 * only with a bias; a layer's kernel and bias are one (n_in + 1, n_out) block of theta):
 *   G_l = d2L/dz_l^2:   G_{L-1} = diag(2 s d1^2 + d2),  G_l = d1 (W_{l+1} G_{l+1} W_{l+1}^T) d1 + diag(d2)
 *   J_{l,k} = dz_l/dz_k: J_{k,k} = I,  J_{l,k} = W_l^T diag(d1_{l-1}) J_{l-1,k}
 *   H[(i,j) of layer l, (p,q) of layer k <= l] = sum_n abar_k[p] abar_l[i] (G_l J_{l,k})[j,q]
 *        + [k < l, i < n_in] sum_n abar_k[p] dz_l[j] d1_{l-1}[i] J_{l-1,k}[i,q];
 *   gauss_newton drops d2 and the second term.  Each sum over samples is one lc_matmul per
 *   chunk of samples; diagonal blocks use the pairs p <= i only.
 * In double, tanh is evaluated by the kernels' own vector routine (within about two ulps of
 * the exact value, the same bits on every machine) rather than the C library's, which costs
 * four times as much; the other activations are the dense kernels'.
 * Functions exist for float (_f32) and double (_f64) from one definition (lc_hessian_impl.h);
 * they return an lc_status: LC_ERR_ARGS for a loss other than mse / half_mse or k < 0,
 * LC_ERR_NOMEM when workspace allocation fails. */
#ifndef LC_HESSIAN_H
#define LC_HESSIAN_H

#include "lc_common.h"

/* Number of REAL values lc_hvp_prepare stores for N samples:
 * N * (sizes[0] + 4 * (sizes[1] + ... + sizes[L])). */
int64_t lc_hvp_state_len(const lc_net *net, int64_t N);

#define LC_DECLARE_HESSIAN(REAL, SFX)                                                              \
    /* d2 := act''(z) elementwise over n values, from z and h = act(z); 0 for linear, relu and   \
     * leaky_relu (their kinks are measure-zero). */ \
    void lc_act_deriv2_##SFX(int32_t act, const REAL *z, const REAL *h, REAL *d2, int64_t n);      \
    /* state := (X, then per layer a, d1, d2, dz), each (N, width);  grad := dL/dtheta;       \
     * *loss_out := L.  X (N, sizes[0]), Y (N, sizes[L]).  Allocates workspace. */    \
    int lc_hvp_prepare_##SFX(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,   \
                             int64_t N, int32_t loss, REAL *state, REAL *grad, double *loss_out);  \
    /* HV := H V (or the Gauss-Newton product) from a prepared state; V, HV (P, k).              \
     * Allocates workspace. */ \
    int lc_hvp_apply_##SFX(const lc_net *net, const REAL *theta, int64_t N, int32_t loss,          \
                           int32_t gauss_newton, const REAL *state, const REAL *V, int64_t k,      \
                           REAL *HV);                                                              \
    /* H (P, P) row-major := the whole Hessian (or the Gauss-Newton matrix) from a prepared      \
     * state, assembled block by block from per-sample second derivatives (see below); exactly  \
     * symmetric.  Allocates workspace. */ \
    int lc_hvp_dense_##SFX(const lc_net *net, const REAL *theta, int64_t N, int32_t loss,          \
                           int32_t gauss_newton, const REAL *state, REAL *H);                      \
    /* prepare + apply in one call, fused: each chunk of samples is prepared just before its   \
     * products, so no state of all N samples is stored.  HV is the same bits as prepare +       \
     * apply; grad and *loss_out (either may be NULL) are summed chunk by chunk, the same values \
     * to rounding.  Allocates workspace. */   \
    int lc_net_hvp_##SFX(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,       \
                         int64_t N, int32_t loss, int32_t gauss_newton, const REAL *V, int64_t k,  \
                         REAL *HV, REAL *grad, double *loss_out);

LC_DECLARE_HESSIAN(float, f32)
LC_DECLARE_HESSIAN(double, f64)

/* The largest (which = 1) or smallest (which = -1) eigenvalue of H (or the Gauss-Newton
 * matrix) by Lanczos with full reorthogonalization, one product per step, from the unit start
 * vector v0 (P) and a prepared state.  With theta the extreme Ritz value, r = beta_j |s_j|
 * its residual and gap the distance to the next Ritz value, it stops when
 * r <= sqrt(tol) |theta| and r^2 / gap <= tol |theta|, or when r = 0 (an invariant Krylov
 * space).  *value := theta, *steps := products taken, *converged := 1 if it stopped so within
 * max_steps (1 <= max_steps <= P) steps, else 0 (the last Ritz value is left in *value; a
 * Ritz value of 0 never passes the relative test, so a run whose extreme eigenvalue is 0 ends
 * unconverged and the caller falls back to ARPACK).
 * Every sum is ordered, so the result does not depend on threads.  Allocates workspace. */
int lc_hvp_lanczos_f64(const lc_net *net, const double *theta, int64_t N, int32_t loss,
                       int32_t gauss_newton, const double *state, const double *v0, int32_t which,
                       double tol, int64_t max_steps, double *value, int64_t *steps,
                       int32_t *converged);

#endif
