/* lc_parallel.h: a parallel loop over a fixed number of parts, for kernels whose work splits
 * into independent pieces (samples of a batch).
 *
 * Results never depend on the number of threads: a kernel chooses its number of parts from
 * its arguments alone, each part writes only its own output, and the kernel combines the
 * parts' outputs in part order afterwards.  Threads are created for one call and joined before
 * it returns; nothing persists between calls, so a process may fork at any time. */
#ifndef LC_PARALLEL_H
#define LC_PARALLEL_H

#include <stdint.h>

/* Most parts a kernel splits its work into. */
#define LC_MAX_PARTS 8

typedef void (*lc_part_fn)(void *ctx, int64_t part);

/* Threads a parallel loop may use (the calling thread included); 1 at load. */
int lc_get_num_threads(void);
/* Sets it; values below 1 mean 1. */
void lc_set_num_threads(int n);
/* Runs fn(ctx, part) for every part in [0, n_parts): with T = min(n_parts, threads), thread t
 * takes the parts t, t + T, ... and the calling thread is thread 0.  A thread that cannot be
 * created leaves its parts to the calling thread. */
void lc_parallel_for(int64_t n_parts, lc_part_fn fn, void *ctx);

#endif
