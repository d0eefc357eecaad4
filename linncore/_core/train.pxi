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


# -- a fit's epochs: everything checked once per fit --------------------------------------------
# train_epoch and net_loss check every argument at every call; a fit calls them once per epoch
# with the same arrays.  prepare_train checks those arrays once and keeps them (so their
# buffers stay alive) with their pointers; each epoch then costs one method call and the kernel.
# The arrays' dtype is fixed when the run is made, so each method picks the float or double
# specialisation of the fused dispatchers above once, by casting its pointers (f64 below).

from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from "numpy/random/bitgen.h":
    ctypedef struct bitgen_t:
        void *state
        uint64_t (*next_uint64)(void *st) nogil
        uint32_t (*next_uint32)(void *st) nogil
        double (*next_double)(void *st) nogil
        uint64_t (*next_raw)(void *st) nogil


cdef inline uint64_t _draw_upto(bitgen_t *g, uint64_t hi) noexcept nogil:
    """A uniform draw in [0, hi], drawn as NumPy's Generator.shuffle draws its indices: values
    under the smallest all-ones mask covering hi, redrawn while above hi, from 32-bit outputs of
    the bit generator while hi fits in 32 bits and from 64-bit outputs beyond."""
    cdef uint64_t mask = hi, value
    if hi == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if hi <= 0xFFFFFFFFUL:
        value = g.next_uint32(g.state) & mask
        while value > hi:
            value = g.next_uint32(g.state) & mask
        return value
    value = g.next_uint64(g.state) & mask
    while value > hi:
        value = g.next_uint64(g.state) & mask
    return value


cdef void _permute(bitgen_t *g, int64_t *perm, int64_t n) noexcept nogil:
    """perm := a permutation of 0 .. n-1 with the values and draws of
    ``perm[:] = arange(n); rng.shuffle(perm)``: from the last slot down to the second, slot i
    swaps with a slot drawn in [0, i]."""
    cdef int64_t i, j, held
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        j = <int64_t>_draw_upto(g, <uint64_t>i)
        held = perm[i]
        perm[i] = perm[j]
        perm[j] = held


cdef class TrainRun:
    """The epochs of one fit, with every array checked once (see prepare_train)."""
    cdef _Net n
    cdef _Quant qz
    cdef lc_train t
    cdef bint f64
    cdef int64_t N, N_val, batch_size, n_state
    cdef size_t item
    cdef object theta, m, v, bn_state, X, Y, X_val, Y_val, undo
    cdef object order
    cdef object rng_bits, rng_lock
    cdef bitgen_t *bitgen
    cdef void *p_theta
    cdef void *p_m
    cdef void *p_v
    cdef void *p_state
    cdef const void *p_X
    cdef const void *p_Y
    cdef const void *p_Xv
    cdef const void *p_Yv
    cdef void *p_undo[4]
    cdef int64_t *p_perm

    def __cinit__(self, spec, theta, X, Y, int64_t batch_size, int loss, m, v, bint clip_params,
                  bn_state, quant, X_val, Y_val, rng):
        self.n = _Net(spec)
        dt = _float_dtype(theta, "theta")
        _arr(theta, dt, (self.n.n_params,), "theta")
        _arr(m, dt, (self.n.n_params,), "m")
        _arr(v, dt, (self.n.n_params,), "v")
        _arr(X, dt, (-1, spec.sizes[0]), "X")
        self.N = X.shape[0]
        _arr(Y, dt, (self.N, spec.sizes[len(spec.sizes) - 1]), "Y")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        _check_loss(loss)
        _bn_state(self.n, bn_state, dt)
        if quant is not None:
            if self.n.n_state:
                raise ValueError(_NO_QUANT_BN)
            self.qz = _Quant(quant, self.n.net.n_layers)
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val, Y_val: expected both or neither")
        if X_val is not None:
            _arr(X_val, dt, (-1, spec.sizes[0]), "X_val")
            self.N_val = X_val.shape[0]
            _arr(Y_val, dt, (self.N_val, spec.sizes[len(spec.sizes) - 1]), "Y_val")
        if rng is not None:
            if not isinstance(rng, np.random.Generator):
                raise TypeError(f"rng: expected a numpy.random.Generator or None, got "
                                f"{type(rng).__name__}")
            self.rng_bits = rng.bit_generator
            capsule = self.rng_bits.capsule
            if not PyCapsule_IsValid(capsule, "BitGenerator"):
                raise TypeError("rng: its bit generator exposes no BitGenerator capsule")
            self.bitgen = <bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")
            self.rng_lock = self.rng_bits.lock
            # the samples' order until the first shuffle; private, so only shuffle writes it
            # and every index C reads lies in [0, N)
            self.order = np.arange(self.N, dtype=np.int64)
            self.p_perm = <int64_t*>_ptr(self.order)
        self.f64 = dt == np.float64
        self.item = dt.itemsize
        self.batch_size = batch_size
        self.n_state = self.n.n_state
        self.theta, self.m, self.v, self.bn_state = theta, m, v, bn_state
        self.X, self.Y, self.X_val, self.Y_val = X, Y, X_val, Y_val
        self.p_theta, self.p_m, self.p_v = _ptr(theta), _ptr(m), _ptr(v)
        self.p_state = _ptr(bn_state) if bn_state is not None else NULL
        self.p_X, self.p_Y = _ptr(X), _ptr(Y)
        self.p_Xv = _ptr(X_val) if X_val is not None else NULL
        self.p_Yv = _ptr(Y_val) if Y_val is not None else NULL
        self.undo = [np.empty_like(theta), np.empty_like(m), np.empty_like(v),
                     np.empty(self.n_state, dtype=dt)]
        for i in range(4):
            self.p_undo[i] = _ptr(self.undo[i])
        self.t.net = &self.n.net
        self.t.layout = self.n.offsets()
        self.t.loss = loss
        self.t.opt = NULL
        self.t.clip_params = clip_params
        self.t.quant = &self.qz.q if self.qz is not None else NULL

    @property
    def perm(self):
        """A copy of the epoch's order (None without rng)."""
        return None if self.order is None else self.order.copy()

    def shuffle(self):
        """perm := the epoch's order, drawn from rng as ``perm[:] = arange(N); rng.shuffle(perm)``
        draws it (the same values, the generator left in the same state)."""
        if self.bitgen == NULL:
            raise ValueError("shuffle: this run was prepared without a generator (rng=None)")
        with self.rng_lock:
            with nogil:
                _permute(self.bitgen, self.p_perm, self.N)

    def save(self):
        """Copy theta, m, v and the batch-norm state aside (what restore puts back)."""
        cdef size_t P = <size_t>self.n.n_params * self.item
        memcpy(self.p_undo[0], self.p_theta, P)
        memcpy(self.p_undo[1], self.p_m, P)
        memcpy(self.p_undo[2], self.p_v, P)
        if self.p_state != NULL:
            memcpy(self.p_undo[3], self.p_state, <size_t>self.n_state * self.item)

    def restore(self):
        """Put back theta, m, v and the batch-norm state as the last save found them."""
        cdef size_t P = <size_t>self.n.n_params * self.item
        memcpy(self.p_theta, self.p_undo[0], P)
        memcpy(self.p_m, self.p_undo[1], P)
        memcpy(self.p_v, self.p_undo[2], P)
        if self.p_state != NULL:
            memcpy(self.p_state, self.p_undo[3], <size_t>self.n_state * self.item)

    def epoch(self, optimizer, int64_t step, *, rail=None):
        """One epoch, as train_epoch with this run's arrays: in the order perm holds when the
        run has a generator (see shuffle), else in the samples' order.  Returns (status,
        loss_sum, n_done, step)."""
        cdef lc_optim o = _optim(optimizer)
        if rail is not None:
            _arr(rail, np.float64, ((self.N + self.batch_size - 1) // self.batch_size, LC_RAIL_N),
                 "rail")
        cdef const int64_t *pc = self.p_perm
        cdef double *rc = <double*>_ptr(rail) if rail is not None else NULL
        cdef lc_train t = self.t
        t.opt = &o
        cdef double loss_sum = 0.0
        cdef int64_t n_done = 0
        cdef int status
        with nogil:
            if self.f64:
                status = _train_epoch_c(&t, <double*>self.p_theta, <double*>self.p_m,
                                        <double*>self.p_v, <double*>self.p_state,
                                        <const double*>self.p_X, <const double*>self.p_Y, self.N,
                                        pc, self.batch_size, &step, rc, &loss_sum, &n_done)
            else:
                status = _train_epoch_c(&t, <float*>self.p_theta, <float*>self.p_m,
                                        <float*>self.p_v, <float*>self.p_state,
                                        <const float*>self.p_X, <const float*>self.p_Y, self.N,
                                        pc, self.batch_size, &step, rc, &loss_sum, &n_done)
        _step_status(status, "train_epoch")
        return status, loss_sum, n_done, step

    def val_loss(self):
        """net_loss of (X_val, Y_val) at the current parameters and batch-norm state."""
        if self.p_Xv == NULL:
            raise ValueError("val_loss: this run was prepared without validation data")
        cdef double value = 0.0
        cdef int status
        with nogil:
            if self.f64:
                status = _net_loss_c(&self.n.net, <const double*>self.p_theta,
                                     <const double*>self.p_state, <const double*>self.p_Xv,
                                     <const double*>self.p_Yv, self.N_val, self.t.loss, &value)
            else:
                status = _net_loss_c(&self.n.net, <const float*>self.p_theta,
                                     <const float*>self.p_state, <const float*>self.p_Xv,
                                     <const float*>self.p_Yv, self.N_val, self.t.loss, &value)
        _raise_status(status, "net_loss")
        return value


def prepare_train(spec, theta, X, Y, *, int64_t batch_size, int loss, m, v, bint clip_params,
                  bn_state=None, quant=None, X_val=None, Y_val=None, rng=None):
    """The epochs of one fit over fixed arrays, every argument checked here once: a TrainRun
    whose ``epoch(optimizer, step, *, rail=None)`` is train_epoch on these arrays (in the order
    ``perm`` that ``shuffle()`` draws from rng, when rng is given), ``val_loss()``
    net_loss of (X_val, Y_val), and ``save()`` / ``restore()`` the undo copy of theta, m, v and
    bn_state.  The run keeps the arrays and reads and writes them in place."""
    return TrainRun(spec, theta, X, Y, batch_size, loss, m, v, clip_params, bn_state, quant,
                    X_val, Y_val, rng)
