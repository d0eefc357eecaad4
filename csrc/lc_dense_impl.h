/* lc_dense_impl.h: the one definition of the dense kernels, included by lc_dense.c once per
 * floating type with REAL (float or double), SFX (f32 or f64) and the math functions
 * EXP, TANH, LOG1P, FABS, SQRT defined.  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

static inline REAL FN(act_one)(int32_t act, REAL z)
{
    switch (act) {
    case LC_ACT_RELU: return z > 0 ? z : (REAL)0;
    case LC_ACT_TANH: return TANH(z);
    case LC_ACT_SIGMOID: return (REAL)1 / ((REAL)1 + EXP(-z));
    case LC_ACT_SOFTSIGN: return z / ((REAL)1 + FABS(z));
    case LC_ACT_LEAKY_RELU: return z > 0 ? z : (REAL)LC_LEAKY_SLOPE * z;
    case LC_ACT_SOFTPLUS: return LOG1P(EXP(-FABS(z))) + (z > 0 ? z : (REAL)0);
    default: return z;
    }
}

/* d act / d z, from the pre-activation z and the activation h = act(z). */
static inline REAL FN(act_deriv)(int32_t act, REAL z, REAL h)
{
    switch (act) {
    case LC_ACT_RELU: return z > 0 ? (REAL)1 : (REAL)0;
    case LC_ACT_TANH: return (REAL)1 - h * h;
    case LC_ACT_SIGMOID: return h * ((REAL)1 - h);
    case LC_ACT_SOFTSIGN: { REAL d = (REAL)1 + FABS(z); return (REAL)1 / (d * d); }
    case LC_ACT_LEAKY_RELU: return z > 0 ? (REAL)1 : (REAL)LC_LEAKY_SLOPE;
    case LC_ACT_SOFTPLUS: return (REAL)1 / ((REAL)1 + EXP(-z));
    default: return (REAL)1;
    }
}

LC_HOT void FN(lc_act_forward)(int32_t act, const REAL *z, REAL *h, int64_t n)
{
    int64_t i;
    switch (act) {
    case LC_ACT_LINEAR:
        for (i = 0; i < n; i++) h[i] = z[i];
        break;
    case LC_ACT_RELU:
        for (i = 0; i < n; i++) h[i] = z[i] > 0 ? z[i] : (REAL)0;
        break;
#if defined(LC_VMATH_FLOAT)
    case LC_ACT_TANH: /* float32: four lanes at a time, in double, rounded once (lc_vmath.h) */
        LC_V4F_APPLY(lc_v4d_tanh, z, h, n);
        break;
    case LC_ACT_SIGMOID:
        LC_V4F_APPLY(lc_v4d_sigmoid, z, h, n);
        break;
#endif
    default:
        for (i = 0; i < n; i++) h[i] = FN(act_one)(act, z[i]);
    }
}

/* d := act'(z) elementwise, one loop per common activation so each vectorizes. */
LC_HOT void FN(lc_act_deriv)(int32_t act, const REAL *restrict z, const REAL *restrict h,
                             REAL *restrict d, int64_t n)
{
    switch (act) {
    case LC_ACT_LINEAR:
        for (int64_t i = 0; i < n; i++) d[i] = (REAL)1;
        break;
    case LC_ACT_RELU:
        for (int64_t i = 0; i < n; i++) d[i] = z[i] > 0 ? (REAL)1 : (REAL)0;
        break;
    case LC_ACT_TANH:
        for (int64_t i = 0; i < n; i++) d[i] = (REAL)1 - h[i] * h[i];
        break;
    default:
        for (int64_t i = 0; i < n; i++) d[i] = FN(act_deriv)(act, z[i], h[i]);
    }
}

/* C := A M for A (rows, K) read with strides (A[i][k] = A[i * ars + k * acs], so A may be
 * the transpose of a row-major array) and M (K, N), C (rows, N) row-major.  Every C[i][j] is the sum over k in
 * increasing order of A[i][k] M[k][j], starting from zero, whichever path computes it: so the
 * result is the same bit for bit for any vector width.  Register blocking: 4 rows by 64 (then
 * 32) bytes of columns of C stay in registers across the whole k loop (GCC/Clang vector extensions; a
 * vector operation is the same IEEE operation on each lane). */
#if LC_HAVE_VECTOR_EXT
LC_VECTOR_TYPEDEF(FN(lc_vec), REAL, 32);
#endif

LC_HOT void FN(lc_matmul)(const REAL *restrict A, int64_t ars, int64_t acs,
                               const REAL *restrict M, REAL *restrict C, int64_t rows, int64_t K,
                               int64_t N)
{
    int64_t i = 0;
#if LC_HAVE_VECTOR_EXT
    typedef FN(lc_vec) vec;
    enum { JB = (int)(sizeof(vec) / sizeof(REAL)) };
    for (; i + 4 <= rows; i += 4) {
        const REAL *a0 = A + i * ars, *a1 = a0 + ars, *a2 = a1 + ars, *a3 = a2 + ars;
        int64_t j = 0;
        for (; j + 2 * JB <= N; j += 2 * JB) { /* 4 rows by 2 vectors: 8 independent chains */
            vec c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};
            vec m, n;
            for (int64_t k = 0; k < K; k++) {
                memcpy(&m, M + k * N + j, sizeof m);
                memcpy(&n, M + k * N + j + JB, sizeof n);
                const REAL x0 = a0[k * acs], x1 = a1[k * acs], x2 = a2[k * acs], x3 = a3[k * acs];
                c0 += x0 * m;
                e0 += x0 * n;
                c1 += x1 * m;
                e1 += x1 * n;
                c2 += x2 * m;
                e2 += x2 * n;
                c3 += x3 * m;
                e3 += x3 * n;
            }
            memcpy(C + i * N + j, &c0, sizeof m);
            memcpy(C + (i + 1) * N + j, &c1, sizeof m);
            memcpy(C + (i + 2) * N + j, &c2, sizeof m);
            memcpy(C + (i + 3) * N + j, &c3, sizeof m);
            memcpy(C + i * N + j + JB, &e0, sizeof m);
            memcpy(C + (i + 1) * N + j + JB, &e1, sizeof m);
            memcpy(C + (i + 2) * N + j + JB, &e2, sizeof m);
            memcpy(C + (i + 3) * N + j + JB, &e3, sizeof m);
        }
        for (; j + JB <= N; j += JB) {
            vec c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, m;
            for (int64_t k = 0; k < K; k++) {
                memcpy(&m, M + k * N + j, sizeof m);
                c0 += a0[k * acs] * m;
                c1 += a1[k * acs] * m;
                c2 += a2[k * acs] * m;
                c3 += a3[k * acs] * m;
            }
            memcpy(C + i * N + j, &c0, sizeof m);
            memcpy(C + (i + 1) * N + j, &c1, sizeof m);
            memcpy(C + (i + 2) * N + j, &c2, sizeof m);
            memcpy(C + (i + 3) * N + j, &c3, sizeof m);
        }
        for (; j < N; j++) { /* leftover columns: four independent ordered sums */
            REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t k = 0; k < K; k++) {
                const REAL mk = M[k * N + j];
                s0 += a0[k * acs] * mk;
                s1 += a1[k * acs] * mk;
                s2 += a2[k * acs] * mk;
                s3 += a3[k * acs] * mk;
            }
            C[i * N + j] = s0;
            C[(i + 1) * N + j] = s1;
            C[(i + 2) * N + j] = s2;
            C[(i + 3) * N + j] = s3;
        }
    }
#endif
    for (; i < rows; i++) {
        REAL *restrict c = C + i * N;
        for (int64_t j = 0; j < N; j++) c[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            const REAL a = A[i * ars + k * acs];
            const REAL *restrict m = M + k * N;
            for (int64_t j = 0; j < N; j++) c[j] += a * m[j];
        }
    }
}

/* C := A M for row-major A (rows, K), M (K, N). */
static inline void FN(matmul)(const REAL *A, const REAL *M, REAL *C, int64_t rows, int64_t K,
                              int64_t N)
{
    FN(lc_matmul)(A, K, 1, M, C, rows, K, N);
}

/* out (cols, rows) := in (rows, cols) transposed. */
LC_HOT void FN(lc_transpose)(const REAL *restrict in, REAL *restrict out, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

/* dz := da * [|h| <= 1 if clip] * act'(z), one loop per activation so each vectorizes. */
LC_HOT void FN(lc_act_backward)(int32_t act, int32_t clip, const REAL *restrict z,
                                   const REAL *restrict h, const REAL *restrict da,
                                   REAL *restrict dz, int64_t n)
{
    switch (act) {
    case LC_ACT_LINEAR:
        for (int64_t i = 0; i < n; i++) dz[i] = da[i];
        break;
    case LC_ACT_RELU:
        for (int64_t i = 0; i < n; i++) dz[i] = z[i] > 0 ? da[i] : (REAL)0;
        break;
    case LC_ACT_TANH:
        for (int64_t i = 0; i < n; i++) dz[i] = da[i] * ((REAL)1 - h[i] * h[i]);
        break;
    case LC_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) dz[i] = da[i] * (h[i] * ((REAL)1 - h[i]));
        break;
    default:
        for (int64_t i = 0; i < n; i++) dz[i] = da[i] * FN(act_deriv)(act, z[i], h[i]);
    }
    if (clip)
        for (int64_t i = 0; i < n; i++)
            if (!(h[i] >= (REAL)-1 && h[i] <= (REAL)1)) dz[i] = 0;
}

void FN(lc_dense_forward)(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,
                          const REAL *W, const REAL *b, int32_t act, int32_t clip,
                          REAL *z, REAL *h, REAL *a)
{
    FN(matmul)(x, W, z, B, n_in, n_out);
    if (b)
        for (int64_t i = 0; i < B; i++) {
            REAL *restrict zi = z + i * n_out;
            for (int64_t j = 0; j < n_out; j++) zi[j] += b[j];
        }
    FN(lc_act_forward)(act, z, h, B * n_out);
    if (clip) {
        for (int64_t i = 0; i < B * n_out; i++) {
            REAL v = h[i];
            a[i] = v < (REAL)-1 ? (REAL)-1 : (v > (REAL)1 ? (REAL)1 : v);
        }
    } else if (a != h) {
        for (int64_t i = 0; i < B * n_out; i++) a[i] = h[i];
    }
}

void FN(lc_dense_backward)(const REAL *x, int64_t B, int64_t n_in, int64_t n_out,
                           const REAL *W, const REAL *z, const REAL *h, const REAL *da,
                           int32_t act, int32_t clip, REAL *work, REAL *gW, REAL *gb, REAL *dx)
{
    REAL *dz = work, *wt = work + B * n_out;
    FN(lc_act_backward)(act, clip, z, h, da, dz, B * n_out);
    /* gW := x^T dz (summing over samples in order), reading x transposed in place */
    FN(lc_matmul)(x, 1, n_in, dz, gW, n_in, B, n_out);
    if (gb) {
        for (int64_t j = 0; j < n_out; j++) gb[j] = 0;
        for (int64_t i = 0; i < B; i++) {
            const REAL *restrict dzi = dz + i * n_out;
            for (int64_t j = 0; j < n_out; j++) gb[j] += dzi[j];
        }
    }
    if (dx) { /* dx := dz W^T */
        FN(lc_transpose)(W, wt, n_in, n_out);
        FN(matmul)(dz, wt, dx, B, n_out, n_in);
    }
}

double FN(lc_loss_grad)(int32_t loss, const REAL *f, const REAL *y, int64_t B, int64_t m,
                        REAL *dloss)
{
    const int64_t n = B * m;
    double total = 0.0;
    if (loss == LC_LOSS_MAE) {
        const REAL s = (REAL)(1.0 / (double)n);
        for (int64_t i = 0; i < n; i++) {
            const REAL r = f[i] - y[i];
            total += (double)FABS(r);
            if (dloss) dloss[i] = r > 0 ? s : (r < 0 ? -s : (r == 0 ? (REAL)0 : r));
        }
        return total / (double)n;
    }
    const double denom = loss == LC_LOSS_HALF_MSE ? 2.0 * (double)B : (double)n;
    const REAL s = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)B) : (REAL)(2.0 / (double)n);
    for (int64_t i = 0; i < n; i++) {
        const REAL r = f[i] - y[i];
        total += (double)r * (double)r;
        if (dloss) dloss[i] = s * r;
    }
    return total / denom;
}

/* Workspace for a batch of up to B samples: per layer z, h, a (B, width), plus two gradient
 * buffers, dz and a transposed kernel. */
typedef struct {
    REAL *block;
    REAL **z, **h, **a;
    REAL **out;                   /* each layer's final output: a, or the normalised y */
    REAL **bn_hat, **bn_inv;      /* normalised outputs (B, n_out) and 1/sqrt(var + eps) */
    REAL **bn_mean, **bn_var;     /* the batch's statistics, applied to the state on success */
    REAL *da0, *da1, *dbn, *work;
} FN(ws);

static void FN(ws_free)(FN(ws) *w)
{
    free(w->block);
    free(w->z);
    w->block = NULL;
    w->z = NULL;
}

static int FN(ws_alloc)(FN(ws) *w, const lc_net *net, int64_t B)
{
    const int64_t L = net->n_layers, maxw = lc_net_max_width(net);
    int64_t total = 0;
    for (int64_t l = 0; l < L; l++)
        total += 3 * B * net->sizes[l + 1] + (lc_net_bn(net, l) ? 2 * B * net->sizes[l + 1] + 3 * net->sizes[l + 1] : 0);
    total += 3 * B * maxw + LC_BACKWARD_WORK(B, maxw, maxw);
    w->block = (REAL *)malloc((size_t)(total > 0 ? total : 1) * sizeof(REAL));
    w->z = (REAL **)malloc((size_t)(8 * L + 1) * sizeof(REAL *));
    if (!w->block || !w->z) {
        FN(ws_free)(w);
        return LC_ERR_NOMEM;
    }
    w->h = w->z + L;
    w->a = w->h + L;
    w->out = w->a + L;
    w->bn_hat = w->out + L;
    w->bn_inv = w->bn_hat + L;
    w->bn_mean = w->bn_inv + L;
    w->bn_var = w->bn_mean + L;
    REAL *p = w->block;
    for (int64_t l = 0; l < L; l++) {
        const int64_t no = net->sizes[l + 1], s = B * no;
        w->z[l] = p; p += s;
        w->h[l] = p; p += s;
        w->a[l] = p; p += s;
        w->out[l] = w->a[l];
        w->bn_hat[l] = w->bn_inv[l] = w->bn_mean[l] = w->bn_var[l] = NULL;
        if (lc_net_bn(net, l)) {
            w->out[l] = p; p += s;
            w->bn_hat[l] = p; p += s;
            w->bn_inv[l] = p; p += no;
            w->bn_mean[l] = p; p += no;
            w->bn_var[l] = p; p += no;
        }
    }
    w->da0 = p; p += B * maxw;
    w->da1 = p; p += B * maxw;
    w->dbn = p; p += B * maxw;
    w->work = p;
    return LC_OK;
}

/* Batch normalisation of a (B, n) into y.  Training (state_in NULL): the batch's mean and
 * biased variance, kept with 1/sqrt(var + eps) and the normalised values for the backward
 * pass.  Inference: the moving mean and variance state_in[0..n), state_in[n..2n). */
static void FN(bn_forward)(const REAL *a, int64_t B, int64_t n, const REAL *gamma, const REAL *beta,
                           REAL eps, const REAL *state_in, REAL *mean, REAL *var, REAL *inv,
                           REAL *hat, REAL *y)
{
    for (int64_t j = 0; j < n; j++) {
        REAL mu, va;
        if (state_in) {
            mu = state_in[j];
            va = state_in[n + j];
        } else {
            REAL sm = 0, sv = 0;
            for (int64_t i = 0; i < B; i++) sm += a[i * n + j];
            mu = sm / (REAL)B;
            for (int64_t i = 0; i < B; i++) {
                const REAL d = a[i * n + j] - mu;
                sv += d * d;
            }
            va = sv / (REAL)B;
            mean[j] = mu;
            var[j] = va;
        }
        const REAL iv = (REAL)1 / SQRT(va + eps);
        if (inv) inv[j] = iv;
        for (int64_t i = 0; i < B; i++) {
            const REAL t = (a[i * n + j] - mu) * iv;
            if (hat) hat[i * n + j] = t;
            y[i * n + j] = gamma[j] * t + beta[j];
        }
    }
}

/* Forward of B samples through every layer, keeping z, h, a (and the batch-normalisation
 * intermediates) of each in the workspace.  bn_state NULL: training (batch statistics);
 * else inference with the moving statistics. */
static void FN(net_forward_ws)(const lc_net *net, const REAL *theta, const int64_t *w_off,
                               const int64_t *b_off, const REAL *X, int64_t B, FN(ws) *w,
                               const REAL *bn_state)
{
    const REAL *in = X;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t no = net->sizes[l + 1];
        const REAL *b = b_off[l] >= 0 ? theta + b_off[l] : NULL;
        FN(lc_dense_forward)(in, B, net->sizes[l], no, theta + w_off[l], b,
                             net->acts[l], net->clip_out, w->z[l], w->h[l], w->a[l]);
        if (lc_net_bn(net, l)) {
            const REAL *g = theta + lc_net_bn_offset(net, l);
            const REAL *st = bn_state ? bn_state + lc_net_bn_state_offset(net, l) : NULL;
            FN(bn_forward)(w->a[l], B, no, g, g + no, (REAL)net->bn_epsilon[l], st, w->bn_mean[l],
                           w->bn_var[l], w->bn_inv[l], w->bn_hat[l], w->out[l]);
        }
        in = w->out[l];
    }
}

/* moving := moving * momentum + batch * (1 - momentum), per batch-normalised layer. */
static void FN(bn_update_state)(const lc_net *net, const FN(ws) *w, REAL *bn_state)
{
    for (int64_t l = 0; l < net->n_layers; l++) {
        if (!lc_net_bn(net, l)) continue;
        const int64_t no = net->sizes[l + 1];
        const REAL mom = (REAL)net->bn_momentum[l], c = (REAL)1 - mom;
        REAL *st = bn_state + lc_net_bn_state_offset(net, l);
        for (int64_t j = 0; j < no; j++) {
            st[j] = st[j] * mom + w->bn_mean[l][j] * c;
            st[no + j] = st[no + j] * mom + w->bn_var[l][j] * c;
        }
    }
}

/* Loss and gradient of B samples; forward state (training mode) already in w.  dX, when not
 * NULL, receives dL/dX (B, sizes[0]). */
static double FN(net_backward_ws)(const lc_net *net, const REAL *theta, const int64_t *w_off,
                                  const int64_t *b_off, const REAL *X, const REAL *Y, int64_t B,
                                  int32_t loss, FN(ws) *w, REAL *grad, REAL *dX)
{
    const int64_t L = net->n_layers;
    double value = FN(lc_loss_grad)(loss, w->out[L - 1], Y, B, net->sizes[L], w->da0);
    REAL *da = w->da0, *da_prev = w->da1;
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t no = net->sizes[l + 1];
        const REAL *in = l > 0 ? w->out[l - 1] : X;
        REAL *dx = l > 0 ? da_prev : dX;
        const REAL *dlayer = da;
        if (lc_net_bn(net, l)) {
            /* dgamma = sum da hat; dbeta = sum da; with dh = da gamma,
             * da_pre = inv / B (B dh - sum dh - hat sum dh hat) */
            const int64_t go = lc_net_bn_offset(net, l);
            const REAL *g = theta + go, *hat = w->bn_hat[l], *inv = w->bn_inv[l];
            REAL *dg = grad + go, *db = grad + go + no, *out = w->dbn;
            for (int64_t j = 0; j < no; j++) {
                REAL sd = 0, sdh = 0, sg = 0;
                for (int64_t i = 0; i < B; i++) {
                    const REAL d = da[i * no + j];
                    sg += d * hat[i * no + j];
                    sd += d;
                }
                dg[j] = sg;
                db[j] = sd;
                sd *= g[j];
                sdh = sg * g[j];
                for (int64_t i = 0; i < B; i++) {
                    const REAL dh = da[i * no + j] * g[j];
                    out[i * no + j] = inv[j] / (REAL)B * ((REAL)B * dh - sd - hat[i * no + j] * sdh);
                }
            }
            dlayer = out;
        }
        FN(lc_dense_backward)(in, B, net->sizes[l], no, theta + w_off[l],
                              w->z[l], w->h[l], dlayer, net->acts[l], net->clip_out, w->work,
                              grad + w_off[l], b_off[l] >= 0 ? grad + b_off[l] : NULL, dx);
        REAL *t = da; da = da_prev; da_prev = t;
    }
    return value;
}

int FN(lc_net_forward)(const lc_net *net, const REAL *theta, const REAL *bn_state, const REAL *X,
                      int64_t N, REAL *Y)
{
    const int64_t L = net->n_layers, chunk = N < 256 ? (N > 0 ? N : 1) : 256;
    const int64_t n_in = net->sizes[0], n_out = net->sizes[L];
    int64_t *off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    FN(ws) w = {0};
    if (lc_net_has_bn(net) && !bn_state) return LC_ERR_ARGS;
    if (!off || FN(ws_alloc)(&w, net, chunk) != LC_OK) {
        free(off);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, off, off + L);
    for (int64_t s = 0; s < N; s += chunk) {
        const int64_t B = N - s < chunk ? N - s : chunk;
        FN(net_forward_ws)(net, theta, off, off + L, X + s * n_in, B, &w, bn_state);
        memcpy(Y + s * n_out, w.out[L - 1], (size_t)(B * n_out) * sizeof(REAL));
    }
    FN(ws_free)(&w);
    free(off);
    return LC_OK;
}

int FN(lc_net_loss_grad)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                         int64_t N, int32_t loss, REAL *grad, REAL *dX, REAL *bn_state,
                         double *loss_out)
{
    const int64_t L = net->n_layers;
    int64_t *off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    FN(ws) w = {0};
    if (!off || FN(ws_alloc)(&w, net, N) != LC_OK) {
        free(off);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, off, off + L);
    FN(net_forward_ws)(net, theta, off, off + L, X, N, &w, NULL);
    *loss_out = FN(net_backward_ws)(net, theta, off, off + L, X, Y, N, loss, &w, grad, dX);
    if (bn_state) FN(bn_update_state)(net, &w, bn_state);
    FN(ws_free)(&w);
    free(off);
    return LC_OK;
}

int FN(lc_train_epoch)(const lc_net *net, REAL *theta, const REAL *X, const REAL *Y, int64_t N,
                       const int64_t *perm, int64_t batch_size, int32_t loss,
                       const lc_optim *opt, REAL *m, REAL *v, int64_t *step,
                       int32_t clip_params, REAL *bn_state, double *loss_sum, int64_t *n_done)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net);
    const int64_t n_in = net->sizes[0], n_out = net->sizes[L];
    const int64_t B_max = batch_size < N ? batch_size : N;
    int status = LC_OK;
    *loss_sum = 0.0;
    *n_done = 0;
    if (batch_size <= 0 || (lc_net_has_bn(net) && !bn_state)) return LC_ERR_ARGS;
    if (N == 0) return LC_OK;
    int64_t *off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    REAL *buf = (REAL *)malloc((size_t)(2 * P + B_max * (n_in + n_out)) * sizeof(REAL));
    FN(ws) w = {0};
    if (!off || !buf || FN(ws_alloc)(&w, net, B_max) != LC_OK) {
        free(off);
        free(buf);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, off, off + L);
    REAL *grad = buf, *backup = buf + P, *Xb = buf + 2 * P, *Yb = Xb + B_max * n_in;
    for (int64_t s = 0; s < N; s += batch_size) {
        const int64_t B = N - s < batch_size ? N - s : batch_size;
        for (int64_t i = 0; i < B; i++) {
            const int64_t r = perm ? perm[s + i] : s + i;
            memcpy(Xb + i * n_in, X + r * n_in, (size_t)n_in * sizeof(REAL));
            memcpy(Yb + i * n_out, Y + r * n_out, (size_t)n_out * sizeof(REAL));
        }
        FN(net_forward_ws)(net, theta, off, off + L, Xb, B, &w, NULL);
        const double value =
            FN(net_backward_ws)(net, theta, off, off + L, Xb, Yb, B, loss, &w, grad, NULL);
        if (!isfinite(value)) {
            status = LC_ERR_NONFINITE_LOSS;
            break;
        }
        memcpy(backup, theta, (size_t)P * sizeof(REAL));
        FN(lc_optim_step)(opt, theta, grad, m, v, P, *step + 1);
        if (clip_params) FN(lc_clip)(theta, P, (REAL)-1, (REAL)1);
        if (!FN(lc_all_finite)(theta, P)) {
            memcpy(theta, backup, (size_t)P * sizeof(REAL));
            status = LC_ERR_NONFINITE_PARAMS;
            break;
        }
        if (bn_state) FN(bn_update_state)(net, &w, bn_state);
        *step += 1;
        *loss_sum += value * (double)B;
        *n_done += B;
    }
    FN(ws_free)(&w);
    free(buf);
    free(off);
    return status;
}

#undef FN
#undef LC_CAT
#undef LC_CAT_
