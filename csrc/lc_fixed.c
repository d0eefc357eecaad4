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
 * Integer arithmetic is done in 128-bit words (lc_int128.h: __int128 where the compiler has it,
 * a pair of 64-bit words elsewhere, the same bits), in 192 bits for the exact sums of the
 * widest products (cast_wide), or in int64 where a bound stated next to the code proves it
 * cannot overflow; shifts and wrap-arounds go through unsigned types, so nothing relies on
 * signed overflow or on shifting negative numbers left. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_fixed.h"
#include "lc_int128.h"
#include "lc_rng.h"

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
    if (f->is_signed != 0 && f->is_signed != 1) return LC_FIX_ERR_FORMAT;
    if (f->bits < (f->is_signed ? 2 : 1) || f->bits > LC_FIX_MAX_BITS) return LC_FIX_ERR_FORMAT;
    if (!f->is_signed && f->bits > LC_FIX_MAX_BITS_UNSIGNED) return LC_FIX_ERR_FORMAT;
    if (f->int_bits < -LC_FIX_MAX_ABS_INT_BITS || f->int_bits > LC_FIX_MAX_ABS_INT_BITS)
        return LC_FIX_ERR_FORMAT;
    if (f->bits - f->int_bits > LC_FIX_MAX_FRAC_BITS) return LC_FIX_ERR_FORMAT;
    if (f->rounding < 0 || f->rounding >= LC_N_ROUNDING) return LC_FIX_ERR_FORMAT;
    if (f->overflow < 0 || f->overflow >= LC_N_OVERFLOW) return LC_FIX_ERR_FORMAT;
    return LC_OK;
}

static void raw_range(const lc_fixfmt *f, int64_t *mn, int64_t *mx)
{
    if (f->is_signed) {
        *mx = (int64_t)((UINT64_C(1) << (f->bits - 1)) - 1u); /* bits <= 64 */
        *mn = -*mx - 1;
    } else {
        *mx = (int64_t)((UINT64_C(1) << f->bits) - 1u); /* bits <= 63 */
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

/* The mask of the low `bits` bits, 1 <= bits <= 64. */
static inline uint64_t width_mask(int bits)
{
    return bits >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << bits) - 1u;
}

/* The low `bits` bits of w read as a code of the format (two's complement when signed). */
static inline int64_t wrap_bits(const fixinfo *fi, lc_u128 w)
{
    uint64_t mask = width_mask(fi->bits);
    uint64_t low = lc_u128_lo(w) & mask;
    if (fi->is_signed && ((low >> (fi->bits - 1)) & 1u))
        return -(int64_t)(~low & mask) - 1; /* low - 2^bits, without leaving int64 */
    return (int64_t)low;                    /* unsigned: bits <= 63 */
}

/* The overflow step for a rounded code c (a signed 128-bit word); *ovf := 1 when it acted. */
static inline int64_t overflow_i128(const fixinfo *fi, lc_u128 c, int *ovf)
{
    if (!lc_i128_lt(c, lc_i128_from_i64(fi->lo)) && !lc_i128_lt(lc_i128_from_i64(fi->hi), c))
        return lc_i64_of_bits(lc_u128_lo(c));
    *ovf = 1;
    if (fi->overflow == LC_OVF_WRAP) return wrap_bits(fi, c);
    return lc_i128_is_neg(c) ? fi->lo : fi->hi;
}

/* Round-up decision for a value floor + r / 2^s (1 <= s <= 127, 0 < r < 2^s), sign `neg` of
 * the value, parity of the floor `odd`; STOCH draws from (seed, idx). */
static inline int round_up(int rounding, lc_u128 r, int s, int neg, int odd, uint64_t seed,
                           uint64_t idx)
{
    lc_u128 half = lc_u128_pow2(s - 1);
    switch (rounding) {
    case LC_ROUND_TRN:
        return 0;
    case LC_ROUND_TRN_ZERO:
        return neg;
    case LC_ROUND_RND:
        return !lc_u128_lt(r, half);
    case LC_ROUND_RND_ZERO:
        return lc_u128_lt(half, r) || (lc_u128_eq(r, half) && neg);
    case LC_ROUND_RND_INF:
        return lc_u128_lt(half, r) || (lc_u128_eq(r, half) && !neg);
    case LC_ROUND_RND_MIN_INF:
        return lc_u128_lt(half, r);
    case LC_ROUND_RND_CONV:
        return lc_u128_lt(half, r) || (lc_u128_eq(r, half) && odd);
    default: { /* LC_ROUND_STOCH: t < r * 2^(53 - s), compared exactly */
        lc_u128 t = lc_u128_from_u64(lc_rng_unit53(seed, idx));
        if (s <= 53) return lc_u128_lt(t, lc_u128_shl(r, 53 - s));
        lc_u128 q = lc_u128_shr(r, s - 53);
        lc_u128 rem = lc_u128_and(r, lc_u128_mask(s - 53));
        return lc_u128_lt(t, q) || (lc_u128_eq(t, q) && !lc_u128_is_zero(rem));
    }
    }
}

/* code := overflow(round(v * 2^-s)) in format fi, for a signed word v with |v| <= 2^126 and
 * any s. */
static inline int64_t fix_cast(const fixinfo *fi, lc_u128 v, int64_t s, uint64_t seed, uint64_t idx,
                               int *ovf)
{
    if (lc_u128_is_zero(v)) return 0;
    const int neg = lc_i128_is_neg(v);
    if (s > 0) {
        /* |v| <= 2^126 and s >= 128 put |value| below 1/2: only the sign and "nonzero"
         * matter, and STOCH compares t with a number in (0, 1) or (2^53 - 1, 2^53); v = +-1 at
         * s = 126 keeps all of that. */
        if (s >= 128) {
            v = lc_i128_from_i64(neg ? -1 : 1);
            s = 126;
        }
        lc_u128 r = lc_u128_and(v, lc_u128_mask((int)s)); /* v mod 2^s */
        lc_u128 fl = lc_i128_sar(v, (int)s);              /* floor(v / 2^s) */
        int up = !lc_u128_is_zero(r) &&
                 round_up(fi->rounding, r, (int)s, neg, (int)(lc_u128_lo(fl) & 1u), seed, idx);
        return overflow_i128(fi, lc_u128_add(fl, lc_u128_from_u64((uint64_t)up)), ovf);
    }
    const int64_t L = -s;
    lc_u128 av = neg ? lc_u128_neg(v) : v;
    /* Every rail lies in [-2^63, 2^63): a nonzero value shifted left by >= 65 is outside them
     * (and its low 64 bits are zero from L = 64 on); otherwise the product is formed only when
     * it stays within 2^65 in magnitude. */
    if (L >= 65 || lc_u128_lt(lc_u128_pow2((int)(65 - L)), av)) {
        *ovf = 1;
        if (fi->overflow == LC_OVF_WRAP) return L >= 64 ? 0 : wrap_bits(fi, lc_u128_shl(v, (int)L));
        return neg ? fi->lo : fi->hi;
    }
    return overflow_i128(fi, lc_u128_shl(v, (int)L), ovf);
}

/* fix_cast for any int64 v: the same result, in 64-bit arithmetic when 1 <= s <= 62 (the
 * common case of a product or sum rounded to a coarser grid). */
static inline int64_t fix_cast64(const fixinfo *fi, int64_t v, int64_t s, uint64_t seed,
                                 uint64_t idx, int *ovf)
{
    if (s < 1 || s > 62) return fix_cast(fi, lc_i128_from_i64(v), s, seed, idx, ovf);
    uint64_t mask = (UINT64_C(1) << s) - 1u;
    uint64_t r = (uint64_t)v & mask;
    /* floor(v / 2^s) without shifting a negative number: v - r is a multiple of 2^s in
     * [-2^63, v], so the subtraction and the division are exact int64 operations. */
    int64_t fl = (v - (int64_t)r) / (int64_t)(UINT64_C(1) << s);
    int up = r != 0 && round_up(fi->rounding, lc_u128_from_u64(r), (int)s, v < 0,
                                (int)((uint64_t)fl & 1u), seed, idx);
    int64_t c = fl + up; /* |fl| <= 2^62 */
    if (c >= fi->lo && c <= fi->hi) return c;
    return overflow_i128(fi, lc_i128_from_i64(c), ovf);
}

/* 1 when the 192-bit value hi * 2^128 + lo lies in [-2^126, 2^126] (then lo holds it). */
static inline int fits_126(int64_t hi, lc_u128 lo)
{
    lc_u128 lim = lc_u128_pow2(126);
    if (hi == 0) return !lc_u128_lt(lim, lo);
    return hi == -1 && lc_i128_is_neg(lo) && !lc_u128_lt(lo, lc_u128_neg(lim));
}

/* fix_cast of the 192-bit two's complement value V = hi * 2^128 + lo (|V| < 2^190).
 *
 * When V fits fix_cast's range it is cast directly.  Otherwise, for s >= 62, V is first
 * replaced by floor(V / 2^d) with a sticky bit (the lowest bit ORed with "a nonzero bit was
 * shifted out"), d = s - 60, and s by 60: the floor, the position of the remainder against
 * one half, its being zero, the sign and the stochastic comparison (53 bits of t against the
 * remainder, s - d = 60 > 53) are all unchanged.  What is still beyond 2^126 after that
 * (or from the start when s <= 61) lies beyond 2^65 * 2^s, outside every rail: the result
 * then depends only on the sign, the remainder and the low 64 bits of the floor, which a
 * surrogate of fix_cast's range with the same sign and the same low s + 64 bits reproduces
 * (2^125 or -2^126 plus those bits; both constants are multiples of 2^(s + 64)). */
static int64_t cast_wide(const fixinfo *fi, int64_t hi, lc_u128 lo, int64_t s, uint64_t seed,
                         uint64_t idx, int *ovf)
{
    if (fits_126(hi, lo)) return fix_cast(fi, lo, s, seed, idx, ovf);
    const int neg = hi < 0;
    if (s >= 62) {
        const int64_t d = s - 60;
        int sticky;
        if (d < 128) {
            sticky = !lc_u128_is_zero(lc_u128_and(lo, lc_u128_mask((int)d)));
            lo = lc_u128_or(lc_u128_shr(lo, (int)d),
                            lc_u128_shl(lc_i128_from_i64(hi), (int)(128 - d)));
            hi = lc_i64_sar(hi, d < 63 ? (int)d : 63);
        } else {
            const int64_t e = d - 128;
            uint64_t hmask = e >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << e) - 1u;
            sticky = !lc_u128_is_zero(lo) || ((uint64_t)hi & hmask) != 0;
            lo = lc_i128_from_i64(lc_i64_sar(hi, e < 63 ? (int)e : 63));
            hi = neg ? -1 : 0;
        }
        if (sticky) lo = lc_u128_or(lo, lc_u128_from_u64(1));
        s = 60;
        if (fits_126(hi, lo)) return fix_cast(fi, lo, s, seed, idx, ovf);
    }
    const int low = (s > 0 ? (int)s : 0) + 64; /* <= 125 */
    lc_u128 base = neg ? lc_u128_neg(lc_u128_pow2(126)) : lc_u128_pow2(125);
    return fix_cast(fi, lc_u128_add(base, lc_u128_and(lo, lc_u128_mask(low))), s, seed, idx, ovf);
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
            case LC_ROUND_TRN:
                up = 0;
                break;
            case LC_ROUND_TRN_ZERO:
                up = y < 0.0;
                break;
            case LC_ROUND_RND:
                up = f >= 0.5;
                break;
            case LC_ROUND_RND_ZERO:
                up = f > 0.5 || (f == 0.5 && y < 0.0);
                break;
            case LC_ROUND_RND_INF:
                up = f > 0.5 || (f == 0.5 && y > 0.0);
                break;
            case LC_ROUND_RND_MIN_INF:
                up = f > 0.5;
                break;
            case LC_ROUND_RND_CONV:
                up = f > 0.5 || (f == 0.5 && fmod(fl, 2.0) != 0.0);
                break;
            default:
                up = (double)lc_rng_unit53(seed, idx) < f * 0x1p53;
                break;
            }
        }
        int64_t c = (int64_t)fl + up;
        if (c >= fi->lo && c <= fi->hi) return c;
        return overflow_i128(fi, lc_i128_from_i64(c), ovf);
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
    return fix_cast(fi, lc_i128_from_i64(M), -(E + fi->frac), seed, idx, ovf);
}

/* quantize_one kept out of line: the second pass of the block loop stays small. */
LC_NOINLINE static int64_t quantize_slow(const fixinfo *fi, double x, uint64_t seed, uint64_t idx,
                                         int *ovf, int *status)
{
    return quantize_one(fi, x, seed, idx, ovf, status);
}

static inline void count_code(lc_rail_counts *st, double thr, int nonzero_in, int64_t c, int ovf)
{
    st->saturated += ovf;
    st->near_rail += fabs((double)c) >= thr; /* (double)c: the nearest double */
    st->underflow += nonzero_in && c == 0;
}

static double near_threshold(const fixinfo *fi, double near_rail)
{
    /* max(hi, -lo) as the nearest double (exact below 2^53; -lo may be 2^63) */
    double hi = (double)fi->hi, mlo = -(double)fi->lo;
    return near_rail * (hi > mlo ? hi : mlo);
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
    int32_t vec; /* 1 when the block loop is valid for the format (see qparams_of) */
} qparams;

static void qparams_of(const fixinfo *fi, double scale, double thr, uint64_t seed, qparams *qp)
{
    qp->scale = scale;
    qp->lsb = fi->lsb;
    /* The rails as doubles: exact below 2^53; wider rails round to doubles beyond 2^53, which
     * the fast path's |c| <= 2^50 never reaches, so its comparisons stay exact. */
    qp->lo_d = (double)fi->lo;
    qp->hi_d = (double)fi->hi;
    qp->thr = thr;
    qp->seed = seed;
    qp->mask = width_mask(fi->bits);
    qp->sbit = fi->is_signed ? UINT64_C(1) << (fi->bits - 1) : 0u;
    qp->rounding = fi->rounding;
    qp->wrap = fi->overflow == LC_OVF_WRAP;
    /* The block loop carries codes as doubles of magnitude <= 2^50.  A value it sees lies
     * outside the rails only when a rail is below 2^50, and then its wrapped code stays within
     * 2^50, except for an unsigned format wider than 50 bits, where a negative value wraps to
     * a code up to 2^W: those formats take the exact path throughout. */
    qp->vec = !(qp->wrap && !fi->is_signed && fi->bits > 50);
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
    /* (double)c is c rounded to the nearest double (exact for |c| <= 2^53); the scaling by the
     * normal power of two lsb is exact. */
    for (int64_t i = 0; i < n; i++) out[i] = (double)codes[i] * fi.lsb;
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
        int64_t c = fix_cast64(&fd, codes[i], s, seed, (uint64_t)i, &ovf);
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
    if (fi.bits <= 62) {
        /* |a|, |b| <= 2^61: the int64 sum is exact. */
        for (int64_t i = 0; i < n; i++) {
            int ovf = 0;
            out[i] = fix_cast64(&fo, a[i] + b[i], s, seed, (uint64_t)i, &ovf);
        }
    } else {
        for (int64_t i = 0; i < n; i++) { /* |a + b| <= 2^64: exact in 128 bits */
            int ovf = 0;
            lc_u128 v = lc_u128_add(lc_i128_from_i64(a[i]), lc_i128_from_i64(b[i]));
            out[i] = fix_cast(&fo, v, s, seed, (uint64_t)i, &ovf);
        }
    }
    return LC_OK;
}

int lc_fix_mul(const lc_fixfmt *fa, const int64_t *a, const lc_fixfmt *fb, const int64_t *b,
               int64_t n, const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed, int64_t *bad_index)
{
    fixinfo ia, ib, fo;
    if (info_of(fa, &ia) != LC_OK || info_of(fb, &ib) != LC_OK || info_of(out_fmt, &fo) != LC_OK)
        return LC_FIX_ERR_FORMAT;
    if (n < 0) return LC_ERR_ARGS;
    int st = check_codes(&ia, a, n, 0, bad_index);
    if (st == LC_OK) st = check_codes(&ib, b, n, n, bad_index);
    if (st != LC_OK) return st;
    int64_t s = (int64_t)ia.frac + ib.frac - fo.frac;
    if (ia.bits + ib.bits <= 62) {
        /* |a b| <= 2^(W_a + W_b - 2) < 2^61: the product is exact in int64. */
        for (int64_t i = 0; i < n; i++) {
            int ovf = 0;
            out[i] = fix_cast64(&fo, a[i] * b[i], s, seed, (uint64_t)i, &ovf);
        }
        return LC_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int ovf = 0;
        /* |a|, |b| <= 2^63: the product (<= 2^126 in magnitude) is exact in 128 bits. */
        out[i] = fix_cast(&fo, lc_i128_mul64(a[i], b[i]), s, seed, (uint64_t)i, &ovf);
    }
    return LC_OK;
}

/* The largest |code| of the width: 2^(W-1) signed, 2^W - 1 unsigned (<= 2^63). */
static inline uint64_t max_abs_code(const fixinfo *fi)
{
    return fi->is_signed ? UINT64_C(1) << (fi->bits - 1) : (uint64_t)fi->raw_max;
}

/* 1 when prod * k < 2^p (p <= 127), decided without overflow: from the bit lengths, and by the
 * product itself in the one case where they leave it open (it is then below 2^(p+1)). */
static int bound_below(lc_u128 prod, uint64_t k, int p)
{
    if (k == 0 || lc_u128_is_zero(prod)) return 1;
    int kb = lc_u128_bitlen(lc_u128_from_u64(k)), nb = lc_u128_bitlen(prod) + kb;
    if (nb <= p) return 1;
    if (nb >= p + 2) return 0;
    return lc_u128_lt(lc_u128_mul_lo(prod, k), lc_u128_pow2(p));
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
    qparams qp;
    qparams_of(fo, s >= -1000 && s <= 1000 ? ldexp(1.0, (int)-s) : 1.0, 0.0, seed, &qp);
    const int vec_cast = s >= -1000 && s <= 1000 && qp.vec;
    for (int64_t j0 = 0; j0 < m; j0 += LC_MM_BLOCK) {
        const int64_t nb = m - j0 < LC_MM_BLOCK ? m - j0 : LC_MM_BLOCK;
        for (int64_t p = 0; p < k; p++)
            for (int64_t jj = 0; jj < nb; jj++) Bd[p * nb + jj] = (double)B[p * m + j0 + jj];
        for (int64_t i0 = 0; i0 < n; i0 += rb) {
            const int64_t rows = n - i0 < rb ? n - i0 : rb;
            for (int64_t t = 0; t < rows * k; t++) Ad[t] = (double)A[i0 * k + t]; /* < 2^53 */
            lc_matmul_f64(Ad, k, 1, Bd, Cd, rows, k, nb);
            for (int64_t r = 0; r < rows; r++) {
                const int64_t i = i0 + r;
                const double *sum = Cd + r * nb;
                int64_t *Ci = C + i * m + j0;
                const uint64_t idx0 = (uint64_t)(i * m + j0);
                int64_t nslow = vec_cast ? quant_block_f64(&qp, sum, nb, idx0, Ci, NULL, NULL) : nb;
                for (int64_t jj = 0; nslow > 0 && jj < nb; jj++) {
                    if (vec_cast && LC_QF_OK(sum[jj], sum[jj] * qp.scale)) continue;
                    nslow--;
                    int ovf = 0;
                    Ci[jj] =
                        fix_cast64(fo, (int64_t)sum[jj], s, seed, idx0 + (uint64_t)jj, /* < 2^53 */
                                   &ovf);
                }
            }
        }
    }
    free(Bd);
    return LC_OK;
}

int lc_fix_matmul(const lc_fixfmt *fa, const int64_t *A, const lc_fixfmt *fb, const int64_t *B,
                  int64_t n, int64_t k, int64_t m, const lc_fixfmt *acc, const lc_fixfmt *out_fmt,
                  int64_t *C, uint64_t seed, int64_t *bad_index)
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
        /* bound = max|a| * max|b| * k.  bound < 2^53: every product and partial sum is an
         * integer below 2^53, so double arithmetic is exact (and vectorizes); bound < 2^63:
         * int64 accumulation is exact; bound < 2^127: 128-bit accumulation; otherwise (two
         * formats wider than about 63 bits together) 192-bit accumulation: |product| <= 2^126
         * and k < 2^62 keep every partial sum below 2^188. */
        lc_u128 prod = lc_u128_mul64(max_abs_code(&ia), max_abs_code(&ib));
        if (bound_below(prod, (uint64_t)k, 53) && k > 0 && m > 0 && n > 0)
            return matmul_exact_f64(&fo, A, B, n, k, m, s, seed, C);
        const int path = bound_below(prod, (uint64_t)k, 63)    ? 0
                         : bound_below(prod, (uint64_t)k, 127) ? 1
                                                               : 2;
        for (int64_t i = 0; i < n; i++) {
            const int64_t *Ai = A + i * k;
            for (int64_t j0 = 0; j0 < m; j0 += LC_MM_BLOCK) {
                int64_t nb = m - j0 < LC_MM_BLOCK ? m - j0 : LC_MM_BLOCK;
                int64_t *Ci = C + i * m + j0;
                const uint64_t idx0 = (uint64_t)(i * m + j0);
                if (path == 0) {
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
                        Ci[jj] = fix_cast64(&fo, sum[jj], s, seed, idx0 + (uint64_t)jj, &ovf);
                    }
                } else if (path == 1) {
                    lc_u128 sum[LC_MM_BLOCK];
                    for (int64_t jj = 0; jj < nb; jj++) sum[jj] = lc_u128_from_u64(0);
                    /* two rows of B per pass: half the loads and stores of the sums (every
                     * partial sum is bounded by the total bound, below 2^127) */
                    int64_t p = 0;
                    for (; p + 1 < k; p += 2) {
                        const int64_t a0 = Ai[p], a1 = Ai[p + 1];
                        const int64_t *B0 = B + p * m + j0, *B1 = B0 + m;
                        for (int64_t jj = 0; jj < nb; jj++)
                            sum[jj] = lc_u128_add(sum[jj], lc_u128_add(lc_i128_mul64(a0, B0[jj]),
                                                                       lc_i128_mul64(a1, B1[jj])));
                    }
                    for (; p < k; p++) {
                        const int64_t a = Ai[p];
                        const int64_t *Bp = B + p * m + j0;
                        for (int64_t jj = 0; jj < nb; jj++)
                            sum[jj] = lc_u128_add(sum[jj], lc_i128_mul64(a, Bp[jj]));
                    }
                    for (int64_t jj = 0; jj < nb; jj++) {
                        int ovf = 0;
                        Ci[jj] = fix_cast(&fo, sum[jj], s, seed, idx0 + (uint64_t)jj, &ovf);
                    }
                } else {
                    /* sum = hi * 2^128 + lo: each signed product is added to lo with its carry
                     * and its sign extension added to hi */
                    lc_u128 lo[LC_MM_BLOCK];
                    int64_t hi[LC_MM_BLOCK];
                    for (int64_t jj = 0; jj < nb; jj++) {
                        lo[jj] = lc_u128_from_u64(0);
                        hi[jj] = 0;
                    }
                    for (int64_t p = 0; p < k; p++) {
                        int64_t a = Ai[p];
                        const int64_t *Bp = B + p * m + j0;
                        if (a == 0) continue;
                        for (int64_t jj = 0; jj < nb; jj++) {
                            lc_u128 pr = lc_i128_mul64(a, Bp[jj]);
                            lc_u128 t = lc_u128_add(lo[jj], pr);
                            hi[jj] += (int64_t)lc_u128_lt(t, pr) - (int64_t)lc_i128_is_neg(pr);
                            lo[jj] = t;
                        }
                    }
                    for (int64_t jj = 0; jj < nb; jj++) {
                        int ovf = 0;
                        Ci[jj] = cast_wide(&fo, hi[jj], lo[jj], s, seed, idx0 + (uint64_t)jj, &ovf);
                    }
                }
            }
        }
        return LC_OK;
    }

    /* Accumulator register: codes of fc, each product cast to fc and each addition re-cast at
     * fc's width.  |reg|, |pc| <= 2^63, so their sum is exact in 128 bits; in int64 when fc
     * has at most 62 bits, and the products in int64 when W_a + W_b <= 62 (the common case of
     * a DSP slice: 18 x 27-bit products into a 48-bit register). */
    const int narrow = ia.bits + ib.bits <= 62 && fc.bits <= 62;
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
                int64_t a = Ai[p];
                const int64_t *Bp = B + p * m + j0;
                const uint64_t idx0 = nm + ((uint64_t)(i * m + j0)) * (uint64_t)k + (uint64_t)p;
                if (narrow) {
                    for (int64_t jj = 0; jj < nb; jj++) {
                        int ovf = 0;
                        uint64_t idx = idx0 + (uint64_t)jj * (uint64_t)k;
                        int64_t r = reg[jj] + fix_cast64(&fc, a * Bp[jj], s_prod, seed, idx, &ovf);
                        reg[jj] = r >= fc.lo && r <= fc.hi
                                      ? r
                                      : overflow_i128(&fc, lc_i128_from_i64(r), &ovf);
                    }
                    continue;
                }
                for (int64_t jj = 0; jj < nb; jj++) {
                    int ovf = 0;
                    uint64_t idx = idx0 + (uint64_t)jj * (uint64_t)k;
                    int64_t pc = fix_cast(&fc, lc_i128_mul64(a, Bp[jj]), s_prod, seed, idx, &ovf);
                    reg[jj] = overflow_i128(
                        &fc, lc_u128_add(lc_i128_from_i64(reg[jj]), lc_i128_from_i64(pc)), &ovf);
                }
            }
            for (int64_t jj = 0; jj < nb; jj++) {
                int ovf = 0;
                C[i * m + j0 + jj] =
                    fix_cast64(&fo, reg[jj], s_out, seed, (uint64_t)(i * m + j0 + jj), &ovf);
            }
        }
    }
    return LC_OK;
}
