# Wrappers of lc_dense.h and lc_optim.h: dense layers, losses, whole networks, optimizers
# (the training step itself: train.pxi).

cdef extern from "lc_dense.h" nogil:
    void lc_act_deriv_f32(int32_t act, const float *z, const float *h, float *d, int64_t n)
    void lc_act_deriv_f64(int32_t act, const double *z, const double *h, double *d, int64_t n)
    void lc_act_forward_f32(int32_t act, const float *z, float *h, int64_t n)
    void lc_act_forward_f64(int32_t act, const double *z, double *h, int64_t n)
    void lc_dense_forward_f32(const float *x, int64_t B, int64_t n_in, int64_t n_out,
                              const float *W, const float *b, int32_t act, int32_t clip,
                              float *z, float *h, float *a)
    void lc_dense_forward_f64(const double *x, int64_t B, int64_t n_in, int64_t n_out,
                              const double *W, const double *b, int32_t act, int32_t clip,
                              double *z, double *h, double *a)
    void lc_dense_backward_f32(const float *x, int64_t B, int64_t n_in, int64_t n_out,
                               const float *W, const float *z, const float *h, const float *da,
                               int32_t act, int32_t clip, float *work, float *gW, float *gb, float *dx)
    void lc_dense_backward_f64(const double *x, int64_t B, int64_t n_in, int64_t n_out,
                               const double *W, const double *z, const double *h, const double *da,
                               int32_t act, int32_t clip, double *work, double *gW, double *gb, double *dx)
    double lc_loss_grad_f32(int32_t loss, const float *f, const float *y, int64_t B, int64_t m,
                            float *dloss)
    double lc_loss_grad_f64(int32_t loss, const double *f, const double *y, int64_t B, int64_t m,
                            double *dloss)
    int lc_net_forward_f32(const lc_net *net, const float *theta, const float *bn_state, const float *X, int64_t N, float *Y)
    int lc_net_forward_f64(const lc_net *net, const double *theta, const double *bn_state, const double *X, int64_t N, double *Y)
    int lc_net_loss_f32(const lc_net *net, const float *theta, const float *bn_state,
                        const float *X, const float *Y, int64_t N, int32_t loss, double *loss_out)
    int lc_net_loss_f64(const lc_net *net, const double *theta, const double *bn_state,
                        const double *X, const double *Y, int64_t N, int32_t loss,
                        double *loss_out)
    int lc_net_loss_grad_f32(const lc_net *net, const float *theta, const float *X, const float *Y,
                             int64_t N, int32_t loss, float *grad, float *dX, float *bn_state, double *loss_out)
    int lc_net_loss_grad_f64(const lc_net *net, const double *theta, const double *X, const double *Y,
                             int64_t N, int32_t loss, double *grad, double *dX, double *bn_state, double *loss_out)

cdef extern from "lc_optim.h" nogil:
    void lc_optim_delta_f32(const lc_optim *opt, const float *g, float *m, float *v, int64_t P,
                            int64_t t, float *delta)
    void lc_optim_delta_f64(const lc_optim *opt, const double *g, double *m, double *v, int64_t P,
                            int64_t t, double *delta)
    void lc_optim_step_f32(const lc_optim *opt, float *theta, const float *g, float *m, float *v,
                           int64_t P, int64_t t)
    void lc_optim_step_f64(const lc_optim *opt, double *theta, const double *g, double *m, double *v,
                           int64_t P, int64_t t)


cdef inline void* _ptr(object a):
    """The data pointer of an ndarray, NULL for None."""
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


# -- one cdef inline fused dispatcher per C kernel: the _f32 or _f64 twin, chosen at compile time

cdef inline void _act_forward_c(int32_t act, const real *z, real *h, int64_t n) noexcept nogil:
    if real is float:
        lc_act_forward_f32(act, z, h, n)
    else:
        lc_act_forward_f64(act, z, h, n)


cdef inline void _act_deriv_c(int32_t act, const real *z, const real *h, real *d,
                              int64_t n) noexcept nogil:
    if real is float:
        lc_act_deriv_f32(act, z, h, d, n)
    else:
        lc_act_deriv_f64(act, z, h, d, n)


cdef inline void _dense_forward_c(const real *x, int64_t B, int64_t n_in, int64_t n_out,
                                  const real *W, const real *b, int32_t act, int32_t clip,
                                  real *z, real *h, real *a) noexcept nogil:
    if real is float:
        lc_dense_forward_f32(x, B, n_in, n_out, W, b, act, clip, z, h, a)
    else:
        lc_dense_forward_f64(x, B, n_in, n_out, W, b, act, clip, z, h, a)


cdef inline void _dense_backward_c(const real *x, int64_t B, int64_t n_in, int64_t n_out,
                                   const real *W, const real *z, const real *h, const real *da,
                                   int32_t act, int32_t clip, real *work, real *gW, real *gb,
                                   real *dx) noexcept nogil:
    if real is float:
        lc_dense_backward_f32(x, B, n_in, n_out, W, z, h, da, act, clip, work, gW, gb, dx)
    else:
        lc_dense_backward_f64(x, B, n_in, n_out, W, z, h, da, act, clip, work, gW, gb, dx)


cdef inline double _loss_grad_c(int32_t loss, const real *f, const real *y, int64_t B, int64_t m,
                                real *dloss) noexcept nogil:
    if real is float:
        return lc_loss_grad_f32(loss, f, y, B, m, dloss)
    else:
        return lc_loss_grad_f64(loss, f, y, B, m, dloss)


cdef inline int _net_forward_c(const lc_net *net, const real *theta, const real *bn_state,
                               const real *X, int64_t N, real *Y) noexcept nogil:
    if real is float:
        return lc_net_forward_f32(net, theta, bn_state, X, N, Y)
    else:
        return lc_net_forward_f64(net, theta, bn_state, X, N, Y)


cdef inline int _net_loss_c(const lc_net *net, const real *theta, const real *bn_state,
                            const real *X, const real *Y, int64_t N, int32_t loss,
                            double *loss_out) noexcept nogil:
    if real is float:
        return lc_net_loss_f32(net, theta, bn_state, X, Y, N, loss, loss_out)
    else:
        return lc_net_loss_f64(net, theta, bn_state, X, Y, N, loss, loss_out)


cdef inline int _net_loss_grad_c(const lc_net *net, const real *theta, const real *X,
                                 const real *Y, int64_t N, int32_t loss, real *grad, real *dX,
                                 real *bn_state, double *loss_out) noexcept nogil:
    if real is float:
        return lc_net_loss_grad_f32(net, theta, X, Y, N, loss, grad, dX, bn_state, loss_out)
    else:
        return lc_net_loss_grad_f64(net, theta, X, Y, N, loss, grad, dX, bn_state, loss_out)


cdef inline void _optim_step_c(const lc_optim *opt, real *theta, const real *g, real *m, real *v,
                               int64_t P, int64_t t) noexcept nogil:
    if real is float:
        lc_optim_step_f32(opt, theta, g, m, v, P, t)
    else:
        lc_optim_step_f64(opt, theta, g, m, v, P, t)


cdef inline void _optim_delta_c(const lc_optim *opt, const real *g, real *m, real *v, int64_t P,
                                int64_t t, real *delta) noexcept nogil:
    if real is float:
        lc_optim_delta_f32(opt, g, m, v, P, t, delta)
    else:
        lc_optim_delta_f64(opt, g, m, v, P, t, delta)


# -- the kernel calls, on typed memoryviews of arrays the wrappers below have checked; Cython
# -- dispatches each on the dtype of its first array

def _k_act_forward(int act, const real[::1] z, real[::1] h):
    with nogil:
        _act_forward_c(act, _mv_cptr(z), _mv_ptr(h), z.shape[0])


def _k_act_deriv(int act, const real[::1] z, const real[::1] h, real[::1] d):
    with nogil:
        _act_deriv_c(act, _mv_cptr(z), _mv_cptr(h), _mv_ptr(d), z.shape[0])


def _k_dense_forward(const real[:, ::1] x, const real[:, ::1] W, const real[::1] b, int act,
                     bint clip, real[:, ::1] z, real[:, ::1] h, real[:, ::1] a):
    with nogil:
        _dense_forward_c(_mv2_cptr(x), x.shape[0], W.shape[0], W.shape[1], _mv2_cptr(W),
                         _mv_cptr(b), act, clip, _mv2_ptr(z), _mv2_ptr(h), _mv2_ptr(a))


def _k_dense_backward(const real[:, ::1] x, const real[:, ::1] W, const real[:, ::1] z,
                      const real[:, ::1] h, const real[:, ::1] da, int act, bint clip,
                      real[::1] work, real[:, ::1] gW, real[::1] gb, real[:, ::1] dx):
    with nogil:
        _dense_backward_c(_mv2_cptr(x), x.shape[0], W.shape[0], W.shape[1], _mv2_cptr(W),
                          _mv2_cptr(z), _mv2_cptr(h), _mv2_cptr(da), act, clip, _mv_ptr(work),
                          _mv2_ptr(gW), _mv_ptr(gb), _mv2_ptr(dx))


def _k_loss_grad(int loss, const real[:, ::1] f, const real[:, ::1] y, real[:, ::1] d):
    cdef double value
    with nogil:
        value = _loss_grad_c(loss, _mv2_cptr(f), _mv2_cptr(y), f.shape[0], f.shape[1],
                             _mv2_ptr(d))
    return value


def _k_net_forward(_Net n, const real[::1] theta, const real[::1] bn_state,
                   const real[:, ::1] X, real[:, ::1] Y):
    cdef int status
    with nogil:
        status = _net_forward_c(&n.net, _mv_cptr(theta), _mv_cptr(bn_state), _mv2_cptr(X),
                                X.shape[0], _mv2_ptr(Y))
    return status


def _k_net_loss(_Net n, const real[::1] theta, const real[::1] bn_state, const real[:, ::1] X,
                const real[:, ::1] Y, int loss):
    cdef int status
    cdef double value = 0.0
    with nogil:
        status = _net_loss_c(&n.net, _mv_cptr(theta), _mv_cptr(bn_state), _mv2_cptr(X),
                             _mv2_cptr(Y), X.shape[0], loss, &value)
    return status, value


def _k_net_loss_grad(_Net n, const real[::1] theta, const real[:, ::1] X, const real[:, ::1] Y,
                     int loss, real[::1] grad, real[:, ::1] dX, real[::1] bn_state):
    cdef int status
    cdef double value = 0.0
    with nogil:
        status = _net_loss_grad_c(&n.net, _mv_cptr(theta), _mv2_cptr(X), _mv2_cptr(Y),
                                  X.shape[0], loss, _mv_ptr(grad), _mv2_ptr(dX),
                                  _mv_ptr(bn_state), &value)
    return status, value


def _k_optim_step(opt, real[::1] theta, const real[::1] g, real[::1] m, real[::1] v, int64_t t):
    cdef lc_optim o = _optim(opt)
    with nogil:
        _optim_step_c(&o, _mv_ptr(theta), _mv_cptr(g), _mv_ptr(m), _mv_ptr(v), theta.shape[0], t)


def _k_optim_delta(opt, const real[::1] g, real[::1] m, real[::1] v, int64_t t,
                   real[::1] delta):
    cdef lc_optim o = _optim(opt)
    with nogil:
        _optim_delta_c(&o, _mv_cptr(g), _mv_ptr(m), _mv_ptr(v), g.shape[0], t, _mv_ptr(delta))


# -- the wrappers: every argument checked (dtype, shape, contiguity, codes), then one kernel call

def act_forward(int act, z):
    """h := act(z) elementwise (z any shape, float32 or float64)."""
    _float_dtype(z, "z")
    z = np.ascontiguousarray(z)
    h = np.empty_like(z)
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    _k_act_forward(act, z.reshape(-1), h.reshape(-1))
    return h


def act_deriv(int act, z, h):
    """act'(z) elementwise from z and h = act(z) (same shape, float32 or float64)."""
    dt = _float_dtype(z, "z")
    _arr(z, dt, z.shape, "z")
    _arr(h, dt, z.shape, "h")
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    d = np.empty_like(z)
    _k_act_deriv(act, z.reshape(-1), h.reshape(-1), d.reshape(-1))
    return d


def dense_forward(x, W, b, int act, bint clip):
    """(z, h, a) of one dense layer: z = x W + b, h = act(z), a = clip(h) if clip else h."""
    dt = _float_dtype(W, "W")
    _arr(W, dt, (-1, -1), "W")
    cdef int64_t n_in = W.shape[0], n_out = W.shape[1]
    _arr(x, dt, (-1, n_in), "x")
    if b is not None:
        _arr(b, dt, (n_out,), "b")
    cdef int64_t B = x.shape[0]
    z = np.empty((B, n_out), dtype=dt)
    h = np.empty((B, n_out), dtype=dt)
    a = np.empty((B, n_out), dtype=dt)
    _k_dense_forward(x, W, b, act, clip, z, h, a)
    return z, h, a


def dense_backward(x, W, z, h, da, int act, bint clip, bint need_bias=True, bint need_dx=True):
    """(gW, gb, dx) of one dense layer for the upstream gradient da (None where not asked)."""
    dt = _float_dtype(W, "W")
    _arr(W, dt, (-1, -1), "W")
    cdef int64_t n_in = W.shape[0], n_out = W.shape[1]
    _arr(x, dt, (-1, n_in), "x")
    cdef int64_t B = x.shape[0]
    for arr, name in ((z, "z"), (h, "h"), (da, "da")):
        _arr(arr, dt, (B, n_out), name)
    gW = np.empty((n_in, n_out), dtype=dt)
    gb = np.empty(n_out, dtype=dt) if need_bias else None
    dx = np.empty((B, n_in), dtype=dt) if need_dx else None
    work = np.empty(B * n_out + n_in * n_out, dtype=dt)
    _k_dense_backward(x, W, z, h, da, act, clip, work, gW, gb, dx)
    return gW, gb, dx


def loss_grad(int loss, f, y):
    """(value, dL/df) of a loss over predictions f and targets y of shape (B, m)."""
    _check_loss(loss)
    dt = _float_dtype(f, "f")
    _arr(f, dt, (-1, -1), "f")
    _arr(y, dt, f.shape, "y")
    d = np.empty_like(f)
    return _k_loss_grad(loss, f, y, d), d


def _bn_state(_Net n, bn_state, dt):
    if n.n_state and bn_state is None:
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")
    if bn_state is not None:
        _arr(bn_state, dt, (n.n_state,), "bn_state")
    return bn_state


def net_forward(spec, theta, X, bn_state=None):
    """Y = net(X) for a NetSpec (or a prepare_net description) and flat parameters theta
    (inference: batch normalisation with the moving statistics bn_state)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _bn_state(n, bn_state, dt)
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    Y = np.empty((X.shape[0], spec.sizes[len(spec.sizes) - 1]), dtype=dt)
    _raise_status(_k_net_forward(n, theta, bn_state, X, Y), "net_forward")
    return Y


def net_loss(spec, theta, X, Y, *, int loss, bn_state=None):
    """The loss of net(X) against Y over all N samples in inference mode (batch normalisation
    with the moving statistics bn_state), without a gradient: what net_forward followed by
    loss_grad gives, in one call (a validation loss).  spec a NetSpec or a prepare_net
    description."""
    _check_loss(loss)
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _bn_state(n, bn_state, dt)
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    _arr(Y, dt, (X.shape[0], spec.sizes[len(spec.sizes) - 1]), "Y")
    status, value = _k_net_loss(n, theta, bn_state, X, Y, loss)
    _raise_status(status, "net_loss")
    return value


def net_loss_grad(spec, theta, X, Y, int loss, bint need_dx=False, bn_state=None):
    """(loss, grad, dX) over the whole set as one batch (training mode); dX is None unless
    asked; bn_state, when given, takes this batch's moving-average update."""
    _check_loss(loss)
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if bn_state is not None:
        _arr(bn_state, dt, (n.n_state,), "bn_state")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    grad = np.empty_like(theta)
    dX = np.empty_like(X) if need_dx else None
    status, value = _k_net_loss_grad(n, theta, X, Y, loss, grad, dX, bn_state)
    _raise_status(status, "net_loss_grad")
    return value, grad, dX


def optim_step(opt, theta, g, m, v, int64_t t):
    """One optimizer step t (from 1) on theta in place; opt an OptimizerConfig."""
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (-1,), "theta")
    cdef int64_t P = theta.shape[0]
    for arr, name in ((g, "g"), (m, "m"), (v, "v")):
        _arr(arr, dt, (P,), name)
    _k_optim_step(opt, theta, g, m, v, t)


def optim_delta(opt, g, m, v, int64_t t):
    """The increment of optimizer step t (from 1) for gradient g; m and v updated in place."""
    dt = _float_dtype(g, "g")
    _arr(g, dt, (-1,), "g")
    cdef int64_t P = g.shape[0]
    _arr(m, dt, (P,), "m")
    _arr(v, dt, (P,), "v")
    delta = np.empty_like(g)
    _k_optim_delta(opt, g, m, v, t, delta)
    return delta


def net_layout(spec):
    """The layout table (layers, 4) int64 of a NetSpec: per layer the offsets of the kernel, the
    bias, gamma and the moving mean (-1 where absent), as lc_net_layout computes it."""
    return _Net(spec).layout.copy()
