/* lc_optim_impl.h: the one definition of the optimizer kernels, included by lc_optim.c once
 * per floating type (REAL, SFX, POW, SQRT, FABS, TINY the smallest normal number and HUGEV
 * the largest finite one, defined).  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

/* The scalars of step t, in the parameters' precision (as Keras computes them). */
typedef struct {
    REAL lr, mu, alpha, c1, c2, eps;
} FN(ostep);

static FN(ostep) FN(ostep_init)(const lc_optim *opt, int64_t t)
{
    FN(ostep) s = {(REAL)opt->lr, (REAL)opt->momentum, 0, 0, 0, (REAL)opt->epsilon};
    if (opt->kind == LC_OPT_ADAM) {
        /* alpha = lr sqrt(1 - b2^t) / (1 - b1^t) */
        const REAL b1 = (REAL)opt->beta_1, b2 = (REAL)opt->beta_2, tt = (REAL)t;
        s.alpha = s.lr * SQRT((REAL)1 - POW(b2, tt)) / ((REAL)1 - POW(b1, tt));
        s.c1 = (REAL)1 - b1;
        s.c2 = (REAL)1 - b2;
    }
    return s;
}

/* A moment below the smallest normal number is stored as zero.  Without this, the moments of
 * a parameter whose gradient stays zero (a dead relu unit) decay into the subnormal range and
 * stay there: once m is a few units in the last place, m (1 - b1) rounds to nothing, so
 * m += (0 - m)(1 - b1) no longer changes it.  Every later step then computes on subnormal
 * numbers, which cost a microcode assist per instruction on many x86 cores.  The increment
 * such a moment gives is itself subnormal or zero, so flushing it changes no parameter whose
 * magnitude exceeds about 1e-30 (float32). */
static inline REAL FN(flush)(REAL x)
{
    return FABS(x) < TINY ? (REAL)0 : x;
}

/* The increments of one parameter; each updates the optimizer state it is given.
 * Adam (Keras 3): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2) (each flushed as above);
 * increment -m alpha / (sqrt(v) + eps). */
static inline REAL FN(adam_inc)(const FN(ostep) * s, REAL g, REAL *m, REAL *v)
{
    *m = FN(flush)(*m + (g - *m) * s->c1);
    *v = FN(flush)(*v + (g * g - *v) * s->c2);
    return -((*m * s->alpha) / (SQRT(*v) + s->eps));
}

/* SGD with momentum mu: vel = mu vel - lr g (flushed as above); the increment is vel
 * (Nesterov: mu vel - lr g). */
static inline REAL FN(momentum_inc)(const FN(ostep) * s, REAL g, REAL *vel, int nesterov)
{
    *vel = FN(flush)(-g * s->lr + *vel * s->mu);
    return nesterov ? -g * s->lr + *vel * s->mu : *vel;
}

/* One loop per optimizer kind, so each vectorizes; OUT(i, inc) stores the increment. */
#define LC_OPTIM_LOOPS(OUT)                                                                        \
    const FN(ostep) s = FN(ostep_init)(opt, t);                                                    \
    if (opt->kind == LC_OPT_ADAM) {                                                                \
        for (int64_t i = 0; i < P; i++) OUT(i, FN(adam_inc)(&s, g[i], &m[i], &v[i]));              \
    } else if (opt->momentum == 0.0) {                                                             \
        for (int64_t i = 0; i < P; i++) OUT(i, -(g[i] * s.lr));                                    \
    } else {                                                                                       \
        for (int64_t i = 0; i < P; i++) OUT(i, FN(momentum_inc)(&s, g[i], &m[i], opt->nesterov));  \
    }

/* theta += increment: the same bits as theta -= (the increment's magnitude), since
 * a - x == a + (-x) in IEEE arithmetic. */
#define LC_ADD_THETA(i, inc) theta[i] += (inc)
#define LC_SET_DELTA(i, inc) delta[i] = (inc)

LC_HOT void FN(lc_optim_step)(const lc_optim *opt, REAL *restrict theta, const REAL *restrict g,
                              REAL *restrict m, REAL *restrict v, int64_t P,
                              int64_t t){LC_OPTIM_LOOPS(LC_ADD_THETA)}

LC_HOT void FN(lc_optim_delta)(const lc_optim *opt, const REAL *restrict g, REAL *restrict m,
                               REAL *restrict v, int64_t P, int64_t t,
                               REAL *restrict delta){LC_OPTIM_LOOPS(LC_SET_DELTA)}

/* next := theta + increment, clipped when asked; bad is set by any value that is not finite
 * (!(|x| <= max) holds for inf and NaN; clipped, only NaN can be left).  A flag of int ORed,
 * not a count: a 64-bit count widened every lane's comparison to 64 bits, and the loop took
 * 2.2 TSC cycles a parameter on Zen 3 against 1.4-1.7 so (float32 Adam, 2,440 and 19,520
 * parameters, clipped; bound by vsqrtps and vdivps). */
#define LC_NEXT(i, inc)                                                                            \
    do {                                                                                           \
        const REAL x_ = theta[i] + (inc);                                                          \
        next[i] = x_;                                                                              \
        bad |= !(FABS(x_) <= HUGEV);                                                               \
    } while (0)
#define LC_NEXT_CLIP(i, inc)                                                                       \
    do {                                                                                           \
        const REAL x_ = theta[i] + (inc);                                                          \
        const REAL c_ = x_ < (REAL) - 1 ? (REAL) - 1 : (x_ > (REAL)1 ? (REAL)1 : x_);              \
        next[i] = c_;                                                                              \
        bad |= c_ != c_;                                                                           \
    } while (0)

LC_HOT int FN(lc_optim_next)(const lc_optim *opt, const REAL *restrict theta,
                             const REAL *restrict g, REAL *restrict m, REAL *restrict v, int64_t P,
                             int64_t t, int32_t clip, REAL *restrict next)
{
    int bad = 0;
    if (clip) {
        LC_OPTIM_LOOPS(LC_NEXT_CLIP)
    } else {
        LC_OPTIM_LOOPS(LC_NEXT)
    }
    return bad == 0;
}

#undef LC_NEXT
#undef LC_NEXT_CLIP
#undef LC_OPTIM_LOOPS
#undef LC_ADD_THETA
#undef LC_SET_DELTA

LC_HOT void FN(lc_clip)(REAL *theta, int64_t P, REAL lo, REAL hi)
{
    for (int64_t i = 0; i < P; i++) {
        const REAL x = theta[i];
        theta[i] = x < lo ? lo : (x > hi ? hi : x);
    }
}

LC_HOT int FN(lc_add_clip_finite)(const REAL *restrict theta, const REAL *restrict delta,
                                  REAL *restrict next, int64_t P, int32_t clip)
{
    int bad = 0; /* set by a value that is not finite: !(|x| <= max) holds for inf and NaN */
    if (clip) {
        for (int64_t i = 0; i < P; i++) {
            const REAL x = theta[i] + delta[i];
            const REAL c = x < (REAL)-1 ? (REAL)-1 : (x > (REAL)1 ? (REAL)1 : x);
            next[i] = c;
            bad |= c != c; /* clipped, only NaN can be left */
        }
    } else {
        for (int64_t i = 0; i < P; i++) {
            const REAL x = theta[i] + delta[i];
            next[i] = x;
            bad |= !(FABS(x) <= HUGEV);
        }
    }
    return bad == 0;
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
