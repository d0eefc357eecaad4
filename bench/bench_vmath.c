/* bench_vmath.c: the activation passes of lc_vmath.h, timed one at a time on one thread.
 *
 * Build and run from the repository root (the build's own options, see setup.py):
 *
 *   gcc -O3 -std=c11 -fno-math-errno -ffp-contract=off -pthread -Wno-psabi -Icsrc \
 *       bench/bench_vmath.c csrc/lc_*.c -lm -o /tmp/bench_vmath && /tmp/bench_vmath
 *
 * Each figure is the minimum over many repetitions (the machine may be shared) of one pass of
 * lc_act_forward over n values drawn from a normal distribution of standard deviation 2 (the
 * range a trained tanh layer sees), in ns and core cycles per element, the clock being
 * measured first by a chain of dependent integer additions (one cycle each).  For float64
 * tanh the same pass through the C library's scalar tanh is timed beside it.  Arguments:
 * [repetitions scale, default 1]. */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_clock.h"
#include "lc_dense.h"

static double ghz;

/* A normal deviate of standard deviation 2 (Box-Muller on a fixed LCG: the same values in
 * every run). */
static double normal2(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double v = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    return 2.0 * sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static volatile double sink;

#define TIME_MIN(best, reps, stmt)                                                                 \
    do {                                                                                           \
        (best) = 1e30;                                                                             \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            const double t_ = now_ns();                                                            \
            stmt;                                                                                  \
            const double dt_ = now_ns() - t_;                                                      \
            if (dt_ < (best)) (best) = dt_;                                                        \
        }                                                                                          \
    } while (0)

static void report(const char *what, int64_t n, double ns)
{
    printf("  %-34s n=%5lld  %6.2f ns/element  %6.2f cycles/element\n", what, (long long)n,
           ns / (double)n, ns * ghz / (double)n);
}

static void libm_tanh(const double *z, double *h, int64_t n)
{
    for (int64_t i = 0; i < n; i++) h[i] = tanh(z[i]);
}

int main(int argc, char **argv)
{
    const int scale = argc > 1 ? atoi(argv[1]) : 1;
    const int reps = 2000 * (scale > 0 ? scale : 1);
    ghz = cycles_per_ns();
    printf("clock: %.2f GHz (dependent integer additions)\n", ghz);
    static const int64_t sizes[] = {1024, 32 * 32, 37};
    float zf[1024], hf[1024];
    double zd[1024], hd[1024];
    uint64_t s = 42;
    for (int i = 0; i < 1024; i++) zd[i] = normal2(&s), zf[i] = (float)zd[i];
    for (int k = 0; k < 3; k += 2) {
        const int64_t n = sizes[k];
        double t;
        TIME_MIN(t, reps, lc_act_forward_f32(LC_ACT_TANH, zf, hf, n));
        report("float32 tanh", n, t);
        TIME_MIN(t, reps, lc_act_forward_f32(LC_ACT_SIGMOID, zf, hf, n));
        report("float32 sigmoid", n, t);
        TIME_MIN(t, reps, lc_act_forward_f64(LC_ACT_TANH, zd, hd, n));
        report("float64 tanh", n, t);
        TIME_MIN(t, reps, lc_act_forward_f64(LC_ACT_SIGMOID, zd, hd, n));
        report("float64 sigmoid", n, t);
        TIME_MIN(t, reps, libm_tanh(zd, hd, n));
        report("float64 tanh, C library loop", n, t);
        sink = hd[0] + hf[0];
    }
    return 0;
}
