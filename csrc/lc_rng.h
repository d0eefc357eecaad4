/* lc_rng.h: a counter-based random generator for stochastic rounding.
 *
 * lc_rng_u64(seed, i) is output number i + 1 of the splitmix64 sequence started at state
 * `seed`: it needs no state, so element i of an array gets the same draw whatever the order
 * of evaluation, the number of threads or the engine (linncore/_numpy/fixed.py computes the
 * same function in uint64 arithmetic).  All arithmetic is unsigned, modulo 2^64.
 *
 * lc_rng_unit53(seed, i) is the top 53 bits of that draw: an integer t uniform on [0, 2^53);
 * t * 2^-53 is uniform on the 53-bit grid of [0, 1). */
#ifndef LC_RNG_H
#define LC_RNG_H

#include <stdint.h>

#define LC_RNG_GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static inline uint64_t lc_rng_u64(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1u) * LC_RNG_GOLDEN;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t lc_rng_unit53(uint64_t seed, uint64_t i)
{
    return lc_rng_u64(seed, i) >> 11;
}

#endif
