/* lc_fixed_impl.h: lc_quantize_<SFX> and its block kernel quant_block_<SFX> for one input type
 * REAL; included once per type by lc_fixed.c with REAL and SFX defined.
 *
 * quant_block rounds nb values y = x[i] * scale on the fast path of lc_fixed.c (LC_QF_OK:
 * y exact and |y| < 2^50, where every step below is exact in double arithmetic) with no
 * branch and no double <-> int64 conversion instruction, so that it vectorizes (AVX2 clone:
 * 4 lanes, each doing the same IEEE operations, so the bits do not depend on the width).
 * Elements off the fast path get a garbage result and are counted; the caller redoes them
 * exactly (second pass, in order) and the stats skip them here.  The loop is instantiated per
 * rounding mode and overflow kind (LC_RD_* in lc_fixed.c), selected once per block. */

#define LC_QUANT_CAT2(a, b) a##b
#define LC_QUANT_CAT(a, b) LC_QUANT_CAT2(a, b)

#define LC_QF_LOOP(RD, WRAP)                                                                       \
    for (int64_t i = 0; i < nb; i++) {                                                             \
        const double xi = (double)x[i];                                                            \
        const double y = xi * scale;                                                               \
        const int64_t fast = LC_QF_OK(xi, y);                                                      \
        const double r = (y + LC_MAGIC) - LC_MAGIC; /* y to nearest, ties to even */               \
        const double fl = r - lc_one(r > y);        /* floor(y) */                                 \
        const double h = fl + 0.5;                  /* exact: |fl| <= 2^50 */                      \
        double c = RD;                                                                             \
        (void)h;                                                                                   \
        const int64_t ovf = (c < lo_d) | (c > hi_d);                                               \
        if (WRAP) {                                                                                \
            c = lc_sel((int)ovf, lc_i2d(wrap_low(lc_d2i(c), mask, sbit)), c);                      \
        } else {                                                                                   \
            c = c < lo_d ? lo_d : c;                                                               \
            c = c > hi_d ? hi_d : c;                                                               \
        }                                                                                          \
        nslow += 1 - fast;                                                                         \
        cw[i] = lc_d2i(c);                                                                         \
        ow[i] = c * lsb;                                                                           \
        sat += ovf & fast;                                                                         \
        near += (int64_t)(fabs(c) >= thr) & fast;                                                  \
        under += (int64_t)((xi != 0.0) & (c == 0.0)) & fast;                                       \
    }

#define LC_QF_CASES(WRAP)                                                                          \
    switch (qp->rounding) {                                                                        \
    case LC_ROUND_TRN:                                                                             \
        LC_QF_LOOP(LC_RD_TRN, WRAP) break;                                                         \
    case LC_ROUND_TRN_ZERO:                                                                        \
        LC_QF_LOOP(LC_RD_TRN_ZERO, WRAP) break;                                                    \
    case LC_ROUND_RND:                                                                             \
        LC_QF_LOOP(LC_RD_RND, WRAP) break;                                                         \
    case LC_ROUND_RND_ZERO:                                                                        \
        LC_QF_LOOP(LC_RD_RND_ZERO, WRAP) break;                                                    \
    case LC_ROUND_RND_INF:                                                                         \
        LC_QF_LOOP(LC_RD_RND_INF, WRAP) break;                                                     \
    case LC_ROUND_RND_MIN_INF:                                                                     \
        LC_QF_LOOP(LC_RD_RND_MIN_INF, WRAP) break;                                                 \
    case LC_ROUND_RND_CONV:                                                                        \
        LC_QF_LOOP(LC_RD_RND_CONV, WRAP) break;                                                    \
    default:                                                                                       \
        LC_QF_LOOP(LC_RD_STOCH, WRAP) break;                                                       \
    }

/* codes[i], out[i] := the fast-path cast of x[i] * scale (either may be NULL); STOCH index
 * idx0 + i; rail counts of the fast elements added to *st when not NULL.  Returns the number
 * of elements off the fast path (their outputs are to be overwritten by the caller).
 * nb <= LC_QCHUNK. */
static LC_HOT int64_t LC_QUANT_CAT(quant_block_, SFX)(const qparams *qp, const REAL *restrict x,
                                                      int64_t nb, uint64_t idx0,
                                                      int64_t *restrict codes, double *restrict out,
                                                      lc_rail_counts *st)
{
    /* Locals: nothing read through qp inside the loops. */
    const double scale = qp->scale, lsb = qp->lsb, lo_d = qp->lo_d, hi_d = qp->hi_d;
    const double thr = qp->thr;
    const uint64_t seed = qp->seed, mask = qp->mask, sbit = qp->sbit;
    /* Every output and count is formed unconditionally (no control flow in the loops: they
     * vectorize); an output not wanted goes to a scratch block. */
    int64_t cbuf[LC_QCHUNK];
    double obuf[LC_QCHUNK];
    int64_t *restrict cw = codes ? codes : cbuf;
    double *restrict ow = out ? out : obuf;
    int64_t nslow = 0, sat = 0, near = 0, under = 0;
    if (qp->wrap) {
        LC_QF_CASES(1)
    } else {
        LC_QF_CASES(0)
    }
    if (st) {
        st->saturated += sat;
        st->near_rail += near;
        st->underflow += under;
    }
    return nslow;
}

int LC_QUANT_CAT(lc_quantize_, SFX)(const lc_fixfmt *fmt, const REAL *x, int64_t n, int64_t *codes,
                                    double *out, uint64_t seed, lc_rail_counts *stats,
                                    double near_rail, int64_t *bad_index)
{
    fixinfo fi;
    if (info_of(fmt, &fi) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    qparams qp;
    qparams_of(&fi, fi.scale, near_threshold(&fi, near_rail), seed, &qp);
    lc_rail_counts st = {0, 0, 0};
    for (int64_t i0 = 0; i0 < n; i0 += LC_QCHUNK) {
        const int64_t nb = n - i0 < LC_QCHUNK ? n - i0 : LC_QCHUNK;
        int64_t nslow = !qp.vec ? nb
                                : LC_QUANT_CAT(quant_block_, SFX)(
                                      &qp, x + i0, nb, (uint64_t)i0, codes ? codes + i0 : NULL,
                                      out ? out + i0 : NULL, stats ? &st : NULL);
        /* Second pass over the block: the exact path for the elements the first one left. */
        for (int64_t i = i0; nslow > 0 && i < i0 + nb; i++) {
            const double xi = (double)x[i];
            if (qp.vec && LC_QF_OK(xi, xi * qp.scale)) continue;
            nslow--;
            int ovf = 0, status = LC_OK;
            int64_t c = quantize_slow(&fi, xi, seed, (uint64_t)i, &ovf, &status);
            if (status != LC_OK) {
                if (bad_index) *bad_index = i;
                return status;
            }
            if (codes) codes[i] = c;
            if (out) out[i] = (double)c * fi.lsb;
            if (stats) count_code(&st, qp.thr, xi != 0.0, c, ovf);
        }
    }
    if (stats) *stats = st;
    return LC_OK;
}

#undef LC_QF_LOOP
#undef LC_QF_CASES
#undef LC_QUANT_CAT
#undef LC_QUANT_CAT2
