"""The one reader of untrusted files refuses what is not a small regular file, before reading."""
from __future__ import annotations

import os

import pytest

from linncore._util.untrusted import (UntrustedInputError, json_depth, loads_json, read_bytes,
                                      short)


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


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('[NaN]', "NaN is not a JSON number"),
    ('[-Infinity]', "-Infinity is not a JSON number"),
    ('{"a": }', "not valid JSON"),
])
def test_strict_json(text, message):
    with pytest.raises(UntrustedInputError, match=message):
        loads_json(text, label="f")


def test_messages_quote_little_of_a_value():
    assert len(short("x" * 10_000)) < 80
    assert short(10 ** 4000) == "an integer of 4001 digits"
