"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader sees either the old file or the complete new one; a write that fails part way
(full disk, killed process, an exception while writing) leaves an earlier file intact and
removes its temporary file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


def _target(path: Any, name: str) -> str:
    try:
        target = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{name}: expected a file path (str or os.PathLike), got {type(path).__name__}"
        ) from None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    return target


def _named(exc: OSError, target: str) -> OSError:
    """``exc`` naming ``target`` (not the temporary file, which the user never asked for)."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), target)


def check_writable(path: Any, name: str = "path") -> str:
    """Refuse, before any work, a target that :func:`atomic_write` could not write.

    The target must not be a folder and its folder must exist and take a new file (a
    temporary file is made and removed: permission bits do not tell a read-only file system
    apart for every user).  Returns the path as a string.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError, OSError
        Naming the target.
    """
    target = _target(path, name)
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: the folder {folder!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".linncore-", suffix=".tmp")
    except OSError as exc:
        raise _named(exc, target) from None
    os.close(fd)
    os.unlink(tmp)
    return target


@contextmanager
def atomic_write(path: Any, mode: str = "w", name: str = "path") -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error it replaces
    ``path`` in one step, otherwise it is removed and ``path`` is untouched.  Errors of the
    file system (a full disk, a read-only folder, a folder at ``path``) name ``path``."""
    target = _target(path, name)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: the folder {folder!r} does not exist")
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", target)
    # keep an existing file's permissions; a new one gets the usual 0644 (mkstemp makes 0600)
    perms = (os.stat(target).st_mode & 0o777) if os.path.exists(target) else 0o644
    # a short name: the target's own name may already be as long as the file system allows
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".linncore-", suffix=".tmp")
    except OSError as exc:
        raise _named(exc, target) from None
    try:
        os.chmod(tmp, perms)
        text = "b" not in mode
        encoding, newline = ("utf-8", "\n") if text else (None, None)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _named(exc, target) from None
        raise


def write_text_atomic(path: Any, text: str, name: str = "path") -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path as a string."""
    with atomic_write(path, "w", name) as fh:
        fh.write(text)
    return _target(path, name)


def save_figure(fig: Any, path: Any, name: str = "path", **kwargs: Any) -> str:
    """``fig.savefig`` into ``path`` atomically, in the format its extension names (PNG when
    it has none); returns the path as a string."""
    target = _target(path, name)
    fmt = os.path.splitext(target)[1][1:].lower() or "png"
    with atomic_write(target, "wb", name) as fh:
        fig.savefig(fh, format=fmt, **kwargs)
    return target
