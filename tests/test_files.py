"""Model files: exact round trips, checks of untrusted documents, atomic writes, bundles,
integer codes and the C99 header export (compiled with the system's C compiler)."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

import linncore
from linncore import Dense, Network, _backend
from linncore import FixedFormat
from linncore.io.export import export_c_header, export_codes, export_format, predict_fixed
from linncore.io.model_files import (FORMAT_VERSION, LIMITS, ModelFile, ModelFileError, bundle_from_json,
                                     bundle_to_json, from_json, load_bundle, load_model, save_bundle,
                                     save_model, to_json)


def net_of(dtype="float32", clip=True, acts=("tanh", "relu", "linear"), sizes=(3, 5, 4, 2), seed=0, bias=None):
    layers = []
    for i, act in enumerate(acts):
        has_bias = True if bias is None else bias[i]
        layers.append(Dense((sizes[i], sizes[i + 1]), act, has_bias, seed=seed + i, bias_init="glorot_uniform"
                            if has_bias else "zeros"))
    return Network(layers, clip=clip, dtype=dtype)


def bits(net):
    view = np.uint32 if net.dtype == np.float32 else np.uint64
    return net.theta.view(view)


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact_including_awkward_values(dtype):
    net = net_of(dtype)
    info = np.finfo(dtype)
    awkward = [-0.0, float(info.tiny) / 4, float(info.max), -float(info.max), float(info.eps), 1 / 3]
    net.theta[:len(awkward)] = awkward
    back = from_json(to_json(net)).network
    assert back.dtype == net.dtype
    assert np.array_equal(bits(back), bits(net))
    assert np.signbit(back.theta[0])


def test_round_trip_keeps_the_architecture():
    net = Network([Dense((2, 3), "sigmoid", name="in"), Dense((3, 3), "softsign", has_bias=False, name="mid"),
                   Dense((3, 1), "leaky_relu", name="out")], clip=False, dtype="float64")
    back = from_json(to_json(net)).network
    assert [(l.name, l.shape, l.activation, l.has_bias) for l in back.layers] == \
           [(l.name, l.shape, l.activation, l.has_bias) for l in net.layers]
    assert back.clip is False
    x = np.random.default_rng(0).normal(size=(7, 2))
    assert np.array_equal(back.predict(x), net.predict(x))


def test_scaling_precision_and_training_travel_with_the_model(tmp_path):
    net = net_of()
    scaling = {"inputs": {"lo": np.array([-1.0, 0.0, 2.0]), "hi": [1.0, 5.0, 2.0]},
               "outputs": {"lo": [0.1, -3.0], "hi": [0.2, 3.0]}}
    precision = {"default": {"bits": 16, "int_bits": 2}, "layers": {"dense0": {"weight": [16, 1]}}}
    training = {"optimizer": {"name": "adam", "learning_rate": 1e-3}, "loss": "mse", "epochs": np.int64(200),
                "history": {"loss": [0.5, 0.25]}, "stopped": None, "shuffle": True}
    path = tmp_path / "m.json"
    save_model(net, path, scaling=scaling, precision=precision, training=training)
    m = load_model(path)
    assert isinstance(m, ModelFile) and m.format_version == FORMAT_VERSION
    assert m.scaling == {"inputs": {"lo": [-1.0, 0.0, 2.0], "hi": [1.0, 5.0, 2.0]},
                         "outputs": {"lo": [0.1, -3.0], "hi": [0.2, 3.0]}}
    assert m.precision == precision
    assert m.training["epochs"] == 200 and m.training["optimizer"]["learning_rate"] == 1e-3
    assert m.training["history"] == {"loss": [0.5, 0.25]}
    # saving a ModelFile keeps its extras
    again = from_json(to_json(m))
    assert again.scaling == m.scaling and again.training == m.training
    assert np.array_equal(bits(again.network), bits(net))


def test_objects_with_to_dict_are_stored_as_their_dict():
    class Config:
        def to_dict(self):
            return {"bits": 12}

    assert from_json(to_json(net_of(), precision=Config())).precision == {"bits": 12}


def test_loading_runs_on_the_numpy_engine_without_the_compiled_core(tmp_path):
    net = net_of()
    path = tmp_path / "m.json"
    save_model(net, path)
    x = np.random.default_rng(1).uniform(-1, 1, size=(9, 3))
    with _backend.use("numpy"):
        assert _backend.backend() == "numpy"
        back = load_model(path).network
        out = back.predict(x)
    np.testing.assert_allclose(out, net.predict(x), rtol=1e-6, atol=1e-6)


def test_save_checks_the_extras_and_names_the_bad_field(tmp_path):
    net = net_of()
    with pytest.raises(ValueError, match=r"scaling\.inputs\.lo: expected a list of 3 numbers"):
        to_json(net, scaling={"inputs": {"lo": [0.0], "hi": [1.0, 1.0, 1.0]}})
    with pytest.raises(ValueError, match=r"scaling\.outputs: expected lo <= hi"):
        to_json(net, scaling={"outputs": {"lo": [2.0, 0.0], "hi": [1.0, 1.0]}})
    with pytest.raises(ValueError, match=r"training\.lr: expected a finite number"):
        to_json(net, training={"lr": float("nan")})
    with pytest.raises(ValueError, match="precision: expected plain JSON data"):
        to_json(net, precision={1, 2})
    with pytest.raises(ValueError, match="string keys"):
        to_json(net, training={1: 2})
    with pytest.raises(TypeError, match="model: expected a Network"):
        to_json("net")


def test_atomic_save_leaves_an_earlier_file_intact_when_writing_fails(tmp_path, monkeypatch):
    import linncore._util.atomic as atomic

    path = tmp_path / "m.json"
    save_model(net_of(seed=0), path)
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        save_model(net_of(seed=5), path)
    monkeypatch.undo()
    # a model that cannot be serialized fails before any file is touched
    with pytest.raises(ValueError):
        save_model(net_of(seed=5), path, training={"x": float("inf")})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(FileNotFoundError, match="path"):
        save_model(net_of(), tmp_path / "missing" / "m.json")


# -- refusing bad documents ----------------------------------------------------------------
def doc_of(net=None, **extras):
    return json.loads(to_json(net or net_of(), **extras))


def load_doc(doc):
    # 12345.5 stands for a number too large for a float (JSON has no way to write inf)
    return from_json(json.dumps(doc).replace("12345.5", "1e400"))


def test_a_newer_format_version_is_refused_as_such():
    doc = doc_of()
    doc["format_version"] = FORMAT_VERSION + 1
    doc["network"] = {"something": "new"}
    with pytest.raises(ModelFileError, match="newer than the 1 this linncore reads; upgrade") as err:
        load_doc(doc)
    assert err.value.where == "format_version"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("network"), r"^document: missing field\(s\) \['network'\]"),
    (lambda d: d.update(format="other"), r"^format: expected 'linncore.model', got the string 'other'"),
    (lambda d: d.update(format_version=True), r"^format_version: expected a positive integer"),
    (lambda d: d.update(format_version=0), r"^format_version: expected a positive integer"),
    (lambda d: d.update(extra=1), r"^document: unknown field\(s\) \['extra'\]"),
    (lambda d: d["network"].update(dtype="float16"), r"^network\.dtype: expected 'float32' or 'float64'"),
    (lambda d: d["network"].update(clip=1), r"^network\.clip: expected true or false, got the number 1"),
    (lambda d: d["network"].update(layers=[]), r"^network\.layers: expected a list of 1 to 256 layers"),
    (lambda d: d["network"]["layers"][1].update(activation="gelu"), r"^network\.layers\[1\]\.activation: expected one of"),
    (lambda d: d["network"]["layers"][1].update(n_in=4), r"^network\.layers\[1\]\.n_in: expected 5 \(the n_out of layers\[0\]\), got 4"),
    (lambda d: d["network"]["layers"][0].update(n_out=10 ** 6), r"^network\.layers\[0\]\.n_out: expected an integer in \[1, 65536\]"),
    (lambda d: d["network"]["layers"][0].update(n_in=2.0), r"^network\.layers\[0\]\.n_in: expected an integer"),
    (lambda d: d["network"]["layers"][2].update(name="dense0"), r"^network\.layers\[2\]\.name: 'dense0' is already the name of layers\[0\]"),
    (lambda d: d["network"]["layers"][2].update(name=""), r"^network\.layers\[2\]\.name: expected a name"),
    (lambda d: d["network"]["layers"][2].update(has_bias=False), r"^network\.layers\[2\]\.bias: expected null"),
    (lambda d: d["network"]["layers"][1]["weight"].update(shape=[5, 3]), r"^network\.layers\[1\]\.weight: expected shape \(5, 4\), got \(5, 3\)"),
    (lambda d: d["network"]["layers"][1]["weight"].update(shape="5x4"), r"^network\.layers\[1\]\.weight\.shape: expected a list of integers"),
    (lambda d: d["network"]["layers"][1]["weight"].update(data="@@@@"), r"^network\.layers\[1\]\.weight\.data: expected the base64 of 80 bytes"),
    (lambda d: d["network"]["layers"][1]["bias"].update(data="!" * 24), r"^network\.layers\[1\]\.bias\.data: expected base64 text"),
    (lambda d: d["network"]["layers"][1]["bias"].update(data=5), r"^network\.layers\[1\]\.bias\.data: expected a base64 string"),
    (lambda d: d["network"]["layers"][0].pop("weight"), r"^network\.layers\[0\]: missing field\(s\) \['weight'\]"),
    (lambda d: d.update(scaling={"inputs": {"lo": [0, 0, 0], "hi": [1, 1, 12345.5]}}), r"^scaling\.inputs\.hi\[2\]: expected a finite number"),
    (lambda d: d.update(scaling={}), r"^scaling: expected 'inputs' and/or 'outputs'"),
    (lambda d: d.update(training=[1, 2]), r"^training: expected an object"),
])
def test_malformed_documents_say_what_is_wrong_where(mutate, message):
    doc = doc_of()
    mutate(doc)
    with pytest.raises(ModelFileError, match=message):
        load_doc(doc)


def test_non_finite_weights_are_refused_with_their_position():
    net = net_of(dtype="float64")
    doc = doc_of(net)
    import base64
    w = np.zeros((5, 4))
    w[2, 3] = np.nan
    doc["network"]["layers"][1]["weight"]["data"] = base64.b64encode(w.astype("<f8").tobytes()).decode()
    with pytest.raises(ModelFileError, match=r"network\.layers\[1\]\.weight: expected finite values, got nan at index \(2, 3\)"):
        load_doc(doc)


def test_text_level_problems_are_model_file_errors():
    text = to_json(net_of())
    cases = {
        text[: len(text) // 2]: "not valid JSON",
        text.encode("utf-8")[:-2] + b"\xff\xfe": "not UTF-8",
        '{"format": NaN}': "NaN is not a JSON number",
        '{"format": "a", "format": "b"}': "duplicate key 'format'",
        "[" * 100_000 + "]" * 100_000: "nested 100000 deep, more than the limit",
        "[]": "document: expected an object",
        "": "not valid JSON",
    }
    for bad, message in cases.items():
        with pytest.raises(ModelFileError, match=message):
            from_json(bad)
    with pytest.raises(TypeError, match="text"):
        from_json(12)


def test_size_limits_are_enforced(monkeypatch, tmp_path):
    import linncore.io.model_files as files

    text = to_json(net_of())
    monkeypatch.setattr(files, "MAX_FILE_BYTES", len(text) - 1)
    with pytest.raises(ModelFileError, match="larger than the limit"):
        from_json(text)
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ModelFileError, match="larger than the limit"):
        load_model(path)
    monkeypatch.undo()
    monkeypatch.setitem(files.LIMITS, "params", 20)
    with pytest.raises(ModelFileError, match="more than 20 parameters"):
        from_json(text)
    monkeypatch.setitem(files.LIMITS, "params", 16_000_000)
    monkeypatch.setitem(files.LIMITS, "depth", 3)
    with pytest.raises(ModelFileError, match="nested deeper than 3"):
        load_doc(dict(doc_of(), training={"a": {"b": {"c": {"d": {"e": 1}}}}}))
    monkeypatch.setitem(files.LIMITS, "depth", 32)
    monkeypatch.setitem(files.LIMITS, "items", 50)
    with pytest.raises(ModelFileError, match="more than 50 values"):
        load_doc(dict(doc_of(), training={"a": list(range(100))}))
    assert LIMITS["layers"] == 256


# -- bundles -----------------------------------------------------------------------------------
def test_bundle_round_trip_keeps_names_order_and_extras(tmp_path):
    a = net_of(seed=1)
    b = net_of("float64", clip=False, seed=2)
    m = ModelFile(net_of(seed=3), scaling={"outputs": {"lo": [0.0, 0.0], "hi": [1.0, 2.0]}}, training={"epochs": 3})
    path = tmp_path / "bundle.json"
    save_bundle(path, {"zeta": a, "alpha": b, "mid": m})
    back = load_bundle(path)
    assert list(back) == ["zeta", "alpha", "mid"]
    assert np.array_equal(bits(back["zeta"].network), bits(a))
    assert np.array_equal(bits(back["alpha"].network), bits(b))
    assert back["mid"].training == {"epochs": 3} and back["mid"].scaling == m.scaling


def test_bundle_errors_name_the_model():
    doc = json.loads(bundle_to_json({"first": net_of(), "second": net_of()}))
    doc["models"]["second"]["network"]["layers"][0]["activation"] = "swish"
    with pytest.raises(ModelFileError, match=r"^models\['second'\]\.network\.layers\[0\]\.activation"):
        bundle_from_json(json.dumps(doc))
    doc["models"]["second"]["format_version"] = 7
    with pytest.raises(ModelFileError, match=r"^models\['second'\]\.format_version: .* newer"):
        bundle_from_json(json.dumps(doc))
    with pytest.raises(ModelFileError, match="read it with load_model"):
        bundle_from_json(to_json(net_of()))
    with pytest.raises(ModelFileError, match="read it with load_bundle"):
        from_json(bundle_to_json({"a": net_of()}))
    with pytest.raises(ValueError, match="models"):
        bundle_to_json({"": net_of()})
    with pytest.raises(TypeError, match=r"models\['a'\]"):
        bundle_to_json({"a": object()})


# -- integer codes -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, qmax", [("int8", 127), ("int16", 32767), ("int32", 2147483647)])
def test_codes_reconstruct_each_parameter_within_half_a_step(dtype, qmax):
    net = net_of("float64", seed=4)
    q = export_codes(net, dtype)
    assert list(q.codes) == ["dense0.weight", "dense0.bias", "dense1.weight", "dense1.bias",
                             "dense2.weight", "dense2.bias"]
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
    net = Network([Dense((6, 1), weight=[[127.0], [2.5], [3.5], [-2.5], [-3.5], [0.5]], bias=[0.0])],
                  clip=False, dtype="float64")
    q = export_codes(net, "int8")
    assert q.scales["dense0.weight"] == 1.0
    assert q.codes["dense0.weight"].ravel().tolist() == [127, 2, 4, -2, -4, 0]
    assert q.scales["dense0.bias"] == 1.0 and q.codes["dense0.bias"].tolist() == [0]
    with pytest.raises(ValueError, match="dtype"):
        export_codes(net, "int4")


# -- fixed point reference -----------------------------------------------------------------------
def test_predict_fixed_matches_hand_computed_codes():
    # fixed<8,4>: F = 4, codes in [-128, 127]
    net = Network([Dense((2, 2), "linear", weight=[[0.5, -0.25], [0.25, 0.0625]], bias=[0.0, -0.125])],
                  clip=False)
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
    with pytest.raises(ValueError, match=r"dense0\.weight\[0, 0\] = 3\.0 is outside the range \[-2\.0, "):
        export_c_header(big, None, fixed={"bits": 16, "frac_bits": 14})
    wide = Network([Dense((64, 1), weight=np.full((64, 1), 0.9), bias=[0.0])])
    with pytest.raises(ValueError, match="accumulator"):
        predict_fixed(wide, np.zeros((1, 64)), {"bits": 32, "frac_bits": 30})
    for bad in ({"bits": 1, "frac_bits": 0}, {"bits": 16, "frac_bits": 16}, {"bits": 16},
                {"bits": 16, "frac_bits": 4, "rounding": "TRN"}, {"bits": 16, "frac_bits": 4, "x": 1}):
        with pytest.raises(ValueError, match="fixed"):
            export_format(bad)
    assert export_format({"bits": 16, "int_bits": 2}) == FixedFormat(16, 2) == export_format("fixed<16,2>")
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
    # a second translation unit including the header without using it: no duplicate symbols, no warnings
    (tmp_path / "other.c").write_text('#include "net.h"\nint other_unit(void) { return NET_N_IN; }\n')
    exe = tmp_path / "prog"
    done = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", str(tmp_path / "main.c"),
                           str(tmp_path / "other.c"), "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    x32 = np.asarray(X, dtype=np.float32)
    lines = [str(x32.shape[0])] + [" ".join(float(v).hex() for v in row) for row in x32]
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", check=True, capture_output=True,
                         text=True, timeout=60).stdout
    y = np.array([[float.fromhex(t) for t in ln.split()] for ln in out.strip().splitlines()], dtype=np.float64)
    assert y.shape == (x32.shape[0], n_out)
    return y.astype(np.float32)


@pytest.mark.parametrize("dtype, clip, acts", [
    ("float32", True, ("tanh", "sigmoid", "linear")),
    ("float32", False, ("softsign", "relu", "linear")),
    ("float64", True, ("leaky_relu", "softplus", "tanh")),
])
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


@pytest.mark.parametrize("fixed, clip, scale", [
    ({"bits": 16, "frac_bits": 14}, True, 1.0),
    ({"bits": 8, "frac_bits": 4}, False, 4.0),
    ({"bits": 24, "frac_bits": 20}, False, 2.0),
    ({"bits": 12, "frac_bits": 0}, False, 100.0),
    ({"bits": 16, "frac_bits": 15}, True, 1.0),
])
def test_fixed_header_compiles_and_equals_the_numpy_reference_bit_for_bit(fixed, clip, scale, tmp_path):
    rng = np.random.default_rng(11)
    f = export_format(fixed)
    lim = min(scale, f.code_max / 2 ** f.frac_bits)
    layers = [Dense((3, 6), "relu", weight=rng.uniform(-lim, lim, (3, 6)), bias=rng.uniform(-lim, lim, 6)),
              Dense((6, 5), "linear", has_bias=False, weight=rng.uniform(-lim, lim, (6, 5))),
              Dense((5, 2), "relu", weight=rng.uniform(-lim, lim, (5, 2)), bias=rng.uniform(-lim, lim, 2))]
    net = Network(layers, clip=clip)
    X = rng.uniform(-3 * scale, 3 * scale, size=(300, 3))
    X[:5] = [[0.0, 0.0, 0.0], [1e9, -1e9, 0.5], [2 ** -f.frac_bits / 2, -(2 ** -f.frac_bits) / 2, 1.5 * 2 ** -f.frac_bits],
             [-0.0, 1.0, -1.0], [scale, -scale, scale]]
    header = export_c_header(net, None, name="net", fixed=fixed)
    assert "int64_t a[" in header and "double a[" not in header
    y = run_c(header, X, 2, tmp_path)
    ref = predict_fixed(net, X, fixed)
    assert np.array_equal(y.view(np.uint32), ref.view(np.uint32))
    # and the fixed-point result is close to the float network where nothing saturates
    if clip:
        close = np.abs(X).max(axis=1) < 1
        np.testing.assert_allclose(ref[close], net.predict(X[close]), atol=64 * 2.0 ** -f.frac_bits)


def test_public_names_are_exported():
    for name in ("evaluate", "DeviationReport", "EvaluationCallback", "save_model", "load_model", "save_bundle",
                 "load_bundle", "export_codes", "export_c_header", "ModelFileError"):
        assert name in linncore.__all__ and hasattr(linncore, name)
    assert issubclass(linncore.ModelFileError, ValueError)
