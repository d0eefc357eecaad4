"""Atomic writes."""

from __future__ import annotations


def test_atomic_writes_work_for_the_longest_file_names(tmp_path):
    from linncore._util.atomic import write_text_atomic

    path = tmp_path / ("n" * 250 + ".json")
    write_text_atomic(path, "{}")
    assert path.read_text() == "{}"
