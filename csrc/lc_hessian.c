/* lc_hessian.c: R-operator Hessian-vector products (see lc_hessian.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_hessian.h"
#include "lc_parallel.h"
#include "lc_vmath.h"

int64_t lc_hvp_state_len(const lc_net *net, int64_t N)
{
    int64_t w = net->sizes[0];
    for (int64_t l = 0; l < net->n_layers; l++) w += 4 * net->sizes[l + 1];
    return N * w;
}

/* The team a kernel keeps for its runs of n_parts parts (lc_team_run, in the kernel's own
 * call): none for one part, whose runs need no thread, nor when no team can be made (lc_team_run
 * then runs each loop by lc_parallel_for: the same parts, so the same bits). */
static lc_team *lc_hess_team(int64_t n_parts)
{
    return n_parts > 1 ? lc_team_start(n_parts) : NULL;
}

/* The lanes of lc_v4d: four with vector types, one in the portable build (lc_vmath.h). */
#define LC_HESS_LANES ((int64_t)(sizeof(lc_v4d) / sizeof(double)))

/* 1 / k! for k = 14 down to 2: the Taylor coefficients of expm1 in lc_hess_tanh_group. */
static const double lc_hess_inv_fact[] = {1.0 / 87178291200.0,
                                          1.0 / 6227020800.0,
                                          1.0 / 479001600.0,
                                          1.0 / 39916800.0,
                                          1.0 / 3628800.0,
                                          1.0 / 362880.0,
                                          1.0 / 40320.0,
                                          1.0 / 5040.0,
                                          1.0 / 720.0,
                                          1.0 / 120.0,
                                          1.0 / 24.0,
                                          1.0 / 6.0,
                                          0.5};

/* Vectors lc_hess_tanh_group works on at once, and its statement S once per vector. */
#define LC_HESS_GROUP 4
#define LC_HESS_EACH(S) S(0) S(1) S(2) S(3)

/* h[0 .. LC_HESS_GROUP lanes) := tanh(z[...]): e / (e + 2) with e = expm1(2 |x|), |x| capped at
 * 22 (where tanh rounds to 1), the sign of x put back (so -0 stays -0).  Within about two ulps
 * of the exact value; the same bits on every machine, whatever its C library.  NaN stays NaN.
 * expm1(y) for 0 <= y <= 44: y = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, ln2 in two parts,
 * so n ln2_hi is exact), expm1(r) by its Taylor polynomial to degree 14 (truncation below 1e-17
 * relative), then expm1(y) = 2^n expm1(r) + (2^n - 1): both terms exact, one rounding, about
 * one ulp.  (Not the exp of lc_vmath.h, which serves float32 and loses relative accuracy near
 * 0.)  The vectors' steps are interleaved statement by statement, so the pipeline overlaps the
 * latencies of their polynomials (one alone is bound by them); each lane does the same
 * operations as on its own.  The vectors are loaded from z and stored to h directly (copied
 * through a stack array, each 32-byte load waits for the two 16-byte stores that filled it).
 * Four at once, on Zen 3 (16,000 values, best of 20,000 runs): 2.3 ns a value, where two took
 * 2.8 and three 2.7; five took 2.0, but six spill registers and take 6.5, so four keeps a
 * margin. */
static inline void lc_hess_tanh_group(const double *z, double *h)
{
    const lc_v4u sign_bit = LC_V4U(UINT64_C(0x8000000000000000));
    const lc_v4d shifter = LC_V4D(0x1.8p52); /* adding it rounds to an integer */
#define LC_HESS_T1(g)                                                                              \
    lc_v4d x##g;                                                                                   \
    memcpy(&x##g, z + (g) * LC_HESS_LANES, sizeof x##g);                                           \
    lc_v4u xb##g;                                                                                  \
    memcpy(&xb##g, &x##g, sizeof xb##g);                                                           \
    const lc_v4u ab##g = xb##g & ~sign_bit;                                                        \
    lc_v4d a##g;                                                                                   \
    memcpy(&a##g, &ab##g, sizeof a##g);                                                            \
    a##g = LC_V4D_SELECT(a##g > LC_V4D(22.0), LC_V4D(22.0), a##g); /* NaN is kept */               \
    const lc_v4d y##g = a##g + a##g;                                                               \
    const lc_v4d kk##g = y##g * LC_V4D(1.4426950408889634) + shifter;                              \
    const lc_v4d n##g = kk##g - shifter;                                                           \
    const lc_v4d r##g = (y##g - n##g * LC_V4D(6.93147180369123816490e-01)) -                       \
                        n##g * LC_V4D(1.90821492927058770002e-10);                                 \
    lc_v4d p##g = LC_V4D(lc_hess_inv_fact[0]);
    LC_HESS_EACH(LC_HESS_T1)
    for (int i = 1; i < 13; i++) {
#define LC_HESS_T2(g) p##g = p##g * r##g + LC_V4D(lc_hess_inv_fact[i]);
        LC_HESS_EACH(LC_HESS_T2)
    }
#define LC_HESS_T3(g)                                                                              \
    p##g = (p##g * r##g) * r##g + r##g;                    /* r + r^2 / 2 + ... + r^14 / 14! */    \
    const lc_v4d scale##g = lc_v4d_pow2_of_shifted(kk##g); /* 2^n */                               \
    const lc_v4d e##g = scale##g * p##g + (scale##g - LC_V4D(1.0));                                \
    const lc_v4d t##g = e##g / (e##g + LC_V4D(2.0));                                               \
    lc_v4u tb##g;                                                                                  \
    memcpy(&tb##g, &t##g, sizeof tb##g);                                                           \
    tb##g |= xb##g & sign_bit;                                                                     \
    lc_v4d out##g;                                                                                 \
    memcpy(&out##g, &tb##g, sizeof out##g);                                                        \
    out##g = LC_V4D_SELECT(x##g == x##g, out##g, x##g);                                            \
    memcpy(h + (g) * LC_HESS_LANES, &out##g, sizeof out##g);
    LC_HESS_EACH(LC_HESS_T3)
#undef LC_HESS_T1
#undef LC_HESS_T2
#undef LC_HESS_T3
}

/* h := act(z) over n doubles: tanh by lc_hess_tanh_group (the tail through zero-padded
 * vectors, so every element is computed the same way), the others by lc_act_forward. */
LC_HOT static void lc_hess_act_forward_f64(int32_t act, const double *z, double *h, int64_t n)
{
    enum {
        STEP = LC_HESS_GROUP * (int)LC_HESS_LANES
    };
    if (act != LC_ACT_TANH) {
        lc_act_forward_f64(act, z, h, n);
        return;
    }
    int64_t i = 0;
    for (; i + STEP <= n; i += STEP) lc_hess_tanh_group(z + i, h + i);
    if (i < n) {
        double zb[STEP], hb[STEP];
        memset(zb, 0, sizeof zb);
        memcpy(zb, z + i, (size_t)(n - i) * sizeof(double));
        lc_hess_tanh_group(zb, hb);
        memcpy(h + i, hb, (size_t)(n - i) * sizeof(double));
    }
}

#define REAL float
#define SFX f32
#define EXP expf
#define FABS fabsf
#define HESS_ACT_FORWARD lc_act_forward_f32
#include "lc_hessian_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef FABS
#undef HESS_ACT_FORWARD

#define REAL double
#define SFX f64
#define EXP exp
#define FABS fabs
#define HESS_ACT_FORWARD lc_hess_act_forward_f64
#include "lc_hessian_impl.h"

/* Eigenvalues of the symmetric tridiagonal matrix with diagonal d[0..n) and off-diagonal
 * e[0..n-1) (e[i] couples i and i + 1), by implicit QL iterations with Wilkinson shifts:
 * d := the eigenvalues (unsorted), z[j] := the last component of eigenvector j (unit length).
 * e is destroyed (it needs n values).  Returns 0, or -1 for a non-finite entry or after 60
 * sweeps without convergence at one eigenvalue. */
static int lc_tridiag_ql(double *d, double *e, double *z, int64_t n)
{
    for (int64_t j = 0; j < n; j++) z[j] = j == n - 1 ? 1.0 : 0.0;
    e[n - 1] = 0.0;
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(d[j]) || !isfinite(e[j])) return -1;
    for (int64_t l = 0; l < n; l++) {
        int sweeps = 0;
        int64_t m;
        do {
            for (m = l; m < n - 1; m++) { /* the first negligible off-diagonal from l on */
                const double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 0x1p-53 * dd) break;
            }
            if (m == l) break;
            if (++sweeps > 60) return -1;
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r)); /* shift from the 2 x 2 block at l */
            double s = 1.0, c = 1.0, p = 0.0;
            int64_t i;
            int deflated = 0;
            for (i = m - 1; i >= l; i--) { /* chase the bulge up with plane rotations */
                const double f = s * e[i], b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0.0) { /* underflow: the matrix split; restart at l */
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                const double zf = z[i + 1]; /* the same rotation on the eigenvectors' last row */
                z[i + 1] = s * z[i] + c * zf;
                z[i] = c * z[i] - s * zf;
            }
            if (deflated) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        } while (m != l);
    }
    return 0;
}

static double lc_dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

int lc_hvp_lanczos_f64(const lc_net *net, const double *theta, int64_t N, int32_t loss,
                       int32_t gauss_newton, const double *state, const double *v0, int32_t which,
                       double tol, int64_t max_steps, double *value, int64_t *steps,
                       int32_t *converged)
{
    const int64_t P = lc_net_n_params(net);
    *converged = 0;
    *steps = 0;
    *value = 0.0;
    if (max_steps < 1 || max_steps > P || !(tol >= 0.0) || (which != 1 && which != -1))
        return LC_ERR_ARGS;
    const int64_t K = max_steps;
    hvp_plan_f64 plan;
    int status =
        hvp_plan_init_f64(&plan, net, theta, N, loss, gauss_newton, state, 1, NULL, NULL, 0);
    if (status != LC_OK) return status;
    double *Q = (double *)malloc((size_t)((K + 1) * P) * sizeof(double));
    double *w = (double *)malloc((size_t)P * sizeof(double));
    double *h = (double *)malloc((size_t)(6 * K + 1) * sizeof(double));
    if (!Q || !w || !h) {
        free(Q);
        free(w);
        free(h);
        hvp_plan_free_f64(&plan);
        return LC_ERR_NOMEM;
    }
    lc_team *team = lc_hess_team(plan.n_parts);
    double *alpha = h, *beta = h + K, *d = h + 2 * K, *e = h + 3 * K, *z = h + 4 * K,
           *c = h + 5 * K;
    memcpy(Q, v0, (size_t)P * sizeof(double));
    const double root_tol = sqrt(tol);
    for (int64_t j = 0; j < K; j++) {
        const double *q = Q + j * P;
        if (hvp_plan_load_f64(&plan, q)) { /* w := H q, the threads kept between steps */
            hvp_plan_run_f64(&plan, team);
            memcpy(w, plan.hv_parts, (size_t)P * sizeof(double));
        } else {
            memset(w, 0, (size_t)P * sizeof(double));
        }
        *steps = j + 1;
        alpha[j] = lc_dot(q, w, P);
        for (int pass = 0; pass < 2; pass++) { /* twice is enough (Kahan, Parlett) */
            for (int64_t i = 0; i <= j; i++) c[i] = lc_dot(Q + i * P, w, P);
            for (int64_t i = 0; i <= j; i++) {
                const double ci = c[i], *qi = Q + i * P;
                for (int64_t t = 0; t < P; t++) w[t] -= ci * qi[t];
            }
        }
        const double b = sqrt(lc_dot(w, w, P));
        beta[j] = b;
        /* Ritz values of the (j + 1)-step tridiagonal matrix */
        memcpy(d, alpha, (size_t)(j + 1) * sizeof(double));
        memcpy(e, beta, (size_t)j * sizeof(double));
        if (lc_tridiag_ql(d, e, z, j + 1) != 0) break; /* not converged: the caller falls back */
        int64_t best = 0, next = -1;
        for (int64_t i = 1; i <= j; i++)
            if (which * d[i] > which * d[best]) best = i;
        for (int64_t i = 0; i <= j; i++)
            if (i != best && (next < 0 || which * d[i] > which * d[next])) next = i;
        const double th = d[best], r = b * fabs(z[best]);
        *value = th;
        if (r == 0.0) {
            *converged = 1;
            break;
        }
        if (j > 0) {
            const double gap = fabs(th - d[next]);
            if (r <= root_tol * fabs(th) && r * r <= tol * fabs(th) * gap) {
                *converged = 1;
                break;
            }
        }
        if (j + 1 < K) {
            double *qn = Q + (j + 1) * P;
            for (int64_t t = 0; t < P; t++) qn[t] = w[t] / b;
        }
    }
    free(Q);
    free(w);
    free(h);
    lc_team_end(team);
    hvp_plan_free_f64(&plan);
    return status;
}
