/* check_vmath.c: the float32 activations of lc_vmath.h on all 2^32 float bit patterns and its
 * float64 tanh on some 10^8 doubles, against a reference lc_vmath.h (normally the one of an
 * earlier commit): the bits must be the same.
 *
 * The program is linked from parts, each this file compiled with CHECK_VMATH_PART set:
 *   ref   the reference header's defining functions and lc_v4d_tanh_f64, one element at a
 *         time;
 *   hot   the current header's loops (LC_V4F_APPLY), compiled as the library compiles
 *         lc_act_forward: LC_HOT, so on x86-64 Linux with GCC an AVX2 and a baseline copy,
 *         the loader picking one;
 *   base  the same with LC_BASELINE_ONLY (the baseline copy alone);
 *   one   the same with LC_PORTABLE=1 (one lane, no vector types).
 * From the repository root, with the build's options (setup.py) and REF the commit whose bits
 * are the reference:
 *
 *   F="-O3 -std=c11 -fno-math-errno -ffp-contract=off -pthread -Wno-psabi"
 *   mkdir -p /tmp/vmref && git show REF:csrc/lc_vmath.h > /tmp/vmref/lc_vmath.h &&
 *   cp csrc/lc_portable.h /tmp/vmref/ &&
 *   gcc $F -DCHECK_VMATH_PART=ref -I/tmp/vmref -c bench/check_vmath.c -o /tmp/vm_ref.o &&
 *   gcc $F -DCHECK_VMATH_PART=hot -Icsrc -c bench/check_vmath.c -o /tmp/vm_hot.o &&
 *   gcc $F -DCHECK_VMATH_PART=base -DLC_BASELINE_ONLY -Icsrc -c bench/check_vmath.c \
 *       -o /tmp/vm_base.o &&
 *   gcc $F -DCHECK_VMATH_PART=one -DLC_PORTABLE=1 -Icsrc -c bench/check_vmath.c -o /tmp/vm_one.o &&
 *   gcc $F bench/check_vmath.c /tmp/vm_ref.o /tmp/vm_hot.o /tmp/vm_base.o /tmp/vm_one.o \
 *       -lquadmath -lm -o /tmp/check_vmath && /tmp/check_vmath
 *
 * It prints, per function and part, the number of float inputs whose result differs from the
 * reference (0 is the pass).  Then float64 tanh (the loop LC_V4D_APPLY) on some 1.4 * 10^8
 * doubles: dense sweeps of [0, 23], the doubles around 0.4 (where its formula changes), random
 * bit patterns (tiny, subnormal, huge, infinite, NaN) and special values, all with both signs:
 * the three parts must give the same bits, those of the reference, and the error against
 * quadruple precision (GCC's libquadmath; link with -lquadmath -lm) is printed in ulps, with
 * the C library's tanh beside it.  Exits 1 on any difference or an error above 1 ulp.
 * Arguments: [step [parts]]: step checks every step-th float bit pattern only (default 1: all
 * of them; some ten minutes on one core), parts the float32 parts to check (default
 * "hot,base,one"; "hot" alone takes a minute or two).  The float64 check runs with all three. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_CAT_(a, b) a##_##b
#define CV_CAT(a, b) CV_CAT_(a, b)

#if defined(CHECK_VMATH_PART)
#include "lc_vmath.h"
#define ref 1
#define hot 2
#define base 3
#define one 4
#if CHECK_VMATH_PART == ref
#undef ref
#undef hot
#undef base
#undef one
void ref_tanh(const float *z, float *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++) h[i] = (float)lc_v4d_tanh(LC_V4D((double)z[i]))[0];
}
void ref_sigmoid(const float *z, float *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++) h[i] = (float)lc_v4d_sigmoid(LC_V4D((double)z[i]))[0];
}
void ref_tanh_f64(const double *z, double *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++) h[i] = lc_v4d_tanh_f64(LC_V4D(z[i]))[0];
}
#else
#define PART_ID CHECK_VMATH_PART
#undef ref
#undef hot
#undef base
#undef one
LC_HOT void CV_CAT(CHECK_VMATH_PART, tanh)(const float *z, float *h, int64_t n)
{
    LC_V4F_APPLY(tanh, z, h, n);
}
LC_HOT void CV_CAT(CHECK_VMATH_PART, sigmoid)(const float *z, float *h, int64_t n)
{
    LC_V4F_APPLY(sigmoid, z, h, n);
}
LC_HOT void CV_CAT(CHECK_VMATH_PART, tanh_f64)(const double *z, double *h, int64_t n)
{
    LC_V4D_APPLY(lc_tanh_f64_ways, z, h, n);
}
#endif

#else /* the driver */
#include <quadmath.h>

typedef void (*cv_fn)(const float *, float *, int64_t);
typedef void (*cv_fn64)(const double *, double *, int64_t);
#define CV_DECLARE(p)                                                                              \
    void CV_CAT(p, tanh)(const float *, float *, int64_t);                                         \
    void CV_CAT(p, sigmoid)(const float *, float *, int64_t);                                      \
    void CV_CAT(p, tanh_f64)(const double *, double *, int64_t);
CV_DECLARE(ref)
CV_DECLARE(hot)
CV_DECLARE(base)
CV_DECLARE(one)

enum {
    CV_CHUNK = 1 << 16,
    CV_PARTS = 3
};

/* |got - exact| in ulps of the exact value (the ulp of the double binade it lies in, the
 * subnormal ulp below). */
static double cv_ulps(double got, __float128 exact)
{
    if (exact == 0) return got == 0 ? 0.0 : INFINITY;
    int e;
    frexpq(fabsq(exact), &e);
    const int q = e - 53 < -1074 ? -1074 : e - 53;
    return (double)(fabsq((__float128)got - exact) / ldexpq(1.0Q, q));
}

static uint64_t cv_rng = 0x9E3779B97F4A7C15u;
static uint64_t cv_next(void)
{
    cv_rng = cv_rng * 6364136223846793005u + 1442695040888963407u;
    return cv_rng;
}

/* The doubles of sweep part `kind` at index i of n. */
static double cv_sweep(int kind, int64_t i, int64_t n)
{
    double x;
    uint64_t b;
    switch (kind) {
    case 0: /* [0, 0.6], where the polynomial serves */
        return 0.6 * (double)i / (double)n;
    case 1: /* [0.5, 23], the exponential */
        return 0.5 + 22.5 * (double)i / (double)n;
    case 2: /* the doubles on either side of 0.4, where the formula changes */
        x = 0.4;
        memcpy(&b, &x, sizeof b);
        b += (uint64_t)(i - n / 2);
        memcpy(&x, &b, sizeof x);
        return x;
    default: /* random bit patterns */
        b = cv_next();
        memcpy(&x, &b, sizeof x);
        return x;
    }
}

/* float64 tanh: the same bits in every part, and its error.  Returns nonzero on failure. */
static int cv_check_f64(void)
{
    static const char *kinds[] = {"[0, 0.6]", "[0.5, 23]", "around 0.4", "random bits"};
    static const int64_t sizes[] = {16000000, 16000000, 2000000, 16000000};
    static const double special[] = {0.0,    5e-324, 2.2250738585072009e-308,
                                     1e-300, 1e-20,  1.4901161193847656e-08,
                                     0.55,   1.0,    19.0,
                                     19.06,  22.0,   22.000000000000004,
                                     710.0,  1e300,  INFINITY,
                                     NAN};
    static const cv_fn64 fns[CV_PARTS] = {hot_tanh_f64, base_tanh_f64, one_tanh_f64};
    enum {
        N = 1 << 14
    };
    static double x[2 * N], h[CV_PARTS][2 * N], want[2 * N];
    int failed = 0;
    double worst_all = 0.0;
    for (int kind = 0; kind < 5; kind++) {
        const int64_t total = kind < 4 ? sizes[kind] : (int64_t)(sizeof special / sizeof *special);
        double worst = 0.0, worst_x = 0.0, worst_libm = 0.0;
        uint64_t diff = 0, diff_ref = 0, bad_special = 0;
        for (int64_t start = 0; start < total; start += N) {
            const int64_t n = total - start < N ? total - start : N;
            for (int64_t i = 0; i < n; i++) {
                x[2 * i] = kind < 4 ? cv_sweep(kind, start + i, total) : special[i];
                x[2 * i + 1] = -x[2 * i];
            }
            for (int p = 0; p < CV_PARTS; p++) fns[p](x, h[p], 2 * n);
            ref_tanh_f64(x, want, 2 * n);
            for (int64_t i = 0; i < 2 * n; i++) {
                for (int p = 1; p < CV_PARTS; p++)
                    diff += memcmp(&h[p][i], &h[0][i], sizeof(double)) != 0;
                diff_ref += memcmp(&h[0][i], &want[i], sizeof(double)) != 0;
                const double g = h[0][i], xi = x[i];
                if (xi != xi) { /* NaN stays NaN */
                    bad_special += g == g;
                    continue;
                }
                if (xi == 0 && (g != 0 || signbit(g) != signbit(xi))) bad_special++;
                const __float128 exact = tanhq((__float128)xi);
                const double e = cv_ulps(g, exact), el = cv_ulps(tanh(xi), exact);
                if (e > worst) worst = e, worst_x = xi;
                if (el > worst_libm) worst_libm = el;
            }
        }
        printf("tanh_f64 %-12s: %lld doubles (both signs), max error %.3f ulp (at %.17g), "
               "C library %.3f ulp; %llu bit differences between the parts, %llu from the "
               "reference, %llu wrong special results\n",
               kind < 4 ? kinds[kind] : "special", (long long)(2 * total), worst, worst_x,
               worst_libm, (unsigned long long)diff, (unsigned long long)diff_ref,
               (unsigned long long)bad_special);
        failed |= diff != 0 || diff_ref != 0 || bad_special != 0;
        if (worst > worst_all) worst_all = worst;
    }
    failed |= !(worst_all <= 1.0);
    return failed;
}

int main(int argc, char **argv)
{
    const uint64_t step = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    const char *wanted = argc > 2 ? argv[2] : "hot,base,one";
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const char *names[CV_PARTS] = {"hot", "base", "one"};
    static const cv_fn tanh_fns[CV_PARTS] = {hot_tanh, base_tanh, one_tanh};
    static const cv_fn sigmoid_fns[CV_PARTS] = {hot_sigmoid, base_sigmoid, one_sigmoid};
    static float z[CV_CHUNK], want[CV_CHUNK], got[CV_CHUNK];
    int failed = 0;
    for (int f = 0; f < 2; f++) {
        const cv_fn reference = f == 0 ? ref_tanh : ref_sigmoid;
        const cv_fn *fns = f == 0 ? tanh_fns : sigmoid_fns;
        uint64_t diff[CV_PARTS] = {0, 0, 0}, checked = 0;
        uint32_t first[CV_PARTS] = {0, 0, 0};
        for (uint64_t start = 0; start < (UINT64_C(1) << 32); start += (uint64_t)CV_CHUNK * step) {
            int64_t n = 0;
            for (uint64_t b = start; n < CV_CHUNK && b < (UINT64_C(1) << 32); b += step, n++) {
                const uint32_t bits = (uint32_t)b;
                memcpy(&z[n], &bits, sizeof bits);
            }
            reference(z, want, n);
            for (int p = 0; p < CV_PARTS; p++) {
                if (!strstr(wanted, names[p])) continue;
                /* odd lengths too, so the tails of the loops are checked */
                const int64_t len = (start / CV_CHUNK) % 2 ? n - 3 : n;
                fns[p](z, got, len);
                if (len < n) fns[p](z + len, got + len, n - len);
                for (int64_t i = 0; i < n; i++)
                    if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
                        if (diff[p]++ == 0) memcpy(&first[p], &z[i], sizeof first[p]);
                    }
            }
            checked += (uint64_t)n;
        }
        for (int p = 0; p < CV_PARTS; p++) {
            if (!strstr(wanted, names[p])) continue;
            printf("%-7s %-4s: %llu of %llu float inputs differ from the reference",
                   f == 0 ? "tanh" : "sigmoid", names[p], (unsigned long long)diff[p],
                   (unsigned long long)checked);
            if (diff[p]) printf(" (first: bits 0x%08x)", first[p]);
            printf("\n");
            failed |= diff[p] != 0;
        }
    }
    failed |= cv_check_f64();
    return failed;
}
#endif
