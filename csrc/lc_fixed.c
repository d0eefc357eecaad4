/* lc_fixed.c: fixed-point casts, quantization and arithmetic on codes (see lc_fixed.h).
 *
 * Design.  Every kernel reduces to one exact primitive, fix_cast(v, s): the value v * 2^-s
 * (v an integer with |v| < 2^126, s any shift) rounded to an integer code with the
 * destination's rounding mode, then brought into its rails with its overflow mode.  Doubles
 * enter it as mantissa * 2^exponent; requantization, sums and products enter it as integers
 * with their fraction bits.  Quantization of doubles has a fast path in double arithmetic for
 * the values where every step is provably exact: a branch-free, vectorized block loop
 * (LC_QF_OK, LC_RD_*, lc_fixed_impl.h) for |x * 2^F| < 2^50, and quantize_one for the
 * elements it leaves; both agree with fix_cast bit for bit, which the tests check against an
 * exact rational reference and through the NumPy twin.  The exact product (fix_matmul) reuses
 * that block loop for its final cast when its sums are exact in double.
 *
 * Integer arithmetic is done in 128 bits (gcc/clang __int128) or in int64 where a bound stated
 * next to the code proves it cannot overflow; shifts and wrap-arounds go through unsigned
 * types, so nothing relies on signed overflow or on shifting negative numbers left. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_fixed.h"
#include "lc_rng.h"

#if !LC_HAVE_INT128
#error "lc_fixed.c needs a 128-bit integer type (__int128 of GCC and Clang on 64-bit targets)"
#endif
LC_EXTENSION typedef __int128 i128;
LC_EXTENSION typedef unsigned __int128 u128;

/* A format with everything the inner loops need precomputed. */
typedef struct {
    int32_t bits, frac, is_signed, rounding, overflow;
    int64_t raw_min, raw_max; /* the width's code range */
    int64_t lo, hi;           /* the rails (lo = -hi under SAT_SYM when signed) */
    double scale;             /* 2^frac */
    double lsb;               /* 2^-frac */
} fixinfo;

int lc_fixfmt_check(const lc_fixfmt *f)
{
    if (f == NULL) return LC_FIX_ERR_FORMAT;
    if (f->bits < (f->is_signed ? 2 : 1) || f->bits > LC_FIX_MAX_BITS) return LC_FIX_ERR_FORMAT;
    if (f->int_bits < -LC_FIX_MAX_ABS_INT_BITS || f->int_bits > LC_FIX_MAX_ABS_INT_BITS)
        return LC_FIX_ERR_FORMAT;
    if (f->is_signed != 0 && f->is_signed != 1) return LC_FIX_ERR_FORMAT;
    if (f->rounding < 0 || f->rounding >= LC_N_ROUNDING) return LC_FIX_ERR_FORMAT;
    if (f->overflow < 0 || f->overflow >= LC_N_OVERFLOW) return LC_FIX_ERR_FORMAT;
    return LC_OK;
}

static void raw_range(const lc_fixfmt *f, int64_t *mn, int64_t *mx)
{
    if (f->is_signed) {
        *mx = (int64_t)((UINT64_C(1) << (f->bits - 1)) - 1u);
        *mn = -*mx - 1;
    } else {
        *mx = (int64_t)((UINT64_C(1) << f->bits) - 1u);
        *mn = 0;
    }
}

int64_t lc_fixfmt_code_max(const lc_fixfmt *f)
{
    int64_t mn, mx;
    raw_range(f, &mn, &mx);
    return mx;
}

int64_t lc_fixfmt_code_min(const lc_fixfmt *f)
{
    int64_t mn, mx;
    raw_range(f, &mn, &mx);
    return (f->is_signed && f->overflow == LC_OVF_SAT_SYM) ? -mx : mn;
}

static int info_of(const lc_fixfmt *f, fixinfo *fi)
{
    if (lc_fixfmt_check(f) != LC_OK) return LC_FIX_ERR_FORMAT;
    fi->bits = f->bits;
    fi->frac = f->bits - f->int_bits;
    fi->is_signed = f->is_signed;
    fi->rounding = f->rounding;
    fi->overflow = f->overflow;
    raw_range(f, &fi->raw_min, &fi->raw_max);
    fi->hi = fi->raw_max;
    fi->lo = lc_fixfmt_code_min(f);
    fi->scale = ldexp(1.0, fi->frac);
    fi->lsb = ldexp(1.0, -fi->frac);
    return LC_OK;
}

/* The low `bits` bits of w read as a code of the format (two's complement when signed). */
static inline int64_t wrap_bits(const fixinfo *fi, u128 w)
{
    uint64_t mask = (UINT64_C(1) << fi->bits) - 1u; /* bits <= 32 */
    uint64_t low = (uint64_t)w & mask;
    if (fi->is_signed && (low >> (fi->bits - 1)))
        return (int64_t)low - (int64_t)(UINT64_C(1) << fi->bits);
    return (int64_t)low;
}

/* The overflow step for a rounded code c with |c| < 2^126; *ovf := 1 when it acted. */
static inline int64_t overflow_i128(const fixinfo *fi, i128 c, int *ovf)
{
    if (c >= fi->lo && c <= fi->hi) return (int64_t)c;
    *ovf = 1;
    if (fi->overflow == LC_OVF_WRAP) return wrap_bits(fi, (u128)c);
    return c < 0 ? fi->lo : fi->hi;
}

/* Round-up decision for a value floor + r / 2^s (s >= 1, 0 < r < 2^s), sign `neg` of the
 * value, parity of the floor `odd`; STOCH draws from (seed, idx). */
static inline int round_up(int rounding, u128 r, int s, int neg, int odd, uint64_t seed,
                           uint64_t idx)
{
    u128 half = (u128)1 << (s - 1);
    switch (rounding) {
    case LC_ROUND_TRN: return 0;
    case LC_ROUND_TRN_ZERO: return neg;
    case LC_ROUND_RND: return r >= half;
    case LC_ROUND_RND_ZERO: return r > half || (r == half && neg);
    case LC_ROUND_RND_INF: return r > half || (r == half && !neg);
    case LC_ROUND_RND_MIN_INF: return r > half;
    case LC_ROUND_RND_CONV: return r > half || (r == half && odd);
    default: { /* LC_ROUND_STOCH: t < r * 2^(53 - s), compared exactly */
        uint64_t t = lc_rng_unit53(seed, idx);
        if (s <= 53) return (u128)t < (r << (53 - s));
        u128 q = r >> (s - 53);
        u128 rem = r & (((u128)1 << (s - 53)) - 1u);
        return (u128)t < q || ((u128)t == q && rem != 0);
    }
    }
}

/* code := overflow(round(v * 2^-s)) in format fi, for |v| < 2^126 and any s. */
static inline int64_t fix_cast(const fixinfo *fi, i128 v, int64_t s, uint64_t seed, uint64_t idx,
                               int *ovf)
{
    if (v == 0) return 0;
    if (s > 0) {
        /* |v| < 2^126 and s >= 128 put |value| below 1/4: only the sign and "nonzero" matter,
         * and STOCH compares t with a number in (0, 1) or (2^53 - 1, 2^53); v = +-1 at
         * s = 126 keeps all of that. */
        if (s >= 128) {
            v = v < 0 ? -1 : 1;
            s = 126;
        }
        u128 mask = ((u128)1 << s) - 1u;
        u128 r = (u128)v & mask; /* v mod 2^s, the remainder of the floor division */
        i128 fl;
        if (v >= 0)
            fl = v >> s;
        else
            fl = -(i128)(((u128)0 - (u128)v + mask) >> s); /* -ceil(|v| / 2^s) */
        int up = r != 0 && round_up(fi->rounding, r, (int)s, v < 0, (int)((u128)fl & 1u), seed,
                                    idx);
        return overflow_i128(fi, fl + up, ovf);
    }
    int64_t L = -s;
    u128 av = v < 0 ? (u128)0 - (u128)v : (u128)v;
    /* A nonzero value shifted left by >= 64 is out of every rail (|code| < 2^32) and has zero
     * low bits; otherwise the product is formed only when it stays below 2^62. */
    if (L >= 62 || av > (((u128)1 << 62) >> L)) {
        *ovf = 1;
        if (fi->overflow == LC_OVF_WRAP) return L >= 64 ? 0 : wrap_bits(fi, (u128)v << L);
        return v < 0 ? fi->lo : fi->hi;
    }
    return overflow_i128(fi, v * ((i128)1 << L), ovf);
}

/* fix_cast for an int64 v with |v| < 2^62: the same result, in 64-bit arithmetic when
 * 1 <= s <= 62 (the common case of a product or sum rounded to a coarser grid). */
static inline int64_t fix_cast64(const fixinfo *fi, int64_t v, int64_t s, uint64_t seed,
                                 uint64_t idx, int *ovf)
{
    if (s < 1 || s > 62) return fix_cast(fi, (i128)v, s, seed, idx, ovf);
    uint64_t mask = (UINT64_C(1) << s) - 1u;
    uint64_t r = (uint64_t)v & mask;
    /* floor(v / 2^s) without shifting a negative number: (v - r) is a multiple of 2^s */
    int64_t fl = (v - (int64_t)r) / (int64_t)(UINT64_C(1) << s);
    int up = r != 0 && round_up(fi->rounding, (u128)r, (int)s, v < 0, (int)((uint64_t)fl & 1u),
                                seed, idx);
    int64_t c = fl + up;
    if (c >= fi->lo && c <= fi->hi) return c;
    return overflow_i128(fi, (i128)c, ovf);
}

/* One double -> code.  *status receives an error for NaN and for inf under WRAP. */
static inline int64_t quantize_one(const fixinfo *fi, double x, uint64_t seed, uint64_t idx,
                                   int *ovf, int *status)
{
    if (isnan(x)) {
        *status = LC_FIX_ERR_NAN;
        return 0;
    }
    if (isinf(x)) {
        if (fi->overflow == LC_OVF_WRAP) {
            *status = LC_FIX_ERR_INF;
            return 0;
        }
        *ovf = 1;
        return x > 0 ? fi->hi : fi->lo;
    }
    double y = x * fi->scale;
    /* Fast path: y = x * 2^F is exact when it is 0 or normal (|y| >= DBL_MIN) and finite;
     * floor(y) is exact and fits int64 when |y| < 2^62; y - floor(y) is exact when y >= 0 or
     * y <= -1/2 (for -1/2 < y < 0 the fraction 1 - |y| may need more than 53 bits). */
    double ay = fabs(y);
    if (ay < 0x1p62 && (y >= 0.0 || y <= -0.5) && (ay >= DBL_MIN || x == 0.0)) {
        double fl = floor(y);
        double f = y - fl;
        int up = 0;
        if (f != 0.0) {
            switch (fi->rounding) {
            case LC_ROUND_TRN: up = 0; break;
            case LC_ROUND_TRN_ZERO: up = y < 0.0; break;
            case LC_ROUND_RND: up = f >= 0.5; break;
            case LC_ROUND_RND_ZERO: up = f > 0.5 || (f == 0.5 && y < 0.0); break;
            case LC_ROUND_RND_INF: up = f > 0.5 || (f == 0.5 && y > 0.0); break;
            case LC_ROUND_RND_MIN_INF: up = f > 0.5; break;
            case LC_ROUND_RND_CONV: up = f > 0.5 || (f == 0.5 && fmod(fl, 2.0) != 0.0); break;
            default: up = (double)lc_rng_unit53(seed, idx) < f * 0x1p53; break;
            }
        }
        int64_t c = (int64_t)fl + up;
        if (c >= fi->lo && c <= fi->hi) return c;
        return overflow_i128(fi, (i128)c, ovf);
    }
    /* Exact path: x = M * 2^E with an integer |M| < 2^53; code = cast(M * 2^(E + F)). */
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    int64_t e = (int64_t)((b >> 52) & 0x7ffu);
    int64_t M = (int64_t)(b & ((UINT64_C(1) << 52) - 1u));
    int64_t E;
    if (e == 0) {
        E = -1074;
    } else {
        M += (int64_t)(UINT64_C(1) << 52);
        E = e - 1075;
    }
    if (b >> 63) M = -M;
    return fix_cast(fi, (i128)M, -(E + fi->frac), seed, idx, ovf);
}

/* quantize_one kept out of line: the second pass of the block loop stays small (gcc/clang
 * attribute). */
LC_NOINLINE static int64_t quantize_slow(const fixinfo *fi, double x,
                                                       uint64_t seed, uint64_t idx, int *ovf,
                                                       int *status)
{
    return quantize_one(fi, x, seed, idx, ovf, status);
}

static inline void count_code(lc_rail_counts *st, double thr, int nonzero_in,
                              int64_t c, int ovf)
{
    st->saturated += ovf;
    st->near_rail += (double)(c < 0 ? -c : c) >= thr;
    st->underflow += nonzero_in && c == 0;
}

static double near_threshold(const fixinfo *fi, double near_rail)
{
    int64_t m = fi->hi > -fi->lo ? fi->hi : -fi->lo;
    return near_rail * (double)m;
}

/* The vectorizable fast path of quantization (lc_fixed_impl.h).
 *
 * For y = x * 2^F exact (y == 0, or |y| >= DBL_MIN and finite) and |y| < 2^50:
 *   r  = (y + 1.5 * 2^52) - 1.5 * 2^52 is y rounded to nearest, ties to even (the sum lies in
 *        [2^52, 2^53) where the spacing is 1, and 1.5 * 2^52 is even; default rounding mode);
 *   fl = r - (r > y) is floor(y), h = fl + 1/2 exact (|fl| <= 2^50);
 * every mode is then a comparison of y with fl, h or r, and a code (an integer-valued double,
 * |c| <= 2^50) becomes an int64 through its bits: bits(c + 1.5 * 2^52) - bits(1.5 * 2^52).
 * These are the same decisions as quantize_one and fix_cast, computed exactly. */
#define LC_MAGIC 0x1.8p52
#define LC_QCHUNK 2048 /* elements per block: the second pass rereads a block from cache */

/* 1 when x takes the fast path, y = x * scale (x == 0 included; NaN and inf excluded). */
#define LC_QF_OK(x, y) ((int64_t)((fabs(y) < 0x1p50) & ((fabs(y) >= DBL_MIN) | ((x) == 0.0))))

static inline uint64_t lc_dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double lc_bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* c (an integer-valued double, |c| <= 2^50) as int64, and back (|v| <= 2^50); no conversion
 * instruction (AVX2 has none for int64), no undefined behaviour for any other c. */
static inline int64_t lc_d2i(double c)
{
    return (int64_t)(lc_dbits(c + LC_MAGIC) - lc_dbits(LC_MAGIC));
}

static inline double lc_i2d(int64_t v)
{
    return lc_bitsd(lc_dbits(LC_MAGIC) + (uint64_t)v) - LC_MAGIC;
}

/* The low bits of v (mask) read as a code, two's complement when sbit (the sign bit of the
 * width, 0 when unsigned) is set: wrap_bits without a branch. */
static inline int64_t wrap_low(int64_t v, uint64_t mask, uint64_t sbit)
{
    uint64_t u = (uint64_t)v & mask;
    return (int64_t)((u ^ sbit) - sbit);
}

/* STOCH: up iff t < (y - fl) * 2^53 with t = lc_rng_unit53(seed, idx).  (double)t is built
 * from its bits (t < 2^53).  y - fl is exact unless -1 < y < 0 (fl = -1, where 1 + y may need
 * more than 53 bits); there the test is the equivalent t - 2^53 < y * 2^53, all exact. */
static inline int stoch_up(uint64_t seed, uint64_t idx, double y, double fl)
{
    uint64_t t = lc_rng_unit53(seed, idx);
    double td = (lc_bitsd(lc_dbits(0x1p52) | (t & ((UINT64_C(1) << 52) - 1u))) - 0x1p52) +
                lc_bitsd((UINT64_C(0) - (t >> 52)) & lc_dbits(0x1p52));
    int up_all = td < (y - fl) * 0x1p53;
    int up_neg = td - 0x1p53 < y * 0x1p53;
    int neg = (y < 0.0) & (y > -1.0);
    return (neg & up_neg) | ((1 - neg) & up_all);
}

/* Selections written as bit masks, so that no arithmetic is under a condition (with the
 * default -ftrapping-math GCC does not if-convert "cond ? a - 1 : a", which stops
 * vectorization).  lc_one(c) is 1.0 when c, else +0.0; lc_sel(c, a, b) is c ? a : b. */
static inline double lc_one(int cond)
{
    return lc_bitsd((UINT64_C(0) - (uint64_t)cond) & UINT64_C(0x3FF0000000000000));
}

static inline double lc_sel(int cond, double a, double b)
{
    uint64_t m = UINT64_C(0) - (uint64_t)cond;
    return lc_bitsd((lc_dbits(a) & m) | (lc_dbits(b) & ~m));
}

/* The rounded y per mode, from y, r, fl, h of the fast path (and i, idx0, seed for STOCH). */
#define LC_RD_TRN (fl)
#define LC_RD_TRN_ZERO (lc_sel(y < 0.0, r + lc_one(r < y), fl))
#define LC_RD_RND (fl + lc_one(y >= h))
#define LC_RD_RND_ZERO (fl + lc_one((y > h) | ((y == h) & (y < 0.0))))
#define LC_RD_RND_INF (fl + lc_one((y > h) | ((y == h) & (y > 0.0))))
#define LC_RD_RND_MIN_INF (fl + lc_one(y > h))
#define LC_RD_RND_CONV (r)
#define LC_RD_STOCH (fl + lc_one(stoch_up(seed, idx0 + (uint64_t)i, y, fl)))

/* What the fast loop needs, as doubles and masks. */
typedef struct {
    double scale, lsb, lo_d, hi_d, thr;
    uint64_t seed, mask, sbit;
    int32_t rounding, wrap;
} qparams;

static void qparams_of(const fixinfo *fi, double scale, double thr, uint64_t seed, qparams *qp)
{
    qp->scale = scale;
    qp->lsb = fi->lsb;
    qp->lo_d = (double)fi->lo; /* exact: |rails| <= 2^32 */
    qp->hi_d = (double)fi->hi;
    qp->thr = thr;
    qp->seed = seed;
    qp->mask = (UINT64_C(1) << fi->bits) - 1u;
    qp->sbit = fi->is_signed ? UINT64_C(1) << (fi->bits - 1) : 0u;
    qp->rounding = fi->rounding;
    qp->wrap = fi->overflow == LC_OVF_WRAP;
}

#define REAL double
#define SFX f64
#include "lc_fixed_impl.h"
#undef REAL
#undef SFX

#define REAL float
#define SFX f32
#include "lc_fixed_impl.h"
#undef REAL
#undef SFX

/* LC_OK when every code of x (n values) fits the width of fi; else the first bad index. */
static int check_codes(const fixinfo *fi, const int64_t *x, int64_t n, int64_t offset,
                       int64_t *bad_index)
{
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < fi->raw_min || x[i] > fi->raw_max) {
            if (bad_index) *bad_index = offset + i;
            return LC_FIX_ERR_CODE;
        }
    }
    return LC_OK;
}

int lc_from_codes(const lc_fixfmt *fmt, const int64_t *codes, int64_t n, double *out,
                  int64_t *bad_index)
{
    fixinfo fi;
    if (info_of(fmt, &fi) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    int st = check_codes(&fi, codes, n, 0, bad_index);
    if (st != LC_OK) return st;
    for (int64_t i = 0; i < n; i++) out[i] = (double)codes[i] * fi.lsb; /* exact: |c| < 2^33 */
    return LC_OK;
}

int lc_requantize(const lc_fixfmt *src, const int64_t *codes, int64_t n, const lc_fixfmt *dst,
                  int64_t *out, uint64_t seed, lc_rail_counts *stats, double near_rail,
                  int64_t *bad_index)
{
    fixinfo fs, fd;
    if (info_of(src, &fs) != LC_OK || info_of(dst, &fd) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    int st = check_codes(&fs, codes, n, 0, bad_index);
    if (st != LC_OK) return st;
    int64_t s = (int64_t)fs.frac - fd.frac;
    double thr = near_threshold(&fd, near_rail);
    lc_rail_counts cnt = {0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        int ovf = 0;
        int64_t c = fix_cast64(&fd, codes[i], s, seed, (uint64_t)i, &ovf); /* |code| < 2^33 */
        out[i] = c;
        if (stats) count_code(&cnt, thr, codes[i] != 0, c, ovf);
    }
    if (stats) *stats = cnt;
    return LC_OK;
}

int lc_fix_add(const lc_fixfmt *fmt, const int64_t *a, const int64_t *b, int64_t n,
               const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed, int64_t *bad_index)
{
    fixinfo fi, fo;
    if (info_of(fmt, &fi) != LC_OK || info_of(out_fmt, &fo) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    int st = check_codes(&fi, a, n, 0, bad_index);
    if (st == LC_OK) st = check_codes(&fi, b, n, n, bad_index);
    if (st != LC_OK) return st;
    int64_t s = (int64_t)fi.frac - fo.frac;
    for (int64_t i = 0; i < n; i++) {
        int ovf = 0;
        /* |a|, |b| < 2^32: the int64 sum is exact. */
        out[i] = fix_cast64(&fo, a[i] + b[i], s, seed, (uint64_t)i, &ovf);
    }
    return LC_OK;
}

int lc_fix_mul(const lc_fixfmt *fa, const int64_t *a, const lc_fixfmt *fb, const int64_t *b,
               int64_t n, const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed,
               int64_t *bad_index)
{
    fixinfo ia, ib, fo;
    if (info_of(fa, &ia) != LC_OK || info_of(fb, &ib) != LC_OK || info_of(out_fmt, &fo) != LC_OK)
        return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    int st = check_codes(&ia, a, n, 0, bad_index);
    if (st == LC_OK) st = check_codes(&ib, b, n, n, bad_index);
    if (st != LC_OK) return st;
    int64_t s = (int64_t)ia.frac + ib.frac - fo.frac;
    for (int64_t i = 0; i < n; i++) {
        int ovf = 0;
        /* |a|, |b| < 2^32: widened first, the product (< 2^64) is exact in 128 bits. */
        out[i] = fix_cast(&fo, (i128)a[i] * (i128)b[i], s, seed, (uint64_t)i, &ovf);
    }
    return LC_OK;
}

static inline u128 max_abs_code(const fixinfo *fi)
{
    return fi->is_signed ? (u128)1 << (fi->bits - 1) : (u128)fi->raw_max;
}

#define LC_MM_BLOCK 256 /* output columns accumulated at once (on the stack) */
#define LC_MM_ROWS 16   /* rows of A converted to double at once */

/* C := cast_out(A @ B) when every product and partial sum is an integer below 2^53 in
 * magnitude: double arithmetic is then exact in any order, so the sums go through the
 * register-blocked lc_matmul_f64 of the dense kernels, and the final cast (sum * 2^-s, exact
 * when 2^-s is a normal double) through the vectorized quantization block, with fix_cast64
 * for the elements it leaves.  Workspace: (k + LC_MM_ROWS) * LC_MM_BLOCK + LC_MM_ROWS * k
 * doubles. */
static int matmul_exact_f64(const fixinfo *fo, const int64_t *A, const int64_t *B, int64_t n,
                            int64_t k, int64_t m, int64_t s, uint64_t seed, int64_t *C)
{
    const int64_t rb = n < LC_MM_ROWS ? n : LC_MM_ROWS;
    const size_t nw = (size_t)k * LC_MM_BLOCK + (size_t)rb * LC_MM_BLOCK + (size_t)rb * k;
    double *Bd = (double *)malloc(sizeof(double) * nw);
    if (Bd == NULL) return LC_ERR_NOMEM;
    double *Cd = Bd + (size_t)k * LC_MM_BLOCK, *Ad = Cd + (size_t)rb * LC_MM_BLOCK;
    const int vec_cast = s >= -1000 && s <= 1000;
    qparams qp;
    qparams_of(fo, vec_cast ? ldexp(1.0, (int)-s) : 1.0, 0.0, seed, &qp);
    for (int64_t j0 = 0; j0 < m; j0 += LC_MM_BLOCK) {
        const int64_t nb = m - j0 < LC_MM_BLOCK ? m - j0 : LC_MM_BLOCK;
        for (int64_t p = 0; p < k; p++)
            for (int64_t jj = 0; jj < nb; jj++) Bd[p * nb + jj] = (double)B[p * m + j0 + jj];
        for (int64_t i0 = 0; i0 < n; i0 += rb) {
            const int64_t rows = n - i0 < rb ? n - i0 : rb;
            for (int64_t t = 0; t < rows * k; t++) Ad[t] = (double)A[i0 * k + t]; /* |a| <= 2^32 */
            lc_matmul_f64(Ad, k, 1, Bd, Cd, rows, k, nb);
            for (int64_t r = 0; r < rows; r++) {
                const int64_t i = i0 + r;
                const double *sum = Cd + r * nb;
                int64_t *Ci = C + i * m + j0;
                const uint64_t idx0 = (uint64_t)(i * m + j0);
                int64_t nslow = vec_cast ? quant_block_f64(&qp, sum, nb, idx0, Ci, NULL, NULL)
                                         : nb;
                for (int64_t jj = 0; nslow > 0 && jj < nb; jj++) {
                    if (vec_cast && LC_QF_OK(sum[jj], sum[jj] * qp.scale)) continue;
                    nslow--;
                    int ovf = 0;
                    Ci[jj] = fix_cast64(fo, (int64_t)sum[jj], s, seed, idx0 + (uint64_t)jj, /* < 2^53 */
                                        &ovf);
                }
            }
        }
    }
    free(Bd);
    return LC_OK;
}


int lc_fix_matmul(const lc_fixfmt *fa, const int64_t *A, const lc_fixfmt *fb, const int64_t *B,
                  int64_t n, int64_t k, int64_t m, const lc_fixfmt *acc,
                  const lc_fixfmt *out_fmt, int64_t *C, uint64_t seed, int64_t *bad_index)
{
    fixinfo ia, ib, fo, fc;
    if (info_of(fa, &ia) != LC_OK || info_of(fb, &ib) != LC_OK || info_of(out_fmt, &fo) != LC_OK)
        return LC_FIX_ERR_FORMAT;
    if (acc != NULL && info_of(acc, &fc) != LC_OK) return LC_FIX_ERR_FORMAT;
    if (n < 0 || k < 0 || m < 0 || k >= (INT64_C(1) << 62)) return LC_ERR_ARGS;
    int st = check_codes(&ia, A, n * k, 0, bad_index);
    if (st == LC_OK) st = check_codes(&ib, B, k * m, n * k, bad_index);
    if (st != LC_OK) return st;
    int64_t F_prod = (int64_t)ia.frac + ib.frac;

    if (acc == NULL) {
        int64_t s = F_prod - fo.frac;
        u128 bound = max_abs_code(&ia) * max_abs_code(&ib) * (u128)k;
        /* bound < 2^53: every product and partial sum is an integer below 2^53, so double
         * arithmetic is exact (and vectorizes); bound < 2^63: int64 accumulation is exact;
         * otherwise 128-bit accumulation (|product| < 2^64, k < 2^62). */
        if (bound < ((u128)1 << 53) && k > 0 && m > 0 && n > 0)
            return matmul_exact_f64(&fo, A, B, n, k, m, s, seed, C);
        int narrow = bound < ((u128)1 << 63);
        for (int64_t i = 0; i < n; i++) {
            const int64_t *Ai = A + i * k;
            for (int64_t j0 = 0; j0 < m; j0 += LC_MM_BLOCK) {
                int64_t nb = m - j0 < LC_MM_BLOCK ? m - j0 : LC_MM_BLOCK;
                int64_t *Ci = C + i * m + j0;
                if (narrow) {
                    int64_t sum[LC_MM_BLOCK];
                    for (int64_t jj = 0; jj < nb; jj++) sum[jj] = 0;
                    for (int64_t p = 0; p < k; p++) {
                        int64_t a = Ai[p];
                        const int64_t *Bp = B + p * m + j0;
                        if (a == 0) continue;
                        for (int64_t jj = 0; jj < nb; jj++) sum[jj] += a * Bp[jj];
                    }
                    for (int64_t jj = 0; jj < nb; jj++) {
                        int ovf = 0;
                        Ci[jj] = fix_cast(&fo, (i128)sum[jj], s, seed,
                                          (uint64_t)(i * m + j0 + jj), &ovf);
                    }
                } else {
                    i128 sum[LC_MM_BLOCK];
                    for (int64_t jj = 0; jj < nb; jj++) sum[jj] = 0;
                    for (int64_t p = 0; p < k; p++) {
                        i128 a = Ai[p];
                        const int64_t *Bp = B + p * m + j0;
                        if (a == 0) continue;
                        for (int64_t jj = 0; jj < nb; jj++) sum[jj] += a * (i128)Bp[jj];
                    }
                    for (int64_t jj = 0; jj < nb; jj++) {
                        int ovf = 0;
                        Ci[jj] = fix_cast(&fo, sum[jj], s, seed, (uint64_t)(i * m + j0 + jj),
                                          &ovf);
                    }
                }
            }
        }
        return LC_OK;
    }

    /* Accumulator register: codes of fc (|s| < 2^32), each addition re-cast at fc's width. */
    int64_t s_prod = F_prod - fc.frac;
    int64_t s_out = (int64_t)fc.frac - fo.frac;
    uint64_t nm = (uint64_t)n * (uint64_t)m;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *Ai = A + i * k;
        for (int64_t j0 = 0; j0 < m; j0 += LC_MM_BLOCK) {
            int64_t nb = m - j0 < LC_MM_BLOCK ? m - j0 : LC_MM_BLOCK;
            int64_t reg[LC_MM_BLOCK];
            for (int64_t jj = 0; jj < nb; jj++) reg[jj] = 0;
            for (int64_t p = 0; p < k; p++) {
                i128 a = Ai[p];
                const int64_t *Bp = B + p * m + j0;
                for (int64_t jj = 0; jj < nb; jj++) {
                    int ovf = 0;
                    uint64_t idx = nm + ((uint64_t)(i * m + j0 + jj)) * (uint64_t)k + (uint64_t)p;
                    int64_t pc = fix_cast(&fc, a * (i128)Bp[jj], s_prod, seed, idx, &ovf);
                    /* |reg|, |pc| < 2^32: the int64 sum is exact before the overflow step. */
                    reg[jj] = overflow_i128(&fc, (i128)(reg[jj] + pc), &ovf);
                }
            }
            for (int64_t jj = 0; jj < nb; jj++) {
                int ovf = 0;
                C[i * m + j0 + jj] = fix_cast(&fo, (i128)reg[jj], s_out, seed,
                                              (uint64_t)(i * m + j0 + jj), &ovf);
            }
        }
    }
    return LC_OK;
}
