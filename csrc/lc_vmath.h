/* lc_vmath.h: tanh and the logistic sigmoid for float32 activations.
 *
 * Each value is evaluated in double and rounded once to float: effectively correctly rounded
 * (checked on millions of points against double-precision libm).  Not used for float64, which
 * keeps libm.  NaN stays NaN.
 *
 * The math is written once, on a type lc_v4d that is four double lanes where the compiler has
 * vector types (lc_portable.h: LC_HAVE_VECTOR_EXT; the loops then run in SIMD registers) and
 * one double elsewhere (LC_PORTABLE=1, MSVC), where LC_V4F_APPLY takes one element at a time.
 * Every lane does the same IEEE double operations in the same order in both forms, and a
 * select picks one of two finished values, so the results are the same bits on every machine,
 * compiler and vector width (tests/test_portable.py compares the two builds). */
#ifndef LC_VMATH_H
#define LC_VMATH_H

#include <stdint.h>
#include <string.h>

#include "lc_portable.h"

#define LC_HAVE_VMATH 1

#if LC_HAVE_VECTOR_EXT
/* The functions below are static inline: no vector crosses a call boundary between separately
 * compiled code, so the note of GCC and Clang on the ABI of 32-byte vector arguments does not
 * apply. */
#pragma GCC diagnostic ignored "-Wpsabi" /* Clang reads it too */
LC_VECTOR_TYPEDEF(lc_v4d, double, 32);
LC_VECTOR_TYPEDEF(lc_v4u, uint64_t, 32); /* the lanes' bits */
LC_VECTOR_TYPEDEF(lc_v4f, float, 16);
#define LC_V4D(c) ((lc_v4d){(c), (c), (c), (c)})
#define LC_V4U(c) ((lc_v4u){(c), (c), (c), (c)})
/* mask ? a : b per lane; a vector comparison gives lanes of all ones or zero. */
#define LC_V4D_SELECT(mask, a, b) lc_v4d_select_bits((lc_v4u)(mask), (a), (b))
static inline lc_v4d lc_v4d_select_bits(lc_v4u mask, lc_v4d a, lc_v4d b)
{
    lc_v4u ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    const lc_v4u r = (ia & mask) | (ib & ~mask);
    lc_v4d out;
    memcpy(&out, &r, sizeof out);
    return out;
}
#else
typedef double lc_v4d; /* one lane */
typedef uint64_t lc_v4u;
#define LC_V4D(c) ((double)(c))
#define LC_V4U(c) ((uint64_t)(c))
#define LC_V4D_SELECT(cond, a, b) ((cond) ? (a) : (b))
#endif

/* exp(y) for |y| <= 700: y = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial to
 * degree 12 (error below 1e-15 relative), 2^n written into the exponent bits. */
static inline lc_v4d lc_v4d_exp(lc_v4d y)
{
    const lc_v4d shifter = LC_V4D(0x1.8p52); /* adding it rounds to an integer */
    const lc_v4d k = y * LC_V4D(1.4426950408889634) + shifter;
    const lc_v4d n = k - shifter;
    const lc_v4d r =
        (y - n * LC_V4D(6.93147180369123816490e-01)) - n * LC_V4D(1.90821492927058770002e-10);
    lc_v4d p = LC_V4D(1.0 / 479001600.0);
    p = p * r + LC_V4D(1.0 / 39916800.0);
    p = p * r + LC_V4D(1.0 / 3628800.0);
    p = p * r + LC_V4D(1.0 / 362880.0);
    p = p * r + LC_V4D(1.0 / 40320.0);
    p = p * r + LC_V4D(1.0 / 5040.0);
    p = p * r + LC_V4D(1.0 / 720.0);
    p = p * r + LC_V4D(1.0 / 120.0);
    p = p * r + LC_V4D(1.0 / 24.0);
    p = p * r + LC_V4D(1.0 / 6.0);
    p = p * r + LC_V4D(0.5);
    p = p * r + LC_V4D(1.0);
    p = p * r + LC_V4D(1.0);
    lc_v4u bits;
    memcpy(&bits, &k, sizeof bits);     /* the low bits of k hold 2^51 + n */
    bits = (bits + LC_V4U(1023)) << 52; /* the biased exponent of 2^n (modulo 2^64) */
    lc_v4d scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: the odd series x (1 - x^2/3 + 2x^4/15 - 17x^6/315 + 62x^8/2835) below |x| = 1/16
 * (keeps -0), 1 - 2 / (exp(2|x|) + 1) with the sign of x above (|x| capped at 20, where
 * tanh rounds to 1). */
static inline lc_v4d lc_v4d_tanh(lc_v4d x)
{
    const lc_v4u sign_bit = LC_V4U(UINT64_C(1) << 63);
    lc_v4u xb;
    memcpy(&xb, &x, sizeof xb);
    const lc_v4u ab = xb & ~sign_bit;
    lc_v4d a;
    memcpy(&a, &ab, sizeof a);
    const lc_v4d a2 = a * a;
    const lc_v4d series =
        x * (LC_V4D(1.0) + a2 * (LC_V4D(-1.0 / 3.0) +
                                 a2 * (LC_V4D(2.0 / 15.0) +
                                       a2 * (LC_V4D(-17.0 / 315.0) + a2 * LC_V4D(62.0 / 2835.0)))));
    const lc_v4d capped = LC_V4D_SELECT(a < LC_V4D(20.0), a, LC_V4D(20.0));
    const lc_v4d e = lc_v4d_exp(capped + capped);
    const lc_v4d far = LC_V4D(1.0) - LC_V4D(2.0) / (e + LC_V4D(1.0));
    lc_v4u fb;
    memcpy(&fb, &far, sizeof fb);
    fb |= xb & sign_bit;
    lc_v4d signed_far;
    memcpy(&signed_far, &fb, sizeof signed_far);
    const lc_v4d t = LC_V4D_SELECT(a < LC_V4D(0.0625), series, signed_far);
    return LC_V4D_SELECT(x == x, t, x); /* NaN stays NaN */
}

/* 1 / (1 + exp(-x)), exp's argument capped to [-700, 700]. */
static inline lc_v4d lc_v4d_sigmoid(lc_v4d x)
{
    lc_v4d y = -x;
    y = LC_V4D_SELECT(y < LC_V4D(700.0), y, LC_V4D(700.0));
    y = LC_V4D_SELECT(y > LC_V4D(-700.0), y, LC_V4D(-700.0));
    const lc_v4d s = LC_V4D(1.0) / (LC_V4D(1.0) + lc_v4d_exp(y));
    return LC_V4D_SELECT(x == x, s, x);
}

/* h[i] := f(z[i]) for float arrays.  With vector types four lanes at a time, the tail through
 * a zero-padded vector; without, one element at a time: every element is computed the same
 * way. */
#if LC_HAVE_VECTOR_EXT
#define LC_V4F_APPLY(FUNC, z, h, n)                                                                \
    do {                                                                                           \
        int64_t i_ = 0;                                                                            \
        for (; i_ + 4 <= (n); i_ += 4) {                                                           \
            lc_v4f f_;                                                                             \
            memcpy(&f_, (z) + i_, sizeof f_);                                                      \
            lc_v4d d_ = FUNC(__builtin_convertvector(f_, lc_v4d));                                 \
            lc_v4f r_ = __builtin_convertvector(d_, lc_v4f);                                       \
            memcpy((h) + i_, &r_, sizeof r_);                                                      \
        }                                                                                          \
        if (i_ < (n)) {                                                                            \
            float buf_[4] = {0, 0, 0, 0};                                                          \
            memcpy(buf_, (z) + i_, (size_t)((n) - i_) * sizeof(float));                            \
            lc_v4f f_;                                                                             \
            memcpy(&f_, buf_, sizeof f_);                                                          \
            lc_v4d d_ = FUNC(__builtin_convertvector(f_, lc_v4d));                                 \
            lc_v4f r_ = __builtin_convertvector(d_, lc_v4f);                                       \
            memcpy(buf_, &r_, sizeof r_);                                                          \
            memcpy((h) + i_, buf_, (size_t)((n) - i_) * sizeof(float));                            \
        }                                                                                          \
    } while (0)
#else
#define LC_V4F_APPLY(FUNC, z, h, n)                                                                \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < (n); i_++) (h)[i_] = (float)FUNC((double)(z)[i_]);               \
    } while (0)
#endif

#endif
