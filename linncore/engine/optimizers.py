"""Optimizers with Keras 3's update rules and defaults.

An optimizer object carries its hyper-parameters and, once used, its state (moments,
velocity and the step counter ``iterations``) for the network it trains, so that calling
``fit`` again continues where the last call stopped, as a compiled Keras model does.  Given
by name (``"adam"``, ``"sgd"``), a fresh optimizer with Keras's defaults is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util.codes import OPT_ADAM, OPT_SGD
from .._util.kernel_args import OptimizerConfig
from .._util.validate import finite_float, flag

__all__ = ["Optimizer", "SGD", "Adam", "get"]


class Optimizer:
    """Base class: hyper-parameters plus state over one flat parameter vector."""

    kind: int = -1

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = finite_float(learning_rate, "learning_rate", lo=0.0, lo_open=True)
        self.iterations = 0
        # The state vectors (Adam's moments; SGD's momentum in _m), made on first use.  Test
        # hook: tests/engine/test_interrupts.py compares them bit for bit after an interrupt.
        self._m: np.ndarray | None = None
        self._v: np.ndarray | None = None

    def _config(self) -> OptimizerConfig:
        """The hyper-parameters as the training kernels take them."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The hyper-parameters, as a dict that rebuilds the optimizer with ``type(opt)(**cfg)``."""
        raise NotImplementedError

    def _state(self, n_params: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The state arrays for ``n_params`` parameters of ``dtype``, made on first use."""
        if self._m is None or self._m.shape != (n_params,) or self._m.dtype != dtype:
            if self._m is not None and self.iterations:
                raise ValueError(
                    f"optimizer: this {type(self).__name__} already trains {self._m.shape[0]} "
                    f"{self._m.dtype} parameters; give a new optimizer for a network of "
                    f"{n_params} {np.dtype(dtype)} parameters"
                )
            self._m = np.zeros(n_params, dtype=dtype)
            self._v = np.zeros(n_params, dtype=dtype)
        assert self._v is not None  # made together with _m
        return self._m, self._v

    def reset(self) -> None:
        """Forget the state (moments, velocity, step counter)."""
        self.iterations = 0
        self._m = self._v = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent (Keras 3 rule).

    ``theta -= lr * g``; with momentum ``mu``: ``vel = mu * vel - lr * g; theta += vel``
    (Nesterov: ``theta += mu * vel - lr * g``).

    Parameters
    ----------
    learning_rate : float
        Default 0.01.
    momentum : float
        In ``[0, 1)``; default 0.
    nesterov : bool
        Default False.

    Examples
    --------
    >>> SGD(learning_rate=0.1, momentum=0.9)
    SGD(learning_rate=0.1, momentum=0.9, nesterov=False)
    """

    kind = OPT_SGD

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = finite_float(momentum, "momentum", lo=0.0, hi=1.0, hi_open=True)
        self.nesterov = flag(nesterov, "nesterov")

    def _config(self) -> OptimizerConfig:
        return OptimizerConfig(
            OPT_SGD,
            self.learning_rate,
            beta_1=0.0,
            beta_2=0.0,
            epsilon=0.0,
            momentum=self.momentum,
            nesterov=self.nesterov,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }


class Adam(Optimizer):
    """Adam (Keras 3 rule).

    At step ``t`` (from 1): ``m += (g - m)(1 - beta_1)``; ``v += (g^2 - v)(1 - beta_2)``;
    ``a = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``; ``theta -= a * m / (sqrt(v) + epsilon)``.

    Parameters
    ----------
    learning_rate : float
        Default 0.001.
    beta_1, beta_2 : float
        In ``[0, 1)``; defaults 0.9 and 0.999.
    epsilon : float
        Positive; default 1e-7 (added to the uncorrected root, as Keras).
    amsgrad : bool
        Must be False: the AMSGrad variant is not implemented.

    Examples
    --------
    >>> Adam()
    Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07)
    """

    kind = OPT_ADAM

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.beta_1 = finite_float(beta_1, "beta_1", lo=0.0, hi=1.0, hi_open=True)
        self.beta_2 = finite_float(beta_2, "beta_2", lo=0.0, hi=1.0, hi_open=True)
        self.epsilon = finite_float(epsilon, "epsilon", lo=0.0, lo_open=True)
        if amsgrad:
            raise ValueError("amsgrad: only amsgrad=False (Keras's default) is implemented")

    def _config(self) -> OptimizerConfig:
        return OptimizerConfig(
            OPT_ADAM,
            self.learning_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            momentum=0.0,
            nesterov=False,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


_BY_NAME = {"adam": Adam, "sgd": SGD}


def get(optimizer: Any, name: str = "optimizer") -> Optimizer:
    """An optimizer object from a name (fresh, Keras defaults) or an optimizer object (itself).

    Examples
    --------
    >>> get("adam").learning_rate
    0.001
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(f"{name}: expected 'adam', 'sgd' or an Optimizer object, got {optimizer!r}")
