/* bench_kernels.c: the single-thread products, activation passes and optimizer step of the
 * training networks, timed one shape at a time, and a whole epoch of each network in C.
 *
 * Build and run from the repository root (the build's own options, see setup.py):
 *
 *   gcc -O3 -std=c11 -fno-math-errno -ffp-contract=off -pthread -Wno-psabi -Icsrc \
 *       bench/bench_kernels.c csrc/lc_*.c -lm -o /tmp/bench_kernels && /tmp/bench_kernels
 *
 * Every figure is the minimum over many repetitions (the machine may be shared), in ns per
 * call (a whole epoch: the thread's CPU time), GFLOP/s (2 flops per multiply-add) and core cycles per multiply-add, the clock being
 * measured first by a chain of dependent integer additions (one cycle each).  The last line
 * is a checksum of every output: two builds giving the same checksum computed the same bits
 * (for comparing a kernel change against the previous sources, same run).  Arguments:
 * [repetitions scale, default 1]. */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "lc_dense.h"
#include "lc_optim.h"

/* CPU time of the calling thread (POSIX), for runs long enough to be preempted. */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t checksum = 1469598103934665603ULL;
static void mix(const void *p, size_t bytes)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < bytes; i++) checksum = (checksum ^ c[i]) * 1099511628211ULL;
}

static uint64_t rng = 88172645463325252ULL;
static double uniform(void) /* in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static double ghz;
static int scale = 1;

#define TIME_MIN(best, reps, stmt)                                                                 \
    do {                                                                                           \
        best = 1e30;                                                                               \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            const double t_ = now_ns();                                                            \
            for (int q_ = 0; q_ < 8; q_++) {                                                       \
                stmt;                                                                              \
            }                                                                                      \
            const double d_ = (now_ns() - t_) / 8;                                                 \
            if (d_ < best) best = d_;                                                              \
        }                                                                                          \
    } while (0)

static void report(const char *what, double ns, double macs)
{
    if (macs > 0)
        printf("  %-34s %9.0f ns %7.2f GFLOP/s %6.3f cyc/MAC\n", what, ns, 2 * macs / ns,
               ghz > 0 ? ns * ghz / macs : 0.0);
    else
        printf("  %-34s %9.0f ns\n", what, ns);
}

#define REAL float
#define SFX f32
#include "bench_kernels_impl.h"
#undef REAL
#undef SFX
#define REAL double
#define SFX f64
#include "bench_kernels_impl.h"

int main(int argc, char **argv)
{
    if (argc > 1) scale = atoi(argv[1]) > 0 ? atoi(argv[1]) : 1;
    ghz = cycles_per_ns();
    printf("clock (dependent additions): %.2f GHz\n", ghz);
    static const int64_t s1[] = {1, 32, 32, 32, 1}, s2[] = {100, 80, 64, 64, 32, 1},
                         s3[] = {4, 80, 80, 64, 64, 4}, s4[] = {1, 16, 16, 1};
    static const int32_t a1[] = {LC_ACT_RELU, LC_ACT_RELU, LC_ACT_TANH, LC_ACT_LINEAR},
                         a2[] = {LC_ACT_RELU, LC_ACT_RELU, LC_ACT_RELU, LC_ACT_RELU, LC_ACT_TANH},
                         a3[] = {LC_ACT_RELU, LC_ACT_RELU, LC_ACT_RELU, LC_ACT_RELU, LC_ACT_LINEAR},
                         a4[] = {LC_ACT_TANH, LC_ACT_TANH, LC_ACT_LINEAR};
    net_f32("1-32-32-32-1 float32 (Simple_sine)", 4, s1, a1, 566);
    net_f32("100-80-64-64-32-1 float32", 5, s2, a2, 5040);
    net_f32("4-80-80-64-64-4 float32", 5, s3, a3, 2250);
    net_f64("1-16-16-1 float64", 3, s4, a4, 1000);
    odd_shapes_f32();
    odd_shapes_f64();
    printf("checksum of every output: %016llx\n", (unsigned long long)checksum);
    return 0;
}
