# Declarations shared by every kernel family, and the argument checks the wrappers use.

cimport cython

cdef extern from "lc_common.h":
    ctypedef struct lc_net:
        int64_t n_layers
        const int64_t *sizes
        const int32_t *acts
        const int32_t *has_bias
        int32_t clip_out
        const int32_t *bn
        const double *bn_momentum
        const double *bn_epsilon
    ctypedef struct lc_optim:
        int32_t kind
        double lr
        double beta_1
        double beta_2
        double epsilon
        double momentum
        int32_t nesterov
    int64_t lc_net_n_params(const lc_net *net)
    int64_t lc_net_bn_state_len(const lc_net *net)
    int LC_OK, LC_ERR_NONFINITE_LOSS, LC_ERR_NONFINITE_PARAMS, LC_ERR_NOMEM, LC_ERR_ARGS
    int LC_N_ACTIVATIONS
    int LC_ACT_LINEAR, LC_ACT_RELU, LC_ACT_TANH, LC_ACT_SIGMOID, LC_ACT_SOFTSIGN
    int LC_ACT_LEAKY_RELU, LC_ACT_SOFTPLUS
    double LC_LEAKY_SLOPE
    int LC_LOSS_MSE, LC_LOSS_HALF_MSE, LC_LOSS_MAE
    int LC_OPT_SGD, LC_OPT_ADAM

cdef extern from "lc_qat.h":
    int LC_QF_INPUT, LC_QF_WEIGHT, LC_QF_BIAS, LC_QF_ACCUMULATOR, LC_QF_ACTIVATION
    int LC_QF_GRADIENT, LC_QF_UPDATE
    int LC_RAIL_WEIGHT_SAT, LC_RAIL_WEIGHT_NEAR, LC_RAIL_GRAD_SAT, LC_RAIL_GRAD_NEAR
    int LC_RAIL_UPDATE_SAT, LC_RAIL_UPDATE_UNDER

cdef extern from "lc_dense.h":
    ctypedef struct lc_layer_offsets:
        int64_t w, b, bn, bn_state
    void lc_net_layout(const lc_net *net, lc_layer_offsets *layout)
    int lc_products_path()
    int lc_fma_available()
    int lc_set_fma(int on)
    int lc_get_fma()
    int LC_PRODUCTS_PLAIN, LC_PRODUCTS_VECTOR, LC_PRODUCTS_AVX2, LC_PRODUCTS_AVX512
    int LC_PRODUCTS_WIDE_TEST

cdef extern from "lc_parallel.h":
    int lc_get_num_threads()
    void lc_set_num_threads(int n)
    int64_t lc_helpers_started()


def get_num_threads():
    """Threads the parallel kernels may use."""
    return lc_get_num_threads()


def helpers_started():
    """Helper threads the compiled core has started in this process so far (a forked child
    starts from its parent's count: compare two readings)."""
    return lc_helpers_started()


def products_path():
    """The matrix products this build runs on this CPU, as text (the bits are the same on every
    path): "AVX-512", "AVX2", "vector tiles, baseline instruction set", "plain loops", or
    "AVX-512 tiles' source, compiled for the build's instruction set" (a test build); with the
    opt-in FMA products (set_fma, other bits), "AVX-512 with FMA" or "AVX2 with FMA"."""
    code = lc_products_path()
    if lc_get_fma():
        return ("AVX-512" if code == LC_PRODUCTS_AVX512 else "AVX2") + " with FMA"
    if code == LC_PRODUCTS_AVX512:
        return "AVX-512"
    if code == LC_PRODUCTS_AVX2:
        return "AVX2"
    if code == LC_PRODUCTS_VECTOR:
        return "vector tiles, baseline instruction set"
    if code == LC_PRODUCTS_WIDE_TEST:
        return "AVX-512 tiles' source, compiled for the build's instruction set"
    return "plain loops"


def fma_available():
    """Whether this build and CPU have the opt-in FMA products."""
    return bool(lc_fma_available())


def set_fma(bint on):
    """Turn the FMA products on or off; ValueError where they are not available."""
    if lc_set_fma(on) != 0:
        raise ValueError("on: the FMA products need a GCC build on x86-64 and a CPU with AVX2 "
                         "and FMA; this build or CPU has none")


def get_fma():
    """Whether the products are the FMA ones."""
    return bool(lc_get_fma())


def set_num_threads(int n):
    """Set the threads the parallel kernels may use (n >= 1; results do not depend on it)."""
    if n < 1:
        raise ValueError(f"n: expected at least 1 thread, got {n}")
    lc_set_num_threads(n)


# The two float types of every kernel.  A wrapper checks its arrays, then calls a fused def
# (dispatched by Cython on the dtype of its typed memoryviews) that calls a cdef inline fused
# dispatcher per C kernel: `if real is float` picks the _f32 or _f64 kernel at compile time.
ctypedef fused real:
    float
    double


@cython.boundscheck(False)
cdef inline const real *_mv_cptr(const real[::1] a) noexcept nogil:
    """The data pointer of a checked 1-D view (NULL for None; a valid pointer when empty)."""
    if a is None:
        return NULL
    return &a[0]


@cython.boundscheck(False)
cdef inline real *_mv_ptr(real[::1] a) noexcept nogil:
    """The data pointer of a checked writable 1-D view (NULL for None)."""
    if a is None:
        return NULL
    return &a[0]


@cython.boundscheck(False)
cdef inline const real *_mv2_cptr(const real[:, ::1] a) noexcept nogil:
    """The data pointer of a checked 2-D view (NULL for None)."""
    if a is None:
        return NULL
    return &a[0, 0]


@cython.boundscheck(False)
cdef inline real *_mv2_ptr(real[:, ::1] a) noexcept nogil:
    """The data pointer of a checked writable 2-D view (NULL for None)."""
    if a is None:
        return NULL
    return &a[0, 0]


def constants():
    """Every code compiled into the core, as ``linncore._util.codes.constants()`` names them.

    ``tests/test_codes.py`` compares the two in full.
    """
    return {
        "ACTIVATIONS": {"linear": LC_ACT_LINEAR, "relu": LC_ACT_RELU, "tanh": LC_ACT_TANH,
                        "sigmoid": LC_ACT_SIGMOID, "softsign": LC_ACT_SOFTSIGN,
                        "leaky_relu": LC_ACT_LEAKY_RELU, "softplus": LC_ACT_SOFTPLUS},
        "N_ACTIVATIONS": LC_N_ACTIVATIONS,
        "LEAKY_SLOPE": LC_LEAKY_SLOPE,
        "LOSSES": {"mse": LC_LOSS_MSE, "half_mse": LC_LOSS_HALF_MSE, "mae": LC_LOSS_MAE},
        "OPTIMIZERS": {"sgd": LC_OPT_SGD, "adam": LC_OPT_ADAM},
        "STATUS": {"OK": LC_OK, "NONFINITE_LOSS": LC_ERR_NONFINITE_LOSS,
                   "NONFINITE_PARAMS": LC_ERR_NONFINITE_PARAMS, "NOMEM": LC_ERR_NOMEM,
                   "ARGS": LC_ERR_ARGS},
        "QAT_FIELDS": {"input": LC_QF_INPUT, "weight": LC_QF_WEIGHT, "bias": LC_QF_BIAS,
                       "accumulator": LC_QF_ACCUMULATOR, "activation": LC_QF_ACTIVATION,
                       "gradient": LC_QF_GRADIENT, "update": LC_QF_UPDATE},
        "RAIL_COLUMNS": {"weight_saturation_fraction_max": LC_RAIL_WEIGHT_SAT,
                         "weight_near_rail_fraction_max": LC_RAIL_WEIGHT_NEAR,
                         "gradient_saturation_fraction_max": LC_RAIL_GRAD_SAT,
                         "gradient_near_rail_fraction_max": LC_RAIL_GRAD_NEAR,
                         "update_saturation_fraction_max": LC_RAIL_UPDATE_SAT,
                         "update_underflow_fraction_max": LC_RAIL_UPDATE_UNDER},
    }


cdef object _arr(object a, object dtype, tuple shape, str name):
    """Check that ``a`` is a C-contiguous ndarray of ``dtype`` and ``shape`` (-1: any)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if a.ndim != len(shape):
        raise ValueError(f"{name}: expected {len(shape)} dimensions, got shape {a.shape}")
    for got, want in zip(a.shape, shape):
        if want >= 0 and got != want:
            raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a


cdef object _float_dtype(object a, str name):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 numpy.ndarray")
    return a.dtype


cdef class _Net:
    """An lc_net view of a NetSpec with its layout table, computed once; keeps the index arrays
    alive while C reads them.  It reads like a NetSpec (``sizes``, ``acts``, ``has_bias``,
    ``clip_out``, ``bn``, ``bn_momentum``, ``bn_epsilon``), so every wrapper takes it in place
    of one: ``_Net(prepared)`` shares the prepared arrays and checks nothing again."""
    cdef lc_net net
    cdef readonly object sizes, acts, has_bias, bn, bn_momentum, bn_epsilon
    cdef readonly object layout
    cdef readonly int64_t n_params, n_state

    def __cinit__(self, spec):
        cdef _Net other
        if isinstance(spec, _Net):  # a prepared network: its arrays are checked and read-only
            other = <_Net>spec
            self.net = other.net
            self.sizes, self.acts, self.has_bias = other.sizes, other.acts, other.has_bias
            self.bn, self.bn_momentum, self.bn_epsilon = other.bn, other.bn_momentum, other.bn_epsilon
            self.layout, self.n_params, self.n_state = other.layout, other.n_params, other.n_state
            return
        self.sizes = np.array(spec.sizes, dtype=np.int64, ndmin=1)
        self.acts = np.array(spec.acts, dtype=np.int32, ndmin=1)
        self.has_bias = np.array(spec.has_bias, dtype=np.int32, ndmin=1)
        if self.sizes.ndim != 1 or self.sizes.shape[0] < 2:
            raise ValueError("spec.sizes: expected at least two widths")
        if np.any(self.sizes < 0):
            raise ValueError(f"spec.sizes: widths must be >= 0, got {self.sizes.tolist()}")
        if self.acts.shape[0] != self.sizes.shape[0] - 1 or self.has_bias.shape[0] != self.acts.shape[0]:
            raise ValueError("spec: acts and has_bias need one entry per layer")
        if np.any(self.acts < 0) or np.any(self.acts >= LC_N_ACTIVATIONS):
            raise ValueError(f"spec.acts: codes must lie in [0, {LC_N_ACTIVATIONS})")
        L = self.acts.shape[0]
        bn = getattr(spec, "bn", None)
        self.bn = np.array(np.zeros(L) if bn is None else bn, dtype=np.int32, ndmin=1)
        self.bn_momentum = np.array(getattr(spec, "bn_momentum", None) if bn is not None else np.zeros(L),
                                    dtype=np.float64, ndmin=1)
        self.bn_epsilon = np.array(getattr(spec, "bn_epsilon", None) if bn is not None else np.zeros(L),
                                   dtype=np.float64, ndmin=1)
        if self.bn.shape != (L,) or self.bn_momentum.shape != (L,) or self.bn_epsilon.shape != (L,):
            raise ValueError("spec: bn, bn_momentum and bn_epsilon need one entry per layer")
        cdef const int64_t[::1] s = self.sizes
        cdef const int32_t[::1] a = self.acts
        cdef const int32_t[::1] h = self.has_bias
        self.net.n_layers = self.acts.shape[0]
        self.net.sizes = &s[0]
        self.net.acts = &a[0]
        self.net.has_bias = &h[0]
        self.net.clip_out = 1 if spec.clip_out else 0
        cdef const int32_t[::1] nb = self.bn
        cdef const double[::1] nm = self.bn_momentum
        cdef const double[::1] ne = self.bn_epsilon
        self.net.bn = &nb[0]
        self.net.bn_momentum = &nm[0]
        self.net.bn_epsilon = &ne[0]
        self.n_params = lc_net_n_params(&self.net)
        self.n_state = lc_net_bn_state_len(&self.net)
        # the layout table, computed once for this network and handed to every kernel call
        self.layout = np.empty((self.net.n_layers, 4), dtype=np.int64)
        cdef int64_t[:, ::1] lay = self.layout
        lc_net_layout(&self.net, <lc_layer_offsets*>&lay[0, 0])
        # C reads these arrays through the pointers above: nothing may change them now
        for arr in (self.sizes, self.acts, self.has_bias, self.bn, self.bn_momentum,
                    self.bn_epsilon, self.layout):
            arr.flags.writeable = False

    @property
    def clip_out(self):
        return self.net.clip_out != 0

    cdef const lc_layer_offsets *offsets(self):
        cdef const int64_t[:, ::1] lay = self.layout
        return <const lc_layer_offsets*>&lay[0, 0]


def prepare_net(spec):
    """A NetSpec checked once and turned into the description every kernel of this engine
    reads, with its layout table (``.layout``, as :func:`net_layout`), ``.n_params`` and
    ``.n_state``; the kernels take it in place of the spec and then check nothing again about
    the network.  Its arrays are read-only copies."""
    return spec if isinstance(spec, _Net) else _Net(spec)


cdef lc_optim _optim(object cfg) except *:
    """An lc_optim from an OptimizerConfig (linncore._util.kernel_args)."""
    cdef lc_optim o
    try:
        o.kind = cfg.kind
        o.lr = cfg.learning_rate
        o.beta_1 = cfg.beta_1
        o.beta_2 = cfg.beta_2
        o.epsilon = cfg.epsilon
        o.momentum = cfg.momentum
        o.nesterov = 1 if cfg.nesterov else 0
    except AttributeError:
        raise TypeError("optimizer: expected an OptimizerConfig, got "
                        f"{type(cfg).__name__}") from None
    if o.kind != LC_OPT_SGD and o.kind != LC_OPT_ADAM:
        raise ValueError(f"optimizer.kind: expected {LC_OPT_SGD} (SGD) or {LC_OPT_ADAM} (Adam), "
                         f"got {cfg.kind}")
    return o


cdef _check_loss(int loss):
    """Both engines refuse an unknown loss code with the same message."""
    if loss not in (LC_LOSS_MSE, LC_LOSS_HALF_MSE, LC_LOSS_MAE):
        raise ValueError(f"loss: unknown loss code {loss}")


cdef _raise_status(int status, str where):
    if status == LC_ERR_NOMEM:
        raise MemoryError(f"{where}: the kernel could not allocate its workspace")
    if status == LC_ERR_ARGS:
        raise ValueError(f"{where}: inconsistent arguments")
