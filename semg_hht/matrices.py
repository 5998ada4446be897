"""Reading and validating HHT matrix files, one at a time or as a stream of batches.

A matrix file is a NumPy ``.npz`` archive holding a (256, 256) Hilbert spectrum
under the key ``hht``. Files written by the upstream preprocessing tool name it
``spectrum`` (float64, with 1-D ``time``/``frequency`` arrays and scalars beside
it); an archive holding exactly one 2-D array is accepted too. Archives are
always opened with ``allow_pickle=False``, so no file can run code.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MATRIX_SHAPE = (256, 256)
MATRIX_KEYS = ("hht", "spectrum")
# Local-file header, or end-of-central-directory for an empty archive.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


class MatrixFileError(ValueError):
    """A matrix file that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable_path(path)}: {reason}")


def printable_path(path: str | os.PathLike) -> str:
    """A path as printable text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def display_name(path: str | os.PathLike) -> str:
    """A file's name (no folder) as printable text, see :func:`printable_path`."""
    return printable_path(Path(path).name)


def _check_shape_and_dtype(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise ValueError("holds an object array, refused because loading it would unpickle")
    if dtype.kind not in "iuf":
        raise ValueError(f"dtype {dtype} is not a real number type")
    if tuple(n for n in shape if n != 1) != MATRIX_SHAPE or len(shape) > 3:
        raise ValueError(f"shape {shape}, expected {MATRIX_SHAPE}")


def validate_matrix(array: np.ndarray) -> np.ndarray:
    """Check one matrix and return it as C-contiguous float32 of shape (256, 256).

    Parameters
    ----------
    array : ndarray of shape (256, 256), (1, 256, 256) or (256, 256, 1)
        Any real numeric dtype (integers and floats); bool, complex, string and
        object arrays are refused. A singleton channel axis is squeezed.

    Raises
    ------
    ValueError
        Wrong shape or dtype, values that are not finite in float32, or a
        constant matrix (no spectrum to classify).
    """
    _check_shape_and_dtype(array.shape, array.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = np.ascontiguousarray(array.reshape(MATRIX_SHAPE), dtype=np.float32)
    finite = np.isfinite(matrix)
    if not finite.all():
        raise ValueError(f"{int((~finite).sum())} values are NaN or infinite (in float32)")
    if matrix.min() == matrix.max():
        raise ValueError(
            f"the matrix is constant (every value is {matrix.flat[0]:g}): there is no spectrum to classify"
        )
    return matrix


def _read_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version} in member {member.filename}")
    return shape, dtype


def _choose_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The member holding the matrix, chosen from array headers alone (no data is read)."""
    members = {info.filename[: -len(".npy")]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    if not members:
        raise ValueError("the archive is empty" if not archive.infolist() else "the archive holds no NumPy arrays")
    for key in MATRIX_KEYS:
        if key in members:
            return members[key]
    two_d = [info for info in members.values() if len(_read_header(archive, info)[0]) == 2]
    if len(two_d) != 1:
        raise ValueError(f"no array named 'hht' or 'spectrum' and {len(two_d)} 2-D arrays (keys: {', '.join(members)})")
    return two_d[0]


def load_matrix(path: str | os.PathLike) -> np.ndarray:
    """Load the HHT matrix of one ``.npz`` file.

    The array's header (shape, dtype) is checked before any data is read, so a
    huge, object or mislabelled array is refused without being loaded; nothing
    is ever unpickled.

    Returns
    -------
    ndarray of shape (256, 256), float32

    Raises
    ------
    MatrixFileError
        The file cannot be read or holds no valid matrix; the message names the
        file and the reason.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            # Opening a named pipe would block the run forever; a directory cannot be read.
            kind = "a directory" if stat.S_ISDIR(mode) else "a pipe, socket or device"
            raise ValueError(f"not a regular file ({kind})")
        with open(path, "rb") as stream:
            magic = stream.read(4)
        if magic not in _ZIP_MAGICS:
            raise ValueError("the file is empty" if not magic else "the file is not an .npz (zip) archive")
        with zipfile.ZipFile(path) as archive:
            member = _choose_member(archive)
            shape, dtype = _read_header(archive, member)
            _check_shape_and_dtype(shape, dtype)
            with archive.open(member) as stream:
                array = np.lib.format.read_array(stream, allow_pickle=False)
        return validate_matrix(array)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise MatrixFileError(path, f"cannot be read: {reason}") from None
    except zipfile.BadZipFile as error:
        raise MatrixFileError(path, f"damaged .npz (zip) archive: {error}") from None
    except ValueError as error:
        raise MatrixFileError(path, str(error)) from None
    except Exception as error:  # a damaged archive can fail inside zlib, struct or numpy's header parser
        raise MatrixFileError(path, f"damaged .npz archive ({type(error).__name__}: {error})") from None


def list_npz_files(directory: str | os.PathLike) -> list[Path]:
    """All ``.npz`` files (extension in any case) directly in a folder, sorted by name."""
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries if entry.name.lower().endswith(".npz")]
    return [Path(directory) / name for name in sorted(names)]


@dataclass
class MatrixBatch:
    """A batch of successfully loaded matrices and the files of the batch that failed.

    ``matrices`` has shape (len(paths), 256, 256), float32, row i from ``paths[i]``;
    ``errors`` holds ``MatrixFileError`` for the files that could not be used.
    """

    paths: list[Path]
    matrices: np.ndarray
    errors: list[MatrixFileError] = field(default_factory=list)


def _load_batch(paths: Sequence[Path]) -> MatrixBatch:
    good: list[Path] = []
    errors: list[MatrixFileError] = []
    matrices = np.empty((len(paths), *MATRIX_SHAPE), dtype=np.float32)
    for path in paths:
        try:
            matrices[len(good)] = load_matrix(path)
        except MatrixFileError as error:
            errors.append(error)
            continue
        good.append(path)
    return MatrixBatch(good, matrices[: len(good)], errors)


def iter_matrix_batches(
    paths: Sequence[str | os.PathLike], batch_size: int, prefetch: int = 2
) -> Iterator[MatrixBatch]:
    """Stream the matrices of ``paths`` in batches, reading ahead on a background thread.

    Only ``prefetch`` batches are in memory at once, so memory does not grow
    with the number of files. Order follows ``paths``; unreadable files are
    reported in each batch's ``errors`` rather than raised.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    chunks = [[Path(p) for p in paths[start : start + batch_size]] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = [reader.submit(_load_batch, chunk) for chunk in chunks[:prefetch]]
        for next_index in range(prefetch, len(chunks) + prefetch):
            batch = pending.pop(0).result()
            if next_index < len(chunks):
                pending.append(reader.submit(_load_batch, chunks[next_index]))
            yield batch
