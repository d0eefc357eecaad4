/* lc_hessian_impl.h: the one definition of the Hessian kernels, included by lc_hessian.c once
 * per floating type with REAL, SFX and the math functions EXP, FABS defined.  Not a public
 * header.  The mathematics is stated in lc_hessian.h.
 *
 * lc_hvp_apply runs the R-operator for all k directions at once, so that every product is one
 * call of lc_matmul (the register-blocked kernel of lc_dense) rather than k scalar loops.  For
 * a chunk of B samples the per-direction values (Rz, Ra, Rda, Rdz) of one layer are stored
 * direction-major, (k, B, width): stacked, they form one (k B, width) matrix, so the terms
 * through the kernel W (Ra W, Rdz W^T) are one product each for all directions; the terms
 * through a direction's own kernel block (a V_c, dz V_c^T) and the gradient terms
 * (a^T Rdz_c, Ra_c^T dz) are one product per direction. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

/* Values of per-direction buffers one chunk of samples may hold (chunk size is this divided
 * by the values one sample needs, within [LC_HVP_MIN_CHUNK, N]): about 64 KiB in double, so a
 * chunk's buffers stay in the level-2 cache and a call allocates little (on the 4-16-2 case,
 * 512 KiB chunks cost a third more per product, most of it in page faults). */
#define LC_HVP_CHUNK_VALUES 8192
#define LC_HVP_MIN_CHUNK 64

/* act''(z) from z and h = act(z). */
static inline REAL FN(hess_d2)(int32_t act, REAL z, REAL h)
{
    switch (act) {
    case LC_ACT_TANH:
        return (REAL)-2 * h * ((REAL)1 - h * h); /* -2 t (1 - t^2) */
    case LC_ACT_SIGMOID:
        return h * ((REAL)1 - h) * ((REAL)1 - (REAL)2 * h); /* s (1-s)(1-2s) */
    case LC_ACT_SOFTSIGN: {                                 /* -2 sgn z / (1+|z|)^3 */
        REAL d = (REAL)1 + FABS(z);
        REAL g = (REAL)2 / (d * d * d);
        return z > 0 ? -g : (z < 0 ? g : (REAL)0);
    }
    case LC_ACT_SOFTPLUS: { /* s (1 - s), s = sigmoid */
        REAL s = (REAL)1 / ((REAL)1 + EXP(-z));
        return s * ((REAL)1 - s);
    }
    default:
        return (REAL)0; /* linear, relu, leaky_relu */
    }
}

/* act'' is identically zero for these (their kinks have measure zero). */
static inline int FN(hess_d2_is_zero)(int32_t act)
{
    return act == LC_ACT_LINEAR || act == LC_ACT_RELU || act == LC_ACT_LEAKY_RELU;
}

void FN(lc_act_deriv2)(int32_t act, const REAL *z, const REAL *h, REAL *d2, int64_t n)
{
    if (FN(hess_d2_is_zero)(act))
        for (int64_t i = 0; i < n; i++) d2[i] = 0;
    else if (act == LC_ACT_TANH)
        for (int64_t i = 0; i < n; i++) d2[i] = (REAL)-2 * h[i] * ((REAL)1 - h[i] * h[i]);
    else
        for (int64_t i = 0; i < n; i++) d2[i] = FN(hess_d2)(act, z[i], h[i]);
}

/* Offset of layer l's block (a, d1, d2, dz) in the state. */
static int64_t FN(hess_layer_base)(const lc_net *net, int64_t N, int64_t l)
{
    int64_t base = N * net->sizes[0];
    for (int64_t i = 0; i < l; i++) base += 4 * N * net->sizes[i + 1];
    return base;
}

/* What the parts of lc_hvp_prepare share; each part owns the rows [start(p), start(p + 1)).
 * The forward pass leaves z in a layer's dz slot of the state and h in its a slot (with
 * clipping: h in the d2 slot, clip(h) in the a slot); the backward pass overwrites both in
 * place, element by element, so the pass needs no buffers of its own beyond the gradients. */
typedef struct {
    const lc_net *net;
    const REAL *theta, *X;
    REAL *state;
    REAL *const *WT;   /* per layer W^T (n_out, n_in) */
    const REAL *dloss; /* (N, m): dL/da of the last layer */
    REAL *grad_parts;  /* n_parts blocks of P */
    REAL *work;        /* n_parts blocks of work_len */
    int64_t N, L, P, maxw, n_parts, work_len;
    const int64_t *w_off, *b_off;
    int no_grad; /* 1: leave grad_parts alone (a fused product that needs no gradient) */
} FN(prep_ctx);

/* Defined below with lc_hvp_apply, which shares them. */
static int64_t FN(hess_n_parts)(int64_t N, double work);
LC_HOT static void FN(hess_matmul)(const REAL *restrict A, int64_t ars, int64_t acs,
                                   const REAL *restrict M, REAL *restrict C, int64_t rows,
                                   int64_t K, int64_t N);
static inline int64_t FN(hess_part_start)(int64_t N, int64_t n_parts, int64_t p);
LC_HOT static void FN(hess_add)(REAL *restrict y, const REAL *restrict x, int64_t n);
static void FN(hess_add_parts)(REAL *y, const REAL *x, int64_t count, int64_t stride, int64_t n);
LC_HOT static void FN(hess_add_bias)(REAL *restrict Z, const REAL *restrict b, int64_t rows,
                                     int64_t n);

/* Where layer l's forward pass leaves h, from row s0: the a slot without clipping, the d2
 * slot with it. */
static inline REAL *FN(prep_h)(const lc_net *net, REAL *base, int64_t N, int64_t n_out, int64_t s0)
{
    return base + (net->clip_out ? 2 * N * n_out : 0) + s0 * n_out;
}

static void FN(prep_forward_part)(void *arg, int64_t part)
{
    const FN(prep_ctx) *x = (const FN(prep_ctx) *)arg;
    const lc_net *net = x->net;
    const int64_t N = x->N, L = x->L;
    const int64_t s0 = FN(hess_part_start)(N, x->n_parts, part);
    const int64_t B = FN(hess_part_start)(N, x->n_parts, part + 1) - s0;
    const REAL *in = x->X + s0 * net->sizes[0];
    for (int64_t l = 0; l < L; l++) {
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1], n = B * n_out;
        REAL *base = x->state + FN(hess_layer_base)(net, N, l);
        REAL *A = base + s0 * n_out, *z = base + 3 * N * n_out + s0 * n_out;
        REAL *h = FN(prep_h)(net, base, N, n_out, s0);
        /* z = a_{l-1} W + b;  h = act(z);  a = clip(h) */
        FN(hess_matmul)(in, n_in, 1, x->theta + x->w_off[l], z, B, n_in, n_out);
        if (x->b_off[l] >= 0) FN(hess_add_bias)(z, x->theta + x->b_off[l], B, n_out);
        HESS_ACT_FORWARD(net->acts[l], z, h, n);
        if (net->clip_out)
            for (int64_t q = 0; q < n; q++) {
                const REAL v = h[q];
                A[q] = v < (REAL)-1 ? (REAL)-1 : (v > (REAL)1 ? (REAL)1 : v);
            }
        in = A;
    }
}

/* d1 := clip'(h) act'(z);  d2 := clip'(h) act''(z) da;  dz := da act'(z) (0 where clipped),
 * in place: z is read from the dz slot and h from where prep_h put it (d1 is computed first
 * from them, into its own slot). */
LC_HOT static void FN(prep_derivs)(int32_t act, int32_t clip, REAL *D1, REAL *D2, REAL *DZ,
                                   const REAL *h, const REAL *restrict da, int64_t n)
{
    FN(lc_act_deriv)(act, DZ, h, D1, n);
    if (act == LC_ACT_TANH && !clip) {
        for (int64_t q = 0; q < n; q++) {
            const REAL hq = h[q], d = D1[q];
            D2[q] = ((REAL)-2 * hq * ((REAL)1 - hq * hq)) * da[q];
            DZ[q] = da[q] * d;
        }
        return;
    }
    if (FN(hess_d2_is_zero)(act) && !clip) { /* hess_d2 is 0: the general loop's values */
        for (int64_t q = 0; q < n; q++) {
            const REAL d = D1[q];
            D2[q] = (REAL)0 * da[q];
            DZ[q] = da[q] * d;
        }
        return;
    }
    for (int64_t q = 0; q < n; q++) {
        const REAL zq = DZ[q], hq = h[q], d = D1[q];
        REAL d2 = FN(hess_d2)(act, zq, hq) * da[q], dz = da[q] * d;
        if (clip && !(hq >= (REAL)-1 && hq <= (REAL)1)) D1[q] = d2 = dz = 0;
        D2[q] = d2;
        DZ[q] = dz;
    }
}

static void FN(prep_backward_part)(void *arg, int64_t part)
{
    const FN(prep_ctx) *x = (const FN(prep_ctx) *)arg;
    const lc_net *net = x->net;
    const int64_t N = x->N, L = x->L, maxw = x->maxw;
    const int64_t s0 = FN(hess_part_start)(N, x->n_parts, part);
    const int64_t B = FN(hess_part_start)(N, x->n_parts, part + 1) - s0;
    REAL *grad = x->grad_parts + part * x->P;
    REAL *da = x->work + part * x->work_len, *da_prev = da + B * maxw;
    const int64_t m = net->sizes[L];
    memcpy(da, x->dloss + s0 * m, (size_t)(B * m) * sizeof(REAL));
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1], n = B * n_out;
        REAL *base = x->state + FN(hess_layer_base)(net, N, l);
        REAL *D1 = base + N * n_out + s0 * n_out, *D2 = base + 2 * N * n_out + s0 * n_out;
        REAL *DZ = base + 3 * N * n_out + s0 * n_out;
        FN(prep_derivs)(net->acts[l], net->clip_out, D1, D2, DZ,
                        FN(prep_h)(net, base, N, n_out, s0), da, n);
        /* dL/dW = a_{l-1}^T dz (samples in order), dL/db = sum_n dz, da_{l-1} = dz W^T */
        const REAL *in = (l > 0 ? x->state + FN(hess_layer_base)(net, N, l - 1) : x->X) + s0 * n_in;
        if (!x->no_grad) FN(hess_matmul)(in, 1, n_in, DZ, grad + x->w_off[l], n_in, B, n_out);
        if (x->b_off[l] >= 0 && !x->no_grad) {
            REAL *gb = grad + x->b_off[l];
            for (int64_t j = 0; j < n_out; j++) gb[j] = 0;
            for (int64_t i = 0; i < B; i++) {
                const REAL *restrict dzi = DZ + i * n_out;
                for (int64_t j = 0; j < n_out; j++) gb[j] += dzi[j];
            }
        }
        if (l == 0) break;
        FN(lc_matmul)(DZ, n_out, 1, x->WT[l], da_prev, B, n_out, n_in);
        REAL *t = da;
        da = da_prev;
        da_prev = t;
    }
}

/* dloss := dL/da_{L-1} for `rows` samples of a batch of N (m outputs each): s r with
 * s = 1 / N (half_mse) or 2 / (N m) (mse), r = f - y; returns their sum of r^2 (in double,
 * in order).  The same per-element arithmetic as lc_loss_grad over the whole batch. */
static double FN(hess_dloss)(int32_t loss, const REAL *f, const REAL *y, int64_t rows, int64_t m,
                             int64_t N, REAL *dloss)
{
    const REAL sc =
        loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)N) : (REAL)(2.0 / (double)(N * m));
    double total = 0.0;
    for (int64_t i = 0; i < rows * m; i++) {
        const REAL r = f[i] - y[i];
        total += (double)r * (double)r;
        dloss[i] = sc * r;
    }
    return total;
}

/* The loss from hess_dloss's sum of r^2 over all N samples. */
static inline double FN(hess_loss_value)(int32_t loss, double total, int64_t N, int64_t m)
{
    return total / (loss == LC_LOSS_HALF_MSE ? 2.0 * (double)N : (double)(N * m));
}

int FN(lc_hvp_prepare)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                       int64_t N, int32_t loss, REAL *state, REAL *grad, double *loss_out)
{
    const int64_t L = net->n_layers, maxw = lc_net_max_width(net), P = lc_net_n_params(net);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1) return LC_ERR_ARGS;
    double work = 0;
    int64_t wlen = 0;
    for (int64_t l = 0; l < L; l++) {
        work += (double)(net->sizes[l] + 1) * (double)net->sizes[l + 1];
        wlen += net->sizes[l] * net->sizes[l + 1];
    }
    /* a forward and backward pass has a third of a product's multiply-adds, but evaluates
     * every activation and its derivatives, which cost as much again */
    const int64_t n_parts = FN(hess_n_parts)(N, work * (double)N);
    const int64_t longest = (N + n_parts - 1) / n_parts;
    const int64_t work_len = 2 * longest * maxw;
    const int64_t m = net->sizes[L];
    int64_t *off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    REAL **WT = (REAL **)malloc((size_t)L * sizeof(REAL *));
    REAL *buf = (REAL *)malloc((size_t)(wlen + N * m + n_parts * (P + work_len)) * sizeof(REAL));
    if (!off || !WT || !buf) {
        free(off);
        free(WT);
        free(buf);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, off, off + L);
    REAL *p = buf;
    for (int64_t l = 0; l < L; l++) {
        WT[l] = p;
        FN(lc_transpose)(theta + off[l], p, net->sizes[l], net->sizes[l + 1]);
        p += net->sizes[l] * net->sizes[l + 1];
    }
    REAL *dloss = p, *grad_parts = p + N * m;
    FN(prep_ctx)
    ctx = {.net = net,
           .theta = theta,
           .X = X,
           .state = state,
           .WT = WT,
           .dloss = dloss,
           .grad_parts = grad_parts,
           .work = grad_parts + n_parts * P,
           .N = N,
           .L = L,
           .P = P,
           .maxw = maxw,
           .n_parts = n_parts,
           .work_len = work_len,
           .w_off = off,
           .b_off = off + L};

    /* forward, writing every layer's output a straight into the state; the loss over all
     * samples; backward, recording d1, d2 and dz of every layer and each part's gradient */
    memcpy(state, X, (size_t)(N * net->sizes[0]) * sizeof(REAL));
    lc_team *team = lc_hess_team(n_parts); /* one team for both passes */
    lc_team_run(team, n_parts, FN(prep_forward_part), &ctx);
    const REAL *out = state + FN(hess_layer_base)(net, N, L - 1);
    *loss_out = FN(hess_loss_value)(loss, FN(hess_dloss)(loss, out, Y, N, m, N, dloss), N, m);
    for (int64_t q = 0; q < n_parts * P; q++) grad_parts[q] = 0;
    lc_team_run(team, n_parts, FN(prep_backward_part), &ctx);
    lc_team_end(team);
    memcpy(grad, grad_parts, (size_t)P * sizeof(REAL));
    FN(hess_add_parts)(grad, grad_parts + P, n_parts - 1, P, P);
    free(buf);
    free(WT);
    free(off);
    return LC_OK;
}

/* Y[c] := D * X[c] (+ E * Z[c] when E) for the k direction blocks c of n values each. */
LC_HOT static void FN(hess_scale_blocks)(REAL *restrict Y, const REAL *restrict D,
                                         const REAL *restrict X, const REAL *restrict E,
                                         const REAL *restrict Z, int64_t k, int64_t n)
{
    for (int64_t c = 0; c < k; c++) {
        REAL *restrict y = Y + c * n;
        const REAL *restrict x = X + c * n;
        if (E) {
            const REAL *restrict zc = Z + c * n;
            for (int64_t q = 0; q < n; q++) y[q] = D[q] * x[q] + E[q] * zc[q];
        } else {
            for (int64_t q = 0; q < n; q++) y[q] = D[q] * x[q];
        }
    }
}

/* Y := D * X over n values. */
LC_HOT static void FN(hess_mul)(REAL *restrict Y, const REAL *restrict D, const REAL *restrict X,
                                int64_t n)
{
    for (int64_t q = 0; q < n; q++) Y[q] = D[q] * X[q];
}

/* y += x over n values. */
LC_HOT static void FN(hess_add)(REAL *restrict y, const REAL *restrict x, int64_t n)
{
    for (int64_t q = 0; q < n; q++) y[q] += x[q];
}

/* y (n) += the blocks x, x + stride, ... (count of them, n values each), in that order: the
 * sums of a kernel's later parts added into the first's in part order, the one order that
 * makes a result the same for any thread count. */
static void FN(hess_add_parts)(REAL *y, const REAL *x, int64_t count, int64_t stride, int64_t n)
{
    for (int64_t q = 0; q < count; q++) FN(hess_add)(y, x + q * stride, n);
}

/* y (n) += the sum of the rows of X (rows, n), in row order. */
LC_HOT static void FN(hess_add_rows)(REAL *restrict y, const REAL *restrict X, int64_t rows,
                                     int64_t n)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < n; j++) y[j] += X[i * n + j];
}

/* Rows of n values that take a per-column term b (a bias) are walked as one flat run of
 * rows * n values when n divides 8 (layers of 1, 2, 4 or 8 outputs), b repeated to 8 values in
 * bp: the loop is then as wide as a vector whatever n, where a loop over a 2-value row is not
 * vectorised at all.  Returns 0 (bp unset) for other n. */
static inline int FN(hess_bias_pattern)(const REAL *b, int64_t n, REAL *bp)
{
    if (n < 1 || n > 8 || 8 % n != 0) return 0;
    for (int t = 0; t < 8; t++) bp[t] = b[t % n];
    return 1;
}

/* Z += b for Z (rows, n), b (n): every row. */
LC_HOT static void FN(hess_add_bias)(REAL *restrict Z, const REAL *restrict b, int64_t rows,
                                     int64_t n)
{
    REAL bp[8];
    if (FN(hess_bias_pattern)(b, n, bp)) {
        const int64_t total = rows * n;
        int64_t q = 0;
        for (; q + 8 <= total; q += 8)
            for (int t = 0; t < 8; t++) Z[q + t] += bp[t];
        for (; q < total; q++) Z[q] += bp[q % 8];
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        REAL *restrict z = Z + i * n;
        for (int64_t j = 0; j < n; j++) z[j] += b[j];
    }
}

/* Y := (T + b) (+ Y when acc), then R := D * Y, for T, Y, D, R (rows, n), b (n): the same
 * operations on each element as the sum then the product, in one pass (the two passes took
 * 10 us of a fused 121 us product on the 4-16-2 case; one pass, 118 us). */
LC_HOT static void FN(hess_add_bias_mul)(REAL *restrict Y, REAL *restrict R, const REAL *restrict D,
                                         const REAL *restrict T, const REAL *restrict b,
                                         int64_t rows, int64_t n, int acc)
{
    REAL bp[8];
    if (FN(hess_bias_pattern)(b, n, bp)) {
        const int64_t total = rows * n;
        int64_t q = 0;
        if (acc) {
            for (; q + 8 <= total; q += 8)
                for (int t = 0; t < 8; t++) {
                    const REAL v = (T[q + t] + bp[t]) + Y[q + t];
                    Y[q + t] = v;
                    R[q + t] = D[q + t] * v;
                }
            for (; q < total; q++) {
                const REAL v = (T[q] + bp[q % 8]) + Y[q];
                Y[q] = v;
                R[q] = D[q] * v;
            }
        } else {
            for (; q + 8 <= total; q += 8)
                for (int t = 0; t < 8; t++) {
                    const REAL v = T[q + t] + bp[t];
                    Y[q + t] = v;
                    R[q + t] = D[q + t] * v;
                }
            for (; q < total; q++) {
                const REAL v = T[q] + bp[q % 8];
                Y[q] = v;
                R[q] = D[q] * v;
            }
        }
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        REAL *restrict y = Y + i * n, *restrict r = R + i * n;
        const REAL *restrict t = T + i * n, *restrict d = D + i * n;
        if (acc)
            for (int64_t j = 0; j < n; j++) {
                const REAL v = (t[j] + b[j]) + y[j];
                y[j] = v;
                r[j] = d[j] * v;
            }
        else
            for (int64_t j = 0; j < n; j++) {
                const REAL v = t[j] + b[j];
                y[j] = v;
                r[j] = d[j] * v;
            }
    }
}

/* C := A M as lc_matmul(A, ars, acs, M, C, rows, K, N), the same bits, faster for the narrow
 * products of small networks (N < 4 columns, e.g. a 2-output layer), where lc_matmul's vector
 * path does not apply:
 * - A read transposed (ars = 1: C = A'^T M, A' (K, rows) row-major, as in the gradient terms
 *   a^T dz): one vector runs down four (float: eight) rows of C per column of M;
 * - N = 2 and A row-major: one two-lane vector per row holds both columns.
 * Every C[i][j] is still the sum over k in increasing order of A[i][k] M[k][j] from zero, one
 * rounding per product and per sum (no FMA), so the bits are those of lc_matmul. */
#if defined(__GNUC__)
typedef REAL FN(hess_vec) __attribute__((vector_size(32)));
typedef REAL FN(hess_vec2) __attribute__((vector_size(2 * sizeof(REAL))));
#endif

LC_HOT static void FN(hess_matmul)(const REAL *restrict A, int64_t ars, int64_t acs,
                                   const REAL *restrict M, REAL *restrict C, int64_t rows,
                                   int64_t K, int64_t N)
{
#if defined(__GNUC__)
    typedef FN(hess_vec) vec;
    enum {
        JB = (int)(sizeof(vec) / sizeof(REAL))
    };
    if (N < 4 && N >= 1 && ars == 1 && rows >= JB) {
        const REAL *At = A; /* At (K, acs): A[i][k] = At[k * acs + i] */
        int64_t i = 0;
        /* one or two columns: four vectors of rows at once, so that eight independent sums
         * hide the latency of the additions (one vector's sums wait on each other) */
        for (; N <= 2 && i + 4 * JB <= rows; i += 4 * JB) {
            vec c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};
            vec a0, a1, a2, a3;
            for (int64_t k = 0; k < K; k++) {
                const REAL *ak = At + k * acs + i;
                memcpy(&a0, ak, sizeof a0);
                memcpy(&a1, ak + JB, sizeof a1);
                memcpy(&a2, ak + 2 * JB, sizeof a2);
                memcpy(&a3, ak + 3 * JB, sizeof a3);
                const REAL m0 = M[k * N];
                c0 += a0 * m0;
                c1 += a1 * m0;
                c2 += a2 * m0;
                c3 += a3 * m0;
                if (N > 1) {
                    const REAL m1 = M[k * N + 1];
                    e0 += a0 * m1;
                    e1 += a1 * m1;
                    e2 += a2 * m1;
                    e3 += a3 * m1;
                }
            }
            for (int t = 0; t < JB; t++) {
                C[(i + t) * N] = c0[t];
                C[(i + JB + t) * N] = c1[t];
                C[(i + 2 * JB + t) * N] = c2[t];
                C[(i + 3 * JB + t) * N] = c3[t];
                if (N > 1) {
                    C[(i + t) * N + 1] = e0[t];
                    C[(i + JB + t) * N + 1] = e1[t];
                    C[(i + 2 * JB + t) * N + 1] = e2[t];
                    C[(i + 3 * JB + t) * N + 1] = e3[t];
                }
            }
        }
        for (; i + JB <= rows; i += JB) {
            vec c0 = {0}, c1 = {0}, c2 = {0}, a;
            for (int64_t k = 0; k < K; k++) {
                memcpy(&a, At + k * acs + i, sizeof a);
                const REAL *m = M + k * N;
                c0 += a * m[0];
                if (N > 1) c1 += a * m[1];
                if (N > 2) c2 += a * m[2];
            }
            for (int t = 0; t < JB; t++) {
                C[(i + t) * N] = c0[t];
                if (N > 1) C[(i + t) * N + 1] = c1[t];
                if (N > 2) C[(i + t) * N + 2] = c2[t];
            }
        }
        for (; i < rows; i++)
            for (int64_t j = 0; j < N; j++) {
                REAL acc = 0;
                for (int64_t k = 0; k < K; k++) acc += At[k * acs + i] * M[k * N + j];
                C[i * N + j] = acc;
            }
        return;
    }
    if (N == 2 && acs == 1) {
        typedef FN(hess_vec2) vec2;
        int64_t i = 0;
        for (; i + 4 <= rows; i += 4) {
            const REAL *a0 = A + i * ars, *a1 = a0 + ars, *a2 = a1 + ars, *a3 = a2 + ars;
            vec2 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, m;
            for (int64_t k = 0; k < K; k++) {
                memcpy(&m, M + 2 * k, sizeof m);
                c0 += a0[k] * m;
                c1 += a1[k] * m;
                c2 += a2[k] * m;
                c3 += a3[k] * m;
            }
            memcpy(C + 2 * i, &c0, sizeof m);
            memcpy(C + 2 * i + 2, &c1, sizeof m);
            memcpy(C + 2 * i + 4, &c2, sizeof m);
            memcpy(C + 2 * i + 6, &c3, sizeof m);
        }
        if (i < rows) FN(lc_matmul)(A + i * ars, ars, 1, M, C + 2 * i, rows - i, K, 2);
        return;
    }
#endif
    FN(lc_matmul)(A, ars, acs, M, C, rows, K, N);
}

/* C := A M for A (rows, K) row-major and M (K, N) of which only the rows listed in nz (cnt
 * of them) are non-zero: the other terms of each ordered sum are exact zeros, so they are
 * skipped (a unit direction has one such row).  Falls back to lc_matmul when most rows are
 * non-zero. */
static void FN(hess_matmul_sparse_rows)(const REAL *restrict A, const REAL *restrict M,
                                        REAL *restrict C, int64_t rows, int64_t K, int64_t N,
                                        int64_t *nz)
{
    int64_t cnt = 0;
    for (int64_t k = 0; k < K; k++) {
        int z = 1;
        for (int64_t j = 0; j < N && z; j++) z = M[k * N + j] == 0;
        if (!z) nz[cnt++] = k;
    }
    if (4 * cnt > K) {
        FN(hess_matmul)(A, K, 1, M, C, rows, K, N);
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        REAL *restrict c = C + i * N;
        for (int64_t j = 0; j < N; j++) c[j] = 0;
        for (int64_t t = 0; t < cnt; t++) {
            const REAL a = A[i * K + nz[t]];
            const REAL *restrict m = M + nz[t] * N;
            for (int64_t j = 0; j < N; j++) c[j] += a * m[j];
        }
    }
}

/* A product plan: everything lc_hvp_apply sets up once for k directions (parts, chunking,
 * W^T, workspace), so a Lanczos run can reuse it for every step; every part reads it and
 * writes only its own blocks. */
typedef struct {
    const lc_net *net;
    const REAL *theta, *state;
    int64_t N, L, P, k, m, maxw, first, C, per_sample, n_parts;
    REAL s2;
    int gn;
    const int64_t *w_off, *b_off, *vzero;
    REAL *const *WT, *const *Vl;
    REAL *hv_parts; /* n_parts blocks of (k, P) */
    REAL *work;     /* n_parts blocks of work_len values */
    int64_t work_len;
    REAL **rp;      /* n_parts blocks of 2 L pointers */
    int64_t *nzrow; /* n_parts blocks of maxw indices */
    /* Fused mode (state NULL): each chunk's pass is run into the part's own small state
     * first, from X and Y; grad_parts (NULL: no gradient) and loss_parts get each part's sums. */
    const REAL *X, *Y;
    int32_t loss;
    REAL *local; /* n_parts blocks of local_len: a chunk's state, then its workspace */
    int64_t local_len;
    REAL *grad_parts;   /* n_parts blocks of 2 P (the part's sum, then one chunk's) */
    double *loss_parts; /* n_parts sums of r^2 */
} FN(hvp_plan);

/* Size of near-equal chunks, at most C, covering n samples (none left nearly empty). */
static inline int64_t FN(hess_equal_chunk)(int64_t n, int64_t C)
{
    const int64_t chunks = (n + C - 1) / C;
    return (n + chunks - 1) / chunks;
}

/* First sample of part p of n_parts near-equal contiguous parts of N samples. */
static inline int64_t FN(hess_part_start)(int64_t N, int64_t n_parts, int64_t p)
{
    return (N / n_parts) * p + (p < N % n_parts ? p : N % n_parts);
}

/* Number of parts for work = samples x directions x multiply-adds per sample and direction:
 * a power of two, at most LC_MAX_PARTS, with at least LC_HVP_PART_WORK work and
 * LC_HVP_PART_SAMPLES samples per part.  Depends on the arguments only.  A part of 32,768 is
 * some 30 us of a product: worth a helper now that a call finds the pool's helpers running
 * (lc_parallel.h).  It was 524,288 while each call started its own; the benchmark's 4-16-2
 * network on 1,000 samples (work 114,000) then ran in one part, and now runs in two. */
#define LC_HVP_PART_WORK 32768
#define LC_HVP_PART_SAMPLES 32
static int64_t FN(hess_n_parts)(int64_t N, double work)
{
    int64_t n = 1;
    while (2 * n <= LC_MAX_PARTS && N / (2 * n) >= LC_HVP_PART_SAMPLES &&
           work / (double)(2 * n) >= (double)LC_HVP_PART_WORK)
        n *= 2;
    return n;
}

/* Fused mode: the forward and backward pass of lc_hvp_prepare over the chunk's B samples from
 * sample s, into part's local state (laid out as a state of B samples), with the loss scaled
 * for all N samples: the same values, element by element, as the prepared state's rows.  Adds
 * the chunk's sum of r^2 and (when asked) gradient to the part's.  Returns the local state. */
static const REAL *FN(hvp_chunk_pass)(const FN(hvp_plan) * x, int64_t part, int64_t s, int64_t B)
{
    const lc_net *net = x->net;
    const int64_t L = x->L, P = x->P, m = x->m, n0 = net->sizes[0];
    REAL *st = x->local + part * x->local_len;
    REAL *dloss = st + lc_hvp_state_len(net, B), *work = dloss + B * m;
    REAL *grad = x->grad_parts ? x->grad_parts + 2 * part * P : NULL;
    REAL *chunk_grad = grad ? grad + P : work + 2 * B * x->maxw;
    FN(prep_ctx)
    ctx = {.net = net,
           .theta = x->theta,
           .X = x->X + s * n0,
           .state = st,
           .WT = x->WT,
           .dloss = dloss,
           .grad_parts = chunk_grad,
           .work = work,
           .N = B,
           .L = L,
           .P = P,
           .maxw = x->maxw,
           .n_parts = 1,
           .work_len = 2 * B * x->maxw,
           .w_off = x->w_off,
           .b_off = x->b_off,
           .no_grad = grad == NULL};
    FN(prep_forward_part)(&ctx, 0); /* reads X in place: the state's X block is left unset */
    x->loss_parts[part] += FN(hess_dloss)(x->loss, st + FN(hess_layer_base)(net, B, L - 1),
                                          x->Y + s * m, B, m, x->N, dloss);
    FN(prep_backward_part)(&ctx, 0);
    if (grad) FN(hess_add)(grad, chunk_grad, P);
    return st;
}

/* One part of lc_hvp_apply: the R-operator over its samples, summed into its own hv block. */
static void FN(hvp_part)(void *arg, int64_t part)
{
    const FN(hvp_plan) *x = (const FN(hvp_plan) *)arg;
    const lc_net *net = x->net;
    const REAL *theta = x->theta, *state = x->state;
    const int64_t L = x->L, P = x->P, k = x->k, m = x->m, maxw = x->maxw;
    const int64_t first = x->first;
    const int64_t *w_off = x->w_off, *b_off = x->b_off, *vzero = x->vzero;
    REAL *const *WT = x->WT, *const *Vl = x->Vl;
    const int gn = x->gn;
    const REAL s2 = x->s2;
    const int64_t s0 = FN(hess_part_start)(x->N, x->n_parts, part);
    const int64_t s1 = FN(hess_part_start)(x->N, x->n_parts, part + 1);
    const int64_t C = FN(hess_equal_chunk)(s1 - s0, x->C);
    REAL *hv = x->hv_parts + part * k * P; /* (k, P): one row per direction */
    if (!state) {                          /* fused: the part's sums start at zero */
        x->loss_parts[part] = 0.0;
        if (x->grad_parts)
            for (int64_t q = 0; q < P; q++) x->grad_parts[2 * part * P + q] = 0;
    }
    for (int64_t q = 0; q < k * P; q++) hv[q] = 0;
    REAL **Rz = x->rp + part * 2 * L, **Ra = Rz + L;
    int64_t *nzrow = x->nzrow + part * maxw;
    REAL *p = x->work + part * x->work_len;
    for (int64_t l = 0; l < L; l++) {
        Rz[l] = p;
        p += k * C * net->sizes[l + 1];
        Ra[l] = p;
        p += k * C * net->sizes[l + 1];
    }
    REAL *rda = p, *rda_prev = p + k * C * maxw, *rdz = p + 2 * k * C * maxw;
    REAL *tmp = p + 3 * k * C * maxw; /* C maxw + 2 maxw^2 values: one direction's products */

    for (int64_t s = s0; s < s1; s += C) {
        const int64_t B = s1 - s < C ? s1 - s : C;
        /* the chunk's rows of the state: st, read as a state of N rows from row so; its
         * input rows X0 (fused: read from X itself) */
        const REAL *st = state, *X0 = state ? state + s * net->sizes[0] : x->X + s * net->sizes[0];
        int64_t N = x->N, so = s;
        if (!state) {
            st = FN(hvp_chunk_pass)(x, part, s, B);
            N = B;
            so = 0;
        }

        /* forward: Rz = (a_{l-1} V_l + vb_l) + Ra_{l-1} W,  Ra = d1 Rz */
        for (int64_t l = first; l < L; l++) {
            const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1], n = B * n_out;
            const REAL *base = st + FN(hess_layer_base)(net, N, l);
            const REAL *Ain = l == 0 ? X0 : st + FN(hess_layer_base)(net, N, l - 1) + so * n_in;
            const REAL *D1 = base + N * n_out + so * n_out;
            if (l > first)
                FN(hess_matmul)(Ra[l - 1], n_in, 1, theta + w_off[l], Rz[l], k * B, n_in, n_out);
            if (!vzero[l]) {
                const int64_t vs = 2 * n_in * n_out + n_out;
                for (int64_t c = 0; c < k; c++) {
                    const REAL *vc = Vl[l] + c * vs, *vb = vc + 2 * n_in * n_out;
                    FN(hess_matmul_sparse_rows)(Ain, vc, tmp, B, n_in, n_out, nzrow);
                    FN(hess_add_bias_mul)(Rz[l] + c * n, Ra[l] + c * n, D1, tmp, vb, B, n_out,
                                          l > first);
                }
            } else {
                for (int64_t c = 0; c < k; c++) FN(hess_mul)(Ra[l] + c * n, D1, Rz[l] + c * n, n);
            }
        }

        /* backward: Rda_{L-1} = 2 s Ra_{L-1};  Rdz = d1 Rda + d2 Rz;
         * H v|W_l = a_{l-1}^T Rdz + Ra_{l-1}^T dz,  H v|b_l = sum_n Rdz;
         * Rda_{l-1} = Rdz W^T + dz V_l^T */
        {
            const int64_t n = k * B * m;
            for (int64_t q = 0; q < n; q++) rda[q] = s2 * Ra[L - 1][q];
        }
        for (int64_t l = L - 1; l >= 0; l--) {
            const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1], n = B * n_out;
            const REAL *base = st + FN(hess_layer_base)(net, N, l);
            const REAL *Ain = l == 0 ? X0 : st + FN(hess_layer_base)(net, N, l - 1) + so * n_in;
            const REAL *D1 = base + N * n_out + so * n_out;
            const REAL *D2 = base + 2 * N * n_out + so * n_out;
            const REAL *DZ = base + 3 * N * n_out + so * n_out;
            const int use_d2 = !gn && l >= first && !FN(hess_d2_is_zero)(net->acts[l]);
            const int use_ra_in = !gn && l - 1 >= first;
            const int use_v = !gn && !vzero[l] && l > 0;
            FN(hess_scale_blocks)(rdz, D1, rda, use_d2 ? D2 : NULL, Rz[l], k, n);
            for (int64_t c = 0; c < k; c++) {
                const REAL *rdzc = rdz + c * n;
                REAL *h = hv + c * P;
                FN(hess_matmul)(Ain, 1, n_in, rdzc, tmp, n_in, B, n_out);
                if (use_ra_in) {
                    REAL *t2 = tmp + n_in * n_out;
                    FN(hess_matmul)(Ra[l - 1] + c * B * n_in, 1, n_in, DZ, t2, n_in, B, n_out);
                    for (int64_t q = 0; q < n_in * n_out; q++) h[w_off[l] + q] += tmp[q] + t2[q];
                } else {
                    FN(hess_add)(h + w_off[l], tmp, n_in * n_out);
                }
                if (b_off[l] >= 0) {
                    REAL *hb = h + b_off[l];
                    FN(hess_add_rows)(hb, rdzc, B, n_out);
                }
            }
            if (l == 0) break;
            FN(lc_matmul)(rdz, n_out, 1, WT[l], rda_prev, k * B, n_out, n_in);
            if (use_v) {
                const int64_t vs = 2 * n_in * n_out + n_out;
                for (int64_t c = 0; c < k; c++) {
                    FN(hess_matmul_sparse_rows)(DZ, Vl[l] + c * vs + n_in * n_out, tmp, B, n_out,
                                                n_in, nzrow);
                    FN(hess_add)(rda_prev + c * B * n_in, tmp, B * n_in);
                }
            }
            REAL *t = rda;
            rda = rda_prev;
            rda_prev = t;
        }
    }
}

static void FN(hvp_plan_free)(FN(hvp_plan) * x)
{
    free(x->hv_parts);
    free(x->rp);
    free(x->nzrow);
    free((void *)x->w_off);
    free(x->local);
    free(x->loss_parts);
    x->local = NULL;
    x->loss_parts = NULL;
    x->hv_parts = NULL;
    x->rp = NULL;
    x->nzrow = NULL;
    x->w_off = NULL;
}

/* A plan for k directions from a prepared state; or, with state NULL, a fused plan that runs
 * each chunk's forward and backward pass from X and Y itself (with_grad: and sums the
 * gradient), so that no state of all N samples is ever stored. */
static int FN(hvp_plan_init)(FN(hvp_plan) * x, const lc_net *net, const REAL *theta, int64_t N,
                             int32_t loss, int32_t gauss_newton, const REAL *state, int64_t k,
                             const REAL *X, const REAL *Y, int with_grad)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net), maxw = lc_net_max_width(net);
    memset(x, 0, sizeof *x);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1 || k < 1)
        return LC_ERR_ARGS;
    const int64_t m = net->sizes[L];
    int64_t widths = 0, vlen = 0, wlen = 0;
    double work = 0;
    for (int64_t l = 0; l < L; l++) {
        widths += net->sizes[l + 1];
        work += (double)(net->sizes[l] + 1) * (double)net->sizes[l + 1];
        vlen += k * (2 * net->sizes[l] * net->sizes[l + 1] + net->sizes[l + 1]);
        wlen += net->sizes[l] * net->sizes[l + 1];
    }
    const int64_t n_parts = FN(hess_n_parts)(N, work * (double)N * (double)k);
    const int64_t per_sample = k * (2 * widths + 3 * maxw) + maxw;
    int64_t C = LC_HVP_CHUNK_VALUES / per_sample;
    if (C < LC_HVP_MIN_CHUNK) C = LC_HVP_MIN_CHUNK;
    const int64_t longest = (N + n_parts - 1) / n_parts;
    if (C > longest) C = longest;
    const int64_t work_len = C * per_sample + 2 * maxw * maxw;
    int64_t *ib = (int64_t *)malloc((size_t)(3 * L) * sizeof(int64_t));
    REAL **rp = (REAL **)malloc((size_t)(2 * L * (n_parts + 1)) * sizeof(REAL *));
    int64_t *nzrow = (int64_t *)malloc((size_t)(maxw * n_parts) * sizeof(int64_t));
    REAL *buf = (REAL *)malloc((size_t)(n_parts * (k * P + work_len) + wlen + vlen) * sizeof(REAL));
    /* fused: a chunk's state, dloss and pass workspace, a gradient block; the parts' sums */
    const int64_t local_len = lc_hvp_state_len(net, C) + C * m + 2 * C * maxw + P;
    REAL *local = NULL;
    double *loss_parts = NULL;
    if (!state) {
        const int64_t per_part = local_len + (with_grad ? 2 * P : 0);
        local = (REAL *)malloc((size_t)(n_parts * per_part) * sizeof(REAL));
        loss_parts = (double *)malloc((size_t)n_parts * sizeof(double));
    }
    x->w_off = ib;
    x->rp = rp;
    x->nzrow = nzrow;
    x->hv_parts = buf;
    x->local = local;
    x->loss_parts = loss_parts;
    if (!ib || !rp || !nzrow || !buf || (!state && (!local || !loss_parts))) {
        FN(hvp_plan_free)(x);
        return LC_ERR_NOMEM;
    }
    int64_t *w_off = ib, *b_off = ib + L;
    lc_net_offsets(net, w_off, b_off);
    REAL **Vl = rp + 2 * L * n_parts, **WT = Vl + L;
    REAL *p = buf + n_parts * (k * P + work_len);
    for (int64_t l = 0; l < L; l++) { /* W^T (n_out, n_in), then room for the directions */
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
        WT[l] = p;
        FN(lc_transpose)(theta + w_off[l], p, n_in, n_out);
        p += n_in * n_out;
    }
    for (int64_t l = 0; l < L; l++) {
        Vl[l] = p;
        p += k * (2 * net->sizes[l] * net->sizes[l + 1] + net->sizes[l + 1]);
    }
    *x = (FN(hvp_plan)){.net = net,
                        .theta = theta,
                        .state = state,
                        .N = N,
                        .L = L,
                        .P = P,
                        .k = k,
                        .m = m,
                        .maxw = maxw,
                        .first = L,
                        .C = C,
                        .per_sample = per_sample,
                        .n_parts = n_parts,
                        .s2 = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)N)
                                                       : (REAL)(2.0 / ((double)N * (double)m)),
                        .gn = gauss_newton != 0,
                        .w_off = w_off,
                        .b_off = b_off,
                        .vzero = ib + 2 * L,
                        .WT = WT,
                        .Vl = Vl,
                        .hv_parts = buf,
                        .work = buf + n_parts * k * P,
                        .work_len = work_len,
                        .rp = rp,
                        .nzrow = nzrow,
                        .X = X,
                        .Y = Y,
                        .loss = loss,
                        .local = local,
                        .local_len = local_len,
                        .grad_parts = local && with_grad ? local + n_parts * local_len : NULL,
                        .loss_parts = loss_parts};
    return LC_OK;
}

/* Loads the k directions V (P, k): per layer V_c, V_c^T and vb_c, and which layers' blocks
 * are zero in every direction (they contribute no a V_l, dz V_l^T term; before the first
 * layer with a non-zero block, Rz and Ra are zero).  Returns 0 when V is zero. */
static int FN(hvp_plan_load)(FN(hvp_plan) * x, const REAL *V)
{
    const lc_net *net = x->net;
    const int64_t L = x->L, k = x->k;
    const int64_t *w_off = x->w_off, *b_off = x->b_off;
    int64_t *vzero = (int64_t *)x->vzero;
    x->first = L;
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t n_out = net->sizes[l + 1];
        const int64_t lo = w_off[l],
                      hi = b_off[l] >= 0 ? b_off[l] + n_out : lo + net->sizes[l] * n_out;
        int vz = 1;
        for (int64_t q = lo * k; q < hi * k && vz; q++) vz = V[q] == 0;
        vzero[l] = vz;
        if (!vz) x->first = l;
    }
    for (int64_t l = 0; l < L; l++) {
        if (vzero[l]) continue;
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
        const int64_t vs = 2 * n_in * n_out + n_out;
        REAL *base = x->Vl[l];
        for (int64_t c = 0; c < k; c++) {
            REAL *vc = base + c * vs, *vt = vc + n_in * n_out, *vb = vt + n_in * n_out;
            for (int64_t q = 0; q < n_in * n_out; q++) vc[q] = V[(w_off[l] + q) * k + c];
            FN(lc_transpose)(vc, vt, n_in, n_out);
            for (int64_t j = 0; j < n_out; j++)
                vb[j] = b_off[l] >= 0 ? V[(b_off[l] + j) * k + c] : (REAL)0;
        }
    }
    return x->first < L;
}

/* Runs the loaded product (on the team when given) and adds the parts' sums, in part order,
 * into hv_parts' first block: (k, P), one row per direction. */
static void FN(hvp_plan_run)(FN(hvp_plan) * x, lc_team *team)
{
    const int64_t kP = x->k * x->P;
    lc_team_run(team, x->n_parts, FN(hvp_part), x);
    FN(hess_add_parts)(x->hv_parts, x->hv_parts + kP, x->n_parts - 1, kP, kP);
}

int FN(lc_hvp_apply)(const lc_net *net, const REAL *theta, int64_t N, int32_t loss,
                     int32_t gauss_newton, const REAL *state, const REAL *V, int64_t k, REAL *HV)
{
    const int64_t P = lc_net_n_params(net);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || net->n_layers < 1 || k < 0)
        return LC_ERR_ARGS;
    for (int64_t q = 0; q < P * k; q++) HV[q] = 0;
    if (k == 0) return LC_OK;
    FN(hvp_plan) plan;
    const int status =
        FN(hvp_plan_init)(&plan, net, theta, N, loss, gauss_newton, state, k, NULL, NULL, 0);
    if (status != LC_OK) return status;
    if (FN(hvp_plan_load)(&plan, V)) {
        FN(hvp_plan_run)(&plan, NULL);
        for (int64_t c = 0; c < k; c++)
            for (int64_t q = 0; q < P; q++) HV[q * k + c] = plan.hv_parts[c * P + q];
    }
    FN(hvp_plan_free)(&plan);
    return LC_OK;
}

/* Values of per-sample buffers one chunk of lc_hvp_dense may hold (about 2 MiB in double), most
 * values of the parts' extra (P, P) matrices (64 MiB in double). */
#define LC_DENSE_CHUNK_VALUES 262144
#define LC_DENSE_PART_VALUES 8388608
/* Beyond this many values in one buffer (2^40), lc_hvp_dense reports LC_ERR_NOMEM. */
#define LC_DENSE_MAX_VALUES 1099511627776.0
#define LC_DENSE_MIN_CHUNK 16

/* abar (the layer's input with a trailing 1 when has_bias) of sample b, index i. */
static inline REAL FN(hess_abar)(const REAL *A, int64_t n_in, int64_t b, int64_t i)
{
    return i < n_in ? A[b * n_in + i] : (REAL)1;
}

/* What the parts of lc_hvp_dense share; part p sums its samples' blocks into its own (P, P)
 * matrix (part 0's is H). */
typedef struct {
    const lc_net *net;
    const REAL *theta, *state;
    REAL *H, *H_parts; /* H_parts: n_parts - 1 more matrices */
    REAL *work;        /* n_parts blocks of work_len */
    int64_t N, L, P, hw, ut, u2, sumsq, C, tmp_len, work_len, n_parts; /* hw: widest output */
    REAL s2;
    int gn;
    const int64_t *w_off, *b_off, *g_off; /* g_off: layer l's G_l in a chunk's G */
} FN(dense_ctx);

static void FN(dense_part)(void *arg, int64_t part)
{
    const FN(dense_ctx) *x = (const FN(dense_ctx) *)arg;
    const lc_net *net = x->net;
    const REAL *theta = x->theta, *state = x->state;
    const int64_t N = x->N, L = x->L, P = x->P, hw = x->hw, sumsq = x->sumsq;
    const int64_t *w_off = x->w_off, *b_off = x->b_off;
    const int gn = x->gn;
    const REAL s2 = x->s2;
    const int64_t s0 = FN(hess_part_start)(N, x->n_parts, part);
    const int64_t s1 = FN(hess_part_start)(N, x->n_parts, part + 1);
    const int64_t C = FN(hess_equal_chunk)(s1 - s0, x->C);
    REAL *H = part == 0 ? x->H : x->H_parts + (part - 1) * P * P;
    const int64_t Cb = x->C, *g_off = x->g_off; /* the buffers' layout: for chunks of x->C */
    REAL *G = x->work + part * x->work_len, *J = G + Cb * sumsq, *Jn = J + Cb * hw * hw;
    REAL *S = Jn + Cb * hw * hw, *T = S + Cb * hw * hw, *Ut = T + Cb * hw * hw;
    REAL *U2t = Ut + Cb * x->ut, *tmp = U2t + Cb * x->u2, *wg = tmp + x->tmp_len;
    for (int64_t q = 0; q < P * P; q++) H[q] = 0;

    for (int64_t s = s0; s < s1; s += C) {
        const int64_t B = s1 - s < C ? s1 - s : C;

        /* G_l per sample: G_{L-1} = diag(2 s d1^2 + d2), G_l = d1 (W G_{l+1} W^T) d1 + diag(d2) */
        for (int64_t l = L - 1; l >= 0; l--) {
            const int64_t n = net->sizes[l + 1];
            const REAL *base = state + FN(hess_layer_base)(net, N, l);
            const REAL *D1 = base + N * n + s * n, *D2 = base + 2 * N * n + s * n;
            REAL *g = G + g_off[l];
            if (l == L - 1) {
                for (int64_t q = 0; q < B * n * n; q++) g[q] = 0;
                for (int64_t b = 0; b < B; b++)
                    for (int64_t j = 0; j < n; j++) {
                        const REAL d = D1[b * n + j];
                        g[(b * n + j) * n + j] = s2 * d * d + (gn ? (REAL)0 : D2[b * n + j]);
                    }
                continue;
            }
            const int64_t n2 = net->sizes[l + 2];
            const REAL *W = theta + w_off[l + 1], *g2 = G + g_off[l + 1];
            for (int64_t b = 0; b < B; b++) {
                const REAL *gb2 = g2 + b * n2 * n2, *d1 = D1 + b * n;
                REAL *gb = g + b * n * n;
                for (int64_t j = 0; j < n; j++)
                    for (int64_t r = 0; r < n2; r++) {
                        REAL acc = 0;
                        for (int64_t t = 0; t < n2; t++) acc += W[j * n2 + t] * gb2[t * n2 + r];
                        wg[j * n2 + r] = acc;
                    }
                for (int64_t j = 0; j < n; j++)
                    for (int64_t q = j; q < n; q++) {
                        REAL acc = 0;
                        for (int64_t r = 0; r < n2; r++) acc += wg[j * n2 + r] * W[q * n2 + r];
                        gb[j * n + q] = gb[q * n + j] = d1[j] * acc * d1[q];
                    }
                if (!gn)
                    for (int64_t j = 0; j < n; j++) gb[j * n + j] += D2[b * n + j];
            }
        }

        /* the blocks (l, k), l >= k, each one product over the chunk's samples */
        for (int64_t k = 0; k < L; k++) {
            const int64_t nk = net->sizes[k + 1], ink = net->sizes[k];
            const int64_t inkb = ink + (b_off[k] >= 0);
            const REAL *Ak =
                (k == 0 ? state : state + FN(hess_layer_base)(net, N, k - 1)) + s * ink;
            for (int64_t l = k; l < L; l++) {
                const int64_t nl = net->sizes[l + 1], inl = net->sizes[l];
                const int64_t inlb = inl + (b_off[l] >= 0);
                const REAL *Al =
                    (l == 0 ? state : state + FN(hess_layer_base)(net, N, l - 1)) + s * inl;
                const REAL *Gl = G + g_off[l];
                const REAL *TT = Gl;
                if (l > k) {
                    /* S = d1_{l-1} J_{l-1,k};  J_{l,k} = W_l^T S;  T = G_l J_{l,k} */
                    const REAL *D1p =
                        state + FN(hess_layer_base)(net, N, l - 1) + N * inl + s * inl;
                    const REAL *W = theta + w_off[l];
                    for (int64_t b = 0; b < B; b++) {
                        const REAL *jb = J + b * inl * nk;
                        REAL *sb = S + b * inl * nk, *jn = Jn + b * nl * nk, *tb = T + b * nl * nk;
                        const REAL *gb = Gl + b * nl * nl;
                        if (l == k + 1) {
                            for (int64_t i = 0; i < inl; i++)
                                for (int64_t q = 0; q < nk; q++)
                                    sb[i * nk + q] = i == q ? D1p[b * inl + i] : (REAL)0;
                        } else {
                            for (int64_t i = 0; i < inl; i++)
                                for (int64_t q = 0; q < nk; q++)
                                    sb[i * nk + q] = D1p[b * inl + i] * jb[i * nk + q];
                        }
                        for (int64_t q = 0; q < nl * nk; q++) jn[q] = 0;
                        for (int64_t i = 0; i < inl; i++)
                            for (int64_t j = 0; j < nl; j++) {
                                const REAL w = W[i * nl + j];
                                for (int64_t q = 0; q < nk; q++)
                                    jn[j * nk + q] += w * sb[i * nk + q];
                            }
                        for (int64_t q = 0; q < nl * nk; q++) tb[q] = 0;
                        for (int64_t j = 0; j < nl; j++)
                            for (int64_t r = 0; r < nl; r++) {
                                const REAL gv = gb[j * nl + r];
                                for (int64_t q = 0; q < nk; q++)
                                    tb[j * nk + q] += gv * jn[r * nk + q];
                            }
                    }
                    REAL *t = J;
                    J = Jn;
                    Jn = t;
                    TT = T;
                }
                const int64_t cols = nl * nk;
                if (l == k) {
                    /* H[(i, j), (p, q)] = sum_n abar_p abar_i G[j, q], pairs p <= i */
                    int64_t np = 0;
                    for (int64_t i = 0; i < inlb; i++)
                        for (int64_t p = 0; p <= i; p++, np++)
                            for (int64_t b = 0; b < B; b++)
                                Ut[np * B + b] =
                                    FN(hess_abar)(Ak, ink, b, p) * FN(hess_abar)(Al, inl, b, i);
                    FN(lc_matmul)(Ut, B, 1, TT, tmp, np, B, cols);
                    np = 0;
                    for (int64_t i = 0; i < inlb; i++)
                        for (int64_t p = 0; p <= i; p++, np++)
                            for (int64_t j = 0; j < nl; j++)
                                for (int64_t q = 0; q < nk; q++) {
                                    const REAL v = tmp[np * cols + j * nk + q];
                                    H[(w_off[l] + i * nl + j) * P + w_off[k] + p * nk + q] += v;
                                    if (p != i)
                                        H[(w_off[l] + p * nl + j) * P + w_off[k] + i * nk + q] += v;
                                }
                    continue;
                }
                /* H[(i, j), (p, q)] += sum_n abar_k[p] abar_l[i] T[j, q] */
                for (int64_t p = 0; p < inkb; p++)
                    for (int64_t i = 0; i < inlb; i++)
                        for (int64_t b = 0; b < B; b++)
                            Ut[(p * inlb + i) * B + b] =
                                FN(hess_abar)(Ak, ink, b, p) * FN(hess_abar)(Al, inl, b, i);
                FN(lc_matmul)(Ut, B, 1, TT, tmp, inkb * inlb, B, cols);
                for (int64_t p = 0; p < inkb; p++)
                    for (int64_t i = 0; i < inlb; i++)
                        for (int64_t j = 0; j < nl; j++)
                            for (int64_t q = 0; q < nk; q++)
                                H[(w_off[l] + i * nl + j) * P + w_off[k] + p * nk + q] +=
                                    tmp[(p * inlb + i) * cols + j * nk + q];
                if (gn) continue;
                /* H[(i, j), (p, q)] += sum_n abar_k[p] dz_l[j] S[i, q]  (i < n_in: kernel rows) */
                const REAL *DZ = state + FN(hess_layer_base)(net, N, l) + 3 * N * nl + s * nl;
                for (int64_t p = 0; p < inkb; p++)
                    for (int64_t j = 0; j < nl; j++)
                        for (int64_t b = 0; b < B; b++)
                            U2t[(p * nl + j) * B + b] =
                                FN(hess_abar)(Ak, ink, b, p) * DZ[b * nl + j];
                FN(lc_matmul)(U2t, B, 1, S, tmp, inkb * nl, B, inl * nk);
                for (int64_t p = 0; p < inkb; p++)
                    for (int64_t j = 0; j < nl; j++)
                        for (int64_t i = 0; i < inl; i++)
                            for (int64_t q = 0; q < nk; q++)
                                H[(w_off[l] + i * nl + j) * P + w_off[k] + p * nk + q] +=
                                    tmp[(p * nl + j) * (inl * nk) + i * nk + q];
            }
        }
    }
}

int FN(lc_hvp_dense)(const lc_net *net, const REAL *theta, int64_t N, int32_t loss,
                     int32_t gauss_newton, const REAL *state, REAL *H)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1) return LC_ERR_ARGS;
    /* Buffers sized for the largest block over the layer pairs k <= l: per sample G (sumsq),
     * J, Jn, S, T (layer outputs only: hw^2 each), Ut and U2t; once per part tmp and wg.
     * Sizes are counted in double first so that no product of widths can overflow. */
    int64_t hw = 0, sumsq = 0, ut = 0, u2 = 0, tmp_len = 0;
    double biggest = 0;
    for (int64_t l = 0; l < L; l++) {
        hw = net->sizes[l + 1] > hw ? net->sizes[l + 1] : hw;
        sumsq += net->sizes[l + 1] * net->sizes[l + 1];
    }
    for (int64_t k = 0; k < L; k++) {
        const double nk = (double)net->sizes[k + 1],
                     inkb = (double)(net->sizes[k] + net->has_bias[k]);
        for (int64_t l = k; l < L; l++) {
            const double nl = (double)net->sizes[l + 1], inl = (double)net->sizes[l];
            const double inlb = inl + (double)net->has_bias[l];
            const double pairs = l == k ? inlb * (inlb + 1) / 2 : inkb * inlb;
            double t = pairs * nl * nk;
            if (l > k && inkb * nl * inl * nk > t) t = inkb * nl * inl * nk;
            biggest = t > biggest ? t : biggest;
            biggest = pairs > biggest ? pairs : biggest;
            if (t <= (double)LC_DENSE_MAX_VALUES) {
                tmp_len = (int64_t)t > tmp_len ? (int64_t)t : tmp_len;
                ut = (int64_t)pairs > ut ? (int64_t)pairs : ut;
                if (l > k) u2 = (int64_t)(inkb * nl) > u2 ? (int64_t)(inkb * nl) : u2;
            }
        }
    }
    if (biggest > (double)LC_DENSE_MAX_VALUES ||
        (double)P * (double)P > (double)LC_DENSE_MAX_VALUES)
        return LC_ERR_NOMEM;
    const int64_t m = net->sizes[L];
    /* parts: about N P^2 / 2 multiply-adds (a product's work unit, one weight for one sample,
     * is about six), and at most LC_DENSE_PART_VALUES values of extra matrices; both depend on
     * the problem only */
    int64_t n_parts = FN(hess_n_parts)(N, (double)N * (double)P * (double)P / 12.0);
    while (n_parts > 1 && (n_parts - 1) * P * P > LC_DENSE_PART_VALUES) n_parts /= 2;
    const int64_t per_sample = sumsq + 4 * hw * hw + ut + u2;
    int64_t C = LC_DENSE_CHUNK_VALUES / per_sample;
    if (C < LC_DENSE_MIN_CHUNK) C = LC_DENSE_MIN_CHUNK;
    const int64_t longest = (N + n_parts - 1) / n_parts;
    if (C > longest) C = longest;
    const int64_t work_len = C * per_sample + tmp_len + hw * hw;
    int64_t *ib = (int64_t *)malloc((size_t)(3 * L) * sizeof(int64_t));
    REAL *buf = (REAL *)malloc((size_t)(n_parts * work_len + (n_parts - 1) * P * P) * sizeof(REAL));
    if (!ib || !buf) {
        free(ib);
        free(buf);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, ib, ib + L);
    for (int64_t l = 0, o = 0; l < L; l++) {
        ib[2 * L + l] = o;
        o += C * net->sizes[l + 1] * net->sizes[l + 1];
    }
    FN(dense_ctx)
    ctx = {.net = net,
           .theta = theta,
           .state = state,
           .H = H,
           .H_parts = buf + n_parts * work_len,
           .work = buf,
           .N = N,
           .L = L,
           .P = P,
           .hw = hw,
           .ut = ut,
           .u2 = u2,
           .sumsq = sumsq,
           .C = C,
           .tmp_len = tmp_len,
           .work_len = work_len,
           .n_parts = n_parts,
           .s2 = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)N)
                                          : (REAL)(2.0 / ((double)N * (double)m)),
           .gn = gauss_newton != 0,
           .w_off = ib,
           .b_off = ib + L,
           .g_off = ib + 2 * L};
    lc_parallel_for(n_parts, FN(dense_part), &ctx);
    FN(hess_add_parts)(H, ctx.H_parts, n_parts - 1, P * P, P * P);
    const int64_t *w_off = ib;
    /* the blocks above the diagonal blocks are the transposes of those below */
    for (int64_t l = 0; l < L; l++) {
        const int64_t lo = w_off[l], hi = l + 1 < L ? w_off[l + 1] : P;
        for (int64_t r = lo; r < hi; r++)
            for (int64_t c = hi; c < P; c++) H[r * P + c] = H[c * P + r];
    }
    free(buf);
    free(ib);
    return LC_OK;
}

/* lc_net_hvp through a stored state (V zero or k = 0: only the loss and gradient are needed). */
static int FN(net_hvp_stored)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                              int64_t N, int32_t loss, int32_t gauss_newton, const REAL *V,
                              int64_t k, REAL *HV, REAL *grad, double *loss_out)
{
    const int64_t P = lc_net_n_params(net);
    double value = 0.0;
    REAL *state = (REAL *)malloc((size_t)lc_hvp_state_len(net, N) * sizeof(REAL));
    REAL *g = grad ? grad : (REAL *)malloc((size_t)(P > 0 ? P : 1) * sizeof(REAL));
    if (!state || !g) {
        free(state);
        if (!grad) free(g);
        return LC_ERR_NOMEM;
    }
    int status = FN(lc_hvp_prepare)(net, theta, X, Y, N, loss, state, g, &value);
    if (status == LC_OK)
        status = FN(lc_hvp_apply)(net, theta, N, loss, gauss_newton, state, V, k, HV);
    if (loss_out) *loss_out = value;
    free(state);
    if (!grad) free(g);
    return status;
}

/* Fused: each chunk's forward and backward pass runs just before its products, into a small
 * buffer, so no state of all N samples is stored or read back.  The per-sample values and the
 * order of every sum over samples are those of lc_hvp_apply, so HV is the same bits as
 * lc_hvp_prepare + lc_hvp_apply; the gradient and loss are summed per chunk (the same values
 * to rounding). */
int FN(lc_net_hvp)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y, int64_t N,
                   int32_t loss, int32_t gauss_newton, const REAL *V, int64_t k, REAL *HV,
                   REAL *grad, double *loss_out)
{
    const int64_t P = lc_net_n_params(net), L = net->n_layers;
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1 || k < 0)
        return LC_ERR_ARGS;
    if (k == 0)
        return FN(net_hvp_stored)(net, theta, X, Y, N, loss, gauss_newton, V, k, HV, grad,
                                  loss_out);
    FN(hvp_plan) plan;
    const int status =
        FN(hvp_plan_init)(&plan, net, theta, N, loss, gauss_newton, NULL, k, X, Y, grad != NULL);
    if (status != LC_OK) return status;
    if (!FN(hvp_plan_load)(&plan, V)) {
        FN(hvp_plan_free)(&plan);
        return FN(net_hvp_stored)(net, theta, X, Y, N, loss, gauss_newton, V, k, HV, grad,
                                  loss_out);
    }
    FN(hvp_plan_run)(&plan, NULL);
    for (int64_t c = 0; c < k; c++)
        for (int64_t q = 0; q < P; q++) HV[q * k + c] = plan.hv_parts[c * P + q];
    double total = 0.0;
    for (int64_t p = 0; p < plan.n_parts; p++) total += plan.loss_parts[p];
    if (loss_out) *loss_out = FN(hess_loss_value)(loss, total, N, net->sizes[L]);
    if (grad) {
        memcpy(grad, plan.grad_parts, (size_t)P * sizeof(REAL));
        FN(hess_add_parts)(grad, plan.grad_parts + 2 * P, plan.n_parts - 1, 2 * P, P);
    }
    FN(hvp_plan_free)(&plan);
    return LC_OK;
}

#undef LC_HVP_CHUNK_VALUES
#undef LC_HVP_MIN_CHUNK
#undef LC_HVP_PART_WORK
#undef LC_HVP_PART_SAMPLES
#undef LC_DENSE_CHUNK_VALUES
#undef LC_DENSE_MIN_CHUNK
#undef LC_DENSE_PART_VALUES
#undef LC_DENSE_MAX_VALUES
#undef FN
#undef LC_CAT
#undef LC_CAT_
