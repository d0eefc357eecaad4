"""The containers of Keras files, read as untrusted input: the ``.keras`` zip archive and HDF5.

The zip's end record is checked before :mod:`zipfile` builds a record per member (at most
:data:`MAX_MEMBERS` members in a directory of at most :data:`MAX_DIRECTORY_BYTES`); only the
exact member names Keras writes are read, each in bounded chunks against its declared size
and :data:`MEMBER_LIMITS`.  HDF5 is read by ``h5py`` from memory through :class:`H5Reader`:
plain (hard) links only, one name at a time; no external links, external storage or virtual
datasets; a dataset's shape and type are checked before any value is read.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._util import untrusted

__all__ = [
    "EMPTY_ZIP_MAGIC",
    "HDF5_MAGIC",
    "MAX_DIRECTORY_BYTES",
    "MAX_FILE_BYTES",
    "MAX_MEMBERS",
    "MAX_WEIGHT_VALUES",
    "MEMBER_LIMITS",
    "ZIP_MAGIC",
    "H5Reader",
    "KerasFileError",
    "parse_json",
    "read_archive",
    "require_h5py",
]

#: Largest Keras file read (bytes).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Most members a ``.keras`` archive may list (Keras writes three, plus any assets).
MAX_MEMBERS = 1024
#: Largest central directory of a ``.keras`` archive (bytes).
MAX_DIRECTORY_BYTES = 1024 * 1024
#: Largest uncompressed size of each member read (bytes).
MEMBER_LIMITS = {
    "config.json": 16 * 1024 * 1024,
    "metadata.json": 1024 * 1024,
    "model.weights.h5": MAX_FILE_BYTES,
}
#: Most values one weight array may hold.
MAX_WEIGHT_VALUES = 1 << 26

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class KerasFileError(ValueError):
    """A Keras file refused: unreadable, hostile, or holding something linncore cannot run."""


def require_h5py() -> Any:
    """The h5py module, or ImportError saying how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(
            'reading and writing Keras files needs h5py: pip install "linncore[keras]" '
            "(or pip install h5py)"
        ) from None
    return h5py


# -- the archive ----------------------------------------------------------------------------
def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    limit = MEMBER_LIMITS[info.filename]
    where = f"{label}: member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise KerasFileError(f"{where} is encrypted")
    if info.file_size > limit:
        raise KerasFileError(
            f"{where} declares {info.file_size} bytes uncompressed, more than the limit of {limit}"
        )
    expected = info.file_size
    chunks, total = [], 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(min(1 << 20, expected + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > expected:
                    raise KerasFileError(f"{where} inflates past its declared {expected} bytes")
    except KerasFileError:
        raise
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        OSError,
        EOFError,
        ValueError,
        RuntimeError,
    ) as exc:
        raise KerasFileError(f"{where} cannot be read ({untrusted.short(str(exc), 80)})") from None
    return b"".join(chunks)


def read_archive(raw: bytes, label: str) -> tuple[bytes, bytes]:
    """The bytes of ``config.json`` and ``model.weights.h5`` (``metadata.json`` is checked)."""
    members, size = untrusted.zip_extent(
        raw, label=label, what="a readable .keras archive", error=KerasFileError
    )
    if members > MAX_MEMBERS:
        raise KerasFileError(
            f"{label}: the archive lists {members} members, more than the limit of {MAX_MEMBERS}"
        )
    if size > MAX_DIRECTORY_BYTES:
        raise KerasFileError(
            f"{label}: the archive's directory is {size} bytes, more than the limit of "
            f"{MAX_DIRECTORY_BYTES}"
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        struct.error,
    ) as exc:
        raise KerasFileError(
            f"{label}: not a readable .keras archive ({untrusted.short(str(exc), 80)})"
        ) from None
    if len(infos) > MAX_MEMBERS:
        raise KerasFileError(
            f"{label}: the archive lists {len(infos)} members, more than the limit of {MAX_MEMBERS}"
        )
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in MEMBER_LIMITS:
            if info.filename in found:
                raise KerasFileError(f"{label}: the archive holds {info.filename!r} twice")
            found[info.filename] = info
    names = {info.filename for info in infos}
    for name in ("config.json", "model.weights.h5"):
        if name not in found:
            extra = ""
            if name == "model.weights.h5" and ({"model.weights.npz", "model.weights.json"} & names):
                extra = " (weights stored as .npz or in shards are not supported)"
            raise KerasFileError(
                f"{label}: the archive has no {name!r}; a .keras file holds config.json, "
                f"metadata.json and model.weights.h5{extra}"
            )
    config = _read_member(zf, found["config.json"], label)
    if "metadata.json" in found:
        meta = parse_json(
            _read_member(zf, found["metadata.json"], label), f"{label}: metadata.json"
        )
        if not isinstance(meta, dict):
            raise KerasFileError(
                f"{label}: metadata.json: expected a JSON object, got {type(meta).__name__}"
            )
    return config, _read_member(zf, found["model.weights.h5"], label)


def parse_json(data: bytes | str, label: str) -> Any:
    text = (
        data
        if isinstance(data, str)
        else untrusted.decode_text(data, label=label, error=KerasFileError)
    )
    return untrusted.loads_json(text, label=label, error=KerasFileError)


# -- HDF5 -----------------------------------------------------------------------------------
class H5Reader:
    """Reads an in-memory HDF5 file through plain links only, shapes checked first."""

    def __init__(self, data: bytes, label: str) -> None:
        self.h5py = require_h5py()
        self.label = label
        try:
            self.file = self.h5py.File(io.BytesIO(data), "r")
        except Exception as exc:  # h5py raises OSError for most damage, others for some
            raise KerasFileError(
                f"{label}: not a readable HDF5 file ({untrusted.short(str(exc), 80)})"
            ) from None

    def child(self, group: Any, name: str, where: str, *, required: bool = True) -> Any:
        """``group[name]`` for one path component reached through a hard link."""
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise KerasFileError(
                f"{self.label}: {where}: {untrusted.short(name)} is not a plain name"
            )
        try:
            link = group.get(name, getlink=True)
            if link is None:
                if required:
                    raise KerasFileError(f"{self.label}: {where} is missing")
                return None
            if not isinstance(link, self.h5py.HardLink):
                kind = {"SoftLink": "a soft link", "ExternalLink": "an external link"}.get(
                    type(link).__name__, "not a plain link"
                )
                raise KerasFileError(
                    f"{self.label}: {where} is {kind}; only plain groups and datasets are read "
                    "(no soft or external links)"
                )
            return group[name]
        except KerasFileError:
            raise
        except Exception as exc:
            raise KerasFileError(
                f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})"
            ) from None

    def path(self, group: Any, parts: Sequence[str], where: str, *, required: bool = True) -> Any:
        for part in parts:
            group = self.child(group, part, where, required=required)
            if group is None:
                return None
        return group

    def array(self, node: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
        """The values of a float dataset of ``shape`` (None: any 1-D/2-D shape in the limit)."""
        h5py = self.h5py
        if not isinstance(node, h5py.Dataset):
            raise KerasFileError(f"{self.label}: {where}: expected a dataset, got a group")
        try:
            if node.is_virtual:
                raise KerasFileError(
                    f"{self.label}: {where} is a virtual dataset; its values live in other files"
                )
            if node.external:
                raise KerasFileError(f"{self.label}: {where} keeps its values in external files")
            dt, got = node.dtype, node.shape
        except KerasFileError:
            raise
        except Exception as exc:
            raise KerasFileError(
                f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})"
            ) from None
        if (
            dt.kind != "f"
            or dt.itemsize not in (4, 8)
            or dt.names is not None
            or dt.subdtype is not None
        ):
            raise KerasFileError(
                f"{self.label}: {where}: expected float32 or float64 values, got {dt}"
            )
        if (
            got is None
            or (shape is not None and tuple(got) != shape)
            or (shape is None and len(got) not in (1, 2))
        ):
            expected = "a 1-D or 2-D array" if shape is None else f"shape {shape}"
            raise KerasFileError(f"{self.label}: {where}: expected {expected}, got shape {got}")
        if int(np.prod(got, dtype=object)) > MAX_WEIGHT_VALUES:
            raise KerasFileError(
                f"{self.label}: {where}: shape {got} holds more than the limit of "
                f"{MAX_WEIGHT_VALUES} values"
            )
        out = np.empty(got, dtype=dt.newbyteorder("="))
        try:
            if out.size:
                node.read_direct(out)
        except Exception as exc:
            raise KerasFileError(
                f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})"
            ) from None
        return out

    def attribute(self, node: Any, name: str, where: str, *, max_items: int) -> Any:
        """A string (scalar) or a short list of strings stored as an attribute, or None."""
        h5py = self.h5py
        try:
            if name not in node.attrs:
                return None
            aid = h5py.h5a.open(node.id, name.encode())
            shape, dt = aid.shape, aid.dtype
        except Exception as exc:
            raise KerasFileError(
                f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})"
            ) from None
        if (
            shape is None
            or len(shape) > 1
            or (len(shape) == 1 and shape[0] > max_items)
            or (max_items == 0 and shape != ())
        ):
            expected = "one string" if max_items == 0 else f"at most {max_items} strings"
            raise KerasFileError(f"{self.label}: {where}: expected {expected}, got shape {shape}")
        if dt.kind not in ("S", "U", "O") or (
            dt.kind == "O" and h5py.check_string_dtype(dt) is None
        ):
            raise KerasFileError(f"{self.label}: {where}: expected text, got {dt}")
        try:
            value = node.attrs[name]
        except Exception as exc:
            raise KerasFileError(
                f"{self.label}: {where} cannot be read ({untrusted.short(str(exc), 80)})"
            ) from None

        def text(v: Any) -> str:
            if isinstance(v, bytes):
                return untrusted.decode_text(
                    v, label=f"{self.label}: {where}", error=KerasFileError
                )
            return str(v)

        if isinstance(value, np.ndarray) and value.ndim == 1:
            return [text(v) for v in value]
        return text(value.item() if isinstance(value, np.ndarray) else value)

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:
            pass
