"""The one reader of untrusted files: every loader in linncore opens its file through here.

A file named by a user may be anything: a FIFO that never ends, ``/dev/zero``, a folder, a
symlink to a device, a gigabyte of nesting.  This module reads such input with stated limits:

- :func:`read_bytes` refuses anything but a regular file *before opening it* (so a FIFO cannot
  block) and reads at most ``limit`` bytes (so a device cannot exhaust memory);
- :func:`decode_text` decodes strict UTF-8 (a leading BOM is refused unless allowed);
- :func:`loads_json` parses JSON with duplicate keys refused, ``NaN``/``Infinity`` refused and
  nesting limited to a stated depth (checked before the parser recurses);
- :func:`short` quotes at most a few dozen characters of an offending value, so messages stay
  short whatever the input.

Each format raises its own error type, given by the caller as ``error``: a callable taking the
message (``error(message)``) and returning the exception to raise.  Messages name the file.
"""
from __future__ import annotations

import json
import os
import stat
from typing import Any, Callable

__all__ = ["UntrustedInputError", "short", "read_bytes", "decode_text", "json_depth", "loads_json",
           "read_json", "DEFAULT_MAX_DEPTH"]

DEFAULT_MAX_DEPTH = 64
_QUOTE = 40


class UntrustedInputError(ValueError):
    """A file or value refused by the untrusted-input reader (the default error type)."""


ErrorFactory = Callable[[str], BaseException]


def short(value: Any, limit: int = _QUOTE) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages.

    Examples
    --------
    >>> short("x" * 1000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (1002 characters)"
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** 30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value) if not isinstance(value, (bytes, bytearray)) else repr(bytes(value[:limit]))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _label(path: Any) -> str:
    return short(os.fspath(path), 80).strip("'\"")


def read_bytes(path: Any, *, limit: int, what: str = "file",
               error: ErrorFactory = UntrustedInputError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  Symlinks are followed, but the target must be a regular file.
    limit : int
        The largest size accepted, in bytes.
    what : str
        What the file should be, for messages (``"a .linn file"``).
    error : callable
        Builds the exception to raise from a message.

    Raises
    ------
    TypeError
        ``path`` is not a path.
    FileNotFoundError
        Nothing is at ``path``.
    error
        ``path`` is not a regular file (a folder, FIFO, device or socket), or it is larger than
        ``limit``, or it cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"hello")
    >>> read_bytes(p, limit=10)
    b'hello'
    """
    try:
        name = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a file path (str or os.PathLike), got "
                        f"{type(path).__name__}") from None
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    label = _label(name)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL
        raise error(f"{label}: cannot be read ({short(str(exc), 80)})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise error(f"{label}: is {kind}, expected {what}")
    if st.st_size > limit:
        raise error(f"{label}: {st.st_size} bytes, more than the limit of {limit} for {what}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise error(f"{label}: cannot be opened ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
            raise error(f"{label}: is not a regular file, expected {what}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise error(f"{label}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if total > limit:
        raise error(f"{label}: more than the limit of {limit} bytes for {what}")
    return b"".join(chunks)


def decode_text(data: bytes, *, label: str, allow_bom: bool = False,
                error: ErrorFactory = UntrustedInputError) -> str:
    """Strict UTF-8 text of ``data``; a byte-order mark is refused unless ``allow_bom``.

    Examples
    --------
    >>> decode_text("é".encode(), label="f")
    'é'
    """
    if data.startswith(b"\xef\xbb\xbf"):
        if not allow_bom:
            raise error(f"{label}: starts with a UTF-8 byte-order mark; expected plain UTF-8")
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings are skipped).

    Examples
    --------
    >>> json_depth('{"a": [1, [2, "[[["]]}')
    3
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> Any:
    raise _Constant(name)


class _Constant(ValueError):
    pass


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def loads_json(text: str, *, label: str, max_depth: int = DEFAULT_MAX_DEPTH,
               allow_constants: bool = False, error: ErrorFactory = UntrustedInputError) -> Any:
    """Parse JSON text strictly.

    Duplicate keys, ``NaN``/``Infinity`` literals (unless ``allow_constants``) and nesting
    deeper than ``max_depth`` are refused with ``error``; so is anything the parser refuses.

    Examples
    --------
    >>> loads_json('{"a": 1}', label="f")
    {'a': 1}
    >>> loads_json('{"a": 1, "a": 2}', label="f")
    Traceback (most recent call last):
    ...
    linncore._util.untrusted.UntrustedInputError: f: duplicate key 'a'
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{label}: JSON nested {depth} deep, more than the limit of {max_depth}")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=None if allow_constants else _reject_constant)
    except _Duplicate as exc:
        raise error(f"{label}: duplicate key {short(exc.args[0])}") from None
    except _Constant as exc:
        raise error(f"{label}: {exc.args[0]} is not a JSON number; expected finite numbers") from None
    except json.JSONDecodeError as exc:
        raise error(f"{label}: not valid JSON: {exc.msg} at line {exc.lineno} column "
                    f"{exc.colno}") from None
    except RecursionError:
        raise error(f"{label}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal of too many digits
        raise error(f"{label}: unreadable JSON value ({short(str(exc), 80)})") from None


def read_json(path: Any, *, limit: int, what: str, max_depth: int = DEFAULT_MAX_DEPTH,
              allow_constants: bool = False, error: ErrorFactory = UntrustedInputError) -> Any:
    """:func:`read_bytes`, :func:`decode_text` and :func:`loads_json` in one call."""
    data = read_bytes(path, limit=limit, what=what, error=error)
    label = _label(path)
    text = decode_text(data, label=label, error=error)
    return loads_json(text, label=label, max_depth=max_depth, allow_constants=allow_constants,
                      error=error)
