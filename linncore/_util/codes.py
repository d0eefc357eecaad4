"""Every integer code and constant shared with the C kernels, written once on the Python side.

The C side is ``csrc/lc_common.h`` and ``csrc/lc_qat.h``; the compiled core exports its values
through ``linncore._core.constants()`` and ``tests/test_codes.py`` compares the two in full.
"""

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
STATUS_NOMEM = 3
STATUS_ARGS = 4

#: The tensor roles of quantization-aware training, in the kernels' field order (lc_qat.h).
QAT_FIELDS: tuple[str, ...] = (
    "input",
    "weight",
    "bias",
    "accumulator",
    "activation",
    "gradient",
    "update",
)
#: The per-step rail statistics of quantization-aware training, in the kernels' column order.
RAIL_NAMES: tuple[str, ...] = (
    "weight_saturation_fraction_max",
    "weight_near_rail_fraction_max",
    "gradient_saturation_fraction_max",
    "gradient_near_rail_fraction_max",
    "update_saturation_fraction_max",
    "update_underflow_fraction_max",
)

#: The default near-rail threshold: a quantized value q is near a rail when
#: |q| >= NEAR_RAIL * max(|lo|, hi) (rail statistics and quantization-aware training).
NEAR_RAIL = 0.9


def constants() -> dict[str, object]:
    """The codes above under the names ``linncore._core.constants()`` gives them.

    Examples
    --------
    >>> constants()["ACTIVATIONS"]["tanh"]
    2
    """
    return {
        "ACTIVATIONS": dict(ACTIVATIONS),
        "N_ACTIVATIONS": len(ACTIVATIONS),
        "LEAKY_SLOPE": LEAKY_SLOPE,
        "LOSSES": dict(LOSSES),
        "OPTIMIZERS": {"sgd": OPT_SGD, "adam": OPT_ADAM},
        "STATUS": {
            "OK": STATUS_OK,
            "NONFINITE_LOSS": STATUS_NONFINITE_LOSS,
            "NONFINITE_PARAMS": STATUS_NONFINITE_PARAMS,
            "NOMEM": STATUS_NOMEM,
            "ARGS": STATUS_ARGS,
        },
        "QAT_FIELDS": {name: i for i, name in enumerate(QAT_FIELDS)},
        "RAIL_COLUMNS": {name: i for i, name in enumerate(RAIL_NAMES)},
    }
