/* lc_dense.h: dense layers and whole-network forward, gradient and training epochs.
 *
 * Every function exists for float (_f32) and double (_f64); lc_dense_impl.h holds the one
 * definition both are made from.  Shapes are row-major; B is the number of samples.
 * No function here allocates unless its comment says so, and none touches Python. */
#ifndef LC_DENSE_H
#define LC_DENSE_H

#include "lc_common.h"

/* Scratch values lc_dense_backward needs for B samples of a layer (n_in, n_out). */
#define LC_BACKWARD_WORK(B, n_in, n_out) ((B) * (n_out) + (n_in) * (n_out))

#define LC_DECLARE_DENSE(REAL, SFX)                                                              \
    /* C := A M, A (rows, K) read with strides (A[i][k] = A[i * ars + k * acs]), M (K, N),      \
     * C (rows, N); each C[i][j] an ordered sum over k from zero. */                              \
    void lc_matmul_##SFX(const REAL *A, int64_t ars, int64_t acs, const REAL *M, REAL *C,        \
                         int64_t rows, int64_t K, int64_t N);                                    \
    /* out (cols, rows) := in (rows, cols) transposed. */                                        \
    void lc_transpose_##SFX(const REAL *in, REAL *out, int64_t rows, int64_t cols);              \
    /* dz := da * [|h| <= 1 if clip] * act'(z), elementwise over n values. */                    \
    void lc_act_backward_##SFX(int32_t act, int32_t clip, const REAL *z, const REAL *h,          \
                               const REAL *da, REAL *dz, int64_t n);                             \
    /* d := act'(z), elementwise over n values, from z and h = act(z). */                        \
    void lc_act_deriv_##SFX(int32_t act, const REAL *z, const REAL *h, REAL *d, int64_t n);      \
    /* h := act(z), elementwise over n values. */                                                \
    void lc_act_forward_##SFX(int32_t act, const REAL *z, REAL *h, int64_t n);                   \
    /* z := x W + b;  h := act(z);  a := clip(h, -1, 1) if clip else h.                          \
     * x (B, n_in), W (n_in, n_out), b (n_out) or NULL; z, h, a (B, n_out). */                   \
    void lc_dense_forward_##SFX(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,           \
                                const REAL *W, const REAL *b, int32_t act, int32_t clip,         \
                                REAL *z, REAL *h, REAL *a);                                      \
    /* Backward of lc_dense_forward for the upstream gradient da = dL/da (B, n_out):             \
     * dz := da * [|h| <= 1 if clip] * act'(z);  gW := x^T dz;  gb := sum_rows dz (if gb);       \
     * dx := dz W^T (if dx).  work is scratch of LC_BACKWARD_WORK(B, n_in, n_out) values. */    \
    void lc_dense_backward_##SFX(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,          \
                                 const REAL *W, const REAL *z, const REAL *h, const REAL *da,    \
                                 int32_t act, int32_t clip, REAL *work, REAL *gW, REAL *gb,      \
                                 REAL *dx);                                                      \
    /* Loss of predictions f against targets y (B, m), accumulated in double; when dloss is      \
     * not NULL it receives dL/df (B, m). */                                                     \
    double lc_loss_grad_##SFX(int32_t loss, const REAL *f, const REAL *y, int64_t B, int64_t m,  \
                              REAL *dloss);                                                      \
    /* Y := net(X) for N samples; X (N, sizes[0]), Y (N, sizes[L]); batch normalisation with    \
     * the moving statistics bn_state (NULL only without it).  Allocates workspace. */          \
    int lc_net_forward_##SFX(const lc_net *net, const REAL *theta, const REAL *bn_state,         \
                             const REAL *X, int64_t N, REAL *Y);                                 \
    /* Loss of the whole set (one batch, training mode) at theta and its gradient in theta's    \
     * layout (and dL/dX when dX is not NULL); bn_state, when not NULL, takes the moving        \
     * average update of this batch.  Allocates workspace. */                                    \
    int lc_net_loss_grad_##SFX(const lc_net *net, const REAL *theta, const REAL *X,              \
                               const REAL *Y, int64_t N, int32_t loss, REAL *grad, REAL *dX,     \
                               REAL *bn_state, double *loss_out);                                \
    /* One training epoch: mini-batches of batch_size samples taken from X, Y in the order of    \
     * perm (N indices; NULL keeps the stored order), the last batch partial.  Per batch:        \
     * forward, loss, backward, optimizer step (*step counts steps done, Keras "iterations"),    \
     * then parameters clipped to [-1, 1] when clip_params.  *loss_sum receives the sum over     \
     * completed batches of (batch loss * batch size) and *n_done their sample count.            \
     * Batch-normalised layers use batch statistics and, after each completed step, move       \
     * bn_state (required for such networks).                                                    \
     * Stops at the first non-finite loss or parameter, leaving theta as before that batch.      \
     * Allocates workspace. */                                                                   \
    int lc_train_epoch_##SFX(const lc_net *net, REAL *theta, const REAL *X, const REAL *Y,       \
                             int64_t N, const int64_t *perm, int64_t batch_size, int32_t loss,   \
                             const lc_optim *opt, REAL *m, REAL *v, int64_t *step,               \
                             int32_t clip_params, REAL *bn_state, double *loss_sum,              \
                             int64_t *n_done);

LC_DECLARE_DENSE(float, f32)
LC_DECLARE_DENSE(double, f64)

#endif
