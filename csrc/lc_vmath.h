/* lc_vmath.h: tanh and the logistic sigmoid for float32 activations, four at a time.
 *
 * Written with GCC/Clang vector types, so the loops run in SIMD registers; every lane does the
 * same IEEE double operations, so the result is the same on every machine and vector width.
 * Each value is evaluated in double and rounded once to float: effectively correctly rounded
 * (checked on millions of points against double-precision libm).  Not used for float64, which
 * keeps libm.  NaN stays NaN. */
#ifndef LC_VMATH_H
#define LC_VMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define LC_HAVE_VMATH 1

typedef double lc_v4d __attribute__((vector_size(32)));
typedef int64_t lc_v4l __attribute__((vector_size(32)));
typedef float lc_v4f __attribute__((vector_size(16)));

static inline lc_v4d lc_v4d_set(double v) { return (lc_v4d){v, v, v, v}; }

/* mask ? a : b, mask lanes all ones or zero (vector comparisons give those). */
static inline lc_v4d lc_v4d_select(lc_v4l mask, lc_v4d a, lc_v4d b)
{
    lc_v4l ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    lc_v4l r = (ia & mask) | (ib & ~mask);
    lc_v4d out;
    memcpy(&out, &r, sizeof out);
    return out;
}

/* exp(y) for |y| <= 700: y = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial to
 * degree 12 (error below 1e-15 relative), 2^n written into the exponent bits. */
static inline lc_v4d lc_v4d_exp(lc_v4d y)
{
    const lc_v4d shifter = lc_v4d_set(0x1.8p52); /* adding it rounds to an integer */
    const lc_v4d k = y * lc_v4d_set(1.4426950408889634) + shifter;
    const lc_v4d n = k - shifter;
    const lc_v4d r = (y - n * lc_v4d_set(6.93147180369123816490e-01)) - n * lc_v4d_set(1.90821492927058770002e-10);
    lc_v4d p = lc_v4d_set(1.0 / 479001600.0);
    p = p * r + lc_v4d_set(1.0 / 39916800.0);
    p = p * r + lc_v4d_set(1.0 / 3628800.0);
    p = p * r + lc_v4d_set(1.0 / 362880.0);
    p = p * r + lc_v4d_set(1.0 / 40320.0);
    p = p * r + lc_v4d_set(1.0 / 5040.0);
    p = p * r + lc_v4d_set(1.0 / 720.0);
    p = p * r + lc_v4d_set(1.0 / 120.0);
    p = p * r + lc_v4d_set(1.0 / 24.0);
    p = p * r + lc_v4d_set(1.0 / 6.0);
    p = p * r + lc_v4d_set(0.5);
    p = p * r + lc_v4d_set(1.0);
    p = p * r + lc_v4d_set(1.0);
    lc_v4l bits;
    memcpy(&bits, &k, sizeof bits);   /* the low bits of k hold 2^51 + n */
    bits = (bits + 1023) << 52;       /* the biased exponent of 2^n */
    lc_v4d scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: the odd series x (1 - x^2/3 + 2x^4/15 - 17x^6/315 + 62x^8/2835) below |x| = 1/16
 * (keeps -0), 1 - 2 / (exp(2|x|) + 1) with the sign of x above (|x| capped at 20, where
 * tanh rounds to 1). */
static inline lc_v4d lc_v4d_tanh(lc_v4d x)
{
    const lc_v4l sign_bit = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    lc_v4l xb;
    memcpy(&xb, &x, sizeof xb);
    lc_v4l ab = xb & ~sign_bit;
    lc_v4d a;
    memcpy(&a, &ab, sizeof a);
    const lc_v4d a2 = a * a;
    const lc_v4d series =
        x * (lc_v4d_set(1.0) + a2 * (lc_v4d_set(-1.0 / 3.0) + a2 * (lc_v4d_set(2.0 / 15.0) +
             a2 * (lc_v4d_set(-17.0 / 315.0) + a2 * lc_v4d_set(62.0 / 2835.0)))));
    const lc_v4d capped = lc_v4d_select(a < lc_v4d_set(20.0), a, lc_v4d_set(20.0));
    const lc_v4d e = lc_v4d_exp(capped + capped);
    const lc_v4d far = lc_v4d_set(1.0) - lc_v4d_set(2.0) / (e + lc_v4d_set(1.0));
    lc_v4l fb;
    memcpy(&fb, &far, sizeof fb);
    fb |= xb & sign_bit;
    lc_v4d signed_far;
    memcpy(&signed_far, &fb, sizeof signed_far);
    const lc_v4d t = lc_v4d_select(a < lc_v4d_set(0.0625), series, signed_far);
    return lc_v4d_select(x == x, t, x); /* NaN stays NaN */
}

/* 1 / (1 + exp(-x)), exp's argument capped to [-700, 700]. */
static inline lc_v4d lc_v4d_sigmoid(lc_v4d x)
{
    lc_v4d y = -x;
    y = lc_v4d_select(y < lc_v4d_set(700.0), y, lc_v4d_set(700.0));
    y = lc_v4d_select(y > lc_v4d_set(-700.0), y, lc_v4d_set(-700.0));
    const lc_v4d s = lc_v4d_set(1.0) / (lc_v4d_set(1.0) + lc_v4d_exp(y));
    return lc_v4d_select(x == x, s, x);
}

/* h[i] := f(z[i]) for float arrays, four lanes at a time; the tail goes through a zero-padded
 * vector, so every element is computed the same way. */
#define LC_V4F_APPLY(FUNC, z, h, n)                                                              \
    do {                                                                                         \
        int64_t i_ = 0;                                                                          \
        for (; i_ + 4 <= (n); i_ += 4) {                                                         \
            lc_v4f f_;                                                                           \
            memcpy(&f_, (z) + i_, sizeof f_);                                                    \
            lc_v4f r_ = __builtin_convertvector(FUNC(__builtin_convertvector(f_, lc_v4d)), lc_v4f); \
            memcpy((h) + i_, &r_, sizeof r_);                                                    \
        }                                                                                        \
        if (i_ < (n)) {                                                                          \
            float buf_[4] = {0, 0, 0, 0};                                                        \
            memcpy(buf_, (z) + i_, (size_t)((n) - i_) * sizeof(float));                          \
            lc_v4f f_;                                                                           \
            memcpy(&f_, buf_, sizeof f_);                                                        \
            lc_v4f r_ = __builtin_convertvector(FUNC(__builtin_convertvector(f_, lc_v4d)), lc_v4f); \
            memcpy(buf_, &r_, sizeof r_);                                                        \
            memcpy((h) + i_, buf_, (size_t)((n) - i_) * sizeof(float));                          \
        }                                                                                        \
    } while (0)
#endif

#endif
