/* lc_parallel.c: see lc_parallel.h.
 *
 * Parts are claimed, not assigned: every thread (the caller included) takes the next
 * unclaimed part until none is left, and the caller waits only for parts that were claimed.
 * A helper that starts late, or whose core the system gives to something else, therefore
 * costs at most the part it holds: the caller does the rest, and never waits for a helper
 * that has not started.  Helpers are detached; the state they share lives in a block freed
 * by whichever of them and the caller lets go of it last, so a helper that wakes after the
 * call has returned finds the block closed and exits.
 *
 * The claim word holds a generation (high 32 bits), the generation's number of parts (16 bits)
 * and the next part (low 16 bits); a claim is a compare-and-swap on the whole word, so it can
 * only take a part that exists in the generation the claimer saw.  A caller moves to the next
 * generation only after every part of the current one has finished, so fn and ctx read after
 * a successful claim are those of its generation.
 * Threads and atomics come from lc_threads.h (POSIX threads or Win32); without them every part
 * runs on the caller. */
#include "lc_parallel.h"

#include <stdlib.h>

#include "lc_threads.h"

/* One wait of a spin loop: a pause, and every 4096th a yield of the processor, so waiting
 * threads let others with work run on a busy or oversubscribed machine. */
#define LC_SPIN_WAIT(spins) ((++(spins) & 4095) ? lc_cpu_pause() : lc_thread_yield())

static int lc_threads = 1;

int lc_get_num_threads(void)
{
    return lc_atomic_load_int(&lc_threads, LC_RELAXED);
}

void lc_set_num_threads(int n)
{
    lc_atomic_store_int(&lc_threads, n < 1 ? 1 : n, LC_RELAXED);
}

#define LC_GEN_SHIFT 32
#define LC_COUNT_SHIFT 16
#define LC_FIELD_MASK ((((uint64_t)1) << LC_COUNT_SHIFT) - 1)

struct lc_team {
#if LC_HAVE_THREADS
    uint64_t word;    /* generation << 32 | parts << 16 | next part */
    int64_t finished; /* parts of the current generation finished */
    int64_t refs;     /* the caller and the helpers still holding the block */
    int stop;         /* set with the last generation: helpers exit */
    lc_part_fn fn;
    void *ctx;
#endif
    int64_t size; /* threads asked for, the caller included */
};

#if LC_HAVE_THREADS
static void lc_team_release(lc_team *team)
{
    if (lc_atomic_add_i64(&team->refs, -1, LC_ACQ_REL) == 0) free(team);
}

/* Claims and runs parts of generation gen until none is left or the generation changed. */
static void lc_team_work(lc_team *team, uint64_t gen)
{
    for (;;) {
        uint64_t w = lc_atomic_load_u64(&team->word, LC_ACQUIRE);
        if ((w >> LC_GEN_SHIFT) != gen) return;
        const int64_t part = (int64_t)(w & LC_FIELD_MASK);
        if (part >= (int64_t)((w >> LC_COUNT_SHIFT) & LC_FIELD_MASK)) return;
        if (!lc_atomic_cas_u64(&team->word, &w, w + 1, LC_ACQ_REL, LC_ACQUIRE)) continue;
        team->fn(team->ctx, part);
        lc_atomic_add_i64(&team->finished, 1, LC_RELEASE);
    }
}

LC_THREAD_PROC(lc_team_helper, arg)
{
    lc_team *team = (lc_team *)arg;
    uint64_t seen = 0;
    unsigned spins = 0;
    for (;;) {
        const uint64_t gen = lc_atomic_load_u64(&team->word, LC_ACQUIRE) >> LC_GEN_SHIFT;
        if (lc_atomic_load_int(&team->stop, LC_ACQUIRE)) break;
        if (gen != seen) {
            seen = gen;
            lc_team_work(team, gen);
            spins = 0;
        } else {
            LC_SPIN_WAIT(spins);
        }
    }
    lc_team_release(team);
    return LC_THREAD_DONE;
}
#endif

lc_team *lc_team_start(int64_t n)
{
    lc_team *team = (lc_team *)calloc(1, sizeof(lc_team));
    if (!team) return 0;
    if (n > lc_get_num_threads()) n = lc_get_num_threads();
    if (n > LC_MAX_PARTS) n = LC_MAX_PARTS;
    team->size = n < 1 ? 1 : n;
#if LC_HAVE_THREADS
    team->refs = 1;
    if (team->size > 1) {
        for (int64_t t = 1; t < team->size; t++) {
            lc_atomic_add_i64(&team->refs, 1, LC_RELAXED);
            if (lc_thread_spawn_detached(lc_team_helper, team) != 0) {
                lc_atomic_add_i64(&team->refs, -1, LC_RELAXED);
                break;
            }
        }
    }
#endif
    return team;
}

void lc_team_run(lc_team *team, int64_t n_parts, lc_part_fn fn, void *ctx)
{
    if (!team) {
        lc_parallel_for(n_parts, fn, ctx);
        return;
    }
#if LC_HAVE_THREADS
    if (team->size > 1 && n_parts > 1 && (uint64_t)n_parts <= LC_FIELD_MASK) {
        const uint64_t gen =
            ((lc_atomic_load_u64(&team->word, LC_RELAXED) >> LC_GEN_SHIFT) + 1) & 0xffffffffu;
        team->fn = fn;
        team->ctx = ctx;
        lc_atomic_store_i64(&team->finished, 0, LC_RELAXED);
        lc_atomic_store_u64(&team->word, gen << LC_GEN_SHIFT | (uint64_t)n_parts << LC_COUNT_SHIFT,
                            LC_RELEASE);
        lc_team_work(team, gen);
        unsigned spins = 0;
        while (lc_atomic_load_i64(&team->finished, LC_ACQUIRE) < n_parts) LC_SPIN_WAIT(spins);
        return;
    }
#endif
    for (int64_t p = 0; p < n_parts; p++) fn(ctx, p);
}

void lc_team_end(lc_team *team)
{
    if (!team) return;
#if LC_HAVE_THREADS
    lc_atomic_store_int(&team->stop, 1, LC_RELEASE);
    lc_team_release(team);
#else
    free(team);
#endif
}

void lc_parallel_for(int64_t n_parts, lc_part_fn fn, void *ctx)
{
    int64_t T = lc_get_num_threads();
    if (T > n_parts) T = n_parts;
    if (T > 1) {
        lc_team *team = lc_team_start(T);
        if (team) {
            lc_team_run(team, n_parts, fn, ctx);
            lc_team_end(team);
            return;
        }
    }
    for (int64_t p = 0; p < n_parts; p++) fn(ctx, p);
}
