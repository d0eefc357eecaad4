/* lc_threads.h: the little of threads the kernels need, over POSIX threads or Win32.
 *
 * - LC_HAVE_THREADS: 1 where helpers can be made (below); 0 elsewhere, and callers then run
 *   every part on the calling thread.
 * - Atomic operations on naturally aligned variables, named by type (u64, i64, int) and taking
 *   a memory order, LC_RELAXED, LC_ACQUIRE, LC_RELEASE or LC_ACQ_REL (the C11 meanings).
 *   GCC and Clang: their __atomic builtins with exactly that order.  MSVC: its interlocked
 *   intrinsics, full barriers, for changes, and for loads an acquire load (a plain load followed
 *   by a compiler barrier on x86 and x64, whose loads already acquire; ldar on ARM64), so each
 *   operation is at least as strong as the order asked.
 * - lc_thread_spawn_detached(fn, arg): starts fn(arg) on a new detached thread; 0 on success.
 *   fn is defined with LC_THREAD_PROC(name, arg) and ends with `return LC_THREAD_DONE;`.
 *   POSIX: pthread_create with the detached attribute.  Windows: _beginthreadex (which sets up
 *   the C runtime for the thread), its handle closed at once.
 * - lc_cpu_pause(): a spin-wait hint to the processor; lc_thread_yield(): gives the processor
 *   to another thread (sched_yield, SwitchToThread).
 * - lc_thread_name_self(): names the calling thread "linncore" (Linux only).
 * - lc_now_ns(): a monotonic clock in nanoseconds (CLOCK_MONOTONIC, QueryPerformanceCounter),
 *   where threads exist. */
#ifndef LC_THREADS_H
#define LC_THREADS_H

#include <stdint.h>

#include "lc_portable.h"

#if defined(__GNUC__) || defined(__clang__)
#define LC_ATOMICS_GNU 1
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64) || defined(_M_IX86))
#define LC_ATOMICS_MSVC 1
#endif

#if (defined(LC_ATOMICS_GNU) || defined(LC_ATOMICS_MSVC)) &&                                       \
    (defined(_WIN32) || defined(__unix__) || defined(__APPLE__))
#define LC_HAVE_THREADS 1
#else
#define LC_HAVE_THREADS 0
#endif

/* Atomics. */
#if defined(LC_ATOMICS_GNU)
#define LC_RELAXED __ATOMIC_RELAXED
#define LC_ACQUIRE __ATOMIC_ACQUIRE
#define LC_RELEASE __ATOMIC_RELEASE
#define LC_ACQ_REL __ATOMIC_ACQ_REL
#define lc_atomic_load_u64(p, mo) __atomic_load_n((p), (mo))
#define lc_atomic_load_i64(p, mo) __atomic_load_n((p), (mo))
#define lc_atomic_load_int(p, mo) __atomic_load_n((p), (mo))
#define lc_atomic_store_u64(p, v, mo) __atomic_store_n((p), (v), (mo))
#define lc_atomic_store_i64(p, v, mo) __atomic_store_n((p), (v), (mo))
#define lc_atomic_store_int(p, v, mo) __atomic_store_n((p), (v), (mo))
/* *p += d; the new value. */
#define lc_atomic_add_i64(p, d, mo) __atomic_add_fetch((p), (d), (mo))
/* If *p == *expected, *p := desired and 1; else *expected := *p and 0. */
#define lc_atomic_cas_u64(p, expected, desired, mo_ok, mo_fail)                                    \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, (mo_ok), (mo_fail))
#elif defined(LC_ATOMICS_MSVC)
#include <intrin.h>
#define LC_RELAXED 0
#define LC_ACQUIRE 0
#define LC_RELEASE 0
#define LC_ACQ_REL 0

static LC_INLINE int64_t lc_msvc_load64(const volatile int64_t *p)
{
#if defined(_M_ARM64)
    return (int64_t)__ldar64((volatile unsigned __int64 *)p);
#elif defined(_M_X64)
    const int64_t v = *p;
    _ReadWriteBarrier();
    return v;
#else /* 32-bit x86: no plain 64-bit atomic load */
    return _InterlockedCompareExchange64((volatile __int64 *)p, 0, 0);
#endif
}

static LC_INLINE int lc_msvc_load32(const volatile int *p)
{
#if defined(_M_ARM64)
    return (int)__ldar32((volatile unsigned __int32 *)p);
#else
    const int v = *p;
    _ReadWriteBarrier();
    return v;
#endif
}

static LC_INLINE int lc_msvc_cas64(volatile uint64_t *p, uint64_t *expected, uint64_t desired)
{
    const uint64_t seen = (uint64_t)_InterlockedCompareExchange64(
        (volatile __int64 *)p, (__int64)desired, (__int64)*expected);
    if (seen == *expected) return 1;
    *expected = seen;
    return 0;
}

#define lc_atomic_load_u64(p, mo) ((uint64_t)lc_msvc_load64((const volatile int64_t *)(p)))
#define lc_atomic_load_i64(p, mo) lc_msvc_load64((p))
#define lc_atomic_load_int(p, mo) lc_msvc_load32((p))
#define lc_atomic_store_u64(p, v, mo)                                                              \
    ((void)_InterlockedExchange64((volatile __int64 *)(p), (__int64)(v)))
#define lc_atomic_store_i64(p, v, mo)                                                              \
    ((void)_InterlockedExchange64((volatile __int64 *)(p), (__int64)(v)))
#define lc_atomic_store_int(p, v, mo) ((void)_InterlockedExchange((volatile long *)(p), (long)(v)))
#define lc_atomic_add_i64(p, d, mo)                                                                \
    ((int64_t)_InterlockedExchangeAdd64((volatile __int64 *)(p), (__int64)(d)) + (int64_t)(d))
#define lc_atomic_cas_u64(p, expected, desired, mo_ok, mo_fail)                                    \
    lc_msvc_cas64((p), (expected), (desired))
#else /* no atomics: one thread, plain accesses */
#define LC_RELAXED 0
#define LC_ACQUIRE 0
#define LC_RELEASE 0
#define LC_ACQ_REL 0
#define lc_atomic_load_int(p, mo) (*(p))
#define lc_atomic_store_int(p, v, mo) ((void)(*(p) = (v)))
#endif

/* Threads. */
#if LC_HAVE_THREADS && defined(_WIN32)
#include <process.h>
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#define LC_THREAD_PROC(name, arg) static unsigned __stdcall name(void *arg)
#define LC_THREAD_DONE 0u
static LC_INLINE int lc_thread_spawn_detached(unsigned(__stdcall *fn)(void *), void *arg)
{
    const uintptr_t handle = _beginthreadex(NULL, 0, fn, arg, 0, NULL);
    if (handle == 0) return -1;
    CloseHandle((HANDLE)handle);
    return 0;
}
static LC_INLINE void lc_thread_yield(void)
{
    SwitchToThread();
}
static LC_INLINE void lc_cpu_pause(void)
{
    YieldProcessor();
}
static LC_INLINE void lc_thread_name_self(void) {}
static LC_INLINE int64_t lc_now_ns(void)
{
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    return (int64_t)((double)count.QuadPart * (1e9 / (double)freq.QuadPart));
}
#elif LC_HAVE_THREADS
#include <pthread.h>
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#define LC_THREAD_PROC(name, arg) static void *name(void *arg)
#define LC_THREAD_DONE NULL
static LC_INLINE int lc_thread_spawn_detached(void *(*fn)(void *), void *arg)
{
    pthread_t tid;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) { /* no attributes: detach after the start */
        if (pthread_create(&tid, NULL, fn, arg) != 0) return -1;
        pthread_detach(tid);
        return 0;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int rc = pthread_create(&tid, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}
static LC_INLINE void lc_thread_yield(void)
{
    sched_yield();
}
/* Names the calling thread "linncore" where the system lists thread names (Linux: top -H,
 * /proc/<pid>/task/<tid>/comm), so a helper can be told from the threads of other libraries. */
static LC_INLINE void lc_thread_name_self(void)
{
#if defined(__linux__)
    prctl(PR_SET_NAME, "linncore", 0, 0, 0); /* this thread's name: declared in strict C too */
#endif
}
static LC_INLINE int64_t lc_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + (int64_t)t.tv_nsec;
}
#if defined(__x86_64__) || defined(__i386__)
static LC_INLINE void lc_cpu_pause(void)
{
    __builtin_ia32_pause();
}
#else
static LC_INLINE void lc_cpu_pause(void) {}
#endif
#endif

#endif
