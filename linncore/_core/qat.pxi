# Wrappers of lc_qat.h: quantization-aware training epochs.
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
    int lc_qat_loss_grad_f32(const lc_net *net, const float *theta, const float *X, const float *Y,
                             int64_t B, int32_t loss, const lc_qat *q, int64_t step, float *grad,
                             double *rail, double *loss_out)
    int lc_qat_loss_grad_f64(const lc_net *net, const double *theta, const double *X, const double *Y,
                             int64_t B, int32_t loss, const lc_qat *q, int64_t step, double *grad,
                             double *rail, double *loss_out)
    int lc_qat_apply_f32(const lc_net *net, float *theta, const float *delta, const lc_qat *q,
                         int64_t step, int32_t clip_params, double *rail)
    int lc_qat_apply_f64(const lc_net *net, double *theta, const double *delta, const lc_qat *q,
                         int64_t step, int32_t clip_params, double *rail)
    int lc_train_epoch_qat_f32(const lc_net *net, float *theta, const float *X, const float *Y,
                               int64_t N, const int64_t *perm, int64_t batch_size, int32_t loss,
                               const lc_optim *opt, float *m, float *v, int64_t *step,
                               int32_t clip_params, const lc_qat *q, double *rail,
                               double *loss_sum, int64_t *n_done)
    int lc_train_epoch_qat_f64(const lc_net *net, double *theta, const double *X, const double *Y,
                               int64_t N, const int64_t *perm, int64_t batch_size, int32_t loss,
                               const lc_optim *opt, double *m, double *v, int64_t *step,
                               int32_t clip_params, const lc_qat *q, double *rail,
                               double *loss_sum, int64_t *n_done)


def qat_seed(uint64_t seed, int64_t step, int64_t n_layers, int64_t layer, int64_t field, int64_t part):
    """The stochastic-rounding seed of one quantization inside a QAT step (lc_qat_seed)."""
    return lc_qat_seed(seed, step, n_layers, layer, field, part)


def train_epoch_qat(spec, theta, X, Y, perm, int64_t batch_size, int loss, tuple opt, m, v,
                    int64_t step, bint clip_params, fmts, on, uint64_t seed, double near_rail, rail):
    """One fused quantization-aware training epoch in C with the GIL released.

    Updates theta, m, v in place, fills rail (steps, 6) when given, and returns (status,
    loss_sum, n_done, step) as train_epoch; a fixed-point error raises ValueError."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(m, dt, (n.n_params,), "m")
    _arr(v, dt, (n.n_params,), "v")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    cdef int64_t L = len(spec.acts)
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    _arr(fmts, np.int32, (L, LC_QF_N, 5), "fmts")
    _arr(on, np.int32, (L, LC_QF_N), "on")
    if perm is not None:
        _arr(perm, np.int64, (N,), "perm")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if rail is not None:
        _arr(rail, np.float64, ((N + batch_size - 1) // batch_size, LC_RAIL_N), "rail")
    cdef lc_optim o = _optim(opt)
    cdef lc_qat q
    q.fmts = <const lc_fixfmt*>_ptr(fmts)
    q.on = <const int32_t*>_ptr(on)
    q.seed = seed
    q.near_rail = near_rail
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *pc = _ptr(perm)
    cdef void *mc = _ptr(m)
    cdef void *vc = _ptr(v)
    cdef double *rc = <double*>_ptr(rail)
    cdef int status
    cdef double loss_sum = 0.0
    cdef int64_t n_done = 0
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_train_epoch_qat_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc, N,
                                            <int64_t*>pc, batch_size, loss, &o, <float*>mc,
                                            <float*>vc, &step, clip_params, &q, rc, &loss_sum, &n_done)
        else:
            status = lc_train_epoch_qat_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc, N,
                                            <int64_t*>pc, batch_size, loss, &o, <double*>mc,
                                            <double*>vc, &step, clip_params, &q, rc, &loss_sum, &n_done)
    _qat_status(status, "quantization-aware training")
    return status, loss_sum, n_done, step


cdef _qat_status(int status, str where):
    _raise_status(status, where)
    if status == LC_FIX_ERR_FORMAT:
        raise ValueError("fmts: a format is invalid (see linncore.FixedFormat)")
    if status in (LC_FIX_ERR_NAN, LC_FIX_ERR_INF, LC_FIX_ERR_CODE):
        raise ValueError(f"{where} met a value it cannot quantize (status {status}): "
                         "a NaN, or an infinity under WRAP overflow")


def qat_loss_grad(spec, theta, X, Y, int loss, fmts, on, uint64_t seed, double near_rail, int64_t step, rail):
    """The first half of a QAT step on the batch X, Y: (status, loss, grad); the gradient
    columns of rail (6,) are filled.  status 1 for a non-finite loss."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t B = X.shape[0]
    cdef int64_t L = len(spec.acts)
    _arr(Y, dt, (B, spec.sizes[len(spec.sizes) - 1]), "Y")
    _arr(fmts, np.int32, (L, LC_QF_N, 5), "fmts")
    _arr(on, np.int32, (L, LC_QF_N), "on")
    _arr(rail, np.float64, (LC_RAIL_N,), "rail")
    grad = np.empty_like(theta)
    cdef lc_qat q
    q.fmts = <const lc_fixfmt*>_ptr(fmts)
    q.on = <const int32_t*>_ptr(on)
    q.seed = seed
    q.near_rail = near_rail
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *gc = _ptr(grad)
    cdef double *rc = <double*>_ptr(rail)
    cdef double value = 0.0
    cdef int status
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_qat_loss_grad_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc, B, loss, &q, step,
                                          <float*>gc, rc, &value)
        else:
            status = lc_qat_loss_grad_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc, B, loss, &q, step,
                                          <double*>gc, rc, &value)
    _qat_status(status, "qat_loss_grad")
    return status, value, grad


def qat_apply(spec, theta, delta, fmts, on, uint64_t seed, double near_rail, int64_t step, bint clip_params, rail):
    """The second half of a QAT step: theta += q_update(delta), clipped and stored through the
    weight/bias formats, in place; the weight and update columns of rail (6,) are filled.
    Returns the status (2 when a parameter became non-finite; theta is then unchanged)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(delta, dt, (n.n_params,), "delta")
    cdef int64_t L = len(spec.acts)
    _arr(fmts, np.int32, (L, LC_QF_N, 5), "fmts")
    _arr(on, np.int32, (L, LC_QF_N), "on")
    _arr(rail, np.float64, (LC_RAIL_N,), "rail")
    cdef lc_qat q
    q.fmts = <const lc_fixfmt*>_ptr(fmts)
    q.on = <const int32_t*>_ptr(on)
    q.seed = seed
    q.near_rail = near_rail
    cdef void *tc = _ptr(theta)
    cdef void *dc = _ptr(delta)
    cdef double *rc = <double*>_ptr(rail)
    cdef int status
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_qat_apply_f32(&n.net, <float*>tc, <float*>dc, &q, step, clip_params, rc)
        else:
            status = lc_qat_apply_f64(&n.net, <double*>tc, <double*>dc, &q, step, clip_params, rc)
    _qat_status(status, "qat_apply")
    return status
