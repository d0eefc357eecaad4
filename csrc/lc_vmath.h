/* lc_vmath.h: tanh and the logistic sigmoid for float32 activations, and the project's
 * float64 tanh (below).
 *
 * Each float32 value is evaluated in double and rounded once to float: effectively correctly
 * rounded (checked on millions of points against double-precision libm).  NaN stays NaN.
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

/* Every function below is inlined into its caller, always: the hot loops are compiled once per
 * instruction set (LC_HOT), and a vector passed to an out-of-line copy compiled for another
 * would not be where that copy looks for it. */
#define LC_VM_INLINE LC_ALWAYS_INLINE

/* for g < G: a step written for each of the G vectors a function takes at once (G a constant
 * where it is inlined).  GCC is told to unroll it completely, so the vectors stay in registers
 * (it would otherwise turn a loop that copies them in into a memcpy through the stack). */
#if LC_GNU_C
#define LC_VM_UNROLLED _Pragma("GCC unroll 16")
#else
#define LC_VM_UNROLLED
#endif
#define LC_VM_EACH_OF(g, G) LC_VM_UNROLLED for (int g = 0; g < (G); g++)

#if LC_HAVE_VECTOR_EXT
/* The functions below are static inline: no vector crosses a call boundary between separately
 * compiled code, so the note of GCC and Clang on the ABI of 32-byte vector arguments does not
 * apply. */
#pragma GCC diagnostic ignored "-Wpsabi" /* Clang reads it too */
LC_VECTOR_TYPEDEF(lc_v4d, double, 32);
LC_VECTOR_TYPEDEF(lc_v4u, uint64_t, 32); /* the lanes' bits */
LC_VECTOR_TYPEDEF(lc_v4i, int64_t, 32);
LC_VECTOR_TYPEDEF(lc_v4f, float, 16);
#define LC_V4D(c) ((lc_v4d){(c), (c), (c), (c)})
#define LC_V4U(c) ((lc_v4u){(c), (c), (c), (c)})
#define LC_V4I(c) ((lc_v4i){(c), (c), (c), (c)})
/* mask ? a : b per lane; a vector comparison gives lanes of all ones or zero.  The mask is
 * kept signed, the type a comparison gives: GCC then makes the select one blend instruction
 * (through an unsigned mask, three). */
#define LC_V4D_SELECT(mask, a, b) lc_v4d_select_bits((lc_v4i)(mask), (a), (b))
LC_VM_INLINE lc_v4d lc_v4d_select_bits(lc_v4i mask, lc_v4d a, lc_v4d b)
{
    lc_v4i ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    const lc_v4i r = (ia & mask) | (ib & ~mask);
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

/* 2^n from k = n + 1.5 * 2^52 (an integer n rounded there by adding that shifter, |n| < 1023):
 * the low bits of k hold 2^51 + n, and adding 1023 and shifting them into the exponent field
 * gives the biased exponent of 2^n (modulo 2^64, the 2^51 shifted out). */
LC_VM_INLINE lc_v4d lc_v4d_pow2_of_shifted(lc_v4d k)
{
    lc_v4u bits;
    memcpy(&bits, &k, sizeof bits);
    bits = (bits + LC_V4U(1023)) << 52;
    lc_v4d scale;
    memcpy(&scale, &bits, sizeof scale);
    return scale;
}

/* exp(y) for |y| <= 700: y = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial to
 * degree 12 (error below 1e-15 relative), 2^n written into the exponent bits. */
LC_VM_INLINE lc_v4d lc_v4d_exp(lc_v4d y)
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
    return p * lc_v4d_pow2_of_shifted(k);
}

/* |x|: x with its sign bit cleared (-0 gives +0, a NaN stays a NaN). */
LC_VM_INLINE lc_v4d lc_v4d_abs(lc_v4d x)
{
    lc_v4u b;
    memcpy(&b, &x, sizeof b);
    b &= ~LC_V4U(UINT64_C(1) << 63);
    lc_v4d a;
    memcpy(&a, &b, sizeof a);
    return a;
}

/* m (sign bit clear) with the sign bit of x set where x has it: an odd function's value at x
 * from its value at |x|, so -0 stays -0. */
LC_VM_INLINE lc_v4d lc_v4d_sign_of(lc_v4d m, lc_v4d x)
{
    lc_v4u mb, xb;
    memcpy(&mb, &m, sizeof mb);
    memcpy(&xb, &x, sizeof xb);
    mb |= xb & LC_V4U(UINT64_C(1) << 63);
    lc_v4d out;
    memcpy(&out, &mb, sizeof out);
    return out;
}

/* lc_v4d_tanh from far = 1 - 2 / (exp(2 min(|x|, 20)) + 1) at a = |x|: the series below
 * |x| = 1/16, far with the sign of x above, NaN kept. */
LC_VM_INLINE lc_v4d lc_v4d_tanh_join(lc_v4d x, lc_v4d a, lc_v4d far)
{
    const lc_v4d a2 = a * a;
    const lc_v4d series =
        x * (LC_V4D(1.0) + a2 * (LC_V4D(-1.0 / 3.0) +
                                 a2 * (LC_V4D(2.0 / 15.0) +
                                       a2 * (LC_V4D(-17.0 / 315.0) + a2 * LC_V4D(62.0 / 2835.0)))));
    const lc_v4d t = LC_V4D_SELECT(a < LC_V4D(0.0625), series, lc_v4d_sign_of(far, x));
    return LC_V4D_SELECT(x == x, t, x); /* NaN stays NaN */
}

/* tanh: the odd series x (1 - x^2/3 + 2x^4/15 - 17x^6/315 + 62x^8/2835) below |x| = 1/16
 * (keeps -0), 1 - 2 / (exp(2|x|) + 1) with the sign of x above (|x| capped at 20, where
 * tanh rounds to 1). */
LC_VM_INLINE lc_v4d lc_v4d_tanh(lc_v4d x)
{
    const lc_v4d a = lc_v4d_abs(x);
    const lc_v4d capped = LC_V4D_SELECT(a < LC_V4D(20.0), a, LC_V4D(20.0));
    const lc_v4d e = lc_v4d_exp(capped + capped);
    return lc_v4d_tanh_join(x, a, LC_V4D(1.0) - LC_V4D(2.0) / (e + LC_V4D(1.0)));
}

/* 1 / (1 + exp(-x)), exp's argument capped to [-700, 700]. */
LC_VM_INLINE lc_v4d lc_v4d_sigmoid(lc_v4d x)
{
    lc_v4d y = -x;
    y = LC_V4D_SELECT(y < LC_V4D(700.0), y, LC_V4D(700.0));
    y = LC_V4D_SELECT(y > LC_V4D(-700.0), y, LC_V4D(-700.0));
    const lc_v4d s = LC_V4D(1.0) / (LC_V4D(1.0) + lc_v4d_exp(y));
    return LC_V4D_SELECT(x == x, s, x);
}

/* ---- float32 at throughput: a short evaluation, checked, the above where it could differ ----
 *
 * The functions above define the float32 bits; their exp is a Horner chain of 12 dependent
 * multiply-adds, about 100 cycles from input to result, so a loop of them runs at the rate the
 * out-of-order window can hide that latency, not at the rate of its arithmetic.  With vector
 * types the loops below evaluate the same formula with a shorter exp instead: one-step range
 * reduction and the Taylor polynomial to degree 11 by Estrin's scheme (depth 4 instead of 12).
 * Its double result is within a few hundred double ulps of the defining one (truncation below
 * 7e-15 relative, amplified at most 8 times by tanh at |x| = 1/16), far less than
 * LC_VM_NEAR (4096 ulps).  A float is the double rounded once, so the two round to the same
 * float unless a rounding midpoint of float lies between them: a lane whose short result is
 * within LC_VM_NEAR of a midpoint (or below float's normal range, where the rounding point
 * moves) is "near", and a group with a near lane is computed again by the defining function.
 * That happens for about 2^-16 of the lanes.  The result is the defining function's bits for
 * every input; bench/check_vmath.c checks all 2^32 float inputs.
 *
 * Even the short form is bound by latency (exp, then the division) when one vector is
 * evaluated at a time, so it takes LC_VM_WAYS vectors at once, each step written for all of
 * them in turn (LC_VM_EACH, a loop the compiler unrolls): the pipeline then overlaps their
 * chains.  Each lane does the same operations as alone.  On Zen 3 (bench/bench_vmath.c: 1,024
 * values, n(0, 2)) float32 tanh takes 2.2 ns a value and sigmoid 1.8, where one vector at a
 * time took 3.6 and 3.0; two ways took 2.7, three 2.6, six 2.5, eight 2.3 (registers spill).
 * Some 80 vector operations a vector of tanh (exp 31, the series 10) on four pipes put the
 * limit near 20 cycles a vector, 1.5 ns a value. */
#if LC_HAVE_VECTOR_EXT
#define LC_VM_NEAR 4096 /* double ulps around a float midpoint where the short result is not used */
#define LC_VM_WAYS 4    /* vectors the short forms evaluate at once */
#define LC_VM_EACH(g) LC_VM_EACH_OF(g, LC_VM_WAYS)

/* Four floats from p, in double (exact); a double vector rounded to four floats at p. */
LC_VM_INLINE lc_v4d lc_v4d_load_floats(const float *p)
{
    return (lc_v4d){p[0], p[1], p[2], p[3]}; /* one conversion (not __builtin_convertvector,
                                                which GCC 12 splits in halves) */
}
LC_VM_INLINE void lc_v4d_store_floats(lc_v4d d, float *p)
{
    const lc_v4f f = __builtin_convertvector(d, lc_v4f);
    memcpy(p, &f, sizeof f);
}

/* e[g] := exp(y[g]) for the LC_VM_WAYS vectors y[g], |y| <= 700, to about 1e-14 relative:
 * y = n ln2 + r, |r| <= ln2/2 (to rounding), exp(r) = sum r^k / k! for k <= 11 by Estrin's
 * scheme. */
LC_VM_INLINE void lc_v4d_exp_short(const lc_v4d *y, lc_v4d *e)
{
    const lc_v4d shifter = LC_V4D(0x1.8p52);
    lc_v4d k[LC_VM_WAYS], r[LC_VM_WAYS], r2[LC_VM_WAYS], r4[LC_VM_WAYS], r8[LC_VM_WAYS];
    lc_v4d s0[LC_VM_WAYS], s1[LC_VM_WAYS], s2[LC_VM_WAYS];
    LC_VM_EACH(g) k[g] = y[g] * LC_V4D(1.4426950408889634) + shifter;
    LC_VM_EACH(g) r[g] = y[g] - (k[g] - shifter) * LC_V4D(6.93147180559945286227e-01);
    LC_VM_EACH(g) r2[g] = r[g] * r[g];
    LC_VM_EACH(g) r4[g] = r2[g] * r2[g];
    LC_VM_EACH(g) r8[g] = r4[g] * r4[g];
    LC_VM_EACH(g)
    {
        const lc_v4d q0 = LC_V4D(1.0) + r[g];
        const lc_v4d q1 = LC_V4D(0.5) + r[g] * LC_V4D(1.0 / 6.0);
        s0[g] = q0 + q1 * r2[g];
    }
    LC_VM_EACH(g)
    {
        const lc_v4d q2 = LC_V4D(1.0 / 24.0) + r[g] * LC_V4D(1.0 / 120.0);
        const lc_v4d q3 = LC_V4D(1.0 / 720.0) + r[g] * LC_V4D(1.0 / 5040.0);
        s1[g] = q2 + q3 * r2[g];
    }
    LC_VM_EACH(g)
    {
        const lc_v4d q4 = LC_V4D(1.0 / 40320.0) + r[g] * LC_V4D(1.0 / 362880.0);
        const lc_v4d q5 = LC_V4D(1.0 / 3628800.0) + r[g] * LC_V4D(1.0 / 39916800.0);
        s2[g] = q4 + q5 * r2[g];
    }
    LC_VM_EACH(g) e[g] = ((s0[g] + s1[g] * r4[g]) + s2[g] * r8[g]) * lc_v4d_pow2_of_shifted(k[g]);
}

/* Lanes of v (>= 0) whose rounding to float is within LC_VM_NEAR double ulps of a midpoint:
 * all ones there, zero elsewhere.  A double in float's normal range rounds to float by the low
 * 29 bits of its significand, whose midpoint is 2^28: the sum below puts the window around it
 * at [0, 2 LC_VM_NEAR) modulo 2^29. */
LC_VM_INLINE lc_v4i lc_v4d_near_float_midpoint(lc_v4d v)
{
    lc_v4i bits;
    memcpy(&bits, &v, sizeof bits);
    const lc_v4i off = (bits + LC_V4I(0x10000000 + LC_VM_NEAR)) & LC_V4I(0x1FFFFFFF);
    return (lc_v4i)(off < LC_V4I(2 * LC_VM_NEAR));
}

LC_VM_INLINE int lc_v4i_any(lc_v4i m)
{
    return (m[0] | m[1] | m[2] | m[3]) != 0;
}

/* t[g] := lc_v4d_tanh's formula at x[g] with lc_v4d_exp_short, for the LC_VM_WAYS vectors;
 * *near |= the lanes where it may round differently (the series lanes are lc_v4d_tanh's own
 * operations, never near). */
LC_VM_INLINE void lc_v4d_tanh_short(const lc_v4d *x, lc_v4d *t, lc_v4i *near)
{
    lc_v4d a[LC_VM_WAYS], y[LC_VM_WAYS], e[LC_VM_WAYS];
    LC_VM_EACH(g) a[g] = lc_v4d_abs(x[g]);
    LC_VM_EACH(g)
    {
        const lc_v4d capped = LC_V4D_SELECT(a[g] < LC_V4D(20.0), a[g], LC_V4D(20.0));
        y[g] = capped + capped;
    }
    lc_v4d_exp_short(y, e);
    LC_VM_EACH(g)
    {
        const lc_v4d far = LC_V4D(1.0) - LC_V4D(2.0) / (e[g] + LC_V4D(1.0));
        *near |= lc_v4d_near_float_midpoint(far) & ~(lc_v4i)(a[g] < LC_V4D(0.0625));
        t[g] = lc_v4d_tanh_join(x[g], a[g], far);
    }
}

/* s[g] := lc_v4d_sigmoid's formula at x[g] with lc_v4d_exp_short; *near as for tanh, and every
 * lane below float's normal range (where the rounding point moves). */
LC_VM_INLINE void lc_v4d_sigmoid_short(const lc_v4d *x, lc_v4d *s, lc_v4i *near)
{
    lc_v4d y[LC_VM_WAYS], e[LC_VM_WAYS];
    LC_VM_EACH(g)
    {
        y[g] = -x[g];
        y[g] = LC_V4D_SELECT(y[g] < LC_V4D(700.0), y[g], LC_V4D(700.0));
        y[g] = LC_V4D_SELECT(y[g] > LC_V4D(-700.0), y[g], LC_V4D(-700.0));
    }
    lc_v4d_exp_short(y, e);
    LC_VM_EACH(g)
    {
        const lc_v4d v = LC_V4D(1.0) / (LC_V4D(1.0) + e[g]);
        *near |= lc_v4d_near_float_midpoint(v) | (lc_v4i)(v < LC_V4D(0x1p-126));
        s[g] = LC_V4D_SELECT(x[g] == x[g], v, x[g]);
    }
}

/* The defining function over k floats (k a multiple of 4) in place, out of line: the rare
 * near lanes stay off the loops' hot path. */
#define LC_V4F_EXACT(NAME)                                                                         \
    LC_NOINLINE LC_MAYBE_UNUSED static void lc_v4f_##NAME##_exact(float *v, int64_t k)             \
    {                                                                                              \
        for (int64_t i = 0; i < k; i += 4)                                                         \
            lc_v4d_store_floats(lc_v4d_##NAME(lc_v4d_load_floats(v + i)), v + i);                  \
    }
LC_V4F_EXACT(tanh)
LC_V4F_EXACT(sigmoid)
#undef LC_V4F_EXACT

/* h[0..k) := NAME(z[0..k)) for 0 < k <= LC_VM_GROUP floats: the short form for all, in steps
 * of LC_VM_STEP floats (a partial step zero-padded), then the defining one for all if any lane
 * is near.  z is copied first, so h may be z. */
#define LC_VM_STEP (4 * LC_VM_WAYS)
#define LC_VM_GROUP (2 * LC_VM_STEP)
#define LC_V4F_GROUP(NAME)                                                                         \
    LC_VM_INLINE void lc_v4f_##NAME##_group(const float *z, float *h, int64_t k)                   \
    {                                                                                              \
        float in[LC_VM_GROUP], out[LC_VM_GROUP];                                                   \
        const int64_t padded = (k + LC_VM_STEP - 1) / LC_VM_STEP * LC_VM_STEP;                     \
        memcpy(in, z, (size_t)k * sizeof(float));                                                  \
        memset(in + k, 0, (size_t)(padded - k) * sizeof(float));                                   \
        float *dst = padded == k ? h : out;                                                        \
        lc_v4i near = LC_V4I(0);                                                                   \
        for (int64_t j = 0; j < padded; j += LC_VM_STEP) {                                         \
            lc_v4d x[LC_VM_WAYS], t[LC_VM_WAYS];                                                   \
            LC_VM_EACH(g) x[g] = lc_v4d_load_floats(in + j + 4 * g);                               \
            lc_v4d_##NAME##_short(x, t, &near);                                                    \
            LC_VM_EACH(g) lc_v4d_store_floats(t[g], dst + j + 4 * g);                              \
        }                                                                                          \
        if (lc_v4i_any(near)) {                                                                    \
            lc_v4f_##NAME##_exact(in, padded);                                                     \
            dst = in;                                                                              \
        }                                                                                          \
        if (dst != h) memcpy(h, dst, (size_t)k * sizeof(float));                                   \
    }
LC_V4F_GROUP(tanh)
LC_V4F_GROUP(sigmoid)
#undef LC_V4F_GROUP

/* h[i] := NAME(z[i]) for float arrays (NAME tanh or sigmoid): groups of LC_VM_GROUP, the last
 * one partial, so every element is computed the same way. */
#define LC_V4F_APPLY(NAME, z, h, n)                                                                \
    do {                                                                                           \
        int64_t i_ = 0;                                                                            \
        for (; i_ + LC_VM_GROUP <= (n); i_ += LC_VM_GROUP)                                         \
            lc_v4f_##NAME##_group((z) + i_, (h) + i_, LC_VM_GROUP);                                \
        if (i_ < (n)) lc_v4f_##NAME##_group((z) + i_, (h) + i_, (n) - i_);                         \
    } while (0)
#else
/* One lane: the defining functions themselves.  A NaN is returned as z + z, quiet with its
 * payload, as the vector form's two conversions return it (the compiler may drop the pair of
 * conversions of a NaN, which would keep a signaling one signaling). */
#define LC_V4F_APPLY(NAME, z, h, n)                                                                \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < (n); i_++) {                                                     \
            const float z_ = (z)[i_];                                                              \
            (h)[i_] = z_ == z_ ? (float)lc_v4d_##NAME((double)z_) : z_ + z_;                       \
        }                                                                                          \
    } while (0)
#endif

/* ---- float64 tanh: the project's own, the same bits on every machine ----
 *
 * tanh(x) for double x to within 0.7 ulp (bench/check_vmath.c measures it against quadruple
 * precision; the C library's is within 2.2), by IEEE additions, multiplications and one
 * division in a fixed order, so every machine, compiler and vector width gives the same bits
 * (the C library's tanh is neither the same everywhere nor vectorised).  With a = |x| and the
 * sign of x put back at the end (so -0 stays -0):
 *   a < 0.4: a + a (u P(u)) with u = a^2 and P the degree-9 polynomial closest (Chebyshev fit)
 *     to (tanh(a)/a - 1)/u on [0, 0.16], by Estrin's scheme: relative error below 6e-17 (the
 *     coefficients' rounding), in a term at most a twentieth of the result;
 *   a >= 0.4 (a capped at 22, where tanh rounds to 1): 1 - 2 / (e + 1) with e = exp(2a) carried
 *     as a sum of two doubles: 2a = n ln2 + r (ln2 in two parts, the reduction's rounding kept),
 *     exp(r) = 1 + r + r^2 Q(r) with Q the Taylor polynomial to r^11 / 13! (truncation below
 *     5e-18), the sums' rounding errors kept (Fast2Sum); the quotient 2 / (e + 1) corrected by
 *     its exact residual (Dekker's product, no FMA) and the result's subtraction by its
 *     rounding error, so only the last rounding and a small part of exp's error remain.
 * NaN stays NaN; +-inf gives +-1. */

/* a = hi + lo with hi holding the upper 26 bits (Veltkamp's split), for Dekker's product. */
LC_VM_INLINE void lc_v4d_split(lc_v4d a, lc_v4d *hi, lc_v4d *lo)
{
    const lc_v4d g = a * LC_V4D(134217729.0); /* 2^27 + 1 */
    *hi = g - (g - a);
    *lo = a - *hi;
}

/* The vectors lc_v4d_tanh_f64_n takes at once where it is applied to an array (LC_V4D_APPLY),
 * each step written for all of them in turn (LC_VM_EACH_OF), so the pipeline overlaps their
 * dependency chains as for float32 (LC_VM_WAYS): one vector alone is bound by their latency.
 * Each lane does the same operations as alone.  On Zen 3 (1,024 values, n(0, 2), best of
 * 3,000 runs): 3.5 ns a value, where one vector at a time took 6.0; two took 4.5, three 4.3,
 * five and six 3.6 (their registers spill), and finer steps (more values live) 3.9. */
#define LC_VM_WAYS_F64 4

/* out[g] := tanh(x[g]) for g < G, G <= LC_VM_WAYS_F64 (a constant where it is inlined). */
LC_VM_INLINE void lc_v4d_tanh_f64_n(int G, const lc_v4d *x, lc_v4d *out)
{
    enum {
        W = LC_VM_WAYS_F64
    };
    lc_v4d a[W], near[W];
    LC_VM_EACH_OF(g, G) a[g] = lc_v4d_abs(x[g]);
    /* a >= 0.4: y = 2a = n ln2 + r + cr */
    const lc_v4d shifter = LC_V4D(0x1.8p52);
    lc_v4d k[W], r[W], cr[W];
    LC_VM_EACH_OF(g, G)
    {
        const lc_v4d c = LC_V4D_SELECT(a[g] > LC_V4D(22.0), LC_V4D(22.0), a[g]); /* NaN kept */
        const lc_v4d y = c + c;
        k[g] = y * LC_V4D(1.4426950408889634) + shifter;
        const lc_v4d n = k[g] - shifter;
        const lc_v4d r_hi = y - n * LC_V4D(6.93147180369123816490e-01); /* exact */
        const lc_v4d n_lo = n * LC_V4D(1.90821492927058770002e-10);
        r[g] = r_hi - n_lo;
        cr[g] = (r_hi - r[g]) - n_lo;
    }
    /* exp(r) = 1 + r + r^2 Q(r), Q(r) = sum r^i / (i + 2)! for i <= 11 by Estrin's scheme */
    lc_v4d s[W], s_lo[W];
    LC_VM_EACH_OF(g, G)
    {
        const lc_v4d r2 = r[g] * r[g];
        const lc_v4d r4 = r2 * r2;
        const lc_v4d r8 = r4 * r4;
        const lc_v4d q01 = LC_V4D(1.0 / 2.0) + r[g] * LC_V4D(1.0 / 6.0);
        const lc_v4d q23 = LC_V4D(1.0 / 24.0) + r[g] * LC_V4D(1.0 / 120.0);
        const lc_v4d q45 = LC_V4D(1.0 / 720.0) + r[g] * LC_V4D(1.0 / 5040.0);
        const lc_v4d q67 = LC_V4D(1.0 / 40320.0) + r[g] * LC_V4D(1.0 / 362880.0);
        const lc_v4d q89 = LC_V4D(1.0 / 3628800.0) + r[g] * LC_V4D(1.0 / 39916800.0);
        const lc_v4d qab = LC_V4D(1.0 / 479001600.0) + r[g] * LC_V4D(1.0 / 6227020800.0);
        const lc_v4d q = ((q01 + q23 * r2) + (q45 + q67 * r2) * r4) + (q89 + qab * r2) * r8;
        const lc_v4d t = r2 * q;
        const lc_v4d p = r[g] + t;                                  /* exp(r) - 1 */
        const lc_v4d p_lo = ((r[g] - p) + t) + (cr[g] + cr[g] * p); /* and its remainder */
        s[g] = LC_V4D(1.0) + p;                                     /* exp(r) = s + s_lo */
        s_lo[g] = ((LC_V4D(1.0) - s[g]) + p) + p_lo;
    }
    lc_v4d d[W], d_lo[W], qt[W];
    LC_VM_EACH_OF(g, G)
    {
        const lc_v4d scale = lc_v4d_pow2_of_shifted(k[g]);
        const lc_v4d e = s[g] * scale; /* exp(y) = e + e_lo, both exact scalings */
        const lc_v4d e_lo = s_lo[g] * scale;
        d[g] = e + LC_V4D(1.0); /* e + 1 = d + d_lo */
        d_lo[g] = ((e - d[g]) + LC_V4D(1.0)) + e_lo;
        qt[g] = LC_V4D(2.0) / d[g];
    }
    /* a < 0.4, here where it overlaps the division's latency */
    LC_VM_EACH_OF(g, G)
    {
        const lc_v4d u = a[g] * a[g];
        const lc_v4d u2 = u * u;
        const lc_v4d u4 = u2 * u2;
        const lc_v4d u8 = u4 * u4;
        const lc_v4d p01 = LC_V4D(-0x1.5555555555555p-2) + u * LC_V4D(0x1.11111111110f6p-3);
        const lc_v4d p23 = LC_V4D(-0x1.ba1ba1ba162d4p-5) + u * LC_V4D(0x1.664f487f55925p-6);
        const lc_v4d p45 = LC_V4D(-0x1.226e344730396p-7) + u * LC_V4D(0x1.d6d36a518be92p-9);
        const lc_v4d p67 = LC_V4D(-0x1.7d97e1bd66a18p-10) + u * LC_V4D(0x1.348a25b80da8fp-11);
        const lc_v4d p89 = LC_V4D(-0x1.e3dc6067a7b91p-13) + u * LC_V4D(0x1.282cbc2bb8cd1p-14);
        const lc_v4d poly = ((p01 + p23 * u2) + (p45 + p67 * u2) * u4) + p89 * u8;
        near[g] = a[g] + a[g] * (u * poly);
    }
    LC_VM_EACH_OF(g, G)
    {
        lc_v4d qt_hi, qt_lo, d_hi, d_lo2;
        lc_v4d_split(qt[g], &qt_hi, &qt_lo);
        lc_v4d_split(d[g], &d_hi, &d_lo2);
        const lc_v4d prod = qt[g] * d[g]; /* qt d = prod + prod_err exactly (Dekker) */
        const lc_v4d prod_err =
            ((qt_hi * d_hi - prod) + qt_hi * d_lo2 + qt_lo * d_hi) + qt_lo * d_lo2;
        const lc_v4d resid = (LC_V4D(2.0) - prod) - prod_err; /* 2 - qt d */
        const lc_v4d qt_corr = (resid - qt[g] * d_lo[g]) * (qt[g] * LC_V4D(0.5));
        const lc_v4d w = LC_V4D(1.0) - qt[g];
        const lc_v4d w_lo = (LC_V4D(1.0) - w) - qt[g];
        const lc_v4d far = w + (w_lo - qt_corr);
        const lc_v4d m = lc_v4d_sign_of(LC_V4D_SELECT(a[g] < LC_V4D(0.4), near[g], far), x[g]);
        out[g] = LC_V4D_SELECT(x[g] == x[g], m, x[g]);
    }
}

/* One vector (one double in the portable build). */
LC_VM_INLINE lc_v4d lc_v4d_tanh_f64(lc_v4d x)
{
    lc_v4d t;
    lc_v4d_tanh_f64_n(1, &x, &t);
    return t;
}

/* h[0 .. 4G) := tanh(z[0 .. 4G)) by lc_v4d_tanh_f64_n (one double per vector in the portable
 * build: h[0 .. G)); all of z is read before h is written, so h may be z. */
LC_VM_INLINE void lc_tanh_f64_ways(int G, const double *z, double *h)
{
    lc_v4d x[LC_VM_WAYS_F64], t[LC_VM_WAYS_F64];
    LC_VM_EACH_OF(g, G) memcpy(&x[g], z + g * (int64_t)(sizeof *x / sizeof *z), sizeof *x);
    lc_v4d_tanh_f64_n(G, x, t);
    LC_VM_EACH_OF(g, G) memcpy(h + g * (int64_t)(sizeof *t / sizeof *h), &t[g], sizeof *t);
}

/* One double: lc_v4d_tanh_f64 in lane 0. */
LC_VM_INLINE double lc_tanh_f64(double x)
{
#if LC_HAVE_VECTOR_EXT
    return lc_v4d_tanh_f64(LC_V4D(x))[0];
#else
    return lc_v4d_tanh_f64(x);
#endif
}

/* h[i] := tanh(z[i]) for double arrays by FUNC(G, x, out), a G-way function such as
 * lc_v4d_tanh_f64_n: with vector types LC_VM_WAYS_F64 vectors at a time, the tail through a
 * zero-padded group (so every element is computed the same way); without, one element at a
 * time. */
#if LC_HAVE_VECTOR_EXT
#define LC_V4D_APPLY(FUNC, z, h, n)                                                                \
    do {                                                                                           \
        enum {                                                                                     \
            STEP_ = 4 * LC_VM_WAYS_F64                                                             \
        };                                                                                         \
        int64_t i_ = 0;                                                                            \
        for (; i_ + STEP_ <= (n); i_ += STEP_) FUNC(LC_VM_WAYS_F64, (z) + i_, (h) + i_);           \
        if (i_ < (n)) {                                                                            \
            double buf_[STEP_];                                                                    \
            memset(buf_, 0, sizeof buf_);                                                          \
            memcpy(buf_, (z) + i_, (size_t)((n) - i_) * sizeof(double));                           \
            FUNC(LC_VM_WAYS_F64, buf_, buf_);                                                      \
            memcpy((h) + i_, buf_, (size_t)((n) - i_) * sizeof(double));                           \
        }                                                                                          \
    } while (0)
#else
#define LC_V4D_APPLY(FUNC, z, h, n)                                                                \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < (n); i_++) FUNC(1, (z) + i_, (h) + i_);                          \
    } while (0)
#endif

#endif
