"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader sees either the old file or the complete new one; a write that fails part way
(full disk, killed process, an exception while writing) leaves an earlier file intact and
removes its temporary file.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any


def write_text_atomic(path: Any, text: str, name: str = "path") -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path as a string."""
    try:
        target = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got {type(path).__name__}") from None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: the folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
