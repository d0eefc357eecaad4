# Wrappers of lc_hessian.h: R-operator Hessian-vector products and the Gauss-Newton product.

cdef extern from "lc_hessian.h" nogil:
    int64_t lc_hvp_state_len(const lc_net *net, int64_t N)
    void lc_act_deriv2_f32(int32_t act, const float *z, const float *h, float *d2, int64_t n)
    void lc_act_deriv2_f64(int32_t act, const double *z, const double *h, double *d2, int64_t n)
    int lc_hvp_prepare_f32(const lc_net *net, const float *theta, const float *X, const float *Y,
                           int64_t N, int32_t loss, float *state, float *grad, double *loss_out)
    int lc_hvp_prepare_f64(const lc_net *net, const double *theta, const double *X, const double *Y,
                           int64_t N, int32_t loss, double *state, double *grad, double *loss_out)
    int lc_hvp_apply_f32(const lc_net *net, const float *theta, int64_t N, int32_t loss,
                         int32_t gauss_newton, const float *state, const float *V, int64_t k,
                         float *HV)
    int lc_hvp_apply_f64(const lc_net *net, const double *theta, int64_t N, int32_t loss,
                         int32_t gauss_newton, const double *state, const double *V, int64_t k,
                         double *HV)
    int lc_hvp_dense_f32(const lc_net *net, const float *theta, int64_t N, int32_t loss,
                         int32_t gauss_newton, const float *state, float *H)
    int lc_hvp_dense_f64(const lc_net *net, const double *theta, int64_t N, int32_t loss,
                         int32_t gauss_newton, const double *state, double *H)
    int lc_hvp_lanczos_f64(const lc_net *net, const double *theta, int64_t N, int32_t loss,
                           int32_t gauss_newton, const double *state, const double *v0,
                           int32_t which, double tol, int64_t max_steps, double *value,
                           int64_t *steps, int32_t *converged)
    int lc_net_hvp_f32(const lc_net *net, const float *theta, const float *X, const float *Y,
                       int64_t N, int32_t loss, int32_t gauss_newton, const float *V, int64_t k,
                       float *HV, float *grad, double *loss_out)
    int lc_net_hvp_f64(const lc_net *net, const double *theta, const double *X, const double *Y,
                       int64_t N, int32_t loss, int32_t gauss_newton, const double *V, int64_t k,
                       double *HV, double *grad, double *loss_out)


cdef _check_hvp_loss(int loss):
    if loss != 0 and loss != 1:
        raise ValueError(f"loss: the Hessian kernels take mse (0) or half_mse (1), got code {loss}")


def act_deriv2(int act, z, h):
    """act''(z) elementwise from z and h = act(z) (same shape, float32 or float64)."""
    dt = _float_dtype(z, "z")
    _arr(z, dt, z.shape, "z")
    _arr(h, dt, z.shape, "h")
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    d2 = np.empty_like(z)
    cdef void *zc = _ptr(z)
    cdef void *hc = _ptr(h)
    cdef void *dc = _ptr(d2)
    cdef int64_t n = z.size
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            lc_act_deriv2_f32(act, <float*>zc, <float*>hc, <float*>dc, n)
        else:
            lc_act_deriv2_f64(act, <double*>zc, <double*>hc, <double*>dc, n)
    return d2


def hvp_state_len(spec, int64_t N):
    """Length of the state hvp_prepare fills for N samples."""
    cdef _Net n = _Net(spec)
    return lc_hvp_state_len(&n.net, N)


def hvp_prepare(spec, theta, X, Y, int loss):
    """(state, loss value, grad): one forward and backward pass at theta, kept for hvp_apply."""
    cdef _Net n = _Net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    if N < 1:
        raise ValueError("X: expected at least one sample")
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    state = np.empty(lc_hvp_state_len(&n.net, N), dtype=dt)
    grad = np.empty_like(theta)
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *sc = _ptr(state)
    cdef void *gc = _ptr(grad)
    cdef int status
    cdef double value = 0.0
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_hvp_prepare_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc, N, loss,
                                        <float*>sc, <float*>gc, &value)
        else:
            status = lc_hvp_prepare_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc, N, loss,
                                        <double*>sc, <double*>gc, &value)
    _raise_status(status, "hvp_prepare")
    return state, value, grad


def hvp_apply(spec, theta, state, int64_t N, int loss, V, bint gauss_newton=False):
    """HV (P, k) = H V (or the Gauss-Newton product) from a state of hvp_prepare; V (P, k)."""
    cdef _Net n = _Net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    _arr(state, dt, (lc_hvp_state_len(&n.net, N),), "state")
    _arr(V, dt, (n.n_params, -1), "V")
    cdef int64_t k = V.shape[1]
    HV = np.empty_like(V)
    cdef void *tc = _ptr(theta)
    cdef void *sc = _ptr(state)
    cdef void *Vc = _ptr(V)
    cdef void *Hc = _ptr(HV)
    cdef int status
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_hvp_apply_f32(&n.net, <float*>tc, N, loss, gauss_newton, <float*>sc,
                                      <float*>Vc, k, <float*>Hc)
        else:
            status = lc_hvp_apply_f64(&n.net, <double*>tc, N, loss, gauss_newton, <double*>sc,
                                      <double*>Vc, k, <double*>Hc)
    _raise_status(status, "hvp_apply")
    return HV


def hvp_dense(spec, theta, state, int64_t N, int loss, bint gauss_newton=False):
    """The whole (P, P) Hessian (or Gauss-Newton matrix) from a state of hvp_prepare."""
    cdef _Net n = _Net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    _arr(state, dt, (lc_hvp_state_len(&n.net, N),), "state")
    H = np.empty((n.n_params, n.n_params), dtype=dt)
    cdef void *tc = _ptr(theta)
    cdef void *sc = _ptr(state)
    cdef void *Hc = _ptr(H)
    cdef int status
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_hvp_dense_f32(&n.net, <float*>tc, N, loss, gauss_newton, <float*>sc,
                                      <float*>Hc)
        else:
            status = lc_hvp_dense_f64(&n.net, <double*>tc, N, loss, gauss_newton, <double*>sc,
                                      <double*>Hc)
    _raise_status(status, "hvp_dense")
    return H


cdef _check_unit(v0):
    norm = float(np.linalg.norm(v0))
    if not abs(norm - 1.0) <= 1e-8:
        raise ValueError(f"v0: expected a unit vector (Lanczos starts from it), got norm {norm:.6g}")


def hvp_lanczos(spec, theta, state, int64_t N, int loss, v0, str which, double tol,
                int64_t max_steps, bint gauss_newton=False):
    """(value, steps, converged): the extreme eigenvalue ("LA" largest, "SA" smallest) by
    Lanczos from a prepared float64 state and a unit start vector v0."""
    cdef _Net n = _Net(spec)
    _check_hvp_loss(loss)
    _arr(theta, np.float64, (n.n_params,), "theta")
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    _arr(state, np.float64, (lc_hvp_state_len(&n.net, N),), "state")
    _arr(v0, np.float64, (n.n_params,), "v0")
    _check_unit(v0)
    if which not in ("LA", "SA"):
        raise ValueError(f"which: expected 'LA' or 'SA', got {which!r}")
    if not 1 <= max_steps <= n.n_params:
        raise ValueError(f"max_steps: expected 1 to {n.n_params}, got {max_steps}")
    if not tol >= 0:
        raise ValueError(f"tol: expected a number >= 0, got {tol}")
    cdef int32_t w = 1 if which == "LA" else -1
    cdef double *tc = <double*>_ptr(theta)
    cdef double *sc = <double*>_ptr(state)
    cdef double *vc = <double*>_ptr(v0)
    cdef double value = 0.0
    cdef int64_t steps = 0
    cdef int32_t converged = 0
    cdef int status
    with nogil:
        status = lc_hvp_lanczos_f64(&n.net, tc, N, loss, gauss_newton, sc, vc, w, tol, max_steps,
                                    &value, &steps, &converged)
    _raise_status(status, "hvp_lanczos")
    return value, steps, bool(converged)


def net_hvp(spec, theta, X, Y, int loss, V, bint gauss_newton=False, bint with_grad=True):
    """(loss value, grad, HV (P, k)) in one fused call: the products of hvp_prepare then
    hvp_apply, bit for bit, without storing the state; grad is None unless with_grad."""
    cdef _Net n = _Net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, spec.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    if N < 1:
        raise ValueError("X: expected at least one sample")
    _arr(Y, dt, (N, spec.sizes[len(spec.sizes) - 1]), "Y")
    _arr(V, dt, (n.n_params, -1), "V")
    cdef int64_t k = V.shape[1]
    HV = np.empty_like(V)
    grad = np.empty_like(theta) if with_grad else None
    cdef void *tc = _ptr(theta)
    cdef void *Xc = _ptr(X)
    cdef void *Yc = _ptr(Y)
    cdef void *Vc = _ptr(V)
    cdef void *Hc = _ptr(HV)
    cdef void *gc = _ptr(grad) if with_grad else NULL
    cdef int status
    cdef double value = 0.0
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            status = lc_net_hvp_f32(&n.net, <float*>tc, <float*>Xc, <float*>Yc, N, loss,
                                    gauss_newton, <float*>Vc, k, <float*>Hc, <float*>gc, &value)
        else:
            status = lc_net_hvp_f64(&n.net, <double*>tc, <double*>Xc, <double*>Yc, N, loss,
                                    gauss_newton, <double*>Vc, k, <double*>Hc, <double*>gc, &value)
    _raise_status(status, "net_hvp")
    return value, grad, HV
