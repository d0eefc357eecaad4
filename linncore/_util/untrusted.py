"""The one reader of untrusted files: every loader in linncore opens its file through here.

A file named by a user may be anything: a FIFO that never ends, ``/dev/zero``, a folder, a
symlink to a device, a gigabyte of nesting.  This module reads such input with stated limits:

- :func:`read_bytes` refuses anything but a regular file *before opening it* (so a FIFO cannot
  block) and reads at most ``limit`` bytes (so a device cannot exhaust memory);
- :func:`decode_text` decodes strict UTF-8 (a leading BOM is refused unless allowed);
- :func:`loads_json` parses JSON with duplicate keys refused, ``NaN``/``Infinity`` refused and
  nesting limited to a stated depth (checked before the parser recurses);
- :func:`loads_toml` parses TOML with nesting limited the same way (checked before the parser
  recurses, and again on the parsed tables, which dotted keys can nest without brackets);
- :func:`read_npy` and :func:`read_npz` read NumPy files without unpickling, with the archive's
  member count and every member's declared *and* actual uncompressed size capped (a small zip
  that unpacks to gigabytes is refused before it is unpacked);
- :func:`read_csv` reads a numeric CSV strictly: a typo is an error naming its line and column,
  never a header;
- :func:`short` and :func:`kind` (from :mod:`linncore._util.validate`, re-exported here) quote
  at most a few dozen characters of an offending value, so messages stay short whatever the
  input.

The typed values a file holds (``"false"`` is not a boolean, ``1.0`` is not an integer, a count
has a range) are checked by the one validator family, :mod:`linncore._util.validate`, with
``error`` set to the format's error type.

Each format raises its own error type, given by the caller as ``error``: a callable taking the
message (``error(message)``) and returning the exception to raise.  Messages name the file.
"""

from __future__ import annotations

import array
import io
import json
import math
import os
import re
import stat
import struct
import zipfile
from typing import Any

import numpy as np

from .validate import ErrorFactory, clip, kind, short

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "UntrustedInputError",
    "clip",
    "decode_text",
    "json_depth",
    "kind",
    "loads_json",
    "loads_npy",
    "loads_toml",
    "read_bytes",
    "read_csv",
    "read_json",
    "read_npy",
    "read_npz",
    "read_text",
    "read_toml",
    "short",
    "toml_depth",
    "zip_extent",
]

DEFAULT_MAX_DEPTH = 64


class UntrustedInputError(ValueError):
    """A file or value refused by the untrusted-input reader (the default error type)."""


def _label(path: Any) -> str:
    return short(os.fspath(path), 80).strip("'\"")


def read_bytes(
    path: Any, *, limit: int, what: str = "file", error: ErrorFactory = UntrustedInputError
) -> bytes:
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
        raise TypeError(
            f"path: expected a file path (str or os.PathLike), got {type(path).__name__}"
        ) from None
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
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
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


def decode_text(
    data: bytes, *, label: str, allow_bom: bool = False, error: ErrorFactory = UntrustedInputError
) -> str:
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


def loads_json(
    text: str,
    *,
    label: str,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_constants: bool = False,
    error: ErrorFactory = UntrustedInputError,
) -> Any:
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
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=None if allow_constants else _reject_constant,
        )
    except _Duplicate as exc:
        raise error(f"{label}: duplicate key {short(exc.args[0])}") from None
    except _Constant as exc:
        raise error(
            f"{label}: {exc.args[0]} is not a JSON number; expected finite numbers"
        ) from None
    except json.JSONDecodeError as exc:
        raise error(
            f"{label}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise error(f"{label}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal of too many digits
        raise error(f"{label}: unreadable JSON value ({short(str(exc), 80)})") from None


def read_json(
    path: Any,
    *,
    limit: int,
    what: str,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_constants: bool = False,
    error: ErrorFactory = UntrustedInputError,
) -> Any:
    """:func:`read_bytes`, :func:`decode_text` and :func:`loads_json` in one call."""
    data = read_bytes(path, limit=limit, what=what, error=error)
    label = _label(path)
    text = decode_text(data, label=label, error=error)
    return loads_json(
        text, label=label, max_depth=max_depth, allow_constants=allow_constants, error=error
    )


def read_text(
    path: Any,
    *,
    limit: int,
    what: str = "file",
    allow_bom: bool = False,
    error: ErrorFactory = UntrustedInputError,
) -> str:
    """:func:`read_bytes` then :func:`decode_text`: the strict UTF-8 text of a small regular file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes("é".encode())
    >>> read_text(p, limit=10)
    'é'
    """
    data = read_bytes(path, limit=limit, what=what, error=error)
    return decode_text(data, label=_label(path), allow_bom=allow_bom, error=error)


def _tree_depth(value: Any) -> int:
    """The nesting depth of parsed lists and dicts, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((v, depth + 1) for v in children)
    return deepest


# -- TOML ------------------------------------------------------------------------------------
def toml_depth(text: str) -> int:
    """The deepest nesting in TOML text: ``[`` and ``{`` outside strings and comments, plus the
    dots of the key being written (``a.b.c = 1`` nests three deep without a bracket).

    A table header ``[[a]]`` counts as two, which no real config comes near the limit with.
    Checked before parsing: the parser recurses on brackets and is slow on long dotted keys.

    Examples
    --------
    >>> toml_depth('a = [[1], "[[["]  # [[[[')
    2
    >>> toml_depth('x.y.z = 1.5')
    2
    """
    depth = deepest = dots = 0
    stack: list[str] = []
    in_key = True  # at the start of a line, after "{" or after "," in an inline table
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in "\"'":
            triple = text.startswith(ch * 3, i)
            quote = ch * 3 if triple else ch
            i += len(quote)
            while i < n:
                if ch == '"' and text[i] == "\\":
                    i += 2
                    continue
                if text.startswith(quote, i):
                    i += len(quote)
                    break
                if not triple and text[i] == "\n":  # an unterminated string: the parser says so
                    break
                i += 1
            continue
        if ch in "[{":
            depth += 1
            stack.append(ch)
            header = ch == "[" and len(stack) <= 2 and "{" not in stack and _at_line_start(text, i)
            in_key = ch == "{" or header
            dots = 0
        elif ch in "]}":
            depth -= 1
            if stack:
                stack.pop()
        elif ch == "=":
            in_key = False
            dots = 0
        elif ch == "\n" and not stack:
            in_key, dots = True, 0
        elif ch == "," and stack and stack[-1] == "{":
            in_key, dots = True, 0
        elif ch == "." and in_key:
            dots += 1
        deepest = max(deepest, depth + dots)
        i += 1
    return deepest


def _at_line_start(text: str, i: int) -> bool:
    """Whether only blanks or ``[`` precede position ``i`` on its line (a table header)."""
    j = i - 1
    while j >= 0 and text[j] in " \t[":
        j -= 1
    return j < 0 or text[j] == "\n"


def loads_toml(
    text: str,
    *,
    label: str,
    max_depth: int = DEFAULT_MAX_DEPTH,
    error: ErrorFactory = UntrustedInputError,
) -> dict:
    """Parse TOML text, with nesting (brackets, braces and dotted keys) limited to ``max_depth``.

    Examples
    --------
    >>> loads_toml("a = 1\\n[b]\\nc = true", label="f")
    {'a': 1, 'b': {'c': True}}
    >>> loads_toml("a = " + "[" * 100 + "]" * 100, label="f")
    Traceback (most recent call last):
    ...
    linncore._util.untrusted.UntrustedInputError: f: TOML nested 100 deep, more than the limit of 64
    """
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    depth = toml_depth(text)
    if depth > max_depth:
        raise error(f"{label}: TOML nested {depth} deep, more than the limit of {max_depth}")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{label}: not valid TOML ({short(str(exc), 120)})") from None
    except RecursionError:
        raise error(f"{label}: TOML nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of too many digits
        raise error(f"{label}: unreadable TOML value ({short(str(exc), 80)})") from None
    depth = _tree_depth(doc)
    if depth > max_depth:
        raise error(f"{label}: TOML tables nested {depth} deep, more than the limit of {max_depth}")
    return doc


def read_toml(
    path: Any,
    *,
    limit: int,
    what: str,
    max_depth: int = DEFAULT_MAX_DEPTH,
    error: ErrorFactory = UntrustedInputError,
) -> dict:
    """:func:`read_bytes`, :func:`decode_text` and :func:`loads_toml` in one call."""
    text = read_text(path, limit=limit, what=what, error=error)
    return loads_toml(text, label=_label(path), max_depth=max_depth, error=error)


# -- NumPy files -----------------------------------------------------------------------------
_NPY_KINDS = "biuf"


def loads_npy(
    data: bytes, *, label: str, kinds: str = _NPY_KINDS, error: ErrorFactory = UntrustedInputError
) -> np.ndarray:
    """The numeric array of ``.npy`` bytes; never unpickles, and the header's shape must
    account for exactly the bytes that follow it.

    Examples
    --------
    >>> import io
    >>> buf = io.BytesIO(); np.save(buf, np.arange(3)); loads_npy(buf.getvalue(), label="f")
    array([0, 1, 2])
    """
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        raise error(f"{label}: is a zip archive (a .npz?), expected a .npy file")
    fh = io.BytesIO(data)
    try:
        major, _ = np.lib.format.read_magic(fh)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown format version {major}")
    except Exception as exc:
        raise error(f"{label}: not a .npy file ({short(str(exc), 80)})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype:
        raise error(f"{label}: expected an array of numbers, got dtype {short(str(dtype))}")
    count = math.prod(int(s) for s in shape)
    offset = fh.tell()
    expected = count * dtype.itemsize
    if len(data) - offset != expected:
        raise error(
            f"{label}: the header promises {expected} bytes of data "
            f"(shape {short(shape)}), "
            f"the file holds {len(data) - offset}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def read_npy(
    path: Any, *, limit: int, what: str = "a .npy file", error: ErrorFactory = UntrustedInputError
) -> np.ndarray:
    """:func:`read_bytes` then :func:`loads_npy`."""
    return loads_npy(
        read_bytes(path, limit=limit, what=what, error=error), label=_label(path), error=error
    )


_DIRECTORY_ENTRY = 46 + 512 + 64  # a directory record, a member name, its zip64 extra field


def zip_extent(
    data: bytes,
    *,
    label: str,
    what: str = "a zip archive",
    error: ErrorFactory = UntrustedInputError,
) -> tuple[int, int]:
    """(members, directory bytes) that a zip archive's end record declares, read before
    :mod:`zipfile` builds one record per member (a directory of millions of members would
    exhaust memory before any per-member check ran).

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("a.npy", b"")
    >>> zip_extent(buf.getvalue(), label="f")
    (1, 51)
    """
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - (22 + 65535)))
    if at < 0 or len(data) - at < 22:
        raise error(f"{label}: not {what} (no zip end record)")
    members, size = struct.unpack_from("<HI", data, at + 10)
    locator = at - 20
    if (
        (members == 0xFFFF or size == 0xFFFFFFFF)
        and locator >= 0
        and data[locator : locator + 4] == b"PK\x06\x07"
    ):
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if record + 56 > len(data) or data[record : record + 4] != b"PK\x06\x06":
            raise error(f"{label}: not {what} (a bad zip64 end record)")
        members, size = struct.unpack_from("<QQ", data, record + 32)
    return int(members), int(size)


def read_npz(
    path: Any,
    *,
    limit: int,
    what: str = "a .npz file",
    max_members: int = 4096,
    member_limit: int | None = None,
    total_limit: int | None = None,
    kinds: str = _NPY_KINDS,
    error: ErrorFactory = UntrustedInputError,
) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` archive, by member name (without ``.npy``).

    The file is at most ``limit`` bytes; it holds at most ``max_members`` members, each of
    them ``.npy`` data (of dtype kinds ``kinds``: booleans, integers and floats by default) of
    at most ``member_limit`` bytes and all of them together at most
    ``total_limit`` bytes once uncompressed (both default to ``4 * limit``).  Sizes are checked
    as the archive declares them, before anything is unpacked, and again as they unpack, so
    an archive that lies about its sizes is refused too.  Nothing is unpickled.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez_compressed(p, x=np.arange(3))
    >>> read_npz(p, limit=10_000)["x"].tolist()
    [0, 1, 2]
    """
    data = read_bytes(path, limit=limit, what=what, error=error)
    label = _label(path)
    member_limit = 4 * limit if member_limit is None else member_limit
    total_limit = 4 * limit if total_limit is None else total_limit
    members, directory = zip_extent(data, label=label, what="a .npz archive", error=error)
    if members > max_members:
        raise error(f"{label}: {members} members, more than the limit of {max_members}")
    if directory > max_members * _DIRECTORY_ENTRY:
        raise error(
            f"{label}: a zip directory of {directory} bytes, more than {max_members} members need"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:
        raise error(f"{label}: not a .npz archive ({short(str(exc), 80)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise error(f"{label}: {len(infos)} members, more than the limit of {max_members}")
        total = 0
        names: set[str] = set()
        for info in infos:
            where = f"{label}: member {short(info.filename)}"
            if not info.filename.endswith(".npy"):
                raise error(f"{where}: expected a .npy member")
            if info.filename in names:
                raise error(f"{where}: appears twice in the archive")
            names.add(info.filename)
            if info.file_size > member_limit:
                raise error(
                    f"{where}: declares {info.file_size} bytes unpacked, more than the "
                    f"limit of {member_limit}"
                )
            total += info.file_size
        if total > total_limit:
            raise error(
                f"{label}: members declare {total} bytes unpacked, more than the limit of "
                f"{total_limit}"
            )
        out: dict[str, np.ndarray] = {}
        for info in infos:
            where = f"{label}: member {short(info.filename)}"
            try:
                with archive.open(info) as fh:
                    raw = fh.read(info.file_size + 1)  # one byte more: a lying header shows
            except Exception as exc:
                raise error(f"{where}: cannot be unpacked ({short(str(exc), 80)})") from None
            if len(raw) != info.file_size:
                raise error(
                    f"{where}: unpacks to a size other than the {info.file_size} bytes it declares"
                )
            out[info.filename[:-4]] = loads_npy(raw, label=where, kinds=kinds, error=error)
    return out


# -- CSV -------------------------------------------------------------------------------------
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LOOKS_NUMERIC = re.compile(r"[0-9+\-.]")


def read_csv(
    path: Any,
    *,
    limit: int,
    header: bool | None = None,
    what: str = "a CSV file",
    error: ErrorFactory = UntrustedInputError,
) -> tuple[np.ndarray, list[str] | None]:
    """A numeric CSV file (comma separated) as a 2-D float64 array, and its header.

    The first line is a header when ``header`` is True, or when ``header`` is None and none of
    its fields looks like a number (starts with a digit, a sign or a decimal point): a first
    row ``0.5x,1`` is a typo, not a header.  Every other field must be a finite decimal
    number; a bad one is reported by line and column.  Blank lines are skipped; a leading
    byte-order mark is allowed (spreadsheets write one).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("x,y\\n1,2\\n3,4.5\\n")
    >>> arr, names = read_csv(p, limit=1000)
    >>> arr.tolist(), names
    ([[1.0, 2.0], [3.0, 4.5]], ['x', 'y'])
    """
    label = _label(path)
    text = read_text(path, limit=limit, what=what, allow_bom=True, error=error)
    values = array.array("d")
    names: list[str] | None = None
    width = 0
    rows = 0
    first = True
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if first:
            first = False
            is_header = (
                header if header is not None else not any(_LOOKS_NUMERIC.match(c) for c in cells)
            )
            if is_header:
                for col, c in enumerate(cells, start=1):
                    if not c:
                        raise error(f"{label}: line {number}, column {col}: an empty column name")
                    if c in cells[: col - 1]:
                        raise error(
                            f"{label}: line {number}, column {col}: the column name "
                            f"{short(c)} appears twice"
                        )
                names = cells
                width = len(cells)
                continue
        if not width:
            width = len(cells)
        if len(cells) != width:
            raise error(f"{label}: line {number}: expected {width} columns, got {len(cells)}")
        for col, c in enumerate(cells, start=1):
            if not _NUMBER.fullmatch(c):
                raise error(
                    f"{label}: line {number}, column {col}: expected a number, got {short(c)}"
                )
            v = float(c)
            if not math.isfinite(v):
                raise error(
                    f"{label}: line {number}, column {col}: expected a finite number, "
                    f"got {short(c)}"
                )
            values.append(v)
        rows += 1
    if not rows:
        raise error(f"{label}: no data rows")
    return np.frombuffer(values, dtype=np.float64).reshape(rows, width).copy(), names
