/* lc_qat_impl.h: the one definition of the quantization hook, included by lc_qat.c once per
 * floating type (REAL, SFX, QUANTIZE defined).  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

int FN(lc_qat_quantize)(const lc_fixfmt *f, const REAL *x, REAL *out, uint8_t *mask, int64_t n,
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

void FN(lc_qat_gate)(REAL *x, const uint8_t *mask, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = mask[i] ? x[i] : (REAL)0;
}

#undef FN
#undef LC_CAT
#undef LC_CAT_
