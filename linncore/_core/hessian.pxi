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


# Each C kernel has one fused dispatcher: `real` is float or double, and `if real is float`
# is resolved when Cython writes the two specialisations, so a wrapper names the kernel once
# and the float32 or float64 variant follows from the pointers it passes.

cdef inline void _act_deriv2(int32_t act, const real *z, const real *h, real *d2,
                             int64_t n) noexcept nogil:
    if real is float:
        lc_act_deriv2_f32(act, z, h, d2, n)
    else:
        lc_act_deriv2_f64(act, z, h, d2, n)


cdef inline int _hvp_prepare(const lc_net *net, const real *theta, const real *X, const real *Y,
                             int64_t N, int32_t loss, real *state, real *grad,
                             double *value) noexcept nogil:
    if real is float:
        return lc_hvp_prepare_f32(net, theta, X, Y, N, loss, state, grad, value)
    else:
        return lc_hvp_prepare_f64(net, theta, X, Y, N, loss, state, grad, value)


cdef inline int _hvp_apply(const lc_net *net, const real *theta, int64_t N, int32_t loss,
                           int32_t gauss_newton, const real *state, const real *V, int64_t k,
                           real *HV) noexcept nogil:
    if real is float:
        return lc_hvp_apply_f32(net, theta, N, loss, gauss_newton, state, V, k, HV)
    else:
        return lc_hvp_apply_f64(net, theta, N, loss, gauss_newton, state, V, k, HV)


cdef inline int _hvp_dense(const lc_net *net, const real *theta, int64_t N, int32_t loss,
                           int32_t gauss_newton, const real *state, real *H) noexcept nogil:
    if real is float:
        return lc_hvp_dense_f32(net, theta, N, loss, gauss_newton, state, H)
    else:
        return lc_hvp_dense_f64(net, theta, N, loss, gauss_newton, state, H)


cdef inline int _net_hvp(const lc_net *net, const real *theta, const real *X, const real *Y,
                         int64_t N, int32_t loss, int32_t gauss_newton, const real *V, int64_t k,
                         real *HV, real *grad, double *value) noexcept nogil:
    if real is float:
        return lc_net_hvp_f32(net, theta, X, Y, N, loss, gauss_newton, V, k, HV, grad, value)
    else:
        return lc_net_hvp_f64(net, theta, X, Y, N, loss, gauss_newton, V, k, HV, grad, value)


cdef _check_hvp_loss(int loss):
    if loss != 0 and loss != 1:
        raise ValueError(f"loss: the Hessian kernels take mse (0) or half_mse (1), got code {loss}")


cdef inline _Net _hessian_net(object spec):
    """spec's description for C: spec itself when hessian_net made it, else built now."""
    if type(spec) is _Net:
        return <_Net>spec
    return _Net(spec)


def hessian_net(spec):
    """The network description every Hessian kernel here reads, checked and built once: pass
    it in place of ``spec`` to run many calls on one network without rebuilding it."""
    return _hessian_net(spec)


cdef object _act_deriv2_run(real *kind, int act, z, h):
    d2 = np.empty_like(z)
    cdef const real *zc = <const real*>_ptr(z)
    cdef const real *hc = <const real*>_ptr(h)
    cdef real *dc = <real*>_ptr(d2)
    cdef int64_t n = z.size
    with nogil:
        _act_deriv2(act, zc, hc, dc, n)
    return d2


def act_deriv2(int act, z, h):
    """act''(z) elementwise from z and h = act(z) (same shape, float32 or float64)."""
    dt = _float_dtype(z, "z")
    _arr(z, dt, z.shape, "z")
    _arr(h, dt, z.shape, "h")
    if not 0 <= act < LC_N_ACTIVATIONS:
        raise ValueError(f"act: expected a code in [0, {LC_N_ACTIVATIONS}), got {act}")
    if dt == np.float32:
        return _act_deriv2_run(<float*>NULL, act, z, h)
    return _act_deriv2_run(<double*>NULL, act, z, h)


def hvp_state_len(spec, int64_t N):
    """Length of the state hvp_prepare fills for N samples."""
    cdef _Net n = _hessian_net(spec)
    return lc_hvp_state_len(&n.net, N)


cdef object _prepare_run(real *kind, _Net n, theta, X, Y, int loss):
    cdef int64_t N = X.shape[0]
    state = np.empty(lc_hvp_state_len(&n.net, N), dtype=theta.dtype)
    grad = np.empty_like(theta)
    cdef const real *tc = <const real*>_ptr(theta)
    cdef const real *Xc = <const real*>_ptr(X)
    cdef const real *Yc = <const real*>_ptr(Y)
    cdef real *sc = <real*>_ptr(state)
    cdef real *gc = <real*>_ptr(grad)
    cdef int status
    cdef double value = 0.0
    with nogil:
        status = _hvp_prepare(&n.net, tc, Xc, Yc, N, loss, sc, gc, &value)
    _raise_status(status, "hvp_prepare")
    return state, value, grad


def hvp_prepare(spec, theta, X, Y, int loss):
    """(state, loss value, grad): one forward and backward pass at theta, kept for hvp_apply."""
    cdef _Net n = _hessian_net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, n.net.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    if N < 1:
        raise ValueError("X: expected at least one sample")
    _arr(Y, dt, (N, n.net.sizes[n.net.n_layers]), "Y")
    if dt == np.float32:
        return _prepare_run(<float*>NULL, n, theta, X, Y, loss)
    return _prepare_run(<double*>NULL, n, theta, X, Y, loss)


cdef object _apply_run(real *kind, _Net n, theta, state, int64_t N, int loss, V,
                       bint gauss_newton):
    cdef int64_t k = V.shape[1]
    HV = np.empty_like(V)
    cdef const real *tc = <const real*>_ptr(theta)
    cdef const real *sc = <const real*>_ptr(state)
    cdef const real *Vc = <const real*>_ptr(V)
    cdef real *Hc = <real*>_ptr(HV)
    cdef int status
    with nogil:
        status = _hvp_apply(&n.net, tc, N, loss, gauss_newton, sc, Vc, k, Hc)
    _raise_status(status, "hvp_apply")
    return HV


def hvp_apply(spec, theta, state, int64_t N, int loss, V, bint gauss_newton=False):
    """HV (P, k) = H V (or the Gauss-Newton product) from a state of hvp_prepare; V (P, k)."""
    cdef _Net n = _hessian_net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    _arr(state, dt, (lc_hvp_state_len(&n.net, N),), "state")
    _arr(V, dt, (n.n_params, -1), "V")
    if dt == np.float32:
        return _apply_run(<float*>NULL, n, theta, state, N, loss, V, gauss_newton)
    return _apply_run(<double*>NULL, n, theta, state, N, loss, V, gauss_newton)


cdef object _dense_run(real *kind, _Net n, theta, state, int64_t N, int loss,
                       bint gauss_newton):
    H = np.empty((n.n_params, n.n_params), dtype=theta.dtype)
    cdef const real *tc = <const real*>_ptr(theta)
    cdef const real *sc = <const real*>_ptr(state)
    cdef real *Hc = <real*>_ptr(H)
    cdef int status
    with nogil:
        status = _hvp_dense(&n.net, tc, N, loss, gauss_newton, sc, Hc)
    _raise_status(status, "hvp_dense")
    return H


def hvp_dense(spec, theta, state, int64_t N, int loss, bint gauss_newton=False):
    """The whole (P, P) Hessian (or Gauss-Newton matrix) from a state of hvp_prepare."""
    cdef _Net n = _hessian_net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    if N < 1:
        raise ValueError(f"N: expected at least one sample, got {N}")
    _arr(state, dt, (lc_hvp_state_len(&n.net, N),), "state")
    if dt == np.float32:
        return _dense_run(<float*>NULL, n, theta, state, N, loss, gauss_newton)
    return _dense_run(<double*>NULL, n, theta, state, N, loss, gauss_newton)


cdef _check_unit(v0):
    norm = float(np.linalg.norm(v0))
    if not abs(norm - 1.0) <= 1e-8:
        raise ValueError("v0: expected a unit vector (Lanczos starts from it), "
                         f"got norm {norm:.6g}")


def hvp_lanczos(spec, theta, state, int64_t N, int loss, v0, str which, double tol,
                int64_t max_steps, bint gauss_newton=False):
    """(value, steps, converged): the extreme eigenvalue ("LA" largest, "SA" smallest) by
    Lanczos from a prepared float64 state and a unit start vector v0."""
    cdef _Net n = _hessian_net(spec)
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


cdef object _net_hvp_run(real *kind, _Net n, theta, X, Y, int loss, V, bint gauss_newton,
                         bint with_grad):
    cdef int64_t N = X.shape[0]
    cdef int64_t k = V.shape[1]
    HV = np.empty_like(V)
    grad = np.empty_like(theta) if with_grad else None
    cdef const real *tc = <const real*>_ptr(theta)
    cdef const real *Xc = <const real*>_ptr(X)
    cdef const real *Yc = <const real*>_ptr(Y)
    cdef const real *Vc = <const real*>_ptr(V)
    cdef real *Hc = <real*>_ptr(HV)
    cdef real *gc = <real*>_ptr(grad)
    cdef int status
    cdef double value = 0.0
    with nogil:
        status = _net_hvp(&n.net, tc, Xc, Yc, N, loss, gauss_newton, Vc, k, Hc, gc, &value)
    _raise_status(status, "net_hvp")
    return value, grad, HV


def net_hvp(spec, theta, X, Y, int loss, V, bint gauss_newton=False, bint with_grad=True):
    """(loss value, grad, HV (P, k)) in one fused call: the products of hvp_prepare then
    hvp_apply, bit for bit, without storing the state; grad is None unless with_grad."""
    cdef _Net n = _hessian_net(spec)
    _check_hvp_loss(loss)
    dt = _float_dtype(theta, "theta")
    _arr(theta, dt, (n.n_params,), "theta")
    _arr(X, dt, (-1, n.net.sizes[0]), "X")
    cdef int64_t N = X.shape[0]
    if N < 1:
        raise ValueError("X: expected at least one sample")
    _arr(Y, dt, (N, n.net.sizes[n.net.n_layers]), "Y")
    _arr(V, dt, (n.n_params, -1), "V")
    if dt == np.float32:
        return _net_hvp_run(<float*>NULL, n, theta, X, Y, loss, V, gauss_newton, with_grad)
    return _net_hvp_run(<double*>NULL, n, theta, X, Y, loss, V, gauss_newton, with_grad)
