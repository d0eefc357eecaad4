/* bench_clock.h: the clocks of the C benchmarks (bench_kernels.c, bench_vmath.c). */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall time in ns (POSIX: the including file defines _POSIX_C_SOURCE before any header). */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Core cycles per ns: 10^6 dependent one-cycle additions, fastest of 50 runs (0 where the
 * chain cannot be written: not x86-64 GCC/Clang). */
static double cycles_per_ns(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    double best = 1e30;
    for (int r = 0; r < 50; r++) {
        uint64_t x = 0;
        const double t = now_ns();
        for (int i = 0; i < 10000; i++)
            __asm__ volatile(".rept 100\n\taddq $1, %0\n\t.endr" : "+r"(x));
        const double dt = now_ns() - t;
        if (dt < best) best = dt;
    }
    return 1e6 / best;
#else
    return 0;
#endif
}

#endif
