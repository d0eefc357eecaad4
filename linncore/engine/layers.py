"""Dense layers.

A :class:`Dense` layer owns a kernel ``weight`` of shape ``(n_in, n_out)`` (Keras layout) and
an optional ``bias``.  Inside a :class:`~linncore.Network` both are views into the network's
one flat parameter vector, so that the optimizer, the Hessian and the metrics see all
parameters at once without copying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._numpy.activations import BY_NAME
from .._util.codes import ACTIVATIONS
from .._util.validate import as_float_array, check_finite, choice, flag, positive_int, seed_value
from . import initializers

__all__ = ["Dense", "BatchNormalization", "all_activations"]


def all_activations() -> list[str]:
    """The activation names every :class:`Dense` layer accepts.

    The first five (``relu``, ``tanh``, ``sigmoid``, ``softsign``, ``linear``) are those the
    Moku Neural Network instrument runs; ``leaky_relu`` (slope 0.2 below zero, as Keras's
    ``leaky_relu``) and ``softplus`` are for networks that stay in software.

    Examples
    --------
    >>> all_activations()[:5]
    ['relu', 'tanh', 'sigmoid', 'softsign', 'linear']
    """
    return list(BY_NAME)


class Dense:
    """A dense layer ``y = act(x W + b)``.

    Parameters
    ----------
    shape : tuple of int
        ``(n_in, n_out)``.
    activation : str
        One of :func:`all_activations`; default ``"linear"``.  The instrument runs the
        first five (:func:`linncore.list_activations`).
    has_bias : bool
        Whether the layer has a bias (default True, as Keras).
    weight_init, bias_init : str or callable
        Initialisers by name (``glorot_uniform``, ``he_uniform``/``kaiming``,
        ``uniform_sqrt``, ``zeros``, ``ones``) or callables ``f(shape)`` / ``f(shape, rng)``.
        Defaults: Keras's ``glorot_uniform`` kernel and zero bias.
    weight, bias : array_like, optional
        Concrete values, shape-checked, used instead of the initialisers.
    seed : int or numpy.random.Generator, optional
        Seed of the initialisers; the same seed gives the same layer.
    name : str, optional
        Set by the :class:`~linncore.Network` holding the layer (``dense0``, ``dense1``, ...)
        when not given.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense((2, 3), activation="tanh", seed=0)
    >>> layer
    Dense((2, 3), activation='tanh', has_bias=True)
    >>> sorted(layer.parameters())
    ['bias', 'weight']
    >>> Dense((2, 2), weight=np.eye(2), has_bias=False)(np.array([[1.0, 2.0]]))
    array([[1., 2.]])
    """

    def __init__(
        self,
        shape: tuple[int, int],
        activation: str = "linear",
        has_bias: bool = True,
        weight_init: str | Callable[..., np.ndarray] = "glorot_uniform",
        bias_init: str | Callable[..., np.ndarray] = "zeros",
        weight: Any = None,
        bias: Any = None,
        *,
        seed: int | np.random.Generator | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise ValueError(f"shape: expected a pair (n_in, n_out), got {shape!r}")
        n_in = positive_int(shape[0], "shape[0] (n_in)")
        n_out = positive_int(shape[1], "shape[1] (n_out)")
        self._shape = (n_in, n_out)
        self._activation = choice(activation, ACTIVATIONS, "activation")
        self._has_bias = flag(has_bias, "has_bias")
        self.name = name
        self._owner: Any = None
        seed = seed_value(seed)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if weight is None:
            weight = initializers.call(
                initializers.get(weight_init, "weight_init"), self._shape, rng
            )
        self._weight = self._checked(weight, self._shape, "weight")
        self._bias: np.ndarray | None = None
        if self._has_bias:
            if bias is None:
                bias = initializers.call(initializers.get(bias_init, "bias_init"), (n_out,), rng)
            self._bias = self._checked(bias, (n_out,), "bias")
        elif bias is not None:
            raise ValueError("bias: a layer with has_bias=False takes no bias")

    @staticmethod
    def _checked(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
        arr = as_float_array(value, name)
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
        check_finite(arr, name)
        return arr.copy()

    # -- description ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_in, n_out)``."""
        return self._shape

    @property
    def size_in(self) -> int:
        return self._shape[0]

    @property
    def size_out(self) -> int:
        return self._shape[1]

    @property
    def activation(self) -> str:
        return self._activation

    @property
    def has_bias(self) -> bool:
        return self._has_bias

    @property
    def n_params(self) -> int:
        return self._shape[0] * self._shape[1] + (self._shape[1] if self._has_bias else 0)

    def __repr__(self) -> str:
        return f"Dense({self._shape}, activation={self._activation!r}, has_bias={self._has_bias})"

    # -- parameters ----------------------------------------------------------------------
    @property
    def weight(self) -> np.ndarray:
        """The kernel, ``(n_in, n_out)`` (a view into the network's parameters when held by one)."""
        return self._weight

    @property
    def bias(self) -> np.ndarray | None:
        """The bias, ``(n_out,)``, or None for a layer without bias."""
        return self._bias

    def parameters(self) -> dict[str, np.ndarray]:
        """The layer's parameter arrays by name (``weight`` and, when present, ``bias``).

        The arrays are the layer's own: writing into them changes the layer."""
        out = {"weight": self._weight}
        if self._bias is not None:
            out["bias"] = self._bias
        return out

    def set_parameters(self, params: Mapping[str, Any]) -> None:
        """Copy new values into the layer's parameters, checking names, shapes and finiteness.

        Examples
        --------
        >>> layer = Dense((1, 2), seed=0)
        >>> layer.set_parameters({"weight": [[0.5, -0.5]], "bias": [0.0, 1.0]})
        >>> layer.bias
        array([0., 1.])
        """
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params: expected a mapping of names to arrays, got {type(params).__name__}"
            )
        known = self.parameters()
        unknown = set(params) - set(known)
        if unknown:
            raise ValueError(
                f"params: unknown parameter(s) {sorted(unknown)}; this layer has {sorted(known)}"
            )
        checked = {k: self._checked(v, known[k].shape, f"params[{k!r}]") for k, v in params.items()}
        for k, v in checked.items():
            known[k][...] = v

    def _bind(self, weight: np.ndarray, bias: np.ndarray | None, owner: Any) -> None:
        """Make the layer's parameters views into a network's flat vector (values copied in)."""
        weight[...] = self._weight
        if bias is not None:
            bias[...] = self._bias
        self._weight, self._bias, self._owner = weight, bias, owner

    def copy(self) -> Dense:
        """An independent copy with the same parameters (not bound to any network)."""
        return Dense(
            self._shape,
            self._activation,
            self._has_bias,
            weight=self._weight.astype(np.float64),
            bias=None if self._bias is None else self._bias.astype(np.float64),
            name=self.name,
        )

    def __call__(self, x: Any) -> np.ndarray:
        """``act(x W + b)`` for ``x`` of shape ``(n, n_in)`` (no output clipping)."""
        from .._backend import kernels
        from .._util.validate import as_samples

        dt = self._weight.dtype
        xs = as_samples(x, self.size_in, "x", dtype=dt)
        return kernels().dense_forward(
            xs, self._weight, self._bias, ACTIVATIONS[self._activation], False
        )[2]


class BatchNormalization:
    """Batch normalisation of the preceding :class:`Dense` layer's output (Keras semantics).

    In training, ``y = gamma * (a - mean) / sqrt(var + epsilon) + beta`` with the batch's mean
    and (biased) variance, and the moving statistics move as
    ``moving = moving * momentum + batch * (1 - momentum)`` after each step; in inference
    (``predict``, validation) the moving statistics replace the batch's.  ``gamma`` starts
    at 1, ``beta`` at 0, the moving mean at 0 and the moving variance at 1.

    Place it right after a ``Dense`` in a :class:`~linncore.Network`'s layer list; ``gamma``
    and ``beta`` are trainable parameters (after that layer's bias in ``theta``), the moving
    statistics are state (``Network.bn_state``).

    Parameters
    ----------
    momentum : float
        Default 0.99 (Keras).
    epsilon : float
        Default 1e-3 (Keras).

    Examples
    --------
    >>> from linncore import Network
    >>> net = Network([Dense((2, 4), "relu", seed=0), BatchNormalization(), Dense((4, 1), seed=1)])
    >>> [w.shape for w in net.get_weights()]
    [(2, 4), (4,), (4,), (4,), (4,), (4,), (4, 1), (1,)]
    """

    def __init__(
        self, momentum: float = 0.99, epsilon: float = 1e-3, name: str | None = None
    ) -> None:
        from .._util.validate import finite_float

        self.momentum = finite_float(momentum, "momentum", lo=0.0, hi=1.0)
        self.epsilon = finite_float(epsilon, "epsilon", lo=0.0, lo_open=True)
        self.name = name
        self.size: int | None = None
        self.gamma: np.ndarray | None = None
        self.beta: np.ndarray | None = None
        self.moving_mean: np.ndarray | None = None
        self.moving_variance: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"BatchNormalization(momentum={self.momentum}, epsilon={self.epsilon})"

    def _bind(self, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
        """Views into a network's parameters and state; values carried over when already set."""
        if self.gamma is not None and self.gamma.shape == gamma.shape:
            gamma[...], beta[...], mean[...], var[...] = (
                self.gamma,
                self.beta,
                self.moving_mean,
                self.moving_variance,
            )
        else:
            gamma[...], beta[...], mean[...], var[...] = 1.0, 0.0, 0.0, 1.0
        self.gamma, self.beta, self.moving_mean, self.moving_variance = gamma, beta, mean, var
        self.size = gamma.shape[0]

    def copy(self) -> BatchNormalization:
        other = BatchNormalization(self.momentum, self.epsilon, self.name)
        gamma, beta = self.gamma, self.beta
        mean, var = self.moving_mean, self.moving_variance
        # build sets the four together
        if gamma is not None and beta is not None and mean is not None and var is not None:
            other.gamma, other.beta = gamma.astype(np.float64), beta.astype(np.float64)
            other.moving_mean = mean.astype(np.float64)
            other.moving_variance = var.astype(np.float64)
        return other
