/* lc_qat.c: the quantization hook of the training step and its seeds (see lc_qat.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_qat.h"

uint64_t lc_qat_seed(uint64_t seed, int64_t step, int64_t n_layers, int64_t layer, int64_t field,
                     int64_t part)
{
    const uint64_t slot =
        (((uint64_t)step * (uint64_t)n_layers + (uint64_t)layer) * LC_QF_N + (uint64_t)field) * 2u +
        (uint64_t)part;
    return seed + 0x9E3779B97F4A7C15ull * (slot + 1u);
}

#define REAL float
#define SFX f32
#define QUANTIZE lc_quantize_f32
#include "lc_qat_impl.h"
#undef REAL
#undef SFX
#undef QUANTIZE

#define REAL double
#define SFX f64
#define QUANTIZE lc_quantize_f64
#include "lc_qat_impl.h"
