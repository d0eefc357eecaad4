"""Integer codes shared with the C kernels (csrc/lc_common.h); a test checks they agree."""
from __future__ import annotations

ACTIVATIONS: dict[str, int] = {
    "linear": 0,
    "relu": 1,
    "tanh": 2,
    "sigmoid": 3,
    "softsign": 4,
    "leaky_relu": 5,
    "softplus": 6,
}
ACTIVATION_NAMES: dict[int, str] = {code: name for name, code in ACTIVATIONS.items()}
LEAKY_SLOPE = 0.2  # Keras 3 keras.activations.leaky_relu default negative slope

LOSSES: dict[str, int] = {"mse": 0, "half_mse": 1, "mae": 2}

OPT_SGD = 0
OPT_ADAM = 1

STATUS_OK = 0
STATUS_NONFINITE_LOSS = 1
STATUS_NONFINITE_PARAMS = 2
