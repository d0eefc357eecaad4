"""Keras files without TensorFlow: the committed files Keras wrote, round trips through
save_keras, refusals, hostile archives and HDF5 files, and ``linncore convert``.

The files under tests/data/keras/ were written by Keras 3.15 (with TensorFlow and moku.nn) by
tests/data/keras/make_keras_files.py, which also stored Keras's predictions beside each file
and described every file in manifest.json."""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import linncore  # noqa: E402
from linncore import (  # noqa: E402
    Dense,
    KerasFileError,
    LinnModel,
    Network,
    get_linn,
    load_keras,
    load_linn,
    save_keras,
)
from linncore.cli import main  # noqa: E402
from linncore.vendor import keras_archive, keras_files  # noqa: E402

pytestmark = pytest.mark.optional  # needs the optional h5py

DATA = Path(__file__).resolve().parents[1] / "data" / "keras"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
LOADABLE = [
    (m, f)
    for m in MANIFEST["models"]
    if m["expect"] == "load"
    for f in m["files"]
    if not f.endswith(".npz")
]
REFUSED = [(m, f) for m in MANIFEST["models"] if m["expect"] == "refuse" for f in m["files"]]
# Keras's predictions are float32 computations, and Keras's predict feeds float64 data to a
# float64 model as float32: linncore agrees with them to float32 rounding
RTOL = ATOL = 1e-6


def _load_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # WeightClip(0.5) warns; checked below
        return load_keras(path)


def _stored(model):
    d = np.load(DATA / f"{model['name']}.npz")
    return d["x"], d["y"]


# -- files written by Keras ------------------------------------------------------------------
def test_the_committed_files_cover_what_the_loader_must_read():
    loadable = {m["name"]: m for m, _ in LOADABLE}
    assert {m["model_class"] for m in loadable.values()} == {"Sequential", "Functional"}
    assert any(m["uses_moku_classes"] for m in loadable.values())
    assert any(not m["uses_moku_classes"] for m in loadable.values())
    assert {".keras", ".h5"} == {Path(f).suffix for _, f in LOADABLE}
    assert {"float32", "float64"} == {m["dtype"] for m in loadable.values()}
    dense = [l for m in loadable.values() for l in m["layers"] if l["class"] == "Dense"]
    assert {l["use_bias"] for l in dense} == {True, False}
    assert set(linncore.list_activations()) <= {
        l["activation"] for m in loadable.values() for l in m["layers"] if "activation" in l
    }


@pytest.mark.parametrize("model, file", LOADABLE, ids=[f for _, f in LOADABLE])
def test_committed_file_predicts_as_keras_did(model, file):
    lm = _load_quiet(DATA / file)
    assert isinstance(lm, LinnModel) and lm.scaling() is None
    net = lm.network
    x, y = _stored(model)
    assert (net.input_size, net.output_size) == (model["input_width"], model["output_width"])
    assert net.dtype.name == model["dtype"]
    assert net.clip == any(l["class"] == "OutputClipLayer" for l in model["layers"])
    dense = [l for l in model["layers"] if l["class"] == "Dense"]
    assert [l.name for l in net.layers] == [l["name"] for l in dense]
    assert [l.has_bias for l in net.layers] == [l["use_bias"] for l in dense]
    out = lm.predict(x)
    assert out.shape == y.shape
    np.testing.assert_allclose(out, y, rtol=RTOL, atol=ATOL)


def test_activation_layers_fold_into_the_dense_layer_before_them():
    lm = load_keras(DATA / "seq_built_activation_layers.keras")
    assert [l.activation for l in lm.network.layers] == ["softsign", "relu", "tanh"]


def test_moku_weight_clip_of_another_value_loads_with_a_warning():
    model = next(m for m, _ in LOADABLE if m["name"] == "moku_sequential_clip_half")
    with pytest.warns(
        UserWarning, match=r"WeightClip\(0.5\) on dense, dense_1 .* clips weights to \[-1, 1\]"
    ):
        lm = load_keras(DATA / "moku_sequential_clip_half.h5")
    assert lm.network.clip
    x, y = _stored(model)
    np.testing.assert_allclose(lm.predict(x), y, rtol=RTOL, atol=ATOL)


def test_the_vendors_construct_model_file_converts_to_linn(tmp_path):
    lm = load_keras(DATA / "moku_construct_model.keras")
    path = linncore.save_linn(lm, 1, 1, tmp_path / "m.linn", clip=True)
    x, _ = _stored(next(m for m, _ in LOADABLE if m["name"] == "moku_construct_model"))
    np.testing.assert_allclose(
        load_linn(path).predict(np.clip(x, -1, 1)),
        lm.network.predict(np.clip(x, -1, 1)),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("model, file", REFUSED, ids=[f for _, f in REFUSED])
def test_unsupported_layer_is_refused_naming_layer_class_and_what_is_supported(model, file):
    with pytest.raises(KerasFileError) as exc:
        load_keras(DATA / file)
    text = str(exc.value)
    assert f"'{model['refused_layer']}'" in text and f"class {model['refused_class']}" in text
    assert "supported" in text


def test_lambda_is_refused_as_code_that_is_never_run():
    with pytest.raises(KerasFileError, match=r"'doubling_lambda' \(class Lambda\).*never runs"):
        load_keras(DATA / "refuse_lambda.keras")


# -- round trips through save_keras ----------------------------------------------------------
@pytest.mark.parametrize("model, file", LOADABLE, ids=[f for _, f in LOADABLE])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_round_trip_through_save_keras_is_exact(model, file, suffix, tmp_path):
    lm = _load_quiet(DATA / file)
    path = save_keras(lm, tmp_path / f"again{suffix}")
    back = load_keras(path).network
    net = lm.network
    assert repr(back) == repr(net)
    assert [l.has_bias for l in back.layers] == [l.has_bias for l in net.layers]
    for a, b in zip(back.get_weights(), net.get_weights(), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    x, _ = _stored(model)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


def test_save_keras_writes_the_same_bytes_for_the_same_network(tmp_path):
    net = Network([Dense((2, 3), "relu", seed=0), Dense((3, 1), seed=1)])
    for suffix in (".keras", ".h5"):
        a = save_keras(net, tmp_path / f"a{suffix}").read_bytes()
        b = save_keras(net, tmp_path / f"b{suffix}").read_bytes()
        assert a == b


def test_save_keras_writes_clipping_as_hard_tanh_that_plain_keras_knows(tmp_path):
    lm = LinnModel()
    lm.set_training_data(np.zeros((4, 2)), np.zeros((4, 1)), scale=False)
    lm.construct_model([(3, "tanh"), (1, "linear")], seed=0)
    path = save_keras(lm, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
    layers = config["config"]["layers"]
    assert [l["class_name"] for l in layers] == [
        "InputLayer",
        "Dense",
        "Activation",
        "Dense",
        "Activation",
    ]
    assert {l["config"]["activation"] for l in layers if l["class_name"] == "Activation"} == {
        "hard_tanh"
    }
    assert "WeightClip" not in json.dumps(config) and "moku" not in json.dumps(config)
    assert load_keras(path).network.clip


def test_save_keras_keeps_no_scaling_and_says_so(tmp_path):
    lm = LinnModel()
    lm.set_training_data(np.linspace(0, 10, 8)[:, None], np.linspace(5, 6, 8)[:, None])
    lm.construct_model([(1,)], seed=0)
    with pytest.warns(UserWarning, match="scaling is not part of a Keras file"):
        save_keras(lm, tmp_path / "m.h5")


def test_save_keras_checks_its_arguments(tmp_path):
    net = Network([Dense((2, 1), seed=0)])
    with pytest.raises(ValueError, match=r"'.keras' or '.h5'"):
        save_keras(net, tmp_path / "m.hdf5")
    with pytest.raises(TypeError, match="LinnModel"):
        save_keras(object(), tmp_path / "m.keras")
    with pytest.raises(FileNotFoundError):
        save_keras(net, tmp_path / "missing" / "m.keras")
    bn = Network(
        [Dense((2, 2), seed=0), linncore.BatchNormalization(), Dense((2, 1), seed=1)], clip=False
    )
    with pytest.raises(ValueError, match="batch normalisation"):
        save_keras(bn, tmp_path / "m.keras")


def test_a_failed_save_keeps_the_earlier_file(tmp_path, monkeypatch):
    net = Network([Dense((2, 1), seed=0)])
    path = save_keras(net, tmp_path / "m.keras")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keras_files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        save_keras(Network([Dense((2, 1), seed=5)]), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


# -- hostile and damaged files ---------------------------------------------------------------
def _dense_config(units=(3, 1), n_in=2, extra_layers=(), functional=False, **dense):
    layers = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, n_in], "name": "input_layer"}}
    ]
    for i, u in enumerate(units):
        layers.append(
            {
                "class_name": "Dense",
                "config": {"name": f"dense_{i}", "units": u, "activation": "relu", **dense},
            }
        )
    layers += list(extra_layers)
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


def _weights_h5(arrays, fill=None):
    """model.weights.h5 bytes: arrays[i] = [kernel, bias] of the i-th Dense layer."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, arrs in enumerate(arrays):
            g = f.create_group(f"layers/{'dense' if i == 0 else f'dense_{i}'}/vars")
            for k, a in enumerate(arrs):
                g.create_dataset(str(k), data=a)
        if fill is not None:
            fill(f)
    return buf.getvalue()


def _good_arrays():
    return [
        [np.full((2, 3), 0.5, np.float32), np.zeros(3, np.float32)],
        [np.ones((3, 1), np.float32), np.zeros(1, np.float32)],
    ]


def _archive(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _keras_file(path, config=None, weights=None, extra=()):
    config = _dense_config() if config is None else config
    weights = _weights_h5(_good_arrays()) if weights is None else weights
    text = config if isinstance(config, (str, bytes)) else json.dumps(config)
    return _archive(
        path,
        [("metadata.json", "{}"), ("config.json", text), ("model.weights.h5", weights), *extra],
    )


def test_a_hand_made_file_loads_so_the_hostile_variants_below_test_one_thing(tmp_path):
    lm = load_keras(_keras_file(tmp_path / "m.keras"))
    np.testing.assert_allclose(lm.predict([[1.0, 1.0]]), [[3.0]])


def test_zip_bomb_is_refused_by_declared_size(tmp_path, monkeypatch):
    monkeypatch.setitem(keras_archive.MEMBER_LIMITS, "config.json", 1 << 20)
    bomb = b" " * (8 << 20)  # 8 MiB of spaces deflate to a few kB
    path = _keras_file(tmp_path / "m.keras", config=b"{}" + bomb)
    assert path.stat().st_size < 100_000
    with pytest.raises(
        KerasFileError, match=r"'config.json' declares 8388610 bytes uncompressed, more than"
    ):
        load_keras(path)


def test_member_that_inflates_past_its_declared_size_is_refused(tmp_path):
    path = _keras_file(tmp_path / "m.keras")
    raw = bytearray(path.read_bytes())
    # lower the declared size of config.json in the central directory (offset 24 of its entry)
    entries = [i for i in range(len(raw)) if raw[i : i + 4] == b"PK\x01\x02"]
    for at in entries:
        n = int.from_bytes(raw[at + 28 : at + 30], "little")
        if raw[at + 46 : at + 46 + n] == b"config.json":
            raw[at + 24 : at + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(KerasFileError, match=r"config\.json"):
        load_keras(path)


def test_too_many_members_are_refused_before_the_directory_is_parsed(tmp_path, monkeypatch):
    path = _keras_file(tmp_path / "m.keras", extra=[(f"assets/{i}", b"") for i in range(40)])
    monkeypatch.setattr(keras_archive, "MAX_MEMBERS", 16)

    def no_zipfile(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory")

    monkeypatch.setattr(keras_archive.zipfile, "ZipFile", no_zipfile)
    with pytest.raises(KerasFileError, match=r"lists 43 members, more than the limit of 16"):
        load_keras(path)


@pytest.mark.parametrize(
    "names",
    [
        ["../config.json", "model.weights.h5"],
        ["/config.json", "model.weights.h5"],
        ["sub/config.json", "model.weights.h5"],
        ["config.json/", "model.weights.h5"],
    ],
)
def test_member_names_are_matched_exactly_never_as_paths(names, tmp_path):
    config = json.dumps(_dense_config()).encode()
    members = [(n, config if "config" in n else _weights_h5(_good_arrays())) for n in names]
    path = _archive(tmp_path / "m.keras", members)
    with pytest.raises(KerasFileError, match=r"has no 'config\.json'"):
        load_keras(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]  # nothing extracted


def test_a_member_named_twice_is_refused(tmp_path):
    path = _keras_file(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("config.json", "{}")
    with pytest.raises(KerasFileError, match=r"holds 'config\.json' twice"):
        load_keras(path)


@pytest.mark.parametrize(
    "missing, message",
    [
        ("config.json", "has no 'config.json'"),
        ("model.weights.h5", "has no 'model.weights.h5'"),
    ],
)
def test_missing_members_are_named(missing, message, tmp_path):
    members = [
        (n, d)
        for n, d in [
            ("metadata.json", "{}"),
            ("config.json", json.dumps(_dense_config())),
            ("model.weights.h5", _weights_h5(_good_arrays())),
        ]
        if n != missing
    ]
    with pytest.raises(KerasFileError, match=message):
        load_keras(_archive(tmp_path / "m.keras", members))


def test_weights_in_npz_are_refused_by_name(tmp_path):
    members = [("config.json", json.dumps(_dense_config())), ("model.weights.npz", b"PK")]
    with pytest.raises(KerasFileError, match=r"\.npz or in shards are not supported"):
        load_keras(_archive(tmp_path / "m.keras", members))


@pytest.mark.parametrize(
    "config, message",
    [
        ("{not json", "not valid JSON"),
        ('{"class_name": "Sequential", "class_name": "Functional"}', "duplicate key 'class_name'"),
        ('{"class_name": "Sequential", "config": {"layers": [NaN]}}', "NaN is not a JSON number"),
        ("[" * 200 + "]" * 200, "nested 200 deep"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[]", "expected a JSON object"),
        ('{"class_name": "Sequential", "config": {"layers": []}}', "non-empty list of layers"),
        ('{"class_name": "Model2", "config": {}}', "class 'Model2' is not supported"),
        (
            '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": '
            '{"units": -3}}]}}',
            "units: expected a positive integer",
        ),
        (
            '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": '
            '{"units": 1, "kernel_constraint": {"class_name": "MaxNorm", "config": {}}}}]}}',
            "'MaxNorm' is not supported",
        ),
        (
            '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": '
            '{"units": 1, "dtype": "mixed_float16"}}]}}',
            "mixed_float16",
        ),
    ],
)
def test_wrong_json_is_refused_with_the_reason(config, message, tmp_path):
    with pytest.raises(KerasFileError, match=message):
        load_keras(_keras_file(tmp_path / "m.keras", config=config))


def test_a_claimed_terabyte_dataset_is_refused_before_reading(tmp_path):
    def huge(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset(
            "0", shape=(1 << 20, 1 << 20), dtype="f4", chunks=(64, 64)
        )

    path = _keras_file(tmp_path / "m.keras", weights=_weights_h5(_good_arrays(), fill=huge))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(
        KerasFileError, match=r"kernel: expected shape \(2, 3\), got shape \(1048576, 1048576\)"
    ):
        load_keras(path)


def test_a_terabyte_dataset_the_architecture_asks_for_is_refused_by_the_limit(tmp_path):
    n = 1 << 19
    config = _dense_config(units=(n,), n_in=n)

    def huge(f):
        g = f.create_group("layers/dense/vars")
        g.create_dataset("0", shape=(n, n), dtype="f4", chunks=(64, 64))
        g.create_dataset("1", shape=(n,), dtype="f4")

    with pytest.raises(KerasFileError, match="more than the limit of"):
        load_keras(
            _keras_file(tmp_path / "m.keras", config=config, weights=_weights_h5([], fill=huge))
        )


def test_a_model_without_input_width_takes_it_from_the_kernel_within_limits(tmp_path):
    config = _dense_config()
    config["config"]["layers"] = config["config"]["layers"][1:]
    lm = load_keras(_keras_file(tmp_path / "m.keras", config=config))
    assert lm.network.input_size == 2

    def huge(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", shape=(1 << 26, 3), dtype="f4", chunks=(64, 3))

    path = _keras_file(
        tmp_path / "b.keras", config=config, weights=_weights_h5(_good_arrays(), fill=huge)
    )
    with pytest.raises(KerasFileError, match="more than the limit of"):
        load_keras(path)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda f, tmp: f["layers/dense/vars"].__setitem__(
                "x", h5py.ExternalLink(str(tmp / "other.h5"), "/d")
            ),
            None,
        ),  # an extra link is not followed: it is never looked at
        (
            lambda f, tmp: (
                f.__delitem__("layers/dense_1"),
                f["layers"].__setitem__("dense_1", h5py.ExternalLink(str(tmp / "other.h5"), "/g")),
            ),
            "is an external link",
        ),
        (
            lambda f, tmp: (
                f.__delitem__("layers/dense_1"),
                f["layers"].__setitem__("dense_1", h5py.SoftLink("/layers/dense")),
            ),
            "is a soft link",
        ),
    ],
)
def test_only_hard_links_are_followed(make, message, tmp_path):
    path = _keras_file(
        tmp_path / "m.keras", weights=_weights_h5(_good_arrays(), fill=lambda f: make(f, tmp_path))
    )
    if message is None:
        with pytest.raises(KerasFileError, match="expected 2 array"):
            load_keras(path)
    else:
        with pytest.raises(KerasFileError, match=message):
            load_keras(path)


def test_external_storage_and_virtual_datasets_are_refused(tmp_path):
    blob = tmp_path / "kernel.bin"
    blob.write_bytes(np.zeros(6, np.float32).tobytes())

    def external(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset(
            "0", shape=(2, 3), dtype="f4", external=[(str(blob), 0, 24)]
        )

    with pytest.raises(KerasFileError, match="external files"):
        load_keras(
            _keras_file(tmp_path / "a.keras", weights=_weights_h5(_good_arrays(), fill=external))
        )

    def virtual(f):
        del f["layers/dense/vars/0"]
        layout = h5py.VirtualLayout(shape=(2, 3), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "d", shape=(2, 3))
        f["layers/dense/vars"].create_virtual_dataset("0", layout)

    with pytest.raises(KerasFileError, match="virtual dataset"):
        load_keras(
            _keras_file(tmp_path / "b.keras", weights=_weights_h5(_good_arrays(), fill=virtual))
        )


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            [[np.zeros((3, 2), np.float32), np.zeros(3, np.float32)], _good_arrays()[1]],
            r"expected shape \(2, 3\)",
        ),
        (
            [[np.zeros((2, 3), np.int32), np.zeros(3, np.float32)], _good_arrays()[1]],
            "expected float32 or float64",
        ),
        (
            [[np.full((2, 3), np.nan, np.float32), np.zeros(3, np.float32)], _good_arrays()[1]],
            "expected finite values",
        ),
        ([[np.zeros((2, 3), np.float32)], _good_arrays()[1]], r"expected 2 array\(s\)"),
        ([_good_arrays()[0]], "is missing"),
    ],
)
def test_damaged_weights_are_refused_naming_the_layer(arrays, message, tmp_path):
    with pytest.raises(KerasFileError, match=message) as exc:
        load_keras(_keras_file(tmp_path / "m.keras", weights=_weights_h5(arrays)))
    assert "layer 'dense_" in str(exc.value)


def test_not_hdf5_weights_and_not_a_keras_file_are_refused(tmp_path):
    with pytest.raises(KerasFileError, match="not a readable HDF5 file"):
        load_keras(_keras_file(tmp_path / "m.keras", weights=b"\x89HDF\r\n\x1a\n" + b"\x00" * 100))
    (tmp_path / "x.keras").write_bytes(b"hello, world")
    with pytest.raises(KerasFileError, match=r"neither a .keras archive"):
        load_keras(tmp_path / "x.keras")
    (tmp_path / "t.keras").write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(KerasFileError, match=r"not a readable .keras archive"):
        load_keras(tmp_path / "t.keras")
    # a zip64 end record that points nowhere: refused by the shared end-record check
    locator = b"PK\x06\x07" + bytes(4) + (4).to_bytes(8, "little") + (1).to_bytes(4, "little")
    end = b"PK\x05\x06" + bytes(6) + b"\xff\xff" + b"\xff" * 8 + bytes(2)
    (tmp_path / "z64.keras").write_bytes(b"PK\x03\x04" + bytes(50) + locator + end)
    with pytest.raises(KerasFileError, match=r"not a readable .keras archive \(a bad zip64"):
        load_keras(tmp_path / "z64.keras")


def test_non_regular_files_are_refused_without_blocking(tmp_path):
    (tmp_path / "folder.keras").mkdir()
    with pytest.raises(KerasFileError, match="is a folder"):
        load_keras(tmp_path / "folder.keras")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.keras")
        with pytest.raises(KerasFileError, match="is a FIFO"):
            load_keras(tmp_path / "pipe.keras")
    if os.path.exists("/dev/zero"):
        with pytest.raises(KerasFileError, match="is a device"):
            load_keras("/dev/zero")
    with pytest.raises(FileNotFoundError):
        load_keras(tmp_path / "nothing.keras")


def test_a_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = _keras_file(tmp_path / "m.keras")
    monkeypatch.setattr(keras_files, "MAX_FILE_BYTES", 1000)
    with pytest.raises(KerasFileError, match="more than the limit of 1000"):
        load_keras(path)


def test_legacy_h5_weights_only_and_hostile_weight_names(tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_group("dense")
    with pytest.raises(KerasFileError, match="holds weights only"):
        load_keras(path)
    src = DATA / "seq_input_relu_linear.h5"
    for bad, message in (
        (["../../dense_1/kernel", "x"], "is not a plain name"),
        (["a"] * 9, r"expected at most 8 strings"),
        (["dense/kernel"], r"expected 2 weight name"),
    ):
        path = tmp_path / "bad.h5"
        path.write_bytes(src.read_bytes())
        with h5py.File(path, "a") as f:
            f["model_weights/dense"].attrs["weight_names"] = np.array([b.encode() for b in bad])
        with pytest.raises(KerasFileError, match=message):
            load_keras(path)


# -- architectures ---------------------------------------------------------------------------
def _functional(layers, first="input_layer", last=None):
    return {
        "class_name": "Functional",
        "config": {
            "name": "f",
            "layers": layers,
            "input_layers": [first, 0, 0],
            "output_layers": [last or layers[-1]["name"], 0, 0],
        },
    }


def _node(name):
    return [
        {
            "args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}],
            "kwargs": {},
        }
    ]


def _layer(cls, name, inbound, **config):
    return {
        "class_name": cls,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": _node(inbound) if inbound else [],
    }


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3),
                _layer("Dense", "dense_1", "input_layer", units=1),
            ],
            "'dense' .* is not on the chain",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "dense_1", units=3),
                _layer("Dense", "dense_1", "dense", units=1),
            ],
            "feeds itself through a loop",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "nowhere", units=3),
            ],
            "comes from 'nowhere'",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2, 4]),
                _layer("Dense", "dense", "input_layer", units=3),
            ],
            r"shape \[None, width\]",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3, activation="relu"),
                _layer("Activation", "a", "dense", activation="tanh"),
            ],
            "one activation per Dense layer",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3),
                _layer("OutputClipLayer", "c", "dense"),
                _layer("Activation", "a", "c", activation="tanh"),
            ],
            "after 'dense''s output is clipped",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3),
                _layer("OutputClipLayer", "c", "dense", clip_value=0.5),
            ],
            "clip_value 0.5 is not supported",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3, activation="relu"),
                _layer("OutputClipLayer", "c", "dense"),
                _layer("Dense", "dense_1", "c", units=1, activation="relu"),
            ],
            "'dense_1' .* its output is not clipped",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3, dtype="float64"),
                _layer("Dense", "dense_1", "dense", units=1, dtype="float32"),
            ],
            "different dtypes",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3, lora_rank=4),
            ],
            "lora_rank 4 is not supported",
        ),
        (
            [
                _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
                _layer("Dense", "dense", "input_layer", units=3, kernel_quantizer="int8"),
            ],
            "are not supported",
        ),
    ],
)
def test_what_linncore_cannot_compute_is_refused(layers, message, tmp_path):
    with pytest.raises(KerasFileError, match=message):
        load_keras(_keras_file(tmp_path / "m.keras", config=_functional(layers)))


def test_bounded_activations_need_no_clipping_and_hard_tanh_clips(tmp_path):
    layers = [
        _layer("InputLayer", "input_layer", None, batch_shape=[None, 2]),
        _layer("Dense", "dense", "input_layer", units=3, activation="tanh"),
        _layer("Dense", "dense_1", "dense", units=1, activation="relu"),
        _layer("Activation", "clip", "dense_1", activation="hard_tanh"),
    ]
    lm = load_keras(_keras_file(tmp_path / "m.keras", config=_functional(layers)))
    assert lm.network.clip
    np.testing.assert_allclose(lm.predict([[5.0, 5.0]]), [[1.0]])


def test_keras_2_legacy_forms_are_read(tmp_path):
    # Keras 2: batch_input_shape, plain dtype strings, nested inbound lists, [[name, 0, 0]] ends
    layers = [
        {
            "class_name": "InputLayer",
            "name": "input_1",
            "config": {"batch_input_shape": [None, 2], "dtype": "float32", "name": "input_1"},
            "inbound_nodes": [],
        },
        {
            "class_name": "Dense",
            "name": "dense",
            "config": {
                "name": "dense",
                "dtype": "float32",
                "units": 3,
                "activation": "relu",
                "kernel_constraint": {
                    "class_name": "WeightClip",
                    "config": {"name": "WeightClip", "clip_value": 1.0},
                },
            },
            "inbound_nodes": [[["input_1", 0, 0, {}]]],
        },
        {
            "class_name": "OutputClipLayer",
            "name": "output_clip_layer",
            "config": {"name": "output_clip_layer", "trainable": True, "dtype": "float32"},
            "inbound_nodes": [[["dense", 0, 0, {}]]],
        },
        {
            "class_name": "Dense",
            "name": "dense_1",
            "config": {"name": "dense_1", "units": 1},
            "inbound_nodes": [[["output_clip_layer", 0, 0, {}]]],
        },
        {
            "class_name": "OutputClipLayer",
            "name": "output_clip_layer_1",
            "config": {},
            "inbound_nodes": [[["dense_1", 0, 0, {}]]],
        },
    ]
    config = {
        "class_name": "Model",
        "config": {
            "name": "model",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["output_clip_layer_1", 0, 0]],
        },
    }
    path = tmp_path / "k2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.15.0"
        top = f.create_group("model_weights")
        for name, arrs in (("dense", _good_arrays()[0]), ("dense_1", _good_arrays()[1])):
            g = top.create_group(name)
            g.attrs["weight_names"] = np.array(
                [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            )
            g.create_dataset(f"{name}/kernel:0", data=arrs[0])
            g.create_dataset(f"{name}/bias:0", data=arrs[1])
    lm = load_keras(path)
    assert lm.network.clip and [l.name for l in lm.network.layers] == ["dense", "dense_1"]
    np.testing.assert_allclose(lm.predict([[1.0, 1.0]]), [[1.0]])  # 3 clipped to 1


# -- linncore convert ------------------------------------------------------------------------
def test_convert_writes_the_linn_document_of_the_keras_file(tmp_path, capsys):
    out = tmp_path / "m.linn"
    code = main(
        [
            "convert",
            str(DATA / "moku_construct_model.h5"),
            "-o",
            str(out),
            "--input-channels",
            "2",
            "--output-channels",
            "2",
            "--clip",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    lm = load_keras(DATA / "moku_construct_model.h5")
    assert json.loads(out.read_text()) == get_linn(lm, 2, 2, clip=True)


def test_convert_checks_every_converter_rule_and_writes_nothing_when_one_breaks(tmp_path, capsys):
    out = tmp_path / "m.linn"
    code = main(
        [
            "convert",
            str(DATA / "moku_construct_model.keras"),
            "-o",
            str(out),
            "--input-channels",
            "2",
            "--output-channels",
            "2",
            "--output-mapping",
            "5",
        ]
    )
    assert code == 1 and not out.exists()
    assert "mapping" in capsys.readouterr().err
    code = main(
        [
            "convert",
            str(DATA / "moku_construct_model.keras"),
            "-o",
            str(out),
            "--input-channels",
            "3",
            "--output-channels",
            "2",
            "--clip",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and "rule" in err


def test_convert_names_a_refused_layer_and_checks_its_output_name(tmp_path, capsys):
    code = main(
        [
            "convert",
            str(DATA / "refuse_lambda.keras"),
            "-o",
            str(tmp_path / "m.linn"),
            "--input-channels",
            "1",
            "--output-channels",
            "1",
        ]
    )
    assert code == 1 and "class Lambda" in capsys.readouterr().err
    code = main(
        [
            "convert",
            str(DATA / "moku_construct_model.keras"),
            "-o",
            str(tmp_path / "m.json"),
            "--input-channels",
            "1",
            "--output-channels",
            "1",
        ]
    )
    assert code == 2 and "ending in .linn" in capsys.readouterr().err


def test_convert_warns_when_the_keras_model_does_not_clip(tmp_path, capsys):
    code = main(
        [
            "convert",
            str(DATA / "seq_input_relu_linear.keras"),
            "-o",
            str(tmp_path / "m.linn"),
            "--input-channels",
            "1",
            "--output-channels",
            "1",
        ]
    )
    assert code == 0
    assert "warning:" in capsys.readouterr().err


def test_a_model_config_that_is_not_one_string_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = np.array([b"{}"] * 3)
    with pytest.raises(
        KerasFileError, match=r"model_config'.*expected one string, got shape \(3,\)"
    ):
        load_keras(path)


def test_metadata_that_is_not_a_json_object_is_refused(tmp_path):
    members = [
        ("metadata.json", "[1, 2]"),
        ("config.json", json.dumps(_dense_config())),
        ("model.weights.h5", _weights_h5(_good_arrays())),
    ]
    with pytest.raises(KerasFileError, match=r"metadata\.json: expected a JSON object"):
        load_keras(_archive(tmp_path / "m.keras", members))


def test_keras_2_13_archives_keep_weights_under_layer_checkpoint_dependencies(tmp_path):
    def move(f):
        f.move("layers", "_layer_checkpoint_dependencies")

    weights = _weights_h5(_good_arrays(), fill=move)
    lm = load_keras(_keras_file(tmp_path / "m.keras", weights=weights))
    np.testing.assert_allclose(lm.predict([[1.0, 1.0]]), [[3.0]])


def test_a_loaded_model_fine_tunes_and_saves_as_a_model_file(tmp_path):
    lm = load_keras(DATA / "moku_construct_model.keras")
    before = lm.get_weights()
    x = np.random.default_rng(0).uniform(-1, 1, (32, 2))
    lm.set_training_data(x, np.tanh(x), scale=False)
    history = lm.fit_model(3, verbose=0, seed=0)
    assert len(history.history["loss"]) == 3
    assert not np.array_equal(lm.get_weights()[0], before[0])
    assert all(np.abs(w).max() <= 1.0 for w in lm.get_weights())  # clip=True: weights clipped
    linncore.save_model(lm, tmp_path / "m.json")
    np.testing.assert_array_equal(
        linncore.load_model(tmp_path / "m.json").network.predict(x), lm.network.predict(x)
    )
