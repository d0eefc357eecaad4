/* lc_parallel.c: see lc_parallel.h.  POSIX threads; elsewhere every part runs on the caller. */
#include "lc_parallel.h"

#if !defined(_WIN32)
#include <pthread.h>
#define LC_HAVE_PTHREADS 1
#endif

static volatile int lc_threads = 1;

int lc_get_num_threads(void) { return lc_threads; }

void lc_set_num_threads(int n) { lc_threads = n < 1 ? 1 : n; }

typedef struct {
    lc_part_fn fn;
    void *ctx;
    int64_t first, step, n_parts;
} lc_worker;

static void *lc_worker_run(void *arg)
{
    const lc_worker *w = (const lc_worker *)arg;
    for (int64_t p = w->first; p < w->n_parts; p += w->step) w->fn(w->ctx, p);
    return 0;
}

void lc_parallel_for(int64_t n_parts, lc_part_fn fn, void *ctx)
{
    int64_t T = lc_threads;
    if (T > n_parts) T = n_parts;
    if (T > LC_MAX_PARTS) T = LC_MAX_PARTS;
#ifdef LC_HAVE_PTHREADS
    if (T > 1) {
        lc_worker w[LC_MAX_PARTS];
        pthread_t tid[LC_MAX_PARTS];
        int started[LC_MAX_PARTS];
        for (int64_t t = 0; t < T; t++) {
            w[t].fn = fn;
            w[t].ctx = ctx;
            w[t].first = t;
            w[t].step = T;
            w[t].n_parts = n_parts;
        }
        for (int64_t t = 1; t < T; t++) started[t] = pthread_create(&tid[t], 0, lc_worker_run, &w[t]) == 0;
        lc_worker_run(&w[0]);
        for (int64_t t = 1; t < T; t++) {
            if (started[t])
                pthread_join(tid[t], 0);
            else
                lc_worker_run(&w[t]);
        }
        return;
    }
#endif
    for (int64_t p = 0; p < n_parts; p++) fn(ctx, p);
}
