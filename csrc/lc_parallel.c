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
 * Each thread of a team has a slot (the caller 0, helpers 1, 2, ... in the order they start)
 * holding its own run of a generation's parts: slot t of a team of T threads gets the parts
 * [t n / T, (t + 1) n / T).  A thread claims from its own slot first and then from the others'
 * in turn, so a part number goes to the same thread generation after generation while every
 * thread keeps up.  The training step's parameter parts then find their ranges of the
 * parameters, gradient and moments in the cache of the core that updated them the step before:
 * on the project's 2-core Zen 3, claiming from one shared word moved those ranges between the
 * cores and made each part run about 1.5x slower on two threads than on one.  Which thread runs
 * a part never changes its result.
 *
 * A slot's claim word holds a generation (high 32 bits), the end of its run (16 bits) and its
 * next part (low 16 bits); a claim is a compare-and-swap on the whole word, so it can only take
 * a part that exists in the generation the claimer saw.  A caller moves to the next generation
 * only after every part of the current one has finished, so fn and ctx read after a successful
 * claim are those of its generation.
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

/* One claim word, alone on its cache line. */
typedef struct {
    uint64_t word; /* generation << 32 | end << 16 | next part */
    char pad[64 - sizeof(uint64_t)];
} lc_slot;

struct lc_team {
#if LC_HAVE_THREADS
    lc_slot slots[LC_MAX_PARTS]; /* thread t's own run of parts in its slot t */
    uint64_t gen;                /* the current generation */
    int64_t finished;            /* parts of the current generation finished */
    int64_t refs;                /* the caller and the helpers still holding the block */
    int64_t joined;              /* slots taken: the caller's 0, then one per helper */
    int stop;                    /* set with the last generation: helpers exit */
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

/* Claims and runs parts of generation gen from slot k until it is empty or the generation
 * changed; 0 when the generation changed. */
static int lc_team_drain(lc_team *team, uint64_t gen, int64_t k)
{
    uint64_t *word = &team->slots[k].word;
    for (;;) {
        uint64_t w = lc_atomic_load_u64(word, LC_ACQUIRE);
        if ((w >> LC_GEN_SHIFT) != gen) return 0;
        const int64_t part = (int64_t)(w & LC_FIELD_MASK);
        if (part >= (int64_t)((w >> LC_COUNT_SHIFT) & LC_FIELD_MASK)) return 1;
        if (!lc_atomic_cas_u64(word, &w, w + 1, LC_ACQ_REL, LC_ACQUIRE)) continue;
        team->fn(team->ctx, part);
        lc_atomic_add_i64(&team->finished, 1, LC_RELEASE);
    }
}

/* Runs parts of generation gen as thread `self`: its own slot first, then the others'. */
static void lc_team_work(lc_team *team, uint64_t gen, int64_t self)
{
    for (int64_t i = 0; i < team->size; i++)
        if (!lc_team_drain(team, gen, (self + i) % team->size)) return;
}

LC_THREAD_PROC(lc_team_helper, arg)
{
    lc_team *team = (lc_team *)arg;
    const int64_t self = lc_atomic_add_i64(&team->joined, 1, LC_RELAXED);
    uint64_t seen = 0;
    unsigned spins = 0;
    for (;;) {
        const uint64_t gen = lc_atomic_load_u64(&team->gen, LC_ACQUIRE);
        if (lc_atomic_load_int(&team->stop, LC_ACQUIRE)) break;
        if (gen != seen) {
            seen = gen;
            lc_team_work(team, gen, self);
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
    team->joined = 0; /* the caller's slot: 0 */
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
        const uint64_t gen = (lc_atomic_load_u64(&team->gen, LC_RELAXED) + 1) & 0xffffffffu;
        team->fn = fn;
        team->ctx = ctx;
        lc_atomic_store_i64(&team->finished, 0, LC_RELAXED);
        /* slot t: the parts [t n / size, (t + 1) n / size) */
        for (int64_t t = 0; t < team->size; t++) {
            const uint64_t lo = (uint64_t)(t * n_parts / team->size);
            const uint64_t hi = (uint64_t)((t + 1) * n_parts / team->size);
            lc_atomic_store_u64(&team->slots[t].word,
                                gen << LC_GEN_SHIFT | hi << LC_COUNT_SHIFT | lo, LC_RELEASE);
        }
        lc_atomic_store_u64(&team->gen, gen, LC_RELEASE);
        lc_team_work(team, gen, 0);
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
