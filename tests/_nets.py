"""Small networks the tests share."""

from __future__ import annotations

from linncore import Dense, Network


def net_of(
    dtype="float32",
    clip=True,
    acts=("tanh", "relu", "linear"),
    sizes=(3, 5, 4, 2),
    seed=0,
    bias=None,
):
    layers = []
    for i, act in enumerate(acts):
        has_bias = True if bias is None else bias[i]
        layers.append(
            Dense(
                (sizes[i], sizes[i + 1]),
                act,
                has_bias,
                seed=seed + i,
                bias_init="glorot_uniform" if has_bias else "zeros",
            )
        )
    return Network(layers, clip=clip, dtype=dtype)
