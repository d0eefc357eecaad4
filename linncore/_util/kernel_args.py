"""The small named structures the training kernels take, shared by both engines.

``linncore._core`` (the compiled wrappers) and ``linncore._numpy`` (their twins) read these by
field name, so a call site says what each number is and both engines refuse the same mistakes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["OptimizerConfig", "QuantConfig"]


class OptimizerConfig(NamedTuple):
    """An optimizer's hyper-parameters as the kernels read them (the C struct ``lc_optim``).

    Fields the kind does not use are ignored: SGD reads ``momentum`` and ``nesterov``, Adam
    ``beta_1``, ``beta_2`` and ``epsilon``.

    Examples
    --------
    >>> from linncore._util.codes import OPT_SGD
    >>> OptimizerConfig(OPT_SGD, learning_rate=0.1, beta_1=0.0, beta_2=0.0, epsilon=0.0,
    ...                 momentum=0.9, nesterov=False).momentum
    0.9
    """

    kind: int
    learning_rate: float
    beta_1: float
    beta_2: float
    epsilon: float
    momentum: float
    nesterov: bool


class QuantConfig(NamedTuple):
    """Quantization-aware training settings (the C struct ``lc_qat``).

    ``fmts`` is int32 of shape (layers, fields, 5): per layer and field (the order of
    ``linncore._util.codes.QAT_FIELDS``) the format as (bits, int_bits, signed, rounding,
    overflow); ``on`` is int32 (layers, fields), 0 where the field stays float.  ``seed`` seeds
    stochastic rounding; ``near_rail`` is the near-rail threshold of the rail statistics.

    Examples
    --------
    >>> import numpy as np
    >>> q = QuantConfig(np.zeros((1, 7, 5), np.int32), np.zeros((1, 7), np.int32), 0, 0.9)
    >>> q.on.shape
    (1, 7)
    """

    fmts: np.ndarray
    on: np.ndarray
    seed: int
    near_rail: float
