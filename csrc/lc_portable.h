/* lc_portable.h: the compiler specifics of the kernels, in one place.
 *
 * The kernels are C99 (C11 where the compiler has it) plus, where the compiler offers them,
 * two extensions that make them faster and never change a result:
 *   - GCC/Clang vector types (vector_size) for the float32 activations (lc_vmath.h) and the
 *     register-blocked product (lc_dense_impl.h).  A vector operation is the same IEEE
 *     operation on each lane, so the plain loops used elsewhere, which do the same operations
 *     in the same order one element at a time, give the same bits;
 *   - target_clones (LC_HOT) on x86-64 Linux with GCC: a baseline and an AVX2 copy of a hot
 *     loop, picked at load time; both are compiled without FMA contraction, so same bits;
 * and __int128 for the exact fixed-point arithmetic, behind lc_int128.h, which has a
 * two-word form with the same bits for compilers without it (MSVC).  Compiling with
 * LC_PORTABLE=1 (the build's LINNCORE_PORTABLE=1) turns all three off everywhere (it defines
 * LC_INT128_PORTABLE), as on a compiler without them, so that path can be built and tested on
 * any machine.
 *
 * Spellings that differ between compilers: LC_RESTRICT, LC_INLINE, LC_NOINLINE,
 * LC_ALWAYS_INLINE, LC_MAYBE_UNUSED, LC_ALIGNED(n), LC_EXTENSION.  MSVC's C mode before
 * /std:c11 knows restrict and inline only as __restrict and __inline, so for it the plain
 * keywords the kernels use are defined to those. */
#ifndef LC_PORTABLE_H
#define LC_PORTABLE_H

#if defined(LC_PORTABLE) && LC_PORTABLE
#define LC_FORCE_PORTABLE 1
#else
#define LC_FORCE_PORTABLE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LC_GNU_C 1
#else
#define LC_GNU_C 0
#endif

/* No contraction of a * b + c into a fused multiply-add (GCC and Clang get -ffp-contract=off
 * from the build): MSVC before Visual Studio 2022 contracted under /fp:precise, and clang-cl
 * takes MSVC's options. */
#if defined(_MSC_VER) && !defined(__clang__)
#pragma fp_contract(off)
#elif defined(_MSC_VER) && defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* restrict and inline. */
#if defined(_MSC_VER) && !defined(__clang__) &&                                                    \
    (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
#if !defined(restrict)
#define restrict __restrict
#endif
#if !defined(inline)
#define inline __inline
#endif
#endif
#define LC_RESTRICT restrict
#define LC_INLINE inline

/* Functions kept out of line (a rare slow path that would bloat a hot loop). */
#if LC_GNU_C
#define LC_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define LC_NOINLINE __declspec(noinline)
#else
#define LC_NOINLINE
#endif

/* Functions inlined into every caller, even where the compiler would not (lc_vmath.h: a vector
 * must not cross a call into a copy compiled for another instruction set), and functions a
 * translation unit may leave unused. */
#if LC_GNU_C
#define LC_ALWAYS_INLINE static inline __attribute__((always_inline))
#define LC_MAYBE_UNUSED __attribute__((unused))
#elif defined(_MSC_VER)
#define LC_ALWAYS_INLINE static __forceinline
#define LC_MAYBE_UNUSED
#else
#define LC_ALWAYS_INLINE static inline
#define LC_MAYBE_UNUSED
#endif

/* A variable or type aligned to n bytes (n a power of two): written before the declaration. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define LC_ALIGNED(n) _Alignas(n)
#elif LC_GNU_C
#define LC_ALIGNED(n) __attribute__((aligned(n)))
#elif defined(_MSC_VER)
#define LC_ALIGNED(n) __declspec(align(n))
#else
#define LC_ALIGNED(n)
#endif

/* Marks a use of a compiler extension that -pedantic would otherwise reject. */
#if LC_GNU_C
#define LC_EXTENSION __extension__
#else
#define LC_EXTENSION
#endif

/* Vector types: LC_HAVE_VECTOR_EXT is 1 where LC_VECTOR_TYPEDEF(name, T, bytes) makes a
 * vector of bytes / sizeof(T) lanes of T with element-wise operators, comparisons giving lanes
 * of all ones or zeros, and __builtin_convertvector (GCC 9, any Clang).  Elsewhere it is 0 and
 * the kernels take their plain loops. */
#if LC_GNU_C && !LC_FORCE_PORTABLE && (defined(__clang__) || __GNUC__ >= 9)
#define LC_HAVE_VECTOR_EXT 1
#define LC_VECTOR_TYPEDEF(name, T, bytes) typedef T name __attribute__((vector_size(bytes)))
#else
#define LC_HAVE_VECTOR_EXT 0
#endif

/* LC_HOT marks the few loops worth compiling twice on x86-64 Linux with GCC: for the baseline
 * instruction set and for AVX2, picked at load time (the loader's ifunc support; Clang's
 * target_clones is recent and macOS has no ifunc, so neither is asked).  No FMA contraction
 * either way (the build passes -ffp-contract=off), so both versions give the same bits.
 * LINNCORE_BASELINE_ONLY=1 at build time defines LC_BASELINE_ONLY: the baseline alone, to test
 * it on an AVX2 machine. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&       \
    __GNUC__ >= 6 && !defined(LC_BASELINE_ONLY) && !LC_FORCE_PORTABLE
#define LC_HOT __attribute__((target_clones("avx2", "default")))
#else
#define LC_HOT
#endif

/* 128-bit integers: lc_int128.h's two-word form. */
#if LC_FORCE_PORTABLE && !defined(LC_INT128_PORTABLE)
#define LC_INT128_PORTABLE 1
#endif

#endif
