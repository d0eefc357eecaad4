"""The one reader of untrusted files refuses what is not a small regular file, before reading."""

from __future__ import annotations

import io
import os
import struct
import zipfile

import numpy as np
import pytest

from linncore._util.untrusted import (
    UntrustedInputError,
    clip,
    json_depth,
    kind,
    loads_json,
    loads_npy,
    loads_toml,
    read_bytes,
    read_csv,
    read_npz,
    short,
    toml_depth,
)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UntrustedInputError, match="is a FIFO"):
        read_bytes(fifo, limit=100)


def test_a_device_and_a_folder_are_refused(tmp_path):
    with pytest.raises(UntrustedInputError, match="is a device"):
        read_bytes("/dev/zero", limit=100)
    with pytest.raises(UntrustedInputError, match="is a folder"):
        read_bytes(tmp_path, limit=100)


def test_a_symlink_to_a_regular_file_is_read_and_to_a_device_refused(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    (tmp_path / "z").symlink_to("/dev/zero")
    assert read_bytes(tmp_path / "l", limit=3) == b"abc"
    with pytest.raises(UntrustedInputError, match="is a device"):
        read_bytes(tmp_path / "z", limit=3)


def test_a_file_over_the_limit_is_refused(tmp_path):
    (tmp_path / "f").write_bytes(b"abcd")
    with pytest.raises(UntrustedInputError, match="4 bytes, more than the limit of 3"):
        read_bytes(tmp_path / "f", limit=3)


def test_the_callers_error_type_is_raised(tmp_path):
    class MyError(Exception):
        pass

    with pytest.raises(MyError):
        read_bytes(tmp_path, limit=3, error=MyError)


def test_json_nesting_is_limited_before_parsing():
    text = "[" * 5000 + "]" * 5000
    assert json_depth(text) == 5000
    with pytest.raises(UntrustedInputError, match="nested 5000 deep"):
        loads_json(text, label="f")
    assert loads_json('["[[[[", {"a": [1]}]', label="f", max_depth=3) == ["[[[[", {"a": [1]}]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("[NaN]", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ('{"a": }', "not valid JSON"),
    ],
)
def test_strict_json(text, message):
    with pytest.raises(UntrustedInputError, match=message):
        loads_json(text, label="f")


def test_messages_quote_little_of_a_value():
    assert len(short("x" * 10_000)) < 80
    assert short(10**4000) == "an integer of 4001 digits"


# -- TOML, NumPy files, CSV and typed values ---------------------------------------------------


def test_toml_nesting_counts_brackets_and_dotted_keys_but_not_strings_or_comments():
    assert toml_depth("a = [[1], \"[[[\", '{{{']  # [[[[\n") == 2
    assert toml_depth("a.b.c = 1.5\nd = 2.5\n") == 2
    assert toml_depth('x = """\n[[[[\n"""\n') == 0
    assert toml_depth("t = {a.b = 1, c.d.e = [1.5]}") == 3
    with pytest.raises(UntrustedInputError, match="TOML nested 5000 deep, more than the limit"):
        loads_toml("a = " + "[" * 5000 + "]" * 5000, label="f")
    with pytest.raises(UntrustedInputError, match="TOML nested 20000 deep"):
        loads_toml("a" + ".a" * 20_000 + " = 1", label="f")
    with pytest.raises(UntrustedInputError, match="f: not valid TOML"):
        loads_toml("a = [", label="f")
    assert loads_toml("[t]\nx = 1\n", label="f") == {"t": {"x": 1}}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_npz_members_are_capped_by_count_and_by_declared_and_actual_size(tmp_path):
    p = tmp_path / "a.npz"
    p.write_bytes(_zip({"x.npy": _npy(np.arange(1000.0))}))
    assert read_npz(p, limit=100_000)["x"].shape == (1000,)
    with pytest.raises(UntrustedInputError, match="declares 8128 bytes unpacked, more than the"):
        read_npz(p, limit=100_000, member_limit=8000)
    with pytest.raises(UntrustedInputError, match="1 members, more than the limit of 0"):
        read_npz(p, limit=100_000, max_members=0)
    data = bytearray(p.read_bytes())  # declare fewer bytes than the member unpacks to
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<I", data, data.find(sig) + off, 500)
    p.write_bytes(bytes(data))
    with pytest.raises(UntrustedInputError, match=r"member 'x\.npy': (cannot be unpacked|unpacks)"):
        read_npz(p, limit=100_000)
    p.write_bytes(_zip({"x.npy": _npy(np.array([{}], dtype=object))}))
    with pytest.raises(UntrustedInputError, match="expected an array of numbers, got dtype 'obj"):
        read_npz(p, limit=100_000)
    p.write_bytes(_zip({"x.txt": b"hello"}))
    with pytest.raises(UntrustedInputError, match=r"expected a \.npy member"):
        read_npz(p, limit=100_000)


def test_npy_header_must_account_for_the_data():
    good = _npy(np.arange(6.0).reshape(2, 3))
    assert loads_npy(good, label="f").tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(UntrustedInputError, match=r"header promises 48 bytes .* holds 40"):
        loads_npy(good[:-8], label="f")
    with pytest.raises(UntrustedInputError, match="is a zip archive"):
        loads_npy(_zip({"x.npy": good}), label="f")
    with pytest.raises(UntrustedInputError, match=r"not a \.npy file"):
        loads_npy(b"hello", label="f")


@pytest.mark.parametrize(
    "text, header, expect",
    [
        ("x,y\n1,2\n", None, (["x", "y"], [[1.0, 2.0]])),
        ("1,2\n3,4\n", None, (None, [[1.0, 2.0], [3.0, 4.0]])),
        (
            "-a,b\n1,2\n",
            None,
            "line 1, column 1: expected a number, got '-a'",
        ),  # a sign: not a header
        ("0.5x,1\n2,3\n", None, "line 1, column 1: expected a number, got '0.5x'"),
        ("1,2\n3,4x\n", None, "line 2, column 2: expected a number, got '4x'"),
        ("1,2\n\n3\n", None, "line 3: expected 2 columns, got 1"),
        ("a,b\n1,2\n", False, "line 1, column 1: expected a number, got 'a'"),
        ("1,2\n3,4\n", True, (["1", "2"], [[3.0, 4.0]])),
        ("x,x\n1,2\n", None, "the column name 'x' appears twice"),
        ("1,nan\n", None, "line 1, column 2: expected a number, got 'nan'"),
        ("1_0,2\n", None, "line 1, column 1: expected a number, got '1_0'"),
        ("x,y\n", None, "no data rows"),
    ],
)
def test_strict_csv(tmp_path, text, header, expect):
    p = tmp_path / "d.csv"
    p.write_text(text)
    if isinstance(expect, str):
        with pytest.raises(UntrustedInputError, match=expect):
            read_csv(p, limit=1000, header=header)
    else:
        arr, names = read_csv(p, limit=1000, header=header)
        assert names == expect[0] and arr.tolist() == expect[1]


def test_kind_short_and_clip_are_the_validators_own():
    from linncore._util import validate

    assert (kind, short, clip) == (validate.kind, validate.short, validate.clip)


def test_kind_and_clip_keep_messages_short():
    assert kind("x" * 10_000) == "a string of 10000 characters"
    assert len(kind(10**4000)) < 60 and len(clip("y" * 10_000)) < 240
