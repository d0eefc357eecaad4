# Wrappers of lc_dense.h and lc_optim.h: dense layers, losses, whole networks, training epochs.

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
    int lc_net_loss_grad_f32(const lc_net *net, const float *theta, const float *X, const float *Y,
                             int64_t N, int32_t loss, float *grad, float *dX, float *bn_state, double *loss_out)
    int lc_net_loss_grad_f64(const lc_net *net, const double *theta, const double *X, const double *Y,
                             int64_t N, int32_t loss, double *grad, double *dX, double *bn_state, double *loss_out)
    int lc_train_epoch_f32(const lc_net *net, float *theta, const float *X, const float *Y,
                           int64_t N, const int64_t *perm, int64_t batch_size, int32_t loss,
                           const lc_optim *opt, float *m, float *v, int64_t *step,
                           int32_t clip_params, float *bn_state, double *loss_sum, int64_t *n_done)
    int lc_train_epoch_f64(const lc_net *net, double *theta, const double *X, const double *Y,
                           int64_t N, const int64_t *perm, int64_t batch_size, int32_t loss,
                           const lc_optim *opt, double *m, double *v, int64_t *step,
                           int32_t clip_params, double *bn_state, double *loss_sum, int64_t *n_done)

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


def act_forward(int act, z):
    """h := act(z) elementwise (z any shape, float32 or float64)."""
    dt = _float_dtype(z, "z")
    z = np.ascontiguousarray(z)
    h = np.empty_like(z)
    cdef void *zc = _ptr(z)
    cdef void *hc = _ptr(h)
    cdef int64_t n = z.size
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_act_forward_f32(act, <float*>zc, <float*>hc, n)
        else:
            lc_act_forward_f64(act, <double*>zc, <double*>hc, n)
    return h


def act_deriv(int act, z, h):
    """act'(z) elementwise from z and h = act(z) (same shape, float32 or float64)."""
    dt = _float_dtype(z, "z")
    _arr(z, dt, z.shape, "z")
    _arr(h, dt, z.shape, "h")
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    d = np.empty_like(z)
    cdef void *zc = _ptr(z)
    cdef void *hc = _ptr(h)
    cdef void *dc = _ptr(d)
    cdef int64_t n = z.size
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_act_deriv_f32(act, <float*>zc, <float*>hc, <float*>dc, n)
        else:
            lc_act_deriv_f64(act, <double*>zc, <double*>hc, <double*>dc, n)
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
    cdef void *xc = _ptr(x)
    cdef void *Wc = _ptr(W)
    cdef void *bc = _ptr(b)
    cdef void *zc = _ptr(z)
    cdef void *hc = _ptr(h)
    cdef void *ac = _ptr(a)
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_dense_forward_f32(<float*>xc, B, n_in, n_out, <float*>Wc,
                                 <float*>bc, act, clip, <float*>zc,
                                 <float*>hc, <float*>ac)
        else:
            lc_dense_forward_f64(<double*>xc, B, n_in, n_out, <double*>Wc,
                                 <double*>bc, act, clip, <double*>zc,
                                 <double*>hc, <double*>ac)
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
    cdef void *xc = _ptr(x)
    cdef void *Wc = _ptr(W)
    cdef void *zc = _ptr(z)
    cdef void *hc = _ptr(h)
    cdef void *dac = _ptr(da)
    cdef void *gWc = _ptr(gW)
    cdef void *gbc = _ptr(gb)
    cdef void *dxc = _ptr(dx)
    cdef void *wkc = _ptr(work)
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_dense_backward_f32(<float*>xc, B, n_in, n_out, <float*>Wc,
                                  <float*>zc, <float*>hc, <float*>dac, act, clip,
                                  <float*>wkc, <float*>gWc,
                                  <float*>gbc, <float*>dxc)
        else:
            lc_dense_backward_f64(<double*>xc, B, n_in, n_out, <double*>Wc,
                                  <double*>zc, <double*>hc, <double*>dac, act, clip,
                                  <double*>wkc, <double*>gWc,
                                  <double*>gbc, <double*>dxc)
    return gW, gb, dx


def loss_grad(int loss, f, y):
    """(value, dL/df) of a loss over predictions f and targets y of shape (B, m)."""
    dt = _float_dtype(f, "f")
    _arr(f, dt, (-1, -1), "f")
    _arr(y, dt, f.shape, "y")
    d = np.empty_like(f)
    cdef void *fc = _ptr(f)
    cdef void *yc = _ptr(y)
    cdef void *dc = _ptr(d)
    cdef int64_t B = f.shape[0], m = f.shape[1]
    cdef double value
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            value = lc_loss_grad_f32(loss, <float*>fc, <float*>yc, B, m, <float*>dc)
        else:
            value = lc_loss_grad_f64(loss, <double*>fc, <double*>yc, B, m, <double*>dc)
    return value, d


def _bn_state(_Net n, bn_state, dt):
    if n.n_state and bn_state is None:
        raise ValueError("bn_state: a network with batch normalisation needs its moving statistics")
    if bn_state is not None:
        _arr(bn_state, dt, (n.n_state,), "bn_state")
    return bn_state


def net_forward(spec, theta, X, bn_state=None):
    """Y = net(X) for a NetSpec and flat parameters theta (inference: batch normalisation
    with the moving statistics bn_state)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _bn_state(n, bn_state, dt)
    cdef void *sc = _ptr(bn_state)
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    Y = np.empty((N, spec.sizes[len(spec.sizes) - 1]), dtype=dt)
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef int status
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_net_forward_f32(&n.net, <float*>tc, <float*>sc, <float*>Xc, N, <float*>Yc)
        else:
            status = lc_net_forward_f64(&n.net, <double*>tc, <double*>sc, <double*>Xc, N, <double*>Yc)
    _raise_status(status, "net_forward")
    return Y


def net_loss_grad(spec, theta, X, Y, int loss, bint need_dx=False, bn_state=None):
    """(loss, grad, dX) over the whole set as one batch (training mode); dX is None unless
    asked; bn_state, when given, takes this batch's moving-average update."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if bn_state is not None:
        _arr(bn_state, dt, (n.n_state,), "bn_state")
    cdef void *sc = _ptr(bn_state)
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    grad = np.empty_like(theta)
    dX = np.empty_like(X) if need_dx else None
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *gc = _ptr(grad)
    cdef void *dXc = _ptr(dX)
    cdef int status
    cdef double value = 0.0
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_net_loss_grad_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc,
                                          N, loss, <float*>gc, <float*>dXc, <float*>sc, &value)
        else:
            status = lc_net_loss_grad_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc,
                                          N, loss, <double*>gc, <double*>dXc, <double*>sc, &value)
    _raise_status(status, "net_loss_grad")
    return value, grad, dX


def optim_step(tuple opt, theta, g, m, v, int64_t t):
    """One optimizer step t (from 1) on theta in place; opt = (kind, lr, b1, b2, eps, mu, nesterov)."""
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (-1,), "theta")
    cdef int64_t P = theta.shape[0]
    for arr, name in ((g, "g"), (m, "m"), (v, "v")):
        _arr(arr, dt, (P,), name)
    cdef lc_optim o = _optim(opt)
    cdef void *tc = _ptr(theta)
    cdef void *gc = _ptr(g)
    cdef void *mc = _ptr(m)
    cdef void *vc = _ptr(v)
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_optim_step_f32(&o, <float*>tc, <float*>gc, <float*>mc, <float*>vc, P, t)
        else:
            lc_optim_step_f64(&o, <double*>tc, <double*>gc, <double*>mc, <double*>vc, P, t)


def optim_delta(tuple opt, g, m, v, int64_t t):
    """The increment of optimizer step t (from 1) for gradient g; m and v updated in place."""
    dt = _float_dtype(g, "g")
    _arr(g, dt, (-1,), "g")
    cdef int64_t P = g.shape[0]
    _arr(m, dt, (P,), "m")
    _arr(v, dt, (P,), "v")
    delta = np.empty_like(g)
    cdef lc_optim o = _optim(opt)
    cdef void *gc = _ptr(g)
    cdef void *mc = _ptr(m)
    cdef void *vc = _ptr(v)
    cdef void *dc = _ptr(delta)
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_optim_delta_f32(&o, <float*>gc, <float*>mc, <float*>vc, P, t, <float*>dc)
        else:
            lc_optim_delta_f64(&o, <double*>gc, <double*>mc, <double*>vc, P, t, <double*>dc)
    return delta


def train_epoch(spec, theta, X, Y, perm, int64_t batch_size, int loss, tuple opt, m, v,
                int64_t step, bint clip_params, bn_state=None):
    """One fused training epoch in C with the GIL released.

    Updates theta, m, v in place and returns (status, loss_sum, n_done, step): status 0 when
    the epoch completed, 1 at a non-finite loss, 2 at a non-finite parameter (theta then holds
    the parameters from before that batch)."""
    cdef _Net n = _Net(spec)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(m, dt, (n.n_params,), "m")
    _arr(v, dt, (n.n_params,), "v")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    if perm is not None:
        _arr(perm, np.int64, (N,), "perm")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    cdef lc_optim o = _optim(opt)
    _bn_state(n, bn_state, dt)
    cdef void *sc = _ptr(bn_state)
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *pc = _ptr(perm)
    cdef void *mc = _ptr(m)
    cdef void *vc = _ptr(v)
    cdef int status
    cdef double loss_sum = 0.0
    cdef int64_t n_done = 0
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_train_epoch_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc,
                                        N, <int64_t*>pc, batch_size, loss, &o,
                                        <float*>mc, <float*>vc, &step, clip_params,
                                        <float*>sc, &loss_sum, &n_done)
        else:
            status = lc_train_epoch_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc,
                                        N, <int64_t*>pc, batch_size, loss, &o,
                                        <double*>mc, <double*>vc, &step, clip_params,
                                        <double*>sc, &loss_sum, &n_done)
    _raise_status(status, "train_epoch")
    return status, loss_sum, n_done, step
