"""Quantized inference: integer arithmetic against an independent reference."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from linncore import Dense, LinnModel, Network, get_linn
from linncore.fixed.quantized import QuantizedNetwork

VENDOR = Path(__file__).resolve().parents[3] / "shared" / "data" / "vendor-linn"
CFG = {
    "default": {
        "input": "fixed<8,1>",
        "weight": "fixed<8,1>",
        "bias": "fixed<8,1>",
        "accumulator": "fixed<16,5>",
        "activation": "fixed<8,1>",
    }
}


def _round_even(q: Fraction) -> int:
    """Nearest integer to a Fraction, ties to even."""
    f = q.numerator // q.denominator
    r = q - f
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and f % 2):
        f += 1
    return f


def _cast(v: Fraction, frac: int, lo: int, hi: int) -> Fraction:
    return Fraction(min(max(_round_even(v * 2**frac), lo), hi), 2**frac)


def reference(net, X, saturate=False):
    """The pipeline of the module docstring on exact rationals (relu / linear layers, clip on)."""
    out = []

    def q8(v):  # fixed<8,1>
        return _cast(Fraction(v), 7, -128, 127)

    for x in X:
        a = [q8(v) for v in x]
        for layer in net.layers:
            W = [[q8(w) for w in row] for row in layer.weight]
            b = [q8(v) for v in layer.bias]
            z = []
            for j in range(layer.size_out):
                if saturate:
                    acc = Fraction(0)
                    for k in range(layer.size_in):
                        acc = _cast(acc + a[k] * W[k][j], 11, -(2**15), 2**15 - 1)  # fixed<16,5>
                else:
                    acc = _cast(
                        sum(a[k] * W[k][j] for k in range(layer.size_in)), 11, -(2**15), 2**15 - 1
                    )
                s = acc + b[j]
                s = max(s, 0) if layer.activation == "relu" else s
                z.append(q8(min(max(s, -1), 1)))
            a = z
        out.append([float(v) for v in a])
    return np.array(out)


@pytest.mark.parametrize("accumulate", ["exact", "saturate"])
def test_integer_pipeline_matches_an_exact_rational_reference(engine, accumulate):
    r = np.random.default_rng(0)
    net = Network(
        [
            Dense((6, 5), "relu", seed=r, bias_init="uniform_sqrt"),
            Dense((5, 3), seed=r, bias_init="uniform_sqrt"),
        ],
        dtype="float64",
    )
    net.set_theta(
        np.clip(net.theta * 2.5, -1, 1)
    )  # large enough that accumulators saturate sometimes
    X = r.uniform(-1, 1, (40, 6))
    got = QuantizedNetwork(net, CFG, accumulate=accumulate).predict(X)
    np.testing.assert_array_equal(got, reference(net, X, saturate=accumulate == "saturate"))


def test_saturating_accumulator_differs_from_exact_accumulation_as_hardware_does(engine):
    # 0.5 + 0.5 overflows fixed<4,1> (largest 0.875) before -0.5 brings the sum back
    net = Network(
        [Dense((3, 1), weight=[[1.0], [1.0], [1.0]], has_bias=False)], clip=False, dtype="float64"
    )
    cfg = {"default": {"input": "fixed<8,1>", "weight": "fixed<8,2>", "accumulator": "fixed<4,1>"}}
    x = [[0.5, 0.5, -0.5]]
    assert QuantizedNetwork(net, cfg, accumulate="exact").predict(x)[0, 0] == 0.5
    assert QuantizedNetwork(net, cfg, accumulate="saturate").predict(x)[0, 0] == 0.375


def test_all_float_config_equals_the_float_network(engine):
    r = np.random.default_rng(1)
    net = Network(
        [Dense((3, 4), "tanh", seed=r), Dense((4, 2), "sigmoid", seed=r)], dtype="float64"
    )
    X = r.uniform(-1, 1, (20, 3))
    # the same float64 arithmetic; only the summation order of the product differs
    np.testing.assert_allclose(
        QuantizedNetwork(net, {"default": {}}).predict(X), net.predict(X), rtol=1e-13, atol=1e-15
    )


def test_default_config_is_stated_as_an_assumption_and_close_to_float(engine):
    r = np.random.default_rng(2)
    lm = LinnModel()
    X = r.uniform(0, 5, (64, 2))
    lm.set_training_data(X, X[:, :1] * X[:, 1:])
    lm.construct_model([(8, "tanh"), (1, "linear")], seed=0)
    qn = QuantizedNetwork(lm)
    assert "ASSUMED" in qn.summary_text() and "fixed<32,8,RND_CONV,SAT>" in qn.summary_text()
    cmp = qn.compare(r.uniform(-1, 1, (64, 2)))
    assert cmp["max_abs_error"] < 20 * cmp["output_lsb"]
    _, stats = qn.predict([[0.1, 0.2]], return_stats=True)
    assert set(stats) == {"dense0", "dense1"} and set(stats["dense0"]) == {
        "input",
        "accumulator",
        "activation",
    }


def test_linn_documents_run_quantized(engine):
    net = Network([Dense((2, 2), "relu", seed=0), Dense((2, 1), seed=1)])
    net.set_theta(np.clip(net.theta, -1, 1))
    doc = get_linn(net, 2, 1)
    q = QuantizedNetwork(doc, CFG).predict([[0.25, -0.5]])
    assert q.shape == (1, 1) and q[0, 0] * 128 == round(q[0, 0] * 128)
    if VENDOR.is_dir():
        qn = QuantizedNetwork(VENDOR / "SigID.linn")
        assert qn.predict(np.zeros((1, 100))).shape == (1, 3)


def test_bad_arguments_are_named():
    net = Network([Dense((1, 1), seed=0)])
    with pytest.raises(ValueError, match="accumulate: expected 'exact' or 'saturate'"):
        QuantizedNetwork(net, accumulate="wrap")
    with pytest.raises(ValueError, match="dense4"):
        QuantizedNetwork(net, {"dense4": {"weight": "fixed<8,1>"}})
    with pytest.raises(
        TypeError, match="model: expected a Network, a LinnModel or a .linn document"
    ):
        QuantizedNetwork(42)


def test_saturating_accumulator_statistics_count_rails_hit_on_the_way(engine):
    # 0.75 * 0.75 twice overflows fixed<8,1> (largest 0.9921875) before the third term
    net = Network(
        [Dense((3, 1), weight=[[0.75], [0.75], [-0.75]], has_bias=False)],
        clip=False,
        dtype="float64",
    )
    cfg = {"default": {"input": "fixed<8,1>", "weight": "fixed<8,1>", "accumulator": "fixed<8,1>"}}
    exact, st_exact = QuantizedNetwork(net, cfg).predict([[0.75] * 3], return_stats=True)
    sat, st_sat = QuantizedNetwork(net, cfg, accumulate="saturate").predict(
        [[0.75] * 3], return_stats=True
    )
    assert exact[0, 0] == 0.5625 and st_exact["dense0"]["accumulator"] == 0.0
    assert sat[0, 0] < exact[0, 0] and st_sat["dense0"]["accumulator"] == 1.0


def test_layer_names_are_fixed_when_the_quantized_network_is_built(engine):
    # the formats are looked up by name once; clearing a name of qn.network afterwards used
    # to key the statistics by None and make summary_text fail on formatting None
    net = Network([Dense((2, 2), "tanh", seed=0), Dense((2, 1), seed=1)], dtype="float64")
    qn = QuantizedNetwork(net, CFG)
    x = [[0.25, -0.5]]
    before = qn.predict(x)
    qn.network.layers[0].name = None
    out, stats = qn.predict(x, return_stats=True)
    np.testing.assert_array_equal(out, before)
    assert set(stats) == {"dense0", "dense1"}
    assert [row.split()[0] for row in qn.summary_text().splitlines()[-2:]] == ["dense0", "dense1"]
