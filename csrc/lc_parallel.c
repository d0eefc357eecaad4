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
/* POSIX.1-2008 (clock_gettime, pthread_atfork), which strict C (-std=c11) leaves out of the
 * system headers unless asked; defined before any of them is included. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

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
    int stop;                    /* set when the team is retired: helpers exit */
    int parked;                  /* 1 while the team waits in the pool for its next caller */
    int64_t spawned;             /* helpers started (size - 1 unless a start failed) */
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

/* The pool: the last ended team, its helpers still spinning, as a pointer held in a 64-bit
 * word, or 0 for none.  Taking it out (a compare-and-swap to 0) gives its owner reference to
 * whoever took it: lc_team_start to reuse it, or a helper that has waited LC_LINGER_NS to
 * retire it. */
static uint64_t lc_pool_word;

/* Nanoseconds a helper of a parked team waits for a caller before it retires the team, timed
 * every LC_LINGER_CHECK spins: the next kernel call of a loop (the next epoch of a fit, the
 * next hvp() of a user's loop) then finds its threads running, and a process that stops
 * calling gets its cores back soon after (on the project's KVM guest the helper retired the
 * team 1-4 ms after it was parked, and its thread was gone 3-8 ms after).  Counted in spins,
 * the wait would vary with the processor and the hypervisor: 20,000 pauses took 6 ms there. */
#define LC_LINGER_NS 1000000
#define LC_LINGER_CHECK 64

/* Ends a team taken out of the pool or never put in: its helpers exit, the owner reference is
 * let go. */
static void lc_team_retire(lc_team *team)
{
    lc_atomic_store_int(&team->stop, 1, LC_RELEASE);
    lc_team_release(team);
}

/* A forked child has only the thread that forked: the pool's helpers did not come with it, so
 * the child forgets the pool (its block is left, not freed: nothing in the child may touch
 * it) and its first team starts helpers of its own. */
static void lc_pool_forget(void)
{
    lc_pool_word = 0;
}

static uint64_t lc_pool_hooked;

/* Helpers this process has started, for lc_helpers_started. */
static int64_t lc_helpers_count;

static void lc_pool_hook_fork(void)
{
#if !defined(_WIN32)
    uint64_t expected = 0;
    if (lc_atomic_load_u64(&lc_pool_hooked, LC_ACQUIRE) == 0 &&
        lc_atomic_cas_u64(&lc_pool_hooked, &expected, 1, LC_ACQ_REL, LC_ACQUIRE))
        pthread_atfork(NULL, NULL, lc_pool_forget);
#endif
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
    lc_thread_name_self();
    uint64_t seen = 0;
    unsigned spins = 0;
    int64_t idle = 0, parked_at = 0; /* spins while the team was parked, and its clock */
    for (;;) {
        const uint64_t gen = lc_atomic_load_u64(&team->gen, LC_ACQUIRE);
        if (lc_atomic_load_int(&team->stop, LC_ACQUIRE)) break;
        if (gen != seen) {
            seen = gen;
            lc_team_work(team, gen, self);
            spins = 0;
            idle = 0;
        } else {
            LC_SPIN_WAIT(spins);
            if (!lc_atomic_load_int(&team->parked, LC_RELAXED)) {
                idle = 0;
            } else if (idle++ % LC_LINGER_CHECK == 0) {
                const int64_t t = lc_now_ns();
                if (idle == 1) {
                    parked_at = t;
                } else if (t - parked_at > LC_LINGER_NS) {
                    uint64_t expected = (uint64_t)(uintptr_t)team;
                    if (lc_atomic_cas_u64(&lc_pool_word, &expected, 0, LC_ACQ_REL, LC_ACQUIRE))
                        lc_team_retire(team); /* nobody took it in time */
                    idle = 0;
                }
            }
        }
    }
    lc_team_release(team);
    return LC_THREAD_DONE;
}
#endif

int64_t lc_helpers_started(void)
{
#if LC_HAVE_THREADS
    return lc_atomic_load_i64(&lc_helpers_count, LC_RELAXED);
#else
    return 0;
#endif
}

lc_team *lc_team_start(int64_t n)
{
    if (n > lc_get_num_threads()) n = lc_get_num_threads();
    if (n > LC_MAX_PARTS) n = LC_MAX_PARTS;
    if (n < 1) n = 1;
#if LC_HAVE_THREADS
    if (n > 1) { /* the pool's team, when it has this size */
        uint64_t w = lc_atomic_load_u64(&lc_pool_word, LC_ACQUIRE);
        if (w != 0 && lc_atomic_cas_u64(&lc_pool_word, &w, 0, LC_ACQ_REL, LC_ACQUIRE)) {
            lc_team *pooled = (lc_team *)(uintptr_t)w;
            if (pooled->size == n) {
                lc_atomic_store_int(&pooled->parked, 0, LC_RELAXED);
                return pooled;
            }
            lc_team_retire(pooled);
        }
    }
#endif
    lc_team *team = (lc_team *)calloc(1, sizeof(lc_team));
    if (!team) return 0;
    team->size = n;
#if LC_HAVE_THREADS
    if (n > 1) lc_pool_hook_fork();
    team->refs = 1;
    team->joined = 0; /* the caller's slot: 0 */
    if (team->size > 1) {
        for (int64_t t = 1; t < team->size; t++) {
            lc_atomic_add_i64(&team->refs, 1, LC_RELAXED);
            if (lc_thread_spawn_detached(lc_team_helper, team) != 0) {
                lc_atomic_add_i64(&team->refs, -1, LC_RELAXED);
                break;
            }
            team->spawned++;
            lc_atomic_add_i64(&lc_helpers_count, 1, LC_RELAXED);
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
    if (team->size > 1 && team->spawned == team->size - 1) { /* into the pool, unless it holds
                                                                 * another team */
        lc_atomic_store_int(&team->parked, 1, LC_RELAXED);
        uint64_t expected = 0;
        if (lc_atomic_cas_u64(&lc_pool_word, &expected, (uint64_t)(uintptr_t)team, LC_ACQ_REL,
                              LC_ACQUIRE))
            return;
    }
    lc_team_retire(team);
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
