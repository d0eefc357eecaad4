/* lc_dense.h: dense layers and whole-network forward, gradient and training epochs.
 *
 * Every function exists for float (_f32) and double (_f64); lc_dense_impl.h holds the one
 * definition both are made from.  Shapes are row-major; B is the number of samples.
 * No function here allocates unless its comment says so, and none touches Python. */
#ifndef LC_DENSE_H
#define LC_DENSE_H

#include "lc_common.h"
#include "lc_qat.h"

/* Where one layer's parameters sit: offsets into theta of the kernel, the bias, gamma (beta
 * follows it), and into the batch-normalisation state of the moving mean (the variance
 * follows it); -1 where the layer has none. */
typedef struct {
    int64_t w, b, bn, bn_state;
} lc_layer_offsets;

/* The layout table: layout[l] for each of net's n_layers layers.  The one place the parameter
 * layout is computed; kernels take the table, computed once per network, and never walk the
 * layers to find an offset. */
void lc_net_layout(const lc_net *net, lc_layer_offsets *layout);

/* What one training run needs besides its arrays. */
typedef struct {
    const lc_net *net;
    const lc_layer_offsets *layout; /* lc_net_layout(net) */
    int32_t loss;                   /* lc_loss; any other code is refused (LC_ERR_ARGS) */
    const lc_optim *opt;            /* kind an lc_optimizer_kind, else refused */
    int32_t clip_params;            /* 1: parameters clipped to [-1, 1] after every update */
    const lc_qat *quant;            /* the quantization hook; NULL: float training */
} lc_train;

/* LC_OK when t's codes are known, its formats valid and its network trainable with them
 * (no quantization of batch-normalised networks yet); else LC_ERR_ARGS or LC_FIX_ERR_FORMAT. */
int lc_train_check(const lc_train *t);

/* Which products lc_matmul runs on this CPU in this build: LC_PRODUCTS_PLAIN (the plain loops:
 * the portable build, or a compiler without vector types), LC_PRODUCTS_VECTOR (register tiles
 * for the build's baseline instruction set), LC_PRODUCTS_AVX2, LC_PRODUCTS_AVX512 (AVX2 tiles,
 * and the AVX-512 tiles for products of 16 float or 8 double columns and more), or
 * LC_PRODUCTS_WIDE_TEST (a LC_TEST_WIDE build: the AVX-512 tiles' source compiled for the
 * build's instruction set).  The bits are the same on every path. */
enum {
    LC_PRODUCTS_PLAIN = 0,
    LC_PRODUCTS_VECTOR = 1,
    LC_PRODUCTS_AVX2 = 2,
    LC_PRODUCTS_AVX512 = 3,
    LC_PRODUCTS_WIDE_TEST = 4
};
int lc_products_path(void);

/* Opt-in FMA products: lc_set_fma(1) makes every lc_matmul a sum of fused multiply-adds
 * (one rounding per term instead of two: other bits than the default products, the NumPy
 * engine and machines without FMA, still the same for any thread count on one machine).
 * Accepted (LC_OK) where lc_fma_available(): a GCC build on x86-64 running on a CPU with AVX2
 * and FMA; elsewhere lc_set_fma(1) returns LC_ERR_ARGS and changes nothing.  Process-wide,
 * read at each product: set it before training, not during. */
int lc_fma_available(void);
int lc_set_fma(int on);
int lc_get_fma(void);

/* Scratch values lc_dense_backward needs for B samples of a layer (n_in, n_out). */
#define LC_BACKWARD_WORK(B, n_in, n_out) ((B) * (n_out) + (n_in) * (n_out))

#define LC_DECLARE_DENSE(REAL, SFX)                                                                \
    /* C := A M, A (rows, K) read with strides (A[i][k] = A[i * ars + k * acs]), M (K, N),      \
     * C (rows, N); each C[i][j] an ordered sum over k from zero. */  \
    void lc_matmul_##SFX(const REAL *A, int64_t ars, int64_t acs, const REAL *M, REAL *C,          \
                         int64_t rows, int64_t K, int64_t N);                                      \
    /* out (cols, rows) := in (rows, cols) transposed. */                                          \
    void lc_transpose_##SFX(const REAL *in, REAL *out, int64_t rows, int64_t cols);                \
    /* dz := da * [|h| <= 1 if clip] * act'(z), elementwise over n values. */                      \
    void lc_act_backward_##SFX(int32_t act, int32_t clip, const REAL *z, const REAL *h,            \
                               const REAL *da, REAL *dz, int64_t n);                               \
    /* d := act'(z), elementwise over n values, from z and h = act(z). */                          \
    void lc_act_deriv_##SFX(int32_t act, const REAL *z, const REAL *h, REAL *d, int64_t n);        \
    /* h := act(z), elementwise over n values. */                                                  \
    void lc_act_forward_##SFX(int32_t act, const REAL *z, REAL *h, int64_t n);                     \
    /* z := x W + b;  h := act(z);  a := clip(h, -1, 1) if clip else h.                          \
     * x (B, n_in), W (n_in, n_out), b (n_out) or NULL; z, h, a (B, n_out). */ \
    void lc_dense_forward_##SFX(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,             \
                                const REAL *W, const REAL *b, int32_t act, int32_t clip, REAL *z,  \
                                REAL *h, REAL *a);                                                 \
    /* Backward of lc_dense_forward for the upstream gradient da = dL/da (B, n_out):             \
     * dz := da * [|h| <= 1 if clip] * act'(z);  gW := x^T dz;  gb := sum_rows dz (if gb);       \
     * dx := dz W^T (if dx).  work is scratch of LC_BACKWARD_WORK(B, n_in, n_out) values. */ \
    void lc_dense_backward_##SFX(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,            \
                                 const REAL *W, const REAL *z, const REAL *h, const REAL *da,      \
                                 int32_t act, int32_t clip, REAL *work, REAL *gW, REAL *gb,        \
                                 REAL *dx);                                                        \
    /* Loss of predictions f against targets y (B, m), accumulated in double; when dloss is      \
     * not NULL it receives dL/df (B, m).  An unknown loss code gives NaN (callers check). */ \
    double lc_loss_grad_##SFX(int32_t loss, const REAL *f, const REAL *y, int64_t B, int64_t m,    \
                              REAL *dloss);                                                        \
    /* Y := net(X) for N samples; X (N, sizes[0]), Y (N, sizes[L]); batch normalisation with    \
     * the moving statistics bn_state (NULL only without it).  Allocates workspace.  Large    \
     * sets run in chunks of rows on up to lc_get_num_threads() threads (the same bits). */  \
    int lc_net_forward_##SFX(const lc_net *net, const REAL *theta, const REAL *bn_state,           \
                             const REAL *X, int64_t N, REAL *Y);                                   \
    /* Loss of the whole set (one batch, training mode) at theta and its gradient in theta's    \
     * layout (and dL/dX when dX is not NULL); bn_state, when not NULL, takes the moving        \
     * average update of this batch.  The step's forward and backward, without quantization.    \
     * LC_ERR_ARGS for an unknown loss code.  Allocates workspace. */  \
    int lc_net_loss_grad_##SFX(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y, \
                               int64_t N, int32_t loss, REAL *grad, REAL *dX, REAL *bn_state,      \
                               double *loss_out);                                                  \
    /* One training epoch, float or quantization-aware (t->quant; see lc_qat.h): mini-batches   \
     * of batch_size samples taken from X, Y in the order of perm (N indices, each in [0, N),    \
     * checked by the caller; NULL keeps the stored order), the last batch partial.  Per batch,  \
     * one step: forward, loss, backward (lc_train_loss_grad), optimizer increment and its       \
     * application (lc_train_apply); *step counts steps done (Keras "iterations").  *loss_sum     \
     * receives the sum over completed batches of (batch loss * batch size), *n_done their       \
     * sample count, rail (ceil(N / batch_size), LC_RAIL_N), when not NULL, each step's rail     \
     * statistics.  Batch-normalised layers use batch statistics and, after each completed      \
     * step, move bn_state (required for such networks).  Stops at the first non-finite loss or  \
     * parameter, leaving theta as before that batch.  Allocates workspace.  Runs on up to    \
     * lc_get_num_threads() threads in parts fixed by the batch size and the network, never by  \
     * the thread count: the same bits for any count (lc_dense_impl.h says what stays serial). */  \
    int lc_train_epoch_##SFX(const lc_train *t, REAL *theta, REAL *m, REAL *v, REAL *bn_state,     \
                             const REAL *X, const REAL *Y, int64_t N, const int64_t *perm,         \
                             int64_t batch_size, int64_t *step, double *rail, double *loss_sum,    \
                             int64_t *n_done);                                                     \
    /* The two halves of a step, for loops that act between them (the ablation controller).     \
     * loss_grad: forward, loss, backward (straight-through across quantizers) and gradient      \
     * quantization of the B samples X, Y at theta -> grad (theta's layout), the loss, and       \
     * rail[LC_RAIL_GRAD_*] (when rail is not NULL).  apply: the increment delta through the     \
     * update formats, theta += delta, clip when asked, storage through the weight and bias      \
     * formats -> rail's weight and update columns; a non-finite result leaves theta as it was   \
     * (LC_ERR_NONFINITE_PARAMS).  step seeds stochastic rounding (lc_qat_seed).  No batch       \
     * normalisation.  Allocate workspace. */  \
    int lc_train_loss_grad_##SFX(const lc_train *t, const REAL *theta, const REAL *X,              \
                                 const REAL *Y, int64_t B, int64_t step, REAL *grad, double *rail, \
                                 double *loss_out);                                                \
    int lc_train_apply_##SFX(const lc_train *t, REAL *theta, const REAL *delta, int64_t step,      \
                             double *rail);

LC_DECLARE_DENSE(float, f32)
LC_DECLARE_DENSE(double, f64)

/* loss(net(X), Y) over N samples in inference mode (batch normalisation with the moving
 * statistics bn_state, NULL only without it), without a gradient: the value lc_net_forward and
 * then lc_loss_grad give (a validation loss in one call).  LC_ERR_ARGS for an unknown loss code.
 * Allocates the predictions and workspace. */
#define LC_DECLARE_NET_LOSS(REAL, SFX)                                                             \
    int lc_net_loss_##SFX(const lc_net *net, const REAL *theta, const REAL *bn_state,              \
                          const REAL *X, const REAL *Y, int64_t N, int32_t loss,                   \
                          double *loss_out);

LC_DECLARE_NET_LOSS(float, f32)
LC_DECLARE_NET_LOSS(double, f64)

#endif
