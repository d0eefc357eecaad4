/* lc_qat_impl.h: the one definition of the QAT epoch, included by lc_qat.c once per floating
 * type (REAL, SFX, QUANTIZE defined).  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

/* out := q_f(x) (out may be x); mask[i] := lo <= x[i] <= hi (the straight-through estimator's
 * pass region) when mask is not NULL; *st := the rail counts.  scratch: n doubles. */
static int FN(qat_q)(const lc_fixfmt *f, const REAL *x, REAL *out, uint8_t *mask, int64_t n,
                     uint64_t seed, double near_rail, lc_rail_counts *st, double *scratch)
{
    int64_t bad = -1;
    lc_rail_counts local;
    const int s = QUANTIZE(f, x, n, NULL, scratch, seed, st ? st : &local, near_rail, &bad);
    if (s != LC_OK) return s;
    if (mask) {
        const double lsb = ldexp(1.0, f->int_bits - f->bits);
        const double lo = (double)lc_fixfmt_code_min(f) * lsb;
        const double hi = (double)lc_fixfmt_code_max(f) * lsb;
        for (int64_t i = 0; i < n; i++) mask[i] = (double)x[i] >= lo && (double)x[i] <= hi;
    }
    for (int64_t i = 0; i < n; i++) out[i] = (REAL)scratch[i];
    return LC_OK;
}

/* x[i] := mask[i] ? x[i] : 0 (a select, so that an infinite x times a closed gate is 0). */
static void FN(gate)(REAL *x, const uint8_t *mask, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = mask[i] ? x[i] : (REAL)0;
}

typedef struct {
    REAL *block;
    uint8_t *mblock;
    double *scratch;
    REAL **z, **h, **a, **qin, **wq, **bq;
    const REAL **in_used, **w_used;
    uint8_t **m_in, **m_w, **m_b, **m_acc, **m_act;
    REAL *da0, *da1, *dz, *dacc, *wt, *grad, *delta, *backup, *Xb, *Yb;
    int64_t *w_off, *b_off;
} FN(qws);

static void FN(qws_free)(FN(qws) *w)
{
    free(w->block);
    free(w->mblock);
    free(w->scratch);
    free(w->z);
    free(w->w_off);
    memset(w, 0, sizeof *w);
}

static int FN(qws_alloc)(FN(qws) *w, const lc_net *net, int64_t B)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net), maxw = lc_net_max_width(net);
    int64_t nr = 4 * B * maxw + maxw * maxw + 3 * P + B * (net->sizes[0] + net->sizes[L]);
    int64_t nm = 0;
    for (int64_t l = 0; l < L; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        nr += 3 * B * no + B * ni + ni * no + no;
        nm += B * ni + ni * no + no + 2 * B * no;
    }
    int64_t ns = B * maxw > maxw * maxw ? B * maxw : maxw * maxw;
    if (P > ns) ns = P;
    memset(w, 0, sizeof *w);
    w->block = (REAL *)malloc((size_t)nr * sizeof(REAL));
    w->mblock = (uint8_t *)malloc((size_t)(nm > 0 ? nm : 1));
    w->scratch = (double *)malloc((size_t)ns * sizeof(double));
    w->z = (REAL **)malloc((size_t)(13 * L) * sizeof(void *));
    w->w_off = (int64_t *)malloc((size_t)(2 * L) * sizeof(int64_t));
    if (!w->block || !w->mblock || !w->scratch || !w->z || !w->w_off) {
        FN(qws_free)(w);
        return LC_ERR_NOMEM;
    }
    void **ptrs = (void **)w->z;
    w->h = (REAL **)(ptrs + L);
    w->a = (REAL **)(ptrs + 2 * L);
    w->qin = (REAL **)(ptrs + 3 * L);
    w->wq = (REAL **)(ptrs + 4 * L);
    w->bq = (REAL **)(ptrs + 5 * L);
    w->in_used = (const REAL **)(ptrs + 6 * L);
    w->w_used = (const REAL **)(ptrs + 7 * L);
    w->m_in = (uint8_t **)(ptrs + 8 * L);
    w->m_w = (uint8_t **)(ptrs + 9 * L);
    w->m_b = (uint8_t **)(ptrs + 10 * L);
    w->m_acc = (uint8_t **)(ptrs + 11 * L);
    w->m_act = (uint8_t **)(ptrs + 12 * L);
    w->b_off = w->w_off + L;
    lc_net_offsets(net, w->w_off, w->b_off);
    REAL *p = w->block;
    uint8_t *q = w->mblock;
    for (int64_t l = 0; l < L; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        w->z[l] = p; p += B * no;
        w->h[l] = p; p += B * no;
        w->a[l] = p; p += B * no;
        w->qin[l] = p; p += B * ni;
        w->wq[l] = p; p += ni * no;
        w->bq[l] = p; p += no;
        w->m_in[l] = q; q += B * ni;
        w->m_w[l] = q; q += ni * no;
        w->m_b[l] = q; q += no;
        w->m_acc[l] = q; q += B * no;
        w->m_act[l] = q; q += B * no;
    }
    w->da0 = p; p += B * maxw;
    w->da1 = p; p += B * maxw;
    w->dz = p; p += B * maxw;
    w->dacc = p; p += B * maxw;
    w->wt = p; p += maxw * maxw;
    w->grad = p; p += P;
    w->delta = p; p += P;
    w->backup = p; p += P;
    w->Xb = p; p += B * net->sizes[0];
    w->Yb = p;
    return LC_OK;
}

#define QSEED(l, field, part) lc_qat_seed(q->seed, step, L, (l), (field), (part))

/* The forward pass, loss, straight-through backward pass and gradient quantization of one
 * QAT step on the batch in w->Xb, w->Yb: the gradient lands in w->grad, the gradient rail
 * statistics in r[LC_RAIL_GRAD_*] (any[1] set when a gradient is quantized). */
static int FN(qat_grad)(const lc_net *net, const REAL *theta, int64_t B, int32_t loss, int64_t step,
                        const lc_qat *q, FN(qws) *w, double *r, int *any, double *value_out)
{
    const int64_t L = net->n_layers, n_out_net = net->sizes[L];
    const double nr = q->near_rail;
    lc_rail_counts st;
    int s;
    /* forward */
    const REAL *in = w->Xb;
    for (int64_t l = 0; l < L; l++) {
        const lc_fixfmt *F = q->fmts + l * LC_QF_N;
        const int32_t *on = q->on + l * LC_QF_N;
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        const REAL *W = theta + w->w_off[l];
        const REAL *b = w->b_off[l] >= 0 ? theta + w->b_off[l] : NULL;
        if (on[LC_QF_INPUT]) {
            s = FN(qat_q)(F + LC_QF_INPUT, in, w->qin[l], w->m_in[l], B * ni, QSEED(l, LC_QF_INPUT, 0), nr, NULL, w->scratch);
            if (s) return s;
            in = w->qin[l];
        }
        w->in_used[l] = in;
        if (on[LC_QF_WEIGHT]) {
            s = FN(qat_q)(F + LC_QF_WEIGHT, W, w->wq[l], w->m_w[l], ni * no, QSEED(l, LC_QF_WEIGHT, 0), nr, NULL, w->scratch);
            if (s) return s;
            W = w->wq[l];
        }
        w->w_used[l] = W;
        if (b && on[LC_QF_BIAS]) {
            s = FN(qat_q)(F + LC_QF_BIAS, b, w->bq[l], w->m_b[l], no, QSEED(l, LC_QF_BIAS, 0), nr, NULL, w->scratch);
            if (s) return s;
            b = w->bq[l];
        }
        REAL *z = w->z[l], *h = w->h[l], *a = w->a[l];
        FN(lc_matmul)(in, ni, 1, W, z, B, ni, no);
        if (on[LC_QF_ACCUMULATOR]) {
            s = FN(qat_q)(F + LC_QF_ACCUMULATOR, z, z, w->m_acc[l], B * no, QSEED(l, LC_QF_ACCUMULATOR, 0), nr, NULL, w->scratch);
            if (s) return s;
        }
        if (b)
            for (int64_t i = 0; i < B; i++)
                for (int64_t j = 0; j < no; j++) z[i * no + j] += b[j];
        FN(lc_act_forward)(net->acts[l], z, h, B * no);
        if (net->clip_out) {
            for (int64_t i = 0; i < B * no; i++) {
                const REAL t = h[i];
                a[i] = t < (REAL)-1 ? (REAL)-1 : (t > (REAL)1 ? (REAL)1 : t);
            }
        } else {
            memcpy(a, h, (size_t)(B * no) * sizeof(REAL));
        }
        if (on[LC_QF_ACTIVATION]) {
            s = FN(qat_q)(F + LC_QF_ACTIVATION, a, a, w->m_act[l], B * no, QSEED(l, LC_QF_ACTIVATION, 0), nr, NULL, w->scratch);
            if (s) return s;
        }
        in = a;
    }
    const double value = FN(lc_loss_grad)(loss, w->a[L - 1], w->Yb, B, n_out_net, w->da0);
    *value_out = value;
    if (!isfinite(value)) return LC_ERR_NONFINITE_LOSS;
    /* backward */
    REAL *da = w->da0, *dprev = w->da1;
    for (int64_t l = L - 1; l >= 0; l--) {
        const int32_t *on = q->on + l * LC_QF_N;
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        if (on[LC_QF_ACTIVATION]) FN(gate)(da, w->m_act[l], B * no);
        FN(lc_act_backward)(net->acts[l], net->clip_out, w->z[l], w->h[l], da, w->dz, B * no);
        REAL *dacc = w->dz;
        if (on[LC_QF_ACCUMULATOR]) {
            memcpy(w->dacc, w->dz, (size_t)(B * no) * sizeof(REAL));
            FN(gate)(w->dacc, w->m_acc[l], B * no);
            dacc = w->dacc;
        }
        REAL *gW = w->grad + w->w_off[l];
        FN(lc_matmul)(w->in_used[l], 1, ni, dacc, gW, ni, B, no);
        if (on[LC_QF_WEIGHT]) FN(gate)(gW, w->m_w[l], ni * no);
        if (w->b_off[l] >= 0) {
            REAL *gb = w->grad + w->b_off[l];
            for (int64_t j = 0; j < no; j++) gb[j] = 0;
            for (int64_t i = 0; i < B; i++)
                for (int64_t j = 0; j < no; j++) gb[j] += w->dz[i * no + j];
            if (on[LC_QF_BIAS]) FN(gate)(gb, w->m_b[l], no);
        }
        if (l > 0) {
            FN(lc_transpose)(w->w_used[l], w->wt, ni, no);
            FN(lc_matmul)(dacc, no, 1, w->wt, dprev, B, no, ni);
            if (on[LC_QF_INPUT]) FN(gate)(dprev, w->m_in[l], B * ni);
            REAL *t = da; da = dprev; dprev = t;
        }
    }
    /* gradient quantization */
    for (int64_t l = 0; l < L; l++) {
        const lc_fixfmt *F = q->fmts + l * LC_QF_N;
        if (!q->on[l * LC_QF_N + LC_QF_GRADIENT]) continue;
        for (int part = 0; part < 2; part++) {
            const int64_t off = part ? w->b_off[l] : w->w_off[l];
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0) continue;
            s = FN(qat_q)(F + LC_QF_GRADIENT, w->grad + off, w->grad + off, NULL, n, QSEED(l, LC_QF_GRADIENT, part), nr, &st, w->scratch);
            if (s) return s;
            any[1] = 1;
            if ((double)st.saturated / (double)n > r[LC_RAIL_GRAD_SAT]) r[LC_RAIL_GRAD_SAT] = (double)st.saturated / (double)n;
            if ((double)st.near_rail / (double)n > r[LC_RAIL_GRAD_NEAR]) r[LC_RAIL_GRAD_NEAR] = (double)st.near_rail / (double)n;
        }
    }
    return LC_OK;
}

/* The update half of one QAT step for the increment in w->delta: update quantization,
 * theta += delta, clipping, storage quantization; rail statistics into r (any[0], any[2]).
 * On a non-finite parameter theta is restored and LC_ERR_NONFINITE_PARAMS returned. */
static int FN(qat_apply_ws)(const lc_net *net, REAL *theta, int64_t step, int32_t clip_params,
                            const lc_qat *q, FN(qws) *w, double *r, int *any)
{
    const int64_t L = net->n_layers, P = lc_net_n_params(net);
    const double nr = q->near_rail;
    lc_rail_counts st;
    int s;
    /* update */
    for (int64_t l = 0; l < L; l++) {
        const lc_fixfmt *F = q->fmts + l * LC_QF_N;
        if (!q->on[l * LC_QF_N + LC_QF_UPDATE]) continue;
        for (int part = 0; part < 2; part++) {
            const int64_t off = part ? w->b_off[l] : w->w_off[l];
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0) continue;
            s = FN(qat_q)(F + LC_QF_UPDATE, w->delta + off, w->delta + off, NULL, n, QSEED(l, LC_QF_UPDATE, part), nr, &st, w->scratch);
            if (s) return s;
            any[2] = 1;
            if ((double)st.saturated / (double)n > r[LC_RAIL_UPDATE_SAT]) r[LC_RAIL_UPDATE_SAT] = (double)st.saturated / (double)n;
            if ((double)st.underflow / (double)n > r[LC_RAIL_UPDATE_UNDER]) r[LC_RAIL_UPDATE_UNDER] = (double)st.underflow / (double)n;
        }
    }
    memcpy(w->backup, theta, (size_t)P * sizeof(REAL));
    for (int64_t i = 0; i < P; i++) theta[i] += w->delta[i];
    if (clip_params) FN(lc_clip)(theta, P, (REAL)-1, (REAL)1);
    if (!FN(lc_all_finite)(theta, P)) {
        memcpy(theta, w->backup, (size_t)P * sizeof(REAL));
        return LC_ERR_NONFINITE_PARAMS;
    }
    /* storage */
    for (int64_t l = 0; l < L; l++) {
        const lc_fixfmt *F = q->fmts + l * LC_QF_N;
        const int32_t *on = q->on + l * LC_QF_N;
        for (int part = 0; part < 2; part++) {
            const int field = part ? LC_QF_BIAS : LC_QF_WEIGHT;
            const int64_t off = part ? w->b_off[l] : w->w_off[l];
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0 || !on[field]) continue;
            s = FN(qat_q)(F + field, theta + off, theta + off, NULL, n, QSEED(l, field, 1), nr, &st, w->scratch);
            if (s) return s;
            any[0] = 1;
            if ((double)st.saturated / (double)n > r[LC_RAIL_WEIGHT_SAT]) r[LC_RAIL_WEIGHT_SAT] = (double)st.saturated / (double)n;
            if ((double)st.near_rail / (double)n > r[LC_RAIL_WEIGHT_NEAR]) r[LC_RAIL_WEIGHT_NEAR] = (double)st.near_rail / (double)n;
        }
    }
    return LC_OK;
}

/* rail[k] := r[k], NaN for the roles no variable was quantized in. */
static void FN(rail_finish)(const double *r, const int *any, double *rail)
{
    for (int k = 0; k < LC_RAIL_N; k++) rail[k] = r[k];
    if (!any[0]) rail[LC_RAIL_WEIGHT_SAT] = rail[LC_RAIL_WEIGHT_NEAR] = NAN;
    if (!any[1]) rail[LC_RAIL_GRAD_SAT] = rail[LC_RAIL_GRAD_NEAR] = NAN;
    if (!any[2]) rail[LC_RAIL_UPDATE_SAT] = rail[LC_RAIL_UPDATE_UNDER] = NAN;
}

/* One QAT step on the batch in w->Xb, w->Yb; see lc_qat.h.  rail: LC_RAIL_N values or NULL. */
static int FN(qat_step)(const lc_net *net, REAL *theta, int64_t B, int32_t loss, const lc_optim *opt,
                        REAL *m, REAL *v, int64_t step, int32_t clip_params, const lc_qat *q,
                        FN(qws) *w, double *rail, double *value_out)
{
    double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0};
    int any[3] = {0, 0, 0}; /* weight, gradient, update */
    int s = FN(qat_grad)(net, theta, B, loss, step, q, w, r, any, value_out);
    if (s != LC_OK) return s;
    FN(lc_optim_delta)(opt, w->grad, m, v, lc_net_n_params(net), step + 1, w->delta);
    s = FN(qat_apply_ws)(net, theta, step, clip_params, q, w, r, any);
    if (s != LC_OK) return s;
    if (rail) FN(rail_finish)(r, any, rail);
    return LC_OK;
}

int FN(lc_qat_loss_grad)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                         int64_t B, int32_t loss, const lc_qat *q, int64_t step, REAL *grad,
                         double *rail, double *loss_out)
{
    if (lc_net_has_bn(net) || B <= 0) return LC_ERR_ARGS;
    FN(qws) w;
    if (FN(qws_alloc)(&w, net, B) != LC_OK) return LC_ERR_NOMEM;
    const int64_t n_in = net->sizes[0], n_out = net->sizes[net->n_layers];
    memcpy(w.Xb, X, (size_t)(B * n_in) * sizeof(REAL));
    memcpy(w.Yb, Y, (size_t)(B * n_out) * sizeof(REAL));
    double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0};
    int any[3] = {0, 0, 0};
    const int s = FN(qat_grad)(net, theta, B, loss, step, q, &w, r, any, loss_out);
    if (s == LC_OK) {
        memcpy(grad, w.grad, (size_t)lc_net_n_params(net) * sizeof(REAL));
        rail[LC_RAIL_GRAD_SAT] = any[1] ? r[LC_RAIL_GRAD_SAT] : NAN;
        rail[LC_RAIL_GRAD_NEAR] = any[1] ? r[LC_RAIL_GRAD_NEAR] : NAN;
    }
    FN(qws_free)(&w);
    return s;
}

int FN(lc_qat_apply)(const lc_net *net, REAL *theta, const REAL *delta, const lc_qat *q, int64_t step,
                     int32_t clip_params, double *rail)
{
    if (lc_net_has_bn(net)) return LC_ERR_ARGS;
    FN(qws) w;
    if (FN(qws_alloc)(&w, net, 1) != LC_OK) return LC_ERR_NOMEM;
    memcpy(w.delta, delta, (size_t)lc_net_n_params(net) * sizeof(REAL));
    double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0};
    int any[3] = {0, 0, 0};
    const int s = FN(qat_apply_ws)(net, theta, step, clip_params, q, &w, r, any);
    if (s == LC_OK) {
        rail[LC_RAIL_WEIGHT_SAT] = any[0] ? r[LC_RAIL_WEIGHT_SAT] : NAN;
        rail[LC_RAIL_WEIGHT_NEAR] = any[0] ? r[LC_RAIL_WEIGHT_NEAR] : NAN;
        rail[LC_RAIL_UPDATE_SAT] = any[2] ? r[LC_RAIL_UPDATE_SAT] : NAN;
        rail[LC_RAIL_UPDATE_UNDER] = any[2] ? r[LC_RAIL_UPDATE_UNDER] : NAN;
    }
    FN(qws_free)(&w);
    return s;
}

#undef QSEED

int FN(lc_train_epoch_qat)(const lc_net *net, REAL *theta, const REAL *X, const REAL *Y, int64_t N,
                           const int64_t *perm, int64_t batch_size, int32_t loss,
                           const lc_optim *opt, REAL *m, REAL *v, int64_t *step,
                           int32_t clip_params, const lc_qat *q, double *rail, double *loss_sum,
                           int64_t *n_done)
{
    const int64_t L = net->n_layers, n_in = net->sizes[0], n_out = net->sizes[L];
    const int64_t B_max = batch_size < N ? batch_size : N;
    int status = LC_OK;
    *loss_sum = 0.0;
    *n_done = 0;
    if (batch_size <= 0 || lc_net_has_bn(net)) return LC_ERR_ARGS; /* no QAT of batch norm yet */
    if (N == 0) return LC_OK;
    for (int64_t i = 0; i < L * LC_QF_N; i++)
        if (q->on[i] && lc_fixfmt_check(q->fmts + i) != LC_OK) return LC_FIX_ERR_FORMAT;
    FN(qws) w;
    if (FN(qws_alloc)(&w, net, B_max) != LC_OK) return LC_ERR_NOMEM;
    int64_t row = 0;
    for (int64_t s = 0; s < N; s += batch_size, row++) {
        const int64_t B = N - s < batch_size ? N - s : batch_size;
        for (int64_t i = 0; i < B; i++) {
            const int64_t r = perm ? perm[s + i] : s + i;
            memcpy(w.Xb + i * n_in, X + r * n_in, (size_t)n_in * sizeof(REAL));
            memcpy(w.Yb + i * n_out, Y + r * n_out, (size_t)n_out * sizeof(REAL));
        }
        double value = 0.0;
        status = FN(qat_step)(net, theta, B, loss, opt, m, v, *step, clip_params, q, &w,
                              rail ? rail + row * LC_RAIL_N : NULL, &value);
        if (status != LC_OK) break;
        *step += 1;
        *loss_sum += value * (double)B;
        *n_done += B;
    }
    FN(qws_free)(&w);
    return status;
}

#undef FN
#undef LC_CAT
#undef LC_CAT_
