"""Model files: exact round trips, checks of untrusted documents, atomic writes, bundles,
integer codes and the C99 header export (compiled with the system's C compiler)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _nets import net_of

import linncore
from linncore import Dense, Network, _backend
from linncore.io.model_files import (
    FORMAT_VERSION,
    LIMITS,
    ModelFile,
    ModelFileError,
    bundle_from_json,
    bundle_to_json,
    from_json,
    load_bundle,
    load_model,
    save_bundle,
    save_model,
    to_json,
)


def bits(net):
    view = np.uint32 if net.dtype == np.float32 else np.uint64
    return net.theta.view(view)


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact_including_awkward_values(dtype):
    net = net_of(dtype)
    info = np.finfo(dtype)
    awkward = [
        -0.0,
        float(info.tiny) / 4,
        float(info.max),
        -float(info.max),
        float(info.eps),
        1 / 3,
    ]
    net.theta[: len(awkward)] = awkward
    back = from_json(to_json(net)).network
    assert back.dtype == net.dtype
    assert np.array_equal(bits(back), bits(net))
    assert np.signbit(back.theta[0])


def test_round_trip_keeps_the_architecture():
    net = Network(
        [
            Dense((2, 3), "sigmoid", name="in"),
            Dense((3, 3), "softsign", has_bias=False, name="mid"),
            Dense((3, 1), "leaky_relu", name="out"),
        ],
        clip=False,
        dtype="float64",
    )
    back = from_json(to_json(net)).network
    assert [(l.name, l.shape, l.activation, l.has_bias) for l in back.layers] == [
        (l.name, l.shape, l.activation, l.has_bias) for l in net.layers
    ]
    assert back.clip is False
    x = np.random.default_rng(0).normal(size=(7, 2))
    assert np.array_equal(back.predict(x), net.predict(x))


def test_scaling_precision_and_training_travel_with_the_model(tmp_path):
    net = net_of()
    scaling = {
        "inputs": {"lo": np.array([-1.0, 0.0, 2.0]), "hi": [1.0, 5.0, 2.0]},
        "outputs": {"lo": [0.1, -3.0], "hi": [0.2, 3.0]},
    }
    precision = {"default": {"bits": 16, "int_bits": 2}, "layers": {"dense0": {"weight": [16, 1]}}}
    training = {
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "loss": "mse",
        "epochs": np.int64(200),
        "history": {"loss": [0.5, 0.25]},
        "stopped": None,
        "shuffle": True,
    }
    path = tmp_path / "m.json"
    save_model(net, path, scaling=scaling, precision=precision, training=training)
    m = load_model(path)
    assert isinstance(m, ModelFile) and m.format_version == FORMAT_VERSION
    assert m.scaling == {
        "inputs": {"lo": [-1.0, 0.0, 2.0], "hi": [1.0, 5.0, 2.0]},
        "outputs": {"lo": [0.1, -3.0], "hi": [0.2, 3.0]},
    }
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
    with pytest.raises(
        ModelFileError, match="newer than the 1 this linncore reads; upgrade"
    ) as err:
        load_doc(doc)
    assert err.value.where == "format_version"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("network"), r"^document: missing field\(s\) \['network'\]"),
        (
            lambda d: d.update(format="other"),
            r"^format: expected 'linncore.model', got the string 'other'",
        ),
        (lambda d: d.update(format_version=True), r"^format_version: expected a positive integer"),
        (lambda d: d.update(format_version=0), r"^format_version: expected a positive integer"),
        (lambda d: d.update(extra=1), r"^document: unknown field\(s\) \['extra'\]"),
        (
            lambda d: d["network"].update(dtype="float16"),
            r"^network\.dtype: expected 'float32' or 'float64'",
        ),
        (
            lambda d: d["network"].update(clip=1),
            r"^network\.clip: expected true or false, got the integer 1",
        ),
        (
            lambda d: d["network"].update(layers=[]),
            r"^network\.layers: expected a list of 1 to 256 layers",
        ),
        (
            lambda d: d["network"]["layers"][1].update(activation="gelu"),
            r"^network\.layers\[1\]\.activation: expected one of",
        ),
        (
            lambda d: d["network"]["layers"][1].update(n_in=4),
            r"^network\.layers\[1\]\.n_in: expected 5 \(the n_out of layers\[0\]\), got 4",
        ),
        (
            lambda d: d["network"]["layers"][0].update(n_out=10**6),
            r"^network\.layers\[0\]\.n_out: expected an integer in \[1, 65536\]",
        ),
        (
            lambda d: d["network"]["layers"][0].update(n_in=2.0),
            r"^network\.layers\[0\]\.n_in: expected an integer",
        ),
        (
            lambda d: d["network"]["layers"][2].update(name="dense0"),
            r"^network\.layers\[2\]\.name: 'dense0' is already the name of layers\[0\]",
        ),
        (
            lambda d: d["network"]["layers"][2].update(name=""),
            r"^network\.layers\[2\]\.name: expected a name",
        ),
        (
            lambda d: d["network"]["layers"][2].update(has_bias=False),
            r"^network\.layers\[2\]\.bias: expected null",
        ),
        (
            lambda d: d["network"]["layers"][1]["weight"].update(shape=[5, 3]),
            r"^network\.layers\[1\]\.weight: expected shape \(5, 4\), got \(5, 3\)",
        ),
        (
            lambda d: d["network"]["layers"][1]["weight"].update(shape="5x4"),
            r"^network\.layers\[1\]\.weight\.shape: expected a list of integers",
        ),
        (
            lambda d: d["network"]["layers"][1]["weight"].update(data="@@@@"),
            r"^network\.layers\[1\]\.weight\.data: expected the base64 of 80 bytes",
        ),
        (
            lambda d: d["network"]["layers"][1]["bias"].update(data="!" * 24),
            r"^network\.layers\[1\]\.bias\.data: expected base64 text",
        ),
        (
            lambda d: d["network"]["layers"][1]["bias"].update(data=5),
            r"^network\.layers\[1\]\.bias\.data: expected a base64 string",
        ),
        (
            lambda d: d["network"]["layers"][0].pop("weight"),
            r"^network\.layers\[0\]: missing field\(s\) \['weight'\]",
        ),
        (
            lambda d: d.update(scaling={"inputs": {"lo": [0, 0, 0], "hi": [1, 1, 12345.5]}}),
            r"^scaling\.inputs\.hi\[2\]: expected a finite number",
        ),
        (lambda d: d.update(scaling={}), r"^scaling: expected 'inputs' and/or 'outputs'"),
        (lambda d: d.update(training=[1, 2]), r"^training: expected an object"),
    ],
)
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
    doc["network"]["layers"][1]["weight"]["data"] = base64.b64encode(
        w.astype("<f8").tobytes()
    ).decode()
    with pytest.raises(
        ModelFileError,
        match=r"network\.layers\[1\]\.weight: expected finite values, got nan at index \(2, 3\)",
    ):
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
    with pytest.raises(ModelFileError, match="more than the limit"):
        from_json(text)
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ModelFileError, match="more than the limit"):
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
    m = ModelFile(
        net_of(seed=3),
        scaling={"outputs": {"lo": [0.0, 0.0], "hi": [1.0, 2.0]}},
        training={"epochs": 3},
    )
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
    with pytest.raises(
        ModelFileError, match=r"^models\['second'\]\.network\.layers\[0\]\.activation"
    ):
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
def test_public_names_are_exported():
    for name in (
        "evaluate",
        "DeviationReport",
        "EvaluationCallback",
        "save_model",
        "load_model",
        "save_bundle",
        "load_bundle",
        "export_codes",
        "export_c_header",
        "ModelFileError",
    ):
        assert name in linncore.__all__ and hasattr(linncore, name)
    assert issubclass(linncore.ModelFileError, ValueError)
