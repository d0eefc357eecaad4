/* lc_int128.h: 128-bit integer words for the exact fixed-point arithmetic (lc_fixed.c).
 *
 * lc_u128 is a 128-bit word; functions named lc_u128_* read it as an unsigned integer in
 * [0, 2^128), functions named lc_i128_* as a two's complement integer in [-2^127, 2^127).
 * Addition, subtraction, negation and left shifts wrap modulo 2^128 (the same bits either
 * way), so one type serves both readings.  Two implementations give the same bits for every
 * input: unsigned __int128 where the compiler has it (GCC, Clang: __SIZEOF_INT128__), and a
 * pair of uint64_t words elsewhere (MSVC) or when LC_INT128_PORTABLE is defined.  Both use
 * unsigned arithmetic only: nothing relies on signed overflow or on shifting a negative
 * number.  Shift counts n must satisfy 0 <= n < 128 unless a function says otherwise. */
#ifndef LC_INT128_H
#define LC_INT128_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__) && !defined(LC_INT128_PORTABLE)
#define LC_INT128_NATIVE 1
__extension__ typedef unsigned __int128 lc_u128;

/* The word hi * 2^64 + lo. */
static inline lc_u128 lc_u128_make(uint64_t hi, uint64_t lo)
{
    return ((lc_u128)hi << 64) | lo;
}
static inline uint64_t lc_u128_lo(lc_u128 x)
{
    return (uint64_t)x;
}
static inline uint64_t lc_u128_hi(lc_u128 x)
{
    return (uint64_t)(x >> 64);
}
static inline lc_u128 lc_u128_add(lc_u128 a, lc_u128 b)
{
    return a + b;
}
static inline lc_u128 lc_u128_sub(lc_u128 a, lc_u128 b)
{
    return a - b;
}
static inline lc_u128 lc_u128_and(lc_u128 a, lc_u128 b)
{
    return a & b;
}
static inline lc_u128 lc_u128_or(lc_u128 a, lc_u128 b)
{
    return a | b;
}
static inline lc_u128 lc_u128_shl(lc_u128 a, int n)
{
    return a << n;
}
static inline lc_u128 lc_u128_shr(lc_u128 a, int n)
{
    return a >> n;
}
/* a * b, exact (a 64 x 64 -> 128-bit product). */
static inline lc_u128 lc_u128_mul64(uint64_t a, uint64_t b)
{
    return (lc_u128)a * b;
}
/* a * b mod 2^128. */
static inline lc_u128 lc_u128_mul_lo(lc_u128 a, uint64_t b)
{
    return a * b;
}
static inline int lc_u128_lt(lc_u128 a, lc_u128 b)
{
    return a < b;
}
static inline int lc_u128_eq(lc_u128 a, lc_u128 b)
{
    return a == b;
}
/* a * b, exact: the product of two int64 as a signed 128-bit word (|a b| <= 2^126, so the
 * signed multiplication cannot overflow). */
static inline lc_u128 lc_i128_mul64(int64_t a, int64_t b)
{
    __extension__ typedef __int128 lc_s128;
    return (lc_u128)((lc_s128)a * (lc_s128)b);
}

#else
typedef struct {
    uint64_t lo, hi;
} lc_u128;

static inline lc_u128 lc_u128_make(uint64_t hi, uint64_t lo)
{
    lc_u128 r;
    r.lo = lo;
    r.hi = hi;
    return r;
}
static inline uint64_t lc_u128_lo(lc_u128 x)
{
    return x.lo;
}
static inline uint64_t lc_u128_hi(lc_u128 x)
{
    return x.hi;
}
static inline lc_u128 lc_u128_add(lc_u128 a, lc_u128 b)
{
    uint64_t lo = a.lo + b.lo;
    return lc_u128_make(a.hi + b.hi + (lo < a.lo), lo);
}
static inline lc_u128 lc_u128_sub(lc_u128 a, lc_u128 b)
{
    return lc_u128_make(a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo);
}
static inline lc_u128 lc_u128_and(lc_u128 a, lc_u128 b)
{
    return lc_u128_make(a.hi & b.hi, a.lo & b.lo);
}
static inline lc_u128 lc_u128_or(lc_u128 a, lc_u128 b)
{
    return lc_u128_make(a.hi | b.hi, a.lo | b.lo);
}
static inline lc_u128 lc_u128_shl(lc_u128 a, int n)
{
    if (n == 0) return a;
    if (n >= 64) return lc_u128_make(a.lo << (n - 64), 0);
    return lc_u128_make((a.hi << n) | (a.lo >> (64 - n)), a.lo << n);
}
static inline lc_u128 lc_u128_shr(lc_u128 a, int n)
{
    if (n == 0) return a;
    if (n >= 64) return lc_u128_make(0, a.hi >> (n - 64));
    return lc_u128_make(a.hi >> n, (a.lo >> n) | (a.hi << (64 - n)));
}
static inline lc_u128 lc_u128_mul64(uint64_t a, uint64_t b)
{
    /* schoolbook on 32-bit halves; every partial product and sum fits 64 bits */
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    uint64_t lo = (p00 & 0xFFFFFFFFu) | (mid << 32);
    uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return lc_u128_make(hi, lo);
}
static inline lc_u128 lc_u128_mul_lo(lc_u128 a, uint64_t b)
{
    lc_u128 p = lc_u128_mul64(a.lo, b);
    return lc_u128_make(p.hi + a.hi * b, p.lo);
}
static inline int lc_u128_lt(lc_u128 a, lc_u128 b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}
static inline int lc_u128_eq(lc_u128 a, lc_u128 b)
{
    return a.hi == b.hi && a.lo == b.lo;
}
/* a * b, exact, from the product of the magnitudes; the sign is applied without a branch
 * (p XOR m, plus 1, for m all ones). */
static inline lc_u128 lc_i128_mul64(int64_t a, int64_t b)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    uint64_t sa = UINT64_C(0) - (ua >> 63), sb = UINT64_C(0) - (ub >> 63);
    lc_u128 p = lc_u128_mul64((ua ^ sa) - sa, (ub ^ sb) - sb); /* |a|, |b| exact as uint64 */
    uint64_t m = sa ^ sb, neg = m & 1u;
    uint64_t lo = (p.lo ^ m) + neg;
    return lc_u128_make((p.hi ^ m) + (lo < neg), lo);
}
#endif

/* ---- derived operations, written once on top of the primitives above ---- */

static inline lc_u128 lc_u128_from_u64(uint64_t v)
{
    return lc_u128_make(0, v);
}
/* v sign-extended to 128 bits. */
static inline lc_u128 lc_i128_from_i64(int64_t v)
{
    uint64_t u = (uint64_t)v;
    return lc_u128_make(UINT64_C(0) - (u >> 63), u);
}
static inline int lc_u128_is_zero(lc_u128 a)
{
    return (lc_u128_lo(a) | lc_u128_hi(a)) == 0;
}
/* 1 when a, read as signed, is negative. */
static inline int lc_i128_is_neg(lc_u128 a)
{
    return (int)(lc_u128_hi(a) >> 63);
}
static inline lc_u128 lc_u128_neg(lc_u128 a)
{
    return lc_u128_sub(lc_u128_make(0, 0), a);
}
/* 2^n for 0 <= n < 128. */
static inline lc_u128 lc_u128_pow2(int n)
{
    return lc_u128_shl(lc_u128_from_u64(1), n);
}
/* 2^n - 1 for 0 <= n <= 128. */
static inline lc_u128 lc_u128_mask(int n)
{
    if (n >= 128) return lc_u128_make(~UINT64_C(0), ~UINT64_C(0));
    return lc_u128_sub(lc_u128_pow2(n), lc_u128_from_u64(1));
}
/* floor(a / 2^n) of a read as signed (an arithmetic shift, written with unsigned shifts). */
static inline lc_u128 lc_i128_sar(lc_u128 a, int n)
{
    if (!lc_i128_is_neg(a)) return lc_u128_shr(a, n);
    lc_u128 ones = lc_u128_make(~UINT64_C(0), ~UINT64_C(0));
    /* ~a = -a - 1 >= 0;  floor(a / 2^n) = ~floor(~a / 2^n) */
    lc_u128 na = lc_u128_sub(ones, a);
    return lc_u128_sub(ones, lc_u128_shr(na, n));
}
/* a < b, both read as signed. */
static inline int lc_i128_lt(lc_u128 a, lc_u128 b)
{
    lc_u128 flip = lc_u128_make(UINT64_C(1) << 63, 0);
    return lc_u128_lt(lc_u128_add(a, flip), lc_u128_add(b, flip));
}
/* The number of significant bits of a read as unsigned (0 for 0). */
static inline int lc_u128_bitlen(lc_u128 a)
{
    uint64_t h = lc_u128_hi(a), l = lc_u128_lo(a);
    int n = 0;
    uint64_t w = h ? h : l;
    while (w) {
        n++;
        w >>= 1;
    }
    return h ? n + 64 : n;
}
/* The low 64 bits of a read as an int64 (two's complement, without an implementation-defined
 * conversion). */
static inline int64_t lc_i64_of_bits(uint64_t u)
{
    return (u >> 63) ? -(int64_t)(~u) - 1 : (int64_t)u;
}
/* floor(v / 2^n) for an int64 v and 0 <= n <= 63. */
static inline int64_t lc_i64_sar(int64_t v, int n)
{
    return v >= 0 ? (int64_t)((uint64_t)v >> n) : ~(int64_t)((uint64_t)~v >> n);
}

#endif
