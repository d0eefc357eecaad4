/* lc_parallel.c: see lc_parallel.h.  POSIX threads; elsewhere every part runs on the caller. */
#include "lc_parallel.h"

#if !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
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

/* -- teams -------------------------------------------------------------------------------- */
#include <stdlib.h>

#if defined(LC_HAVE_PTHREADS) && defined(__GNUC__)
#define LC_HAVE_TEAMS 1
#if defined(__x86_64__) || defined(__i386__)
#define LC_CPU_PAUSE() __builtin_ia32_pause()
#else
#define LC_CPU_PAUSE() ((void)0)
#endif
/* One wait of a spin loop: a pause, and after the first 4096 a yield of the processor, so a
 * team on more threads than free cores (another process busy, or more threads asked for than
 * there are cores) lets the threads with work run. */
#define LC_SPIN_WAIT(spins) ((++(spins) & 4095) ? LC_CPU_PAUSE() : (void)sched_yield())
#endif

struct lc_team {
    int64_t size; /* threads, the caller included */
#ifdef LC_HAVE_TEAMS
    pthread_t tid[LC_MAX_PARTS];
    struct lc_team_slot {
        struct lc_team *team;
        int64_t index;
    } slot[LC_MAX_PARTS];
    int64_t gen;  /* bumped (release) to hand out a loop; helpers wait for a change */
    int64_t done; /* helpers that finished the current loop */
    int stop;
    lc_part_fn fn;
    void *ctx;
    int64_t n_parts;
#endif
};

#ifdef LC_HAVE_TEAMS
static void *lc_team_helper(void *arg)
{
    const struct lc_team_slot *slot = (const struct lc_team_slot *)arg;
    struct lc_team *team = slot->team;
    int64_t seen = 0;
    for (;;) {
        int64_t gen;
        unsigned spins = 0;
        while ((gen = __atomic_load_n(&team->gen, __ATOMIC_ACQUIRE)) == seen) LC_SPIN_WAIT(spins);
        seen = gen;
        if (team->stop) return 0;
        for (int64_t p = slot->index; p < team->n_parts; p += team->size) team->fn(team->ctx, p);
        __atomic_add_fetch(&team->done, 1, __ATOMIC_RELEASE);
    }
}
#endif

lc_team *lc_team_start(int64_t n)
{
    lc_team *team = (lc_team *)calloc(1, sizeof(lc_team));
    if (!team) return 0;
    if (n > lc_threads) n = lc_threads;
    if (n > LC_MAX_PARTS) n = LC_MAX_PARTS;
    team->size = 1;
#ifdef LC_HAVE_TEAMS
    /* helpers are numbered in the order they start, so a failed start just makes the team
     * smaller */
    for (int64_t t = 1; t < n; t++) {
        team->slot[t].team = team;
        team->slot[t].index = t;
        if (pthread_create(&team->tid[t], 0, lc_team_helper, &team->slot[t]) != 0) break;
        team->size = t + 1;
    }
#else
    (void)n;
#endif
    return team;
}

void lc_team_run(lc_team *team, int64_t n_parts, lc_part_fn fn, void *ctx)
{
    if (!team) {
        lc_parallel_for(n_parts, fn, ctx);
        return;
    }
#ifdef LC_HAVE_TEAMS
    if (team->size > 1) {
        team->fn = fn;
        team->ctx = ctx;
        team->n_parts = n_parts;
        __atomic_store_n(&team->done, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&team->gen, 1, __ATOMIC_RELEASE);
        for (int64_t p = 0; p < n_parts; p += team->size) fn(ctx, p);
        unsigned spins = 0;
        while (__atomic_load_n(&team->done, __ATOMIC_ACQUIRE) < team->size - 1) LC_SPIN_WAIT(spins);
        return;
    }
#endif
    for (int64_t p = 0; p < n_parts; p++) fn(ctx, p);
}

void lc_team_end(lc_team *team)
{
    if (!team) return;
#ifdef LC_HAVE_TEAMS
    if (team->size > 1) {
        team->stop = 1;
        __atomic_add_fetch(&team->gen, 1, __ATOMIC_RELEASE);
        for (int64_t t = 1; t < team->size; t++) pthread_join(team->tid[t], 0);
    }
#endif
    free(team);
}
