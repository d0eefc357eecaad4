"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader sees either the old file or the complete new one; a write that fails part way
(full disk, killed process, an exception while writing) leaves an earlier file intact and
removes its temporary file.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import IO, Any, Iterator


def _target(path: Any, name: str) -> str:
    try:
        target = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got {type(path).__name__}") from None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    return target


@contextmanager
def atomic_write(path: Any, mode: str = "w", name: str = "path") -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error it replaces
    ``path`` in one step, otherwise it is removed and ``path`` is untouched."""
    target = _target(path, name)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: the folder {folder!r} does not exist")
    # keep an existing file's permissions; a new one gets the usual 0644 (mkstemp makes 0600)
    perms = (os.stat(target).st_mode & 0o777) if os.path.exists(target) else 0o644
    # a short name: the target's own name may already be as long as the file system allows
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".linncore-", suffix=".tmp")
    try:
        os.chmod(tmp, perms)
        text = "b" not in mode
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": "\n"} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text_atomic(path: Any, text: str, name: str = "path") -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path as a string."""
    with atomic_write(path, "w", name) as fh:
        fh.write(text)
    return _target(path, name)
