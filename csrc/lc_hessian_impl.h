/* lc_hessian_impl.h: the one definition of the Hessian kernels, included by lc_hessian.c once
 * per floating type with REAL, SFX and the math functions EXP, FABS defined.  Not a public
 * header.  The mathematics is stated in lc_hessian.h. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

/* Samples per chunk in lc_hvp_apply: the per-direction buffers of one chunk stay in cache
 * while every direction runs over it. */
#define LC_HVP_CHUNK 128

/* act'(z) from z and h = act(z); the same formulas as act_deriv in lc_dense_impl.h. */
static inline REAL FN(hess_d1)(int32_t act, REAL z, REAL h)
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

/* act''(z) from z and h = act(z). */
static inline REAL FN(hess_d2)(int32_t act, REAL z, REAL h)
{
    switch (act) {
    case LC_ACT_TANH: return (REAL)-2 * h * ((REAL)1 - h * h);            /* -2 t (1 - t^2) */
    case LC_ACT_SIGMOID: return h * ((REAL)1 - h) * ((REAL)1 - (REAL)2 * h); /* s (1-s)(1-2s) */
    case LC_ACT_SOFTSIGN: {                                                /* -2 sgn z / (1+|z|)^3 */
        REAL d = (REAL)1 + FABS(z);
        REAL g = (REAL)2 / (d * d * d);
        return z > 0 ? -g : (z < 0 ? g : (REAL)0);
    }
    case LC_ACT_SOFTPLUS: {                                                /* s (1 - s), s = sigmoid */
        REAL s = (REAL)1 / ((REAL)1 + EXP(-z));
        return s * ((REAL)1 - s);
    }
    default: return (REAL)0; /* linear, relu, leaky_relu */
    }
}

void FN(lc_act_deriv2)(int32_t act, const REAL *z, const REAL *h, REAL *d2, int64_t n)
{
    for (int64_t i = 0; i < n; i++) d2[i] = FN(hess_d2)(act, z[i], h[i]);
}

/* y += a x over n values. */
static inline void FN(hess_axpy)(REAL *restrict y, REAL a, const REAL *restrict x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* sum_i x[i] y[i] with four independent partial sums (a fixed order: reproducible). */
static inline REAL FN(hess_dot)(const REAL *restrict x, const REAL *restrict y, int64_t n)
{
    REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
        s2 += x[i + 2] * y[i + 2];
        s3 += x[i + 3] * y[i + 3];
    }
    for (; i < n; i++) s0 += x[i] * y[i];
    return (s0 + s1) + (s2 + s3);
}

/* y += sum_t a[t] x[t] over n values; four sources per sweep over y. */
static inline void FN(hess_axpy_many)(REAL *restrict y, const REAL *a, const REAL *const *x,
                                      int64_t cnt, int64_t n)
{
    int64_t t = 0;
    for (; t + 4 <= cnt; t += 4) {
        const REAL a0 = a[t], a1 = a[t + 1], a2 = a[t + 2], a3 = a[t + 3];
        const REAL *restrict x0 = x[t], *restrict x1 = x[t + 1];
        const REAL *restrict x2 = x[t + 2], *restrict x3 = x[t + 3];
        for (int64_t i = 0; i < n; i++)
            y[i] += (a0 * x0[i] + a1 * x1[i]) + (a2 * x2[i] + a3 * x3[i]);
    }
    for (; t < cnt; t++) FN(hess_axpy)(y, a[t], x[t], n);
}

/* out[c] = sum_i x[i] y_c[i] for c < 4: four dot products sharing x, two partial sums each. */
static inline void FN(hess_dot4)(const REAL *restrict x, const REAL *restrict y0,
                                 const REAL *restrict y1, const REAL *restrict y2,
                                 const REAL *restrict y3, int64_t n, REAL *out)
{
    REAL a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const REAL u = x[i], w = x[i + 1];
        a0 += u * y0[i]; b0 += w * y0[i + 1];
        a1 += u * y1[i]; b1 += w * y1[i + 1];
        a2 += u * y2[i]; b2 += w * y2[i + 1];
        a3 += u * y3[i]; b3 += w * y3[i + 1];
    }
    if (i < n) {
        a0 += x[i] * y0[i]; a1 += x[i] * y1[i]; a2 += x[i] * y2[i]; a3 += x[i] * y3[i];
    }
    out[0] = a0 + b0; out[1] = a1 + b1; out[2] = a2 + b2; out[3] = a3 + b3;
}

/* gW[i * n_out + j] (+)= x_i . y_j for i < n_in, j < n_out; x_i = x + i sx, y_j = y + j sy. */
static void FN(hess_outer_dots)(const REAL *x, int64_t sx, const REAL *y, int64_t sy,
                                int64_t n_in, int64_t n_out, int64_t n, int add, REAL *gW)
{
    REAL d[4];
    for (int64_t i = 0; i < n_in; i++) {
        const REAL *xi = x + i * sx;
        REAL *g = gW + i * n_out;
        int64_t j = 0;
        for (; j + 4 <= n_out; j += 4) {
            FN(hess_dot4)(xi, y + j * sy, y + (j + 1) * sy, y + (j + 2) * sy, y + (j + 3) * sy, n, d);
            for (int c = 0; c < 4; c++) g[j + c] = add ? g[j + c] + d[c] : d[c];
        }
        for (; j < n_out; j++) {
            const REAL e = FN(hess_dot)(xi, y + j * sy, n);
            g[j] = add ? g[j] + e : e;
        }
    }
}

static inline REAL FN(hess_sum)(const REAL *restrict x, int64_t n)
{
    REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

/* dst (cols, rows) := src (rows, cols)^T */
static void FN(hess_transpose)(const REAL *src, int64_t rows, int64_t cols, REAL *dst)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

/* Offset of layer l's block (a, d1, d2, dz) in the state. */
static int64_t FN(hess_layer_base)(const lc_net *net, int64_t N, int64_t l)
{
    int64_t base = N * net->sizes[0];
    for (int64_t i = 0; i < l; i++) base += 4 * N * net->sizes[i + 1];
    return base;
}

int FN(lc_hvp_prepare)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                       int64_t N, int32_t loss, REAL *state, REAL *grad, double *loss_out)
{
    const int64_t L = net->n_layers, maxw = lc_net_max_width(net);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1) return LC_ERR_ARGS;
    int64_t zha = 0;
    for (int64_t l = 0; l < L; l++) zha += 3 * N * net->sizes[l + 1];
    int64_t *off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    REAL **zp = (REAL **)malloc((size_t)(3 * L) * sizeof(REAL *));
    REAL *buf = (REAL *)malloc((size_t)(zha + 3 * N * maxw + maxw * maxw) * sizeof(REAL));
    if (!off || !zp || !buf) {
        free(off);
        free(zp);
        free(buf);
        return LC_ERR_NOMEM;
    }
    lc_net_offsets(net, off, off + L);
    REAL **z = zp, **h = zp + L, **a = zp + 2 * L;
    REAL *p = buf;
    for (int64_t l = 0; l < L; l++) {
        const int64_t s = N * net->sizes[l + 1];
        z[l] = p; p += s;
        h[l] = p; p += s;
        a[l] = p; p += s;
    }
    /* dz is also lc_dense_backward's scratch: dz (N, n_out) then the transposed kernel, which
     * fits in the N * maxw + maxw * maxw values that follow */
    REAL *da = p, *da_prev = p + N * maxw, *dz = p + 2 * N * maxw;

    /* forward */
    const REAL *in = X;
    for (int64_t l = 0; l < L; l++) {
        const REAL *b = off[L + l] >= 0 ? theta + off[L + l] : NULL;
        FN(lc_dense_forward)(in, N, net->sizes[l], net->sizes[l + 1], theta + off[l], b,
                             net->acts[l], net->clip_out, z[l], h[l], a[l]);
        in = a[l];
    }
    *loss_out = FN(lc_loss_grad)(loss, a[L - 1], Y, N, net->sizes[L], da);

    /* backward, recording d1, d2 and dz of every layer */
    FN(hess_transpose)(X, N, net->sizes[0], state);
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1], n = N * n_out;
        const int32_t act = net->acts[l];
        REAL *base = state + FN(hess_layer_base)(net, N, l);
        REAL *A = base, *D1 = base + n, *D2 = base + 2 * n, *DZ = base + 3 * n;
        for (int64_t i = 0; i < N; i++) {
            for (int64_t j = 0; j < n_out; j++) {
                const int64_t q = i * n_out + j;
                const REAL hv = h[l][q];
                const int inside = !net->clip_out || (hv >= (REAL)-1 && hv <= (REAL)1);
                D1[j * N + i] = inside ? FN(hess_d1)(act, z[l][q], hv) : (REAL)0;
                D2[j * N + i] = inside ? FN(hess_d2)(act, z[l][q], hv) * da[q] : (REAL)0;
            }
        }
        FN(hess_transpose)(a[l], N, n_out, A);
        FN(lc_dense_backward)(l > 0 ? a[l - 1] : X, N, n_in, n_out, theta + off[l], z[l], h[l],
                              da, act, net->clip_out, dz, grad + off[l],
                              off[L + l] >= 0 ? grad + off[L + l] : NULL, l > 0 ? da_prev : NULL);
        FN(hess_transpose)(dz, N, n_out, DZ);
        REAL *t = da; da = da_prev; da_prev = t;
    }
    free(buf);
    free(zp);
    free(off);
    return LC_OK;
}

int FN(lc_hvp_apply)(const lc_net *net, const REAL *theta, int64_t N, int32_t loss,
                     int32_t gauss_newton, const REAL *state, const REAL *V, int64_t k, REAL *HV)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net), maxw = lc_net_max_width(net);
    if ((loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) || N < 1 || L < 1 || k < 0)
        return LC_ERR_ARGS;
    for (int64_t q = 0; q < P * k; q++) HV[q] = 0;
    if (k == 0) return LC_OK;
    const int gn = gauss_newton != 0;
    const int64_t m = net->sizes[L];
    const REAL s2 = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)N)
                                             : (REAL)(2.0 / ((double)N * (double)m));
    const int64_t C = N < LC_HVP_CHUNK ? N : LC_HVP_CHUNK;
    int64_t widths = 0;
    for (int64_t l = 0; l < L; l++) widths += net->sizes[l + 1];

    int64_t *ib = (int64_t *)malloc((size_t)(5 * L) * sizeof(int64_t));
    REAL **rp = (REAL **)malloc((size_t)(2 * L) * sizeof(REAL *));
    REAL *buf = (REAL *)malloc((size_t)(2 * P + 2 * widths * C + 3 * maxw * C + 2 * maxw) *
                               sizeof(REAL));
    const REAL **src = (const REAL **)malloc((size_t)(2 * maxw) * sizeof(REAL *));
    if (!ib || !rp || !buf || !src) {
        free(src);
        free(ib);
        free(rp);
        free(buf);
        return LC_ERR_NOMEM;
    }
    int64_t *w_off = ib, *b_off = ib + L, *lbase = ib + 2 * L, *vzero = ib + 3 * L,
            *rzero = ib + 4 * L;
    lc_net_offsets(net, w_off, b_off);
    for (int64_t l = 0; l < L; l++) lbase[l] = FN(hess_layer_base)(net, N, l);
    REAL **Rz = rp, **Ra = rp + L;
    REAL *v = buf, *hv = buf + P, *p = buf + 2 * P;
    for (int64_t l = 0; l < L; l++) {
        Rz[l] = p; p += net->sizes[l + 1] * C;
        Ra[l] = p; p += net->sizes[l + 1] * C;
    }
    REAL *rda_a = p, *rda_b = p + maxw * C, *rdz = p + 2 * maxw * C, *coef = p + 3 * maxw * C;

    for (int64_t s = 0; s < N; s += C) {
        const int64_t B = N - s < C ? N - s : C;
        for (int64_t c = 0; c < k; c++) {
            for (int64_t q = 0; q < P; q++) v[q] = V[q * k + c];
            for (int64_t q = 0; q < P; q++) hv[q] = 0;

            /* forward: Rz = Ra_{l-1} W + a_{l-1} V_l + vb_l,  Ra = d1 Rz */
            int prev_zero = 1; /* the input carries no direction */
            for (int64_t l = 0; l < L; l++) {
                const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
                const REAL *W = theta + w_off[l], *vW = v + w_off[l];
                const REAL *vb = b_off[l] >= 0 ? v + b_off[l] : NULL;
                const REAL *Ain = l == 0 ? state + s : state + lbase[l - 1] + s;
                const REAL *D1 = state + lbase[l] + N * n_out + s;
                int vz = 1;
                for (int64_t q = 0; q < n_in * n_out && vz; q++) vz = vW[q] == 0;
                for (int64_t j = 0; vb && j < n_out && vz; j++) vz = vb[j] == 0;
                vzero[l] = vz;
                rzero[l] = prev_zero && vz;
                if (rzero[l]) continue;
                for (int64_t j = 0; j < n_out; j++) {
                    REAL *restrict rz = Rz[l] + j * C;
                    const REAL b0 = vb ? vb[j] : (REAL)0;
                    for (int64_t n = 0; n < B; n++) rz[n] = b0;
                    int64_t cnt = 0;
                    if (!prev_zero)
                        for (int64_t i = 0; i < n_in; i++) {
                            coef[cnt] = W[i * n_out + j];
                            src[cnt++] = Ra[l - 1] + i * C;
                        }
                    if (!vz)
                        for (int64_t i = 0; i < n_in; i++) {
                            const REAL w = vW[i * n_out + j];
                            if (w != 0) {
                                coef[cnt] = w;
                                src[cnt++] = Ain + i * N;
                            }
                        }
                    FN(hess_axpy_many)(rz, coef, src, cnt, B);
                    REAL *restrict ra = Ra[l] + j * C;
                    const REAL *restrict d1 = D1 + j * N;
                    for (int64_t n = 0; n < B; n++) ra[n] = d1[n] * rz[n];
                }
                prev_zero = 0;
            }

            /* backward */
            const int64_t n_last = net->sizes[L];
            REAL *rda = rda_a, *rda_prev = rda_b;
            int rda_zero = (int)rzero[L - 1];
            if (!rda_zero)
                for (int64_t q = 0; q < n_last; q++)
                    for (int64_t n = 0; n < B; n++) rda[q * C + n] = s2 * Ra[L - 1][q * C + n];
            for (int64_t l = L - 1; l >= 0; l--) {
                const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
                const REAL *W = theta + w_off[l], *vW = v + w_off[l];
                const REAL *Ain = l == 0 ? state + s : state + lbase[l - 1] + s;
                const REAL *D1 = state + lbase[l] + N * n_out + s;
                const REAL *D2 = state + lbase[l] + 2 * N * n_out + s;
                const REAL *DZ = state + lbase[l] + 3 * N * n_out + s;
                const int use_rz = !rzero[l] && !gn;
                const int rdz_zero = rda_zero && !use_rz;
                const int use_ra_in = !gn && l > 0 && !rzero[l - 1];
                if (!rdz_zero) {
                    for (int64_t j = 0; j < n_out; j++) {
                        REAL *restrict r = rdz + j * C;
                        const REAL *restrict d1 = D1 + j * N, *restrict d2 = D2 + j * N;
                        const REAL *restrict g = rda + j * C, *restrict rz = Rz[l] + j * C;
                        if (rda_zero)
                            for (int64_t n = 0; n < B; n++) r[n] = 0;
                        else
                            for (int64_t n = 0; n < B; n++) r[n] = d1[n] * g[n];
                        if (use_rz)
                            for (int64_t n = 0; n < B; n++) r[n] += d2[n] * rz[n];
                    }
                }
                REAL *gW = hv + w_off[l];
                if (!rdz_zero)
                    FN(hess_outer_dots)(Ain, N, rdz, C, n_in, n_out, B, 0, gW);
                if (use_ra_in)
                    FN(hess_outer_dots)(Ra[l - 1], C, DZ, N, n_in, n_out, B, !rdz_zero, gW);
                if (b_off[l] >= 0 && !rdz_zero)
                    for (int64_t j = 0; j < n_out; j++)
                        hv[b_off[l] + j] = FN(hess_sum)(rdz + j * C, B);
                if (l == 0) break;
                /* Rda_{l-1} = Rdz W^T + dz V_l^T */
                const int use_v = !gn && !vzero[l];
                if (!rdz_zero || use_v) {
                    for (int64_t i = 0; i < n_in; i++) {
                        REAL *restrict r = rda_prev + i * C;
                        for (int64_t n = 0; n < B; n++) r[n] = 0;
                        int64_t cnt = 0;
                        if (!rdz_zero)
                            for (int64_t j = 0; j < n_out; j++) {
                                coef[cnt] = W[i * n_out + j];
                                src[cnt++] = rdz + j * C;
                            }
                        if (use_v)
                            for (int64_t j = 0; j < n_out; j++) {
                                const REAL w = vW[i * n_out + j];
                                if (w != 0) {
                                    coef[cnt] = w;
                                    src[cnt++] = DZ + j * N;
                                }
                            }
                        FN(hess_axpy_many)(r, coef, src, cnt, B);
                    }
                }
                rda_zero = rdz_zero && !use_v;
                REAL *t = rda; rda = rda_prev; rda_prev = t;
            }
            for (int64_t q = 0; q < P; q++) HV[q * k + c] += hv[q];
        }
    }
    free(src);
    free(buf);
    free(rp);
    free(ib);
    return LC_OK;
}

int FN(lc_net_hvp)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y, int64_t N,
                   int32_t loss, int32_t gauss_newton, const REAL *V, int64_t k, REAL *HV,
                   REAL *grad, double *loss_out)
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

#undef LC_HVP_CHUNK
#undef FN
#undef LC_CAT
#undef LC_CAT_
