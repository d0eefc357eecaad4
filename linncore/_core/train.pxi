# Wrappers of the training step (lc_dense.h: lc_train_epoch, lc_train_loss_grad, lc_train_apply):
# one kernel for float and quantization-aware training.  Arguments other than the network and
# its arrays are keyword-only; the optimizer travels as an OptimizerConfig and quantization as a
# QuantConfig (linncore._util.kernel_args), None for float training.  Every index reaching C is
# range-checked here.  Each def checks its arguments, then hands the arrays to a private
# function typed on the fused type `real`: Cython picks its float or double version from the
# arrays' dtype, and a cdef inline dispatcher per C kernel names the _f32 or _f64 kernel with
# `if real is float`, resolved at compile time.

cdef extern from "lc_dense.h" nogil:
    ctypedef struct lc_train:
        const lc_net *net
        const lc_layer_offsets *layout
        int32_t loss
        const lc_optim *opt
        int32_t clip_params
        const lc_qat *quant
    int lc_train_epoch_f32(const lc_train *t, float *theta, float *m, float *v, float *bn_state,
                           const float *X, const float *Y, int64_t N, const int64_t *perm,
                           int64_t batch_size, int64_t *step, double *rail, double *loss_sum,
                           int64_t *n_done)
    int lc_train_epoch_f64(const lc_train *t, double *theta, double *m, double *v, double *bn_state,
                           const double *X, const double *Y, int64_t N, const int64_t *perm,
                           int64_t batch_size, int64_t *step, double *rail, double *loss_sum,
                           int64_t *n_done)
    int lc_train_loss_grad_f32(const lc_train *t, const float *theta, const float *X,
                               const float *Y, int64_t B, int64_t step, float *grad, double *rail,
                               double *loss_out)
    int lc_train_loss_grad_f64(const lc_train *t, const double *theta, const double *X,
                               const double *Y, int64_t B, int64_t step, double *grad,
                               double *rail, double *loss_out)
    int lc_train_apply_f32(const lc_train *t, float *theta, const float *delta, int64_t step,
                           double *rail)
    int lc_train_apply_f64(const lc_train *t, double *theta, const double *delta, int64_t step,
                           double *rail)

# The fields of one format as they cross the boundary: (bits, int_bits, signed, rounding,
# overflow), the memory layout of lc_fixfmt.
_FIXFMT_FIELDS = 5
_NO_QUANT_BN = "quant: quantization-aware training of batch-normalised networks is not supported"


cdef class _Quant:
    """An lc_qat view of a QuantConfig; keeps its arrays alive while C reads them."""
    cdef lc_qat q
    cdef object fmts, on

    def __cinit__(self, quant, int64_t n_layers):
        for f in ("fmts", "on", "seed", "near_rail"):
            if not hasattr(quant, f):
                raise TypeError("quant: expected a QuantConfig or None, got "
                                f"{type(quant).__name__}")
        self.fmts = _arr(quant.fmts, np.int32, (n_layers, LC_QF_N, _FIXFMT_FIELDS), "quant.fmts")
        self.on = _arr(quant.on, np.int32, (n_layers, LC_QF_N), "quant.on")
        self.q.fmts = <const lc_fixfmt*>_ptr(self.fmts)
        self.q.on = <const int32_t*>_ptr(self.on)
        self.q.seed = quant.seed
        self.q.near_rail = quant.near_rail


cdef bint _indices_in_range(const int64_t[::1] idx, int64_t n):
    """1 when every idx[i] lies in [0, n)."""
    cdef Py_ssize_t i
    cdef int64_t bad = 0
    with nogil:
        for i in range(idx.shape[0]):
            bad += (idx[i] < 0) | (idx[i] >= n)
    return bad == 0


cdef _step_status(int status, str where):
    _raise_status(status, where)
    if status == LC_FIX_ERR_FORMAT:
        raise ValueError("quant.fmts: a format is invalid (see linncore.FixedFormat)")
    if status in (LC_FIX_ERR_NAN, LC_FIX_ERR_INF, LC_FIX_ERR_CODE):
        raise ValueError(f"{where} met a value it cannot quantize (status {status}): "
                         "a NaN, or an infinity under WRAP overflow")


def train_epoch(spec, theta, X, Y, *, perm, int64_t batch_size, int loss, optimizer, m, v,
                int64_t step, bint clip_params, bn_state=None, quant=None, rail=None):
    """One fused training epoch in C with the GIL released, float (quant None) or
    quantization-aware.

    Updates theta, m, v (and bn_state) in place, fills rail (steps, 6) when given, and returns
    (status, loss_sum, n_done, step): status 0 when the epoch completed, 1 at a non-finite loss,
    2 at a non-finite parameter (theta then holds the parameters from before that batch)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(m, dt, (n.n_params,), "m")
    _arr(v, dt, (n.n_params,), "v")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if perm is not None:
        _arr(perm, np.int64, (N,), "perm")
        if not _indices_in_range(perm, N):
            raise ValueError(f"perm: expected indices in [0, {N}), got values in "
                             f"[{perm.min()}, {perm.max()}]")
    _check_loss(loss)
    _optim(optimizer)  # refused here, in the order of the checks
    _bn_state(n, bn_state, dt)
    cdef _Quant qz = None
    if quant is not None:
        if n.n_state:
            raise ValueError(_NO_QUANT_BN)
        qz = _Quant(quant, n.net.n_layers)
    if rail is not None:
        _arr(rail, np.float64, ((N + batch_size - 1) // batch_size, LC_RAIL_N), "rail")
    return _k_train_epoch(n, theta, m, v, bn_state, X, Y, perm, batch_size, loss, optimizer, step,
                        clip_params, qz, rail)


cdef inline int _train_epoch_c(const lc_train *t, real *theta, real *m, real *v, real *bn_state,
                         const real *X, const real *Y, int64_t N, const int64_t *perm,
                         int64_t batch_size, int64_t *step, double *rail, double *loss_sum,
                         int64_t *n_done) noexcept nogil:
    if real is float:
        return lc_train_epoch_f32(t, theta, m, v, bn_state, X, Y, N, perm, batch_size, step,
                                  rail, loss_sum, n_done)
    else:
        return lc_train_epoch_f64(t, theta, m, v, bn_state, X, Y, N, perm, batch_size, step,
                                  rail, loss_sum, n_done)


def _k_train_epoch(_Net n, real[::1] theta, real[::1] m, real[::1] v, real[::1] bn_state,
                 const real[:, ::1] X, const real[:, ::1] Y, perm, int64_t batch_size, int loss,
                 optimizer, int64_t step, bint clip_params, _Quant qz, rail):
    """train_epoch after its checks, typed on the arrays' dtype."""
    cdef lc_optim o = _optim(optimizer)
    cdef lc_train t
    t.net = &n.net
    t.layout = n.offsets()
    t.loss = loss
    t.opt = &o
    t.clip_params = clip_params
    t.quant = &qz.q if qz is not None else NULL
    cdef int64_t N = X.shape[0]
    cdef real *tc = _mv_ptr(theta)
    cdef real *mc = _mv_ptr(m)
    cdef real *vc = _mv_ptr(v)
    cdef real *sc = _mv_ptr(bn_state)
    cdef const real *Xc = &X[0, 0]
    cdef const real *Yc = &Y[0, 0]
    cdef const int64_t *pc = <const int64_t*>_ptr(perm)
    cdef double *rc = <double*>_ptr(rail)
    cdef int status
    cdef double loss_sum = 0.0
    cdef int64_t n_done = 0
    with nogil:
        status = _train_epoch_c(&t, tc, mc, vc, sc, Xc, Yc, N, pc, batch_size, &step, rc, &loss_sum,
                          &n_done)
    _step_status(status, "train_epoch")
    return status, loss_sum, n_done, step


def qat_loss_grad(spec, theta, X, Y, *, int loss, quant, int64_t step, rail):
    """The gradient half of a step on the batch X, Y: (status, loss, grad); the gradient
    columns of rail (6,) are filled.  status 1 for a non-finite loss."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t B = X.shape[0]
    _arr(Y, dt, (B, spec.sizes[len(spec.sizes) - 1]), "Y")
    _arr(rail, np.float64, (LC_RAIL_N,), "rail")
    _check_loss(loss)
    if n.n_state:
        raise ValueError(_NO_QUANT_BN)
    cdef _Quant qz = _Quant(quant, n.net.n_layers) if quant is not None else None
    grad = np.empty_like(theta)
    return _k_qat_loss_grad(n, theta, X, Y, loss, qz, step, rail, grad)


cdef inline int _train_loss_grad_c(const lc_train *t, const real *theta, const real *X,
                             const real *Y, int64_t B, int64_t step, real *grad, double *rail,
                             double *loss_out) noexcept nogil:
    if real is float:
        return lc_train_loss_grad_f32(t, theta, X, Y, B, step, grad, rail, loss_out)
    else:
        return lc_train_loss_grad_f64(t, theta, X, Y, B, step, grad, rail, loss_out)


def _k_qat_loss_grad(_Net n, const real[::1] theta, const real[:, ::1] X, const real[:, ::1] Y,
                   int loss, _Quant qz, int64_t step, rail, grad_out):
    """qat_loss_grad after its checks, typed on the arrays' dtype."""
    cdef real[::1] grad = grad_out
    cdef lc_optim unused
    cdef lc_train t
    unused.kind = LC_OPT_SGD
    t.net = &n.net
    t.layout = n.offsets()
    t.loss = loss
    t.opt = &unused
    t.clip_params = 0
    t.quant = &qz.q if qz is not None else NULL
    cdef int64_t B = X.shape[0]
    cdef const real *tc = &theta[0]
    cdef const real *Xc = &X[0, 0]
    cdef const real *Yc = &Y[0, 0]
    cdef real *gc = &grad[0]
    cdef double *rc = <double*>_ptr(rail)
    cdef double value = 0.0
    cdef int status
    with nogil:
        status = _train_loss_grad_c(&t, tc, Xc, Yc, B, step, gc, rc, &value)
    _step_status(status, "qat_loss_grad")
    return status, value, grad_out


def qat_apply(spec, theta, delta, *, quant, int64_t step, bint clip_params, rail):
    """The update half of a step: theta += q_update(delta), clipped and stored through the
    weight/bias formats, in place; the weight and update columns of rail (6,) are filled.
    Returns the status (2 when a parameter became non-finite; theta is then unchanged)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(delta, dt, (n.n_params,), "delta")
    _arr(rail, np.float64, (LC_RAIL_N,), "rail")
    if n.n_state:
        raise ValueError(_NO_QUANT_BN)
    cdef _Quant qz = _Quant(quant, n.net.n_layers) if quant is not None else None
    return _k_qat_apply(n, theta, delta, qz, step, clip_params, rail)


cdef inline int _train_apply_c(const lc_train *t, real *theta, const real *delta, int64_t step,
                         double *rail) noexcept nogil:
    if real is float:
        return lc_train_apply_f32(t, theta, delta, step, rail)
    else:
        return lc_train_apply_f64(t, theta, delta, step, rail)


def _k_qat_apply(_Net n, real[::1] theta, const real[::1] delta, _Quant qz, int64_t step,
               bint clip_params, rail):
    """qat_apply after its checks, typed on the arrays' dtype."""
    cdef lc_optim unused
    cdef lc_train t
    unused.kind = LC_OPT_SGD
    t.net = &n.net
    t.layout = n.offsets()
    t.loss = LC_LOSS_MSE
    t.opt = &unused
    t.clip_params = clip_params
    t.quant = &qz.q if qz is not None else NULL
    cdef real *tc = &theta[0]
    cdef const real *dc = &delta[0]
    cdef double *rc = <double*>_ptr(rail)
    cdef int status
    with nogil:
        status = _train_apply_c(&t, tc, dc, step, rc)
    _step_status(status, "qat_apply")
    return status
