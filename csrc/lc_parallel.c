/* lc_parallel.c: see lc_parallel.h.
 *
 * Parts are claimed, not assigned: a thread runs a part only after marking it claimed, and
 * the caller waits only for parts that were claimed.  A helper that starts late, or whose core
 * the system gives to something else, therefore costs at most the part it holds: the caller
 * does the rest, and never waits for a helper that has not started.  Helpers are detached; the
 * state they share lives in a block freed by whichever of them and the caller lets go of it
 * last, so a helper that wakes after the call has returned finds the block closed and exits.
 *
 * Each thread of a team has an index (the caller 0) and first claims the parts of its own
 * block, [i n / T, (i + 1) n / T) of the n parts for T threads, in increasing order; only when
 * none of those is left does it take the highest unclaimed part of another block.  A kernel
 * that runs the same parts step after step (the parameter ranges of training: gradient, moments,
 * parameters) then finds each range in the cache of the core that ran it last time, instead of
 * moving it between cores at random (Zen 3: the moments, gradient and parameters of the
 * 100-80-64-64-32-1 network are 390 KB a step).  Which thread runs a part changes no bit: each
 * part writes only its own outputs.
 *
 * The claim word holds a generation (high 32 bits) and the set of the generation's parts
 * already claimed (low 32 bits, one bit a part, so at most 32 parts a generation; a longer run
 * is made of several generations); a claim is a compare-and-swap on the whole word, so it can
 * only take a part of the generation the claimer saw.  A caller moves to the next generation
 * only after every part of the current one has finished, so the fn, ctx and part counts read
 * after a successful claim are those of its generation.
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
#define LC_GEN_PARTS 32 /* parts of one generation: the bits of the claimed set */
#define LC_CLAIM_MASK ((((uint64_t)1) << LC_GEN_PARTS) - 1)

struct lc_team {
#if LC_HAVE_THREADS
    uint64_t word;    /* generation << 32 | the set of claimed parts */
    int64_t finished; /* parts of the current generation finished */
    int64_t n, base;  /* the generation's parts: fn(ctx, base + p) for p in [0, n) */
    int64_t refs;     /* the caller and the helpers still holding the block */
    int64_t joined;   /* helpers that have taken an index */
    int stop;         /* set with the last generation: helpers exit */
    lc_part_fn fn;
    void *ctx;
#endif
    int64_t size; /* threads of the team, the caller included */
};

#if LC_HAVE_THREADS
static void lc_team_release(lc_team *team)
{
    if (lc_atomic_add_i64(&team->refs, -1, LC_ACQ_REL) == 0) free(team);
}

/* Index of the lowest (highest when high) set bit of m, which is not zero. */
static int lc_bit_index(uint64_t m, int high)
{
    int i = 0;
    if (high) {
        while (m >>= 1) i++;
    } else {
        while (!(m & 1)) {
            m >>= 1;
            i++;
        }
    }
    return i;
}

/* Claims and runs parts of generation gen, as thread me of the team, until none is left or the
 * generation changed: the lowest unclaimed part of its own block first, then the highest
 * unclaimed part of any other block. */
static void lc_team_work(lc_team *team, uint64_t gen, int64_t me)
{
    uint64_t w = lc_atomic_load_u64(&team->word, LC_ACQUIRE);
    if ((w >> LC_GEN_SHIFT) != gen) return;
    const int64_t n = lc_atomic_load_i64(&team->n, LC_RELAXED), T = team->size;
    const int64_t lo = me * n / T, hi = (me + 1) * n / T;
    const uint64_t all = n >= LC_GEN_PARTS ? LC_CLAIM_MASK : (((uint64_t)1) << n) - 1;
    const uint64_t own = (hi >= LC_GEN_PARTS ? LC_CLAIM_MASK : (((uint64_t)1) << hi) - 1) &
                         ~((((uint64_t)1) << lo) - 1);
    for (;;) {
        if ((w >> LC_GEN_SHIFT) != gen) return;
        const uint64_t open = all & ~w, mine = open & own;
        if (!open) return;
        const int part = mine ? lc_bit_index(mine, 0) : lc_bit_index(open, 1);
        if (!lc_atomic_cas_u64(&team->word, &w, w | ((uint64_t)1) << part, LC_ACQ_REL, LC_ACQUIRE))
            continue; /* w now holds the word seen */
        team->fn(team->ctx, team->base + part);
        lc_atomic_add_i64(&team->finished, 1, LC_RELEASE);
        w = lc_atomic_load_u64(&team->word, LC_ACQUIRE);
    }
}

LC_THREAD_PROC(lc_team_helper, arg)
{
    lc_team *team = (lc_team *)arg;
    const int64_t me = lc_atomic_add_i64(&team->joined, 1, LC_RELAXED); /* 1, 2, ... */
    uint64_t seen = 0;
    unsigned spins = 0;
    for (;;) {
        const uint64_t gen = lc_atomic_load_u64(&team->word, LC_ACQUIRE) >> LC_GEN_SHIFT;
        if (lc_atomic_load_int(&team->stop, LC_ACQUIRE)) break;
        if (gen != seen) {
            seen = gen;
            if (me < team->size) lc_team_work(team, gen, me);
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
    int64_t made = 1;
    for (; made < team->size; made++) {
        lc_atomic_add_i64(&team->refs, 1, LC_RELAXED);
        if (lc_thread_spawn_detached(lc_team_helper, team) != 0) {
            lc_atomic_add_i64(&team->refs, -1, LC_RELAXED);
            break;
        }
    }
    /* The helpers made so far read size only after a generation is published (with release),
     * so lowering it here, before any, is seen by all of them. */
    team->size = made;
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
    if (team->size > 1 && n_parts > 1) {
        team->fn = fn;
        team->ctx = ctx;
        for (int64_t base = 0; base < n_parts; base += LC_GEN_PARTS) {
            const int64_t n = n_parts - base < LC_GEN_PARTS ? n_parts - base : LC_GEN_PARTS;
            const uint64_t gen =
                ((lc_atomic_load_u64(&team->word, LC_RELAXED) >> LC_GEN_SHIFT) + 1) & 0xffffffffu;
            team->base = base;
            lc_atomic_store_i64(&team->n, n, LC_RELAXED);
            lc_atomic_store_i64(&team->finished, 0, LC_RELAXED);
            lc_atomic_store_u64(&team->word, gen << LC_GEN_SHIFT, LC_RELEASE);
            lc_team_work(team, gen, 0);
            unsigned spins = 0;
            while (lc_atomic_load_i64(&team->finished, LC_ACQUIRE) < n) LC_SPIN_WAIT(spins);
        }
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
