# Wrappers of lc_qat.h: the quantization hook of the training step (the step: train.pxi).
#
# Formats cross this boundary as an int32 array fmts (n_layers, 7, 5) of (bits, int_bits,
# signed, rounding, overflow) (the memory layout of lc_fixfmt) with flags on (n_layers, 7),
# fields in the order input, weight, bias, accumulator, activation, gradient, update.

cdef extern from "lc_qat.h" nogil:
    ctypedef struct lc_qat:
        const lc_fixfmt *fmts
        const int32_t *on
        uint64_t seed
        double near_rail
    int LC_QF_N, LC_RAIL_N
    uint64_t lc_qat_seed(uint64_t seed, int64_t step, int64_t n_layers, int64_t layer,
                         int64_t field, int64_t part)


def qat_seed(uint64_t seed, int64_t step, int64_t n_layers, int64_t layer, int64_t field, int64_t part):
    """The stochastic-rounding seed of one quantization inside a QAT step (lc_qat_seed)."""
    return lc_qat_seed(seed, step, n_layers, layer, field, part)
