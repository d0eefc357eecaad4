# Wrappers of lc_fixed.h: quantization to fixed-point formats and arithmetic on codes.
#
# A format crosses this boundary as a tuple (bits, int_bits, signed, rounding, overflow) of
# ints (linncore.fixed.FixedFormat.as_tuple()); codes are int64 arrays.  The wrappers check
# dtype, shape and contiguity, release the GIL and call one lc_* function; the kernel checks
# the formats and the code ranges and reports the first offending element, which the wrapper
# turns into a ValueError naming the argument (the twin in linncore/_numpy/fixed.py raises
# the same messages).
from libc.stdint cimport uint64_t

cdef extern from "lc_fixed.h" nogil:
    ctypedef struct lc_fixfmt:
        int32_t bits
        int32_t int_bits
        int32_t is_signed
        int32_t rounding
        int32_t overflow
    ctypedef struct lc_rail_counts:
        int64_t saturated
        int64_t near_rail
        int64_t underflow
    int LC_ROUND_TRN, LC_ROUND_TRN_ZERO, LC_ROUND_RND, LC_ROUND_RND_ZERO, LC_ROUND_RND_INF
    int LC_ROUND_RND_MIN_INF, LC_ROUND_RND_CONV, LC_ROUND_STOCH, LC_N_ROUNDING
    int LC_OVF_SAT, LC_OVF_SAT_SYM, LC_OVF_WRAP, LC_N_OVERFLOW
    int LC_FIX_ERR_NAN, LC_FIX_ERR_INF, LC_FIX_ERR_CODE, LC_FIX_ERR_FORMAT
    int LC_FIX_MAX_ABS_INT_BITS, LC_FIX_MAX_FRAC_BITS, LC_FIX_MAX_BITS, LC_FIX_MAX_BITS_UNSIGNED
    int lc_fixfmt_check(const lc_fixfmt *f)
    int lc_quantize_f64(const lc_fixfmt *fmt, const double *x, int64_t n, int64_t *codes,
                        double *out, uint64_t seed, lc_rail_counts *stats, double near_rail,
                        int64_t *bad_index)
    int lc_quantize_f32(const lc_fixfmt *fmt, const float *x, int64_t n, int64_t *codes,
                        double *out, uint64_t seed, lc_rail_counts *stats, double near_rail,
                        int64_t *bad_index)
    int lc_from_codes(const lc_fixfmt *fmt, const int64_t *codes, int64_t n, double *out,
                      int64_t *bad_index)
    int lc_requantize(const lc_fixfmt *src, const int64_t *codes, int64_t n,
                      const lc_fixfmt *dst, int64_t *out, uint64_t seed, lc_rail_counts *stats,
                      double near_rail, int64_t *bad_index)
    int lc_fix_add(const lc_fixfmt *fmt, const int64_t *a, const int64_t *b, int64_t n,
                   const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed, int64_t *bad_index)
    int lc_fix_mul(const lc_fixfmt *fa, const int64_t *a, const lc_fixfmt *fb, const int64_t *b,
                   int64_t n, const lc_fixfmt *out_fmt, int64_t *out, uint64_t seed,
                   int64_t *bad_index)
    int lc_fix_matmul(const lc_fixfmt *fa, const int64_t *A, const lc_fixfmt *fb,
                      const int64_t *B, int64_t n, int64_t k, int64_t m, const lc_fixfmt *acc,
                      const lc_fixfmt *out_fmt, int64_t *C, uint64_t seed, int64_t *bad_index)


def fixed_constants():
    """The fixed-point enum and status values compiled into the core."""
    return {
        "ROUNDING": {"TRN": LC_ROUND_TRN, "TRN_ZERO": LC_ROUND_TRN_ZERO, "RND": LC_ROUND_RND,
                     "RND_ZERO": LC_ROUND_RND_ZERO, "RND_INF": LC_ROUND_RND_INF,
                     "RND_MIN_INF": LC_ROUND_RND_MIN_INF, "RND_CONV": LC_ROUND_RND_CONV,
                     "STOCH": LC_ROUND_STOCH},
        "OVERFLOW": {"SAT": LC_OVF_SAT, "SAT_SYM": LC_OVF_SAT_SYM, "WRAP": LC_OVF_WRAP},
        "STATUS": {"NAN": LC_FIX_ERR_NAN, "INF": LC_FIX_ERR_INF, "CODE": LC_FIX_ERR_CODE,
                   "FORMAT": LC_FIX_ERR_FORMAT},
        "MAX_ABS_INT_BITS": LC_FIX_MAX_ABS_INT_BITS,
        "MAX_FRAC_BITS": LC_FIX_MAX_FRAC_BITS,
        "MAX_BITS": LC_FIX_MAX_BITS,
        "MAX_BITS_UNSIGNED": LC_FIX_MAX_BITS_UNSIGNED,
    }


cdef lc_fixfmt _fmt(object t, str name) except *:
    """An lc_fixfmt from (bits, int_bits, signed, rounding, overflow); checked by the core."""
    cdef lc_fixfmt f
    if not isinstance(t, tuple) or len(t) != 5:
        raise TypeError(f"{name}: expected a (bits, int_bits, signed, rounding, overflow) tuple, got {t!r}")
    f.bits = t[0]
    f.int_bits = t[1]
    f.is_signed = 1 if t[2] else 0
    f.rounding = t[3]
    f.overflow = t[4]
    if lc_fixfmt_check(&f) != LC_OK:
        raise ValueError(f"{name}: invalid fixed-point format {t!r}")
    return f


cdef object _flat(object a, object dtype, str name):
    """Check that ``a`` is a C-contiguous ndarray of ``dtype`` (any shape)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    return a


cdef _fix_raise(int status, int64_t bad, list names, list arrays, list fmts):
    """Raise the error for a failed fixed-point kernel; bad counts over arrays in order."""
    if status == LC_OK:
        return
    if status == LC_ERR_NOMEM:
        raise MemoryError("the fixed-point kernel could not allocate its workspace")
    cdef int64_t off = 0
    for name, a, f in zip(names, arrays, fmts):
        if bad < off + a.size:
            idx = np.unravel_index(bad - off, a.shape) if a.ndim != 1 else (bad - off,)
            where = idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)
            if status == LC_FIX_ERR_NAN:
                raise ValueError(f"{name}: expected finite values, got NaN at index {where}")
            if status == LC_FIX_ERR_INF:
                raise ValueError(f"{name}: got {a.flat[bad - off]} at index {where}, which has "
                                 "no wrapped code (overflow WRAP); use SAT or SAT_SYM")
            if status == LC_FIX_ERR_CODE:
                raise ValueError(f"{name}: code {a.flat[bad - off]} at index {where} lies outside "
                                 f"the {f[0]}-bit {'signed' if f[2] else 'unsigned'} code range")
        off += a.size
    if status == LC_FIX_ERR_FORMAT:
        raise ValueError("invalid fixed-point format")
    raise ValueError(f"inconsistent arguments (status {status})")


cdef inline int _quantize_c(const lc_fixfmt *fmt, const real *x, int64_t n, int64_t *codes,
                            double *out, uint64_t seed, lc_rail_counts *stats, double near_rail,
                            int64_t *bad_index) noexcept nogil:
    if real is float:
        return lc_quantize_f32(fmt, x, n, codes, out, seed, stats, near_rail, bad_index)
    else:
        return lc_quantize_f64(fmt, x, n, codes, out, seed, stats, near_rail, bad_index)


def _k_fix_quantize(const real[::1] x, fmt, uint64_t seed, codes, values, near_rail):
    """(status, bad index, counts or None) of lc_quantize on checked arrays."""
    cdef lc_fixfmt f = _fmt(fmt, "fmt")
    cdef int64_t *cp = <int64_t*>_ptr(codes)
    cdef double *vp = <double*>_ptr(values)
    cdef lc_rail_counts st
    cdef lc_rail_counts *stp = NULL if near_rail is None else &st
    cdef double nr = 0.0 if near_rail is None else near_rail
    cdef int64_t bad = -1
    cdef int status
    with nogil:
        status = _quantize_c(&f, _mv_cptr(x), x.shape[0], cp, vp, seed, stp, nr, &bad)
    return status, bad, None if near_rail is None else (st.saturated, st.near_rail, st.underflow)


def fix_quantize(x, fmt, *, uint64_t seed=0, bint codes=True, bint values=True, near_rail=None):
    """Quantize float32/float64 ``x`` (any shape) to ``fmt``.

    Returns (codes int64 or None, values float64 or None, (saturated, near_rail, underflow)
    counts or None when ``near_rail`` is None)."""
    dt = _float_dtype(x, "x")
    _flat(x, dt, "x")
    c = np.empty(x.shape, dtype=np.int64) if codes else None
    v = np.empty(x.shape, dtype=np.float64) if values else None
    status, bad, stats = _k_fix_quantize(x.reshape(-1), fmt, seed, c, v, near_rail)
    _fix_raise(status, bad, ["x"], [x], [fmt])
    return c, v, stats


def fix_from_codes(codes, fmt):
    """codes * lsb as float64 (exact)."""
    _flat(codes, np.int64, "codes")
    cdef lc_fixfmt f = _fmt(fmt, "fmt")
    out = np.empty(codes.shape, dtype=np.float64)
    cdef int64_t *cp = <int64_t*>_ptr(codes)
    cdef double *op = <double*>_ptr(out)
    cdef int64_t n = codes.size, bad = -1
    cdef int status
    with nogil:
        status = lc_from_codes(&f, cp, n, op, &bad)
    _fix_raise(status, bad, ["codes"], [codes], [fmt])
    return out


def fix_requantize(codes, src, dst, *, uint64_t seed=0, near_rail=None):
    """Codes of ``src`` cast to ``dst``; returns (codes, counts or None)."""
    _flat(codes, np.int64, "codes")
    cdef lc_fixfmt fs = _fmt(src, "src_fmt")
    cdef lc_fixfmt fd = _fmt(dst, "dst_fmt")
    out = np.empty(codes.shape, dtype=np.int64)
    cdef int64_t *cp = <int64_t*>_ptr(codes)
    cdef int64_t *op = <int64_t*>_ptr(out)
    cdef lc_rail_counts st
    cdef lc_rail_counts *stp = NULL if near_rail is None else &st
    cdef double nr = 0.0 if near_rail is None else near_rail
    cdef int64_t n = codes.size, bad = -1
    cdef int status
    with nogil:
        status = lc_requantize(&fs, cp, n, &fd, op, seed, stp, nr, &bad)
    _fix_raise(status, bad, ["codes"], [codes], [src])
    stats = None if near_rail is None else (st.saturated, st.near_rail, st.underflow)
    return out, stats


def fix_add(a, b, fmt, out_fmt, *, uint64_t seed=0):
    """cast_out(a + b) for codes a, b of ``fmt`` (same shape)."""
    _flat(a, np.int64, "a")
    _flat(b, np.int64, "b")
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} (the shape of a), got {b.shape}")
    cdef lc_fixfmt f = _fmt(fmt, "fmt")
    cdef lc_fixfmt fo = _fmt(out_fmt, "out_fmt")
    out = np.empty(a.shape, dtype=np.int64)
    cdef int64_t *ap = <int64_t*>_ptr(a)
    cdef int64_t *bp = <int64_t*>_ptr(b)
    cdef int64_t *op = <int64_t*>_ptr(out)
    cdef int64_t n = a.size, bad = -1
    cdef int status
    with nogil:
        status = lc_fix_add(&f, ap, bp, n, &fo, op, seed, &bad)
    _fix_raise(status, bad, ["a", "b"], [a, b], [fmt, fmt])
    return out


def fix_mul(a, fa, b, fb, out_fmt, *, uint64_t seed=0):
    """cast_out(a * b) for codes a of ``fa`` and b of ``fb`` (same shape)."""
    _flat(a, np.int64, "a")
    _flat(b, np.int64, "b")
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} (the shape of a), got {b.shape}")
    cdef lc_fixfmt f1 = _fmt(fa, "a_fmt")
    cdef lc_fixfmt f2 = _fmt(fb, "b_fmt")
    cdef lc_fixfmt fo = _fmt(out_fmt, "out_fmt")
    out = np.empty(a.shape, dtype=np.int64)
    cdef int64_t *ap = <int64_t*>_ptr(a)
    cdef int64_t *bp = <int64_t*>_ptr(b)
    cdef int64_t *op = <int64_t*>_ptr(out)
    cdef int64_t n = a.size, bad = -1
    cdef int status
    with nogil:
        status = lc_fix_mul(&f1, ap, &f2, bp, n, &fo, op, seed, &bad)
    _fix_raise(status, bad, ["a", "b"], [a, b], [fa, fb])
    return out


def fix_matmul(A, fa, B, fb, out_fmt, *, acc=None, uint64_t seed=0):
    """C = A @ B on codes: A (n, k) of ``fa``, B (k, m) of ``fb``; exact sum when ``acc`` is
    None, else an accumulator register of format ``acc``."""
    _arr(A, np.int64, (-1, -1), "a_codes")
    _arr(B, np.int64, (A.shape[1], -1), "b_codes")
    cdef lc_fixfmt f1 = _fmt(fa, "a_fmt")
    cdef lc_fixfmt f2 = _fmt(fb, "b_fmt")
    cdef lc_fixfmt fo = _fmt(out_fmt, "out_fmt")
    cdef lc_fixfmt fc
    cdef lc_fixfmt *fcp = NULL
    if acc is not None:
        fc = _fmt(acc, "accumulator")
        fcp = &fc
    cdef int64_t n = A.shape[0], k = A.shape[1], m = B.shape[1], bad = -1
    C = np.empty((n, m), dtype=np.int64)
    cdef int64_t *ap = <int64_t*>_ptr(A)
    cdef int64_t *bp = <int64_t*>_ptr(B)
    cdef int64_t *cp = <int64_t*>_ptr(C)
    cdef int status
    with nogil:
        status = lc_fix_matmul(&f1, ap, &f2, bp, n, k, m, fcp, &fo, cp, seed, &bad)
    _fix_raise(status, bad, ["a_codes", "b_codes"], [A, B], [fa, fb])
    return C
