/* lc_fixed_impl.h: lc_quantize_<SFX> for one input type REAL; included once per type by
 * lc_fixed.c with REAL and SFX defined.
 *
 * The loop is written once (LC_QUANT_LOOP) and instantiated per rounding mode.  Each element
 * takes the fast path of quantize_one when it qualifies (the same condition), with floor(y)
 * computed as an int64 truncation corrected by one (exact for |y| < 2^62); every other
 * element (tiny, huge, -1/2 < y < 0, inf, NaN) goes through quantize_one. */

#define LC_QUANT_LOOP(UP)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                          \
        double xi = (double)x[i];                                                              \
        double y = xi * scale;                                                                   \
        double ay = fabs(y);                                                                   \
        int64_t c;                                                                             \
        int ovf = 0;                                                                           \
        int fast = (ay < 0x1p62) & ((y >= 0.0) | (y <= -0.5)) & ((ay >= DBL_MIN) | (xi == 0.0)); \
        if (fast) {                                                                            \
            int64_t t = (int64_t)y; /* toward zero; |y| < 2^62 */                              \
            int64_t below = (double)t > y; /* y negative and not an integer */                 \
            t -= below;                                                                        \
            double f = y - (double)t;                                                          \
            (void)f;                                                                           \
            c = t + (int64_t)(UP);                                                             \
            ovf = (c < lo) | (c > hi);                                                         \
            if (clamp) { /* branch-free: saturation is common in real data */                  \
                c = c < lo ? lo : c;                                                           \
                c = c > hi ? hi : c;                                                           \
            } else if (ovf) {                                                                  \
                c = wrap_bits(&fi, (u128)c);                                                   \
            }                 \
        } else {                                                                               \
            int status = LC_OK;                                                                \
            c = quantize_slow(&fi, xi, seed, (uint64_t)i, &ovf, &status);                        \
            if (status != LC_OK) {                                                             \
                if (bad_index) *bad_index = i;                                                 \
                return status;                                                                 \
            }                                                                                  \
        }                                                                                      \
        if (codes) codes[i] = c;                                                               \
        if (out) out[i] = (double)c * lsb;                                                     \
        if (stats) count_code(&st, thr, xi != 0.0, c, ovf);                                    \
    }

#define LC_QUANT_CAT2(a, b) a##b
#define LC_QUANT_CAT(a, b) LC_QUANT_CAT2(a, b)

int LC_QUANT_CAT(lc_quantize_, SFX)(const lc_fixfmt *fmt, const REAL *x, int64_t n,
                                    int64_t *codes, double *out, uint64_t seed,
                                    lc_rail_counts *stats, double near_rail, int64_t *bad_index)
{
    fixinfo fi;
    if (info_of(fmt, &fi) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    double thr = near_threshold(&fi, near_rail);
    lc_rail_counts st = {0, 0, 0};
    /* Locals, not fields of fi: fi's address escapes, and stores through codes (int64_t *)
     * would otherwise force the compiler to reload lo and hi on every element. */
    const double scale = fi.scale, lsb = fi.lsb;
    const int64_t lo = fi.lo, hi = fi.hi;
    const int clamp = fi.overflow != LC_OVF_WRAP;
    switch (fi.rounding) {
    case LC_ROUND_TRN: LC_QUANT_LOOP(LC_UP_TRN) break;
    case LC_ROUND_TRN_ZERO: LC_QUANT_LOOP(LC_UP_TRN_ZERO) break;
    case LC_ROUND_RND: LC_QUANT_LOOP(LC_UP_RND) break;
    case LC_ROUND_RND_ZERO: LC_QUANT_LOOP(LC_UP_RND_ZERO) break;
    case LC_ROUND_RND_INF: LC_QUANT_LOOP(LC_UP_RND_INF) break;
    case LC_ROUND_RND_MIN_INF: LC_QUANT_LOOP(LC_UP_RND_MIN_INF) break;
    case LC_ROUND_RND_CONV: LC_QUANT_LOOP(LC_UP_RND_CONV) break;
    default: LC_QUANT_LOOP(LC_UP_STOCH) break;
    }
    if (stats) *stats = st;
    return LC_OK;
}

#undef LC_QUANT_LOOP
#undef LC_QUANT_CAT
#undef LC_QUANT_CAT2
