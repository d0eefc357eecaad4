"""Code and C-header export of quantized networks."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from _nets import net_of

from linncore import Dense, FixedFormat, Network
from linncore.io.export import export_c_header, export_codes, export_format, predict_fixed


@pytest.mark.parametrize("dtype, qmax", [("int8", 127), ("int16", 32767), ("int32", 2147483647)])
def test_codes_reconstruct_each_parameter_within_half_a_step(dtype, qmax):
    net = net_of("float64", seed=4)
    q = export_codes(net, dtype)
    assert list(q.codes) == [
        "dense0.weight",
        "dense0.bias",
        "dense1.weight",
        "dense1.bias",
        "dense2.weight",
        "dense2.bias",
    ]
    deq = q.dequantize()
    for (name, codes), layer_arr in zip(q.codes.items(), net.get_weights()):
        assert codes.dtype == np.dtype(dtype) and codes.shape == layer_arr.shape
        assert np.abs(codes).max() == qmax  # the largest magnitude takes the top code
        assert codes.min() >= -qmax
        assert np.all(np.abs(deq[name] - layer_arr) <= q.scales[name] / 2 * (1 + 1e-12))
    doc = json.loads(json.dumps(q.to_dict()))
    assert doc["dtype"] == dtype and doc["rounding"] == "half_even"
    assert doc["params"]["dense1.weight"]["shape"] == [5, 4]


def test_codes_round_ties_to_even_and_give_zero_tensors_scale_one():
    net = Network(
        [Dense((6, 1), weight=[[127.0], [2.5], [3.5], [-2.5], [-3.5], [0.5]], bias=[0.0])],
        clip=False,
        dtype="float64",
    )
    q = export_codes(net, "int8")
    assert q.scales["dense0.weight"] == 1.0
    assert q.codes["dense0.weight"].ravel().tolist() == [127, 2, 4, -2, -4, 0]
    assert q.scales["dense0.bias"] == 1.0 and q.codes["dense0.bias"].tolist() == [0]
    with pytest.raises(ValueError, match="dtype"):
        export_codes(net, "int4")


# -- fixed point reference -----------------------------------------------------------------------
def test_predict_fixed_matches_hand_computed_codes():
    # fixed<8,4>: F = 4, codes in [-128, 127]
    net = Network(
        [Dense((2, 2), "linear", weight=[[0.5, -0.25], [0.25, 0.0625]], bias=[0.0, -0.125])],
        clip=False,
    )
    f = {"bits": 8, "frac_bits": 4}
    # x = (1.5, 0.5) -> codes (24, 8); W codes [[8, -4], [4, 1]]; b codes (0, -2)
    # acc0 = 24*8 + 8*4 = 224 -> 224/16 = 14;  acc1 = -96 + 8 - 32 = -120 -> -7.5 -> -8 (tie, even)
    assert predict_fixed(net, [[1.5, 0.5]], f, return_codes=True).tolist() == [[14, -8]]
    # x = (0.5, 0.5) -> (8, 8): acc1 = -32 + 8 - 32 = -56 -> -3.5 -> -4 (tie, even); acc0 = 96 -> 6
    assert predict_fixed(net, [[0.5, 0.5]], f, return_codes=True).tolist() == [[6, -4]]
    # x = (0.5, 1.0) -> (8, 16): acc1 = -32 + 16 - 32 = -48 -> -3 exactly
    assert predict_fixed(net, [[0.5, 1.0]], f, return_codes=True).tolist() == [[8, -3]]
    # input 100 saturates to 127 (7.9375): acc0 = 127*8 = 1016 -> 63.5 -> 64 (tie, even);
    # acc1 = 127*(-4) - 32 = -540 -> -33.75 -> -34
    assert predict_fixed(net, [[100.0, 0.0]], f, return_codes=True).tolist() == [[64, -34]]
    # x = (0.03125, 0) = 0.5 LSB -> rounds to 0 (even); (0.09375, 0) = 1.5 LSB -> 2
    assert predict_fixed(net, [[0.09375, 0.0]], f, return_codes=True)[0, 0] == 1  # 2*8/16 = 1
    assert predict_fixed(net, [[0.03125, 0.0]], f, return_codes=True)[0, 0] == 0
    out = predict_fixed(net, [[1.5, 0.5]], f)
    assert out.dtype == np.float32 and out.tolist() == [[14 / 16, -0.5]]


def test_predict_fixed_saturates_and_clips_as_the_network_does():
    w = [[1.0, -1.0]]
    clipped = Network([Dense((1, 2), "linear", weight=w, bias=[0.0, 0.0])], clip=True)
    free = Network([Dense((1, 2), "linear", weight=w, bias=[0.0, 0.0])], clip=False)
    f = {"bits": 8, "frac_bits": 4}
    assert predict_fixed(clipped, [[3.0]], f).tolist() == [[1.0, -1.0]]
    assert predict_fixed(free, [[3.0]], f).tolist() == [[3.0, -3.0]]
    assert predict_fixed(free, [[100.0]], f, return_codes=True).tolist() == [[127, -127]]
    relu = Network([Dense((1, 1), "relu", weight=[[1.0]], bias=[0.0])], clip=False)
    assert predict_fixed(relu, [[-2.0], [2.0]], f).ravel().tolist() == [0.0, 2.0]


def test_fixed_export_refuses_what_it_cannot_run_exactly():
    tanh = Network([Dense((1, 1), "tanh", seed=0)])
    with pytest.raises(ValueError, match="activation 'tanh'.*only"):
        predict_fixed(tanh, [[0.0]], {"bits": 16, "frac_bits": 14})
    big = Network([Dense((1, 1), weight=[[3.0]], bias=[0.0])])
    with pytest.raises(
        ValueError, match=r"dense0\.weight\[0, 0\] = 3\.0 is outside the range \[-2\.0, "
    ):
        export_c_header(big, None, fixed={"bits": 16, "frac_bits": 14})
    wide = Network([Dense((64, 1), weight=np.full((64, 1), 0.9), bias=[0.0])])
    with pytest.raises(ValueError, match="accumulator"):
        predict_fixed(wide, np.zeros((1, 64)), {"bits": 32, "frac_bits": 30})
    for bad in (
        {"bits": 1, "frac_bits": 0},
        {"bits": 16, "frac_bits": 16},
        {"bits": 16},
        {"bits": 16, "frac_bits": 4, "rounding": "TRN"},
        {"bits": 16, "frac_bits": 4, "x": 1},
    ):
        with pytest.raises(ValueError, match="fixed"):
            export_format(bad)
    assert (
        export_format({"bits": 16, "int_bits": 2})
        == FixedFormat(16, 2)
        == export_format("fixed<16,2>")
    )
    with pytest.raises(ValueError, match="name"):
        export_c_header(tanh, None, name="1bad")


# -- the C header, compiled ------------------------------------------------------------------------
MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "net.h"
int main(void)
{
    int n, k, i;
    char buf[64];
    float x[NET_N_IN], y[NET_N_OUT];
    if (scanf("%d", &n) != 1) return 1;
    for (k = 0; k < n; ++k) {
        for (i = 0; i < NET_N_IN; ++i) {
            if (scanf("%63s", buf) != 1) return 2;
            x[i] = strtof(buf, NULL);
        }
        net_predict(x, y);
        for (i = 0; i < NET_N_OUT; ++i) printf("%a ", (double)y[i]);
        printf("\n");
    }
    return 0;
}
"""


def run_c(header: str, X: np.ndarray, n_out: int, tmp_path) -> np.ndarray:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    (tmp_path / "net.h").write_text(header)
    (tmp_path / "main.c").write_text(MAIN)
    # a second translation unit including the header without using it: no duplicate symbols,
    # no warnings
    (tmp_path / "other.c").write_text(
        '#include "net.h"\nint other_unit(void) { return NET_N_IN; }\n'
    )
    exe = tmp_path / "prog"
    done = subprocess.run(
        [
            cc,
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            str(tmp_path / "main.c"),
            str(tmp_path / "other.c"),
            "-o",
            str(exe),
            "-lm",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    x32 = np.asarray(X, dtype=np.float32)
    lines = [str(x32.shape[0])] + [" ".join(float(v).hex() for v in row) for row in x32]
    out = subprocess.run(
        [str(exe)],
        input="\n".join(lines) + "\n",
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    y = np.array(
        [[float.fromhex(t) for t in ln.split()] for ln in out.strip().splitlines()],
        dtype=np.float64,
    )
    assert y.shape == (x32.shape[0], n_out)
    return y.astype(np.float32)


@pytest.mark.parametrize(
    "dtype, clip, acts",
    [
        ("float32", True, ("tanh", "sigmoid", "linear")),
        ("float32", False, ("softsign", "relu", "linear")),
        ("float64", True, ("leaky_relu", "softplus", "tanh")),
    ],
)
def test_float_header_compiles_and_agrees_with_predict(dtype, clip, acts, tmp_path):
    net = net_of(dtype, clip=clip, acts=acts, seed=7)
    net.theta[...] *= 3  # so that clipping is exercised
    X = np.random.default_rng(3).uniform(-2, 2, size=(200, 3))
    header = export_c_header(net, tmp_path / "exported.h", name="net")
    assert (tmp_path / "exported.h").read_text() == header
    y = run_c(header, X, 2, tmp_path)
    expected = net.predict(X.astype(np.float32))
    # float32 rounding: the C code accumulates in double, predict in the network's dtype
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=2e-6)
    if clip:
        assert np.abs(y).max() <= 1.0


@pytest.mark.parametrize(
    "fixed, clip, scale",
    [
        ({"bits": 16, "frac_bits": 14}, True, 1.0),
        ({"bits": 8, "frac_bits": 4}, False, 4.0),
        ({"bits": 24, "frac_bits": 20}, False, 2.0),
        ({"bits": 12, "frac_bits": 0}, False, 100.0),
        ({"bits": 16, "frac_bits": 15}, True, 1.0),
    ],
)
def test_fixed_header_compiles_and_equals_the_numpy_reference_bit_for_bit(
    fixed, clip, scale, tmp_path
):
    rng = np.random.default_rng(11)
    f = export_format(fixed)
    lim = min(scale, f.code_max / 2**f.frac_bits)
    layers = [
        Dense(
            (3, 6), "relu", weight=rng.uniform(-lim, lim, (3, 6)), bias=rng.uniform(-lim, lim, 6)
        ),
        Dense((6, 5), "linear", has_bias=False, weight=rng.uniform(-lim, lim, (6, 5))),
        Dense(
            (5, 2), "relu", weight=rng.uniform(-lim, lim, (5, 2)), bias=rng.uniform(-lim, lim, 2)
        ),
    ]
    net = Network(layers, clip=clip)
    X = rng.uniform(-3 * scale, 3 * scale, size=(300, 3))
    X[:5] = [
        [0.0, 0.0, 0.0],
        [1e9, -1e9, 0.5],
        [2**-f.frac_bits / 2, -(2**-f.frac_bits) / 2, 1.5 * 2**-f.frac_bits],
        [-0.0, 1.0, -1.0],
        [scale, -scale, scale],
    ]
    header = export_c_header(net, None, name="net", fixed=fixed)
    assert "int64_t a[" in header and "double a[" not in header
    y = run_c(header, X, 2, tmp_path)
    ref = predict_fixed(net, X, fixed)
    assert np.array_equal(y.view(np.uint32), ref.view(np.uint32))
    # and the fixed-point result is close to the float network where nothing saturates
    if clip:
        close = np.abs(X).max(axis=1) < 1
        np.testing.assert_allclose(ref[close], net.predict(X[close]), atol=64 * 2.0**-f.frac_bits)


def test_codes_of_subnormal_parameters_are_refused_rather_than_lost():
    net = Network([Dense((1, 2), weight=[[5e-324, -5e-324]], bias=[0.0, 0.0])], dtype="float64")
    with pytest.raises(ValueError, match="below the smallest normal float"):
        export_codes(net, "int8")
