"""Reading NumPy ``.npy`` arrays and ``.npz`` archives from files that cannot be trusted.

Shared by the matrix loader and the recording reader: headers (shape, dtype) are read
before any data, object arrays are refused without being unpickled, a header that claims
more data than the file holds is refused before numpy allocates it, and a file that is not
a regular file (a named pipe would block forever) is refused before it is opened.
"""

from __future__ import annotations

import functools
import io
import math
import os
import stat
import zipfile
from collections.abc import Callable
from typing import IO

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10_000
"""numpy's own limit on a ``.npy`` header (``max_header_size``), checked before the header is read."""
_LENGTH_FIELD_BYTES = {(1, 0): 2, (2, 0): 4}
"""Bytes of the header-length field of each ``.npy`` format version read here."""
# Local-file header, or end-of-central-directory for an empty archive.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def check_regular_file(path: str | os.PathLike) -> None:
    """Raise ``ValueError`` unless ``path`` is a regular file (symlinks followed)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a pipe, socket or device"
        raise ValueError(f"not a regular file ({kind})")


def leading_bytes(path: str | os.PathLike, count: int) -> bytes:
    """The first ``count`` bytes of a regular file; ``ValueError`` if it is empty."""
    check_regular_file(path)
    with open(path, "rb") as stream:
        magic = stream.read(count)
    if not magic:
        raise ValueError("the file is empty")
    return magic


def npz_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The arrays of an ``.npz`` archive by name; ``ValueError`` if it holds none."""
    members = {info.filename[: -len(".npy")]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    if not members:
        raise ValueError("the archive is empty" if not archive.infolist() else "the archive holds no NumPy arrays")
    return members


def read_header(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, leaving ``stream`` at the start of the data."""
    shape, _, dtype = _read_full_header(stream)
    return shape, dtype


def _read_full_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from a ``.npy`` header, leaving ``stream`` at the start of the data."""
    prefix = stream.read(len(NPY_MAGIC) + 2)
    version = np.lib.format.read_magic(io.BytesIO(prefix))  # numpy's own messages for a wrong magic
    if version not in _LENGTH_FIELD_BYTES:
        raise ValueError(f"unsupported .npy format version {version}")
    length_field = stream.read(_LENGTH_FIELD_BYTES[version])
    length = int.from_bytes(length_field, "little")
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"the array's header claims {length} bytes (at most {MAX_HEADER_BYTES} are read)")
    header = stream.read(length)
    return _parse_header(prefix + length_field + header)


@functools.lru_cache(maxsize=64)
def _parse_header(raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """numpy's parse of a whole ``.npy`` header, kept: the files of a folder repeat a few headers,
    and each parse (a ``literal_eval``) cost about as much as reading a small array."""
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def _read_data(stream: IO[bytes], shape: tuple[int, ...], fortran_order: bool, dtype: np.dtype) -> np.ndarray:
    """The array's data from ``stream`` (at its first byte), read straight into a new array."""
    flat = np.empty(math.prod(shape), dtype=dtype)
    target = flat.view(np.uint8).data
    filled = 0
    while filled < len(target):
        count = stream.readinto(target[filled:])  # type: ignore[attr-defined]
        if not count:
            raise ValueError(f"the data ends after {filled} of {len(target)} bytes")
        filled += count
    return flat.reshape(shape[::-1]).transpose() if fortran_order else flat.reshape(shape)


def read_array(
    open_stream: Callable[[], IO[bytes]],
    size: int,
    what: str,
    check: Callable[[tuple[int, ...], np.dtype], None] | None = None,
) -> np.ndarray:
    """Read a ``.npy`` array of ``size`` bytes in all, its header checked before its data.

    Parameters
    ----------
    open_stream : callable
        Opens the array from its first byte; the header is checked before any data is read.
    size : int
        Bytes available to the array (file or archive member size).
    what : str
        How messages name the array.
    check : callable, optional
        ``check(shape, dtype)`` raises ``ValueError`` for an array the caller cannot use,
        before its data is read.

    Raises
    ------
    ValueError
        An object array, a header claiming more data than there is, or what ``check`` refuses.
    """
    with open_stream() as stream:
        shape, fortran_order, dtype = _read_full_header(stream)
        header_size = stream.tell()
        if dtype.hasobject:
            raise ValueError(f"{what} is an object array, refused because loading it would unpickle")
        if check is not None:
            check(shape, dtype)
        needed = math.prod(shape) * dtype.itemsize
        if header_size + needed > size:
            raise ValueError(f"{what} is truncated: {size - header_size} of its {needed} data bytes are there")
        return _read_data(stream, shape, fortran_order, dtype)


def read_member(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    what: str,
    check: Callable[[tuple[int, ...], np.dtype], None] | None = None,
) -> np.ndarray:
    """:func:`read_array` for one member of an ``.npz`` archive."""
    return read_array(lambda: archive.open(member), member.file_size, what, check)


def read_text_member(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], key: str, max_characters: int
) -> str | None:
    """A text scalar of an ``.npz`` archive (a name, a unit) of at most ``max_characters``; None where absent."""

    def check(shape: tuple[int, ...], dtype: np.dtype) -> None:
        if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * max_characters:
            raise ValueError(f"{key!r} must be a short text scalar, got {dtype} {shape}")

    return str(read_member(archive, members[key], f"array {key!r}", check)) if key in members else None


def failure_reason(error: Exception, kind: str) -> str:
    """The message for a ``kind`` file (``.npz``, ``.csv``...) whose reading raised ``error``."""
    if isinstance(error, OSError):
        return f"cannot be read: {error.strerror or str(error) or type(error).__name__}"
    if isinstance(error, zipfile.BadZipFile):
        return f"damaged {kind} (zip) archive: {error}"
    if isinstance(error, ValueError):
        return str(error)
    # A damaged file can fail inside zlib, struct or numpy's header parser.
    return f"damaged {kind} file ({type(error).__name__}: {error})"
