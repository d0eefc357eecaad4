/* lc_optim_impl.h: the one definition of the optimizer kernels, included by lc_optim.c once
 * per floating type (REAL, SFX, POW, SQRT defined).  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

LC_HOT void FN(lc_optim_step)(const lc_optim *opt, REAL *restrict theta, const REAL *restrict g,
                       REAL *restrict m, REAL *restrict v, int64_t P, int64_t t)
{
    const REAL lr = (REAL)opt->lr;
    if (opt->kind == LC_OPT_ADAM) {
        /* Keras 3: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
         * alpha = lr sqrt(1 - b2^t) / (1 - b1^t); theta -= m alpha / (sqrt(v) + eps) */
        const REAL b1 = (REAL)opt->beta_1, b2 = (REAL)opt->beta_2, eps = (REAL)opt->epsilon;
        const REAL tt = (REAL)t;
        const REAL b1p = POW(b1, tt), b2p = POW(b2, tt);
        const REAL alpha = lr * SQRT((REAL)1 - b2p) / ((REAL)1 - b1p);
        const REAL c1 = (REAL)1 - b1, c2 = (REAL)1 - b2;
        for (int64_t i = 0; i < P; i++) {
            const REAL gi = g[i];
            m[i] += (gi - m[i]) * c1;
            v[i] += (gi * gi - v[i]) * c2;
            theta[i] -= (m[i] * alpha) / (SQRT(v[i]) + eps);
        }
    } else {
        const REAL mu = (REAL)opt->momentum;
        if (opt->momentum == 0.0) {
            for (int64_t i = 0; i < P; i++) theta[i] -= g[i] * lr;
        } else if (opt->nesterov) {
            for (int64_t i = 0; i < P; i++) {
                m[i] = -g[i] * lr + m[i] * mu;
                theta[i] += -g[i] * lr + m[i] * mu;
            }
        } else {
            for (int64_t i = 0; i < P; i++) {
                m[i] = -g[i] * lr + m[i] * mu;
                theta[i] += m[i];
            }
        }
    }
}

LC_HOT void FN(lc_optim_delta)(const lc_optim *opt, const REAL *restrict g, REAL *restrict m,
                        REAL *restrict v, int64_t P, int64_t t, REAL *restrict delta)
{
    /* The same arithmetic as lc_optim_step, with theta += delta left to the caller: since
     * a - x == a + (-x) in IEEE arithmetic, both give the same bits. */
    const REAL lr = (REAL)opt->lr;
    if (opt->kind == LC_OPT_ADAM) {
        const REAL b1 = (REAL)opt->beta_1, b2 = (REAL)opt->beta_2, eps = (REAL)opt->epsilon;
        const REAL tt = (REAL)t;
        const REAL b1p = POW(b1, tt), b2p = POW(b2, tt);
        const REAL alpha = lr * SQRT((REAL)1 - b2p) / ((REAL)1 - b1p);
        const REAL c1 = (REAL)1 - b1, c2 = (REAL)1 - b2;
        for (int64_t i = 0; i < P; i++) {
            const REAL gi = g[i];
            m[i] += (gi - m[i]) * c1;
            v[i] += (gi * gi - v[i]) * c2;
            delta[i] = -((m[i] * alpha) / (SQRT(v[i]) + eps));
        }
    } else {
        const REAL mu = (REAL)opt->momentum;
        if (opt->momentum == 0.0) {
            for (int64_t i = 0; i < P; i++) delta[i] = -(g[i] * lr);
        } else {
            for (int64_t i = 0; i < P; i++) {
                m[i] = -g[i] * lr + m[i] * mu;
                delta[i] = opt->nesterov ? -g[i] * lr + m[i] * mu : m[i];
            }
        }
    }
}

LC_HOT void FN(lc_clip)(REAL *theta, int64_t P, REAL lo, REAL hi)
{
    for (int64_t i = 0; i < P; i++) {
        const REAL x = theta[i];
        theta[i] = x < lo ? lo : (x > hi ? hi : x);
    }
}

int FN(lc_all_finite)(const REAL *x, int64_t P)
{
    for (int64_t i = 0; i < P; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

#undef FN
#undef LC_CAT
#undef LC_CAT_
