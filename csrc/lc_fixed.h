/* lc_fixed.h: fixed-point formats and the kernels that quantize to them and compute on codes.
 *
 * A format fixed<W,I> (ap_fixed convention) holds W bits of which I are integer bits, the
 * sign bit counted in I when signed.  Its F = W - I fraction bits give the step
 * lsb = 2^-F; a value is stored as an integer code c and means c * lsb.  Codes live in int64
 * arrays; a valid code fits the format's width:
 *     signed:   -2^(W-1) <= c <= 2^(W-1) - 1      unsigned: 0 <= c <= 2^W - 1
 * The rails (the range a cast may produce) are that interval, except under LC_OVF_SAT_SYM on a
 * signed format, where the lower rail is -(2^(W-1) - 1).
 *
 * Every cast below is "round, then overflow": the exact value is first rounded to the grid of
 * the destination (its rounding mode), then brought into its rails (its overflow mode).  The
 * kernels compute exactly: doubles are decomposed into integer * 2^e, integer products and
 * sums are formed in 128-bit integers (lc_int128.h; 192 bits for the exact sum of products of
 * two formats wider than about 63 bits together; int64 where a stated bound proves it safe),
 * and no step relies on signed overflow or casts an out-of-range double to an integer.
 *
 * Widths go up to 64 bits signed and 63 bits unsigned (every code fits an int64).  A double
 * has 53 significant bits, so for W > 53 not every code's value is a double: a cast from a
 * double is still exact (the double is an exact rational, rounded once onto the grid), and
 * a code's value returned as a double (the `out` arrays, lc_from_codes) is the nearest double
 * to code * lsb, ties to even (exact whenever |code| <= 2^53).
 *
 * Stochastic rounding (LC_ROUND_STOCH) draws t = lc_rng_unit53(seed, index) (lc_rng.h) and
 * rounds up iff t < frac * 2^53, frac the exact fractional part in [0, 1) of the value in
 * units of the destination lsb; `index` is the flat position of the element written (see each
 * kernel for the index of intermediate roundings).
 *
 * Kernels return LC_OK or a status below; on an error status they stop at the offending
 * element, store its flat index in *bad_index (when not NULL) and leave the outputs partly
 * written.  None allocates unless its comment says so, none touches Python, all are safe to call from any thread. */
#ifndef LC_FIXED_H
#define LC_FIXED_H

#include "lc_common.h"

/* Rounding modes (ap_fixed / apytypes names).  Values are fixed; linncore.fixed.Rounding
 * mirrors them. */
typedef enum {
    LC_ROUND_TRN = 0,         /* toward -inf (floor; truncation of two's complement bits) */
    LC_ROUND_TRN_ZERO = 1,    /* toward zero */
    LC_ROUND_RND = 2,         /* to nearest, ties toward +inf */
    LC_ROUND_RND_ZERO = 3,    /* to nearest, ties toward zero */
    LC_ROUND_RND_INF = 4,     /* to nearest, ties away from zero */
    LC_ROUND_RND_MIN_INF = 5, /* to nearest, ties toward -inf */
    LC_ROUND_RND_CONV = 6,    /* to nearest, ties to the even code (convergent) */
    LC_ROUND_STOCH = 7        /* up with probability equal to the fractional part (seeded) */
} lc_rounding;
#define LC_N_ROUNDING 8

/* Overflow modes, applied after rounding.  Values are fixed; linncore.fixed.Overflow mirrors
 * them. */
typedef enum {
    LC_OVF_SAT = 0,     /* clamp to [code_min, code_max] */
    LC_OVF_SAT_SYM = 1, /* signed: clamp to [-code_max, code_max]; unsigned: as LC_OVF_SAT */
    LC_OVF_WRAP = 2     /* keep the low W bits (two's complement when signed) */
} lc_overflow;
#define LC_N_OVERFLOW 3

/* Status codes of the fixed-point kernels (besides LC_OK and LC_ERR_ARGS of lc_common.h). */
#define LC_FIX_ERR_NAN 16    /* an input value is NaN */
#define LC_FIX_ERR_INF 17    /* an input value is +-inf and the overflow mode is LC_OVF_WRAP */
#define LC_FIX_ERR_CODE 18   /* an input code lies outside its format's width */
#define LC_FIX_ERR_FORMAT 19 /* a format descriptor is invalid (see lc_fixfmt_check) */

/* |int_bits| limit and fraction-bit limit: keep lsb, the rails and every code * lsb finite
 * normal doubles (lsb >= 2^-992, |rails| < 2^960). */
#define LC_FIX_MAX_ABS_INT_BITS 960
#define LC_FIX_MAX_FRAC_BITS 992
#define LC_FIX_MAX_BITS 64          /* signed formats: 2..64 bits */
#define LC_FIX_MAX_BITS_UNSIGNED 63 /* unsigned formats: 1..63 bits (codes are int64) */

/* A fixed-point format fixed<bits, int_bits> with its modes. */
typedef struct {
    int32_t bits;      /* W: signed 2..64, unsigned 1..63 */
    int32_t int_bits;  /* I: integer bits including the sign; in [-960, 960], W - I <= 992 */
    int32_t is_signed; /* 1: two's complement codes; 0: unsigned */
    int32_t rounding;  /* lc_rounding */
    int32_t overflow;  /* lc_overflow */
} lc_fixfmt;

/* Counts gathered by a quantization pass (definitions of docs "rail statistics"). */
typedef struct {
    int64_t saturated; /* elements whose rounded value lay outside the rails (overflow acted) */
    int64_t near_rail; /* elements whose code has |c| >= near_rail * max(|rail_lo|, rail_hi),
                        * compared in double: (double)|c| against near_rail times the larger
                        * rail magnitude as a double, the product rounded (exact rails below
                        * 2^53) */
    int64_t underflow; /* elements nonzero before and zero after */
} lc_rail_counts;

/* LC_OK when f is a valid format, LC_FIX_ERR_FORMAT otherwise. */
int lc_fixfmt_check(const lc_fixfmt *f);
/* The rails of f in codes: lower (symmetric under LC_OVF_SAT_SYM) and upper. */
int64_t lc_fixfmt_code_min(const lc_fixfmt *f);
int64_t lc_fixfmt_code_max(const lc_fixfmt *f);

/* codes[i] := cast_fmt(x[i]); out[i] := codes[i] * lsb (when out is not NULL; codes may be
 * NULL when only out is wanted).  +-inf saturates to the rail of its sign under LC_OVF_SAT and
 * LC_OVF_SAT_SYM (and counts as saturated); under LC_OVF_WRAP it is LC_FIX_ERR_INF.  NaN is
 * LC_FIX_ERR_NAN.  When stats is not NULL it receives the rail counts with the near-rail
 * threshold near_rail (a fraction of the larger rail magnitude).  STOCH index: i. */
int lc_quantize_f64(const lc_fixfmt *fmt, const double *x, int64_t n, int64_t *codes, double *out,
                    uint64_t seed, lc_rail_counts *stats, double near_rail, int64_t *bad_index);
/* The same for float32 input (each value is widened to double exactly first). */
int lc_quantize_f32(const lc_fixfmt *fmt, const float *x, int64_t n, int64_t *codes, double *out,
                    uint64_t seed, lc_rail_counts *stats, double near_rail, int64_t *bad_index);

/* out[i] := codes[i] * lsb, exact.  LC_FIX_ERR_CODE for a code outside the width. */
int lc_from_codes(const lc_fixfmt *fmt, const int64_t *codes, int64_t n, double *out,
                  int64_t *bad_index);

/* out[i] := cast_dst(codes[i] * lsb_src): an exact integer shift by F_src - F_dst with the
 * rounding of dst, then its overflow.  stats as for lc_quantize_f64 (may be NULL).
 * STOCH index: i. */
int lc_requantize(const lc_fixfmt *src, const int64_t *codes, int64_t n, const lc_fixfmt *dst,
                  int64_t *out, uint64_t seed, lc_rail_counts *stats, double near_rail,
                  int64_t *bad_index);

/* out[i] := cast_out(a[i] * lsb + b[i] * lsb), a and b in format fmt; the sum is exact.
 * bad_index counts over a then b (an index >= n is b's index + n).  STOCH index: i. */
int lc_fix_add(const lc_fixfmt *fmt, const int64_t *a, const int64_t *b, int64_t n,
               const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed, int64_t *bad_index);

/* out[i] := cast_out((a[i] * lsb_a) * (b[i] * lsb_b)); the product (F_a + F_b fraction bits)
 * is exact.  bad_index counts over a then b.  STOCH index: i. */
int lc_fix_mul(const lc_fixfmt *fa, const int64_t *a, const lc_fixfmt *fb, const int64_t *b,
               int64_t n, const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed,
               int64_t *bad_index);

/* C := A @ B on codes: A (n, k) in fa, B (k, m) in fb, C (n, m) in out_fmt, row-major.
 *   acc == NULL: C[i,j] := cast_out(sum_p A[i,p] * B[p,j]), the sum exact (F_a + F_b
 *                fraction bits; every |product| <= 2^126, so a sum of k < 2^62 terms fits a
 *                192-bit accumulator, used when 128 bits might not hold it) and rounded once.
 *                STOCH index: i*m + j.
 *   acc != NULL: an accumulator register in format *acc: s := 0; for p = 0..k-1 in order:
 *                s := ovf_acc(s + cast_acc(A[i,p] * B[p,j])), where cast_acc rounds the exact
 *                product with acc's rounding and applies acc's overflow, and every addition
 *                saturates (SAT, SAT_SYM) or wraps (WRAP) at acc's width; finally
 *                C[i,j] := cast_out(s).  STOCH index: i*m + j for the final cast,
 *                n*m + (i*m + j)*k + p for the product cast.
 * bad_index counts over A then B.  Allocates (k + 16) * 256 + 16 * k doubles of workspace
 * when the exact sum fits 53 bits (LC_ERR_NOMEM if that fails); nothing otherwise. */
int lc_fix_matmul(const lc_fixfmt *fa, const int64_t *A, const lc_fixfmt *fb, const int64_t *B,
                  int64_t n, int64_t k, int64_t m, const lc_fixfmt *acc, const lc_fixfmt *out_fmt,
                  int64_t *C, uint64_t seed, int64_t *bad_index);

#endif
