/* lc_parallel.h: a parallel loop over a fixed number of parts, for kernels whose work splits
 * into independent pieces (samples of a batch).
 *
 * Results never depend on the number of threads: a kernel chooses its number of parts from
 * its arguments alone, each part writes only its own output, and the kernel combines the
 * parts' outputs in part order afterwards.  Threads are detached helpers; one that outlives a
 * call touches only its team's shared block, never the caller's data.  The last team ended
 * waits in a pool of one for the next kernel call, its helpers spinning for a millisecond or a
 * few before they retire it: on the project's Zen 3 VM, starting helpers for each call cost
 * more than the parts saved (four parts of 15 us: 71-88 us a call on two threads, 57 on one;
 * from the pool, 30).
 * A forked child forgets the pool (pthread_atfork), whose helpers it does not have, and
 * starts its own; a caller never waits for a part nobody claimed, so no call can hang on a
 * missing helper. */
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
/* Runs fn(ctx, part) for every part in [0, n_parts) on up to min(n_parts, threads) threads,
 * the calling thread included; returns when every part has run.  Each thread claims the next
 * part until none is left, so a helper that starts late costs nothing; if no helper can be
 * made, the caller runs every part. */
void lc_parallel_for(int64_t n_parts, lc_part_fn fn, void *ctx);

/* A team of threads kept for a run of many short parallel loops (a Lanczos run: one product
 * per step, a little serial work between), so that each loop does not pay for creating
 * threads and waking an idle core.  Between loops the helpers spin (yielding now and then),
 * so a team is held only for such a run, inside one kernel call; ended, it goes to the pool
 * (above) for the next call that asks for the same number of threads.  Helpers are detached:
 * ending a team never waits for them.  Teams of one (no threads, or no POSIX threads) run
 * every part on the caller. */
typedef struct lc_team lc_team;
/* A team of up to n threads (the caller included; n is capped by lc_get_num_threads() and
 * LC_MAX_PARTS), the pool's when it has that many; NULL only when out of memory. */
lc_team *lc_team_start(int64_t n);
/* Like lc_parallel_for, on the team (team NULL: lc_parallel_for itself).  Each thread first
 * claims its own contiguous run of the parts (thread t of T: [t n / T, (t + 1) n / T)), then
 * any part left in the others' runs, so from one loop to the next a part number runs on the
 * same core while every thread keeps up, and its data stays in that core's cache. */
void lc_team_run(lc_team *team, int64_t n_parts, lc_part_fn fn, void *ctx);
/* Ends the team (NULL is fine): into the pool when it has every helper it asked for and the
 * pool is empty, else its helpers exit and it is freed. */
void lc_team_end(lc_team *team);
/* Helper threads this process has started so far (0 without threads).  A forked child starts
 * from its parent's count, so compare two readings: a child that trains on two threads must
 * raise it, since its parent's helpers did not come with it. */
int64_t lc_helpers_started(void);

#endif
