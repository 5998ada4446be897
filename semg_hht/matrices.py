"""Reading and validating HHT matrix files, one at a time or as a stream of batches.

A matrix file is a NumPy ``.npz`` archive holding a (256, 256) Hilbert spectrum
under the key ``hht``. Files written by the upstream preprocessing tool name it
``spectrum`` (float64, with 1-D ``time``/``frequency`` arrays and scalars beside
it); an archive holding exactly one 2-D array is accepted too. Archives are
always opened with ``allow_pickle=False``, so no file can run code.
"""

from __future__ import annotations

import os
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
        super().__init__(f"{self.path}: {reason}")


def _pick_array(archive: np.lib.npyio.NpzFile) -> np.ndarray:
    for key in MATRIX_KEYS:
        if key in archive.files:
            return archive[key]
    if not archive.files:
        raise ValueError("the archive is empty")
    two_d = []
    for key in archive.files:
        array = archive[key]
        if array.ndim == 2:
            two_d.append(array)
    if len(two_d) != 1:
        raise ValueError(
            f"no array named 'hht' or 'spectrum' and {len(two_d)} 2-D arrays (keys: {', '.join(archive.files)})"
        )
    return two_d[0]


def validate_matrix(array: np.ndarray) -> np.ndarray:
    """Check one matrix and return it as C-contiguous float32.

    Parameters
    ----------
    array : ndarray of shape (256, 256)
        Any real numeric dtype (integers and floats); bool, complex, string and
        object arrays are refused.

    Raises
    ------
    ValueError
        Wrong shape or dtype, or values that are not finite in float32.
    """
    if array.dtype.kind not in "iuf":
        raise ValueError(f"dtype {array.dtype} is not a real number type")
    if array.shape != MATRIX_SHAPE:
        raise ValueError(f"shape {array.shape}, expected {MATRIX_SHAPE}")
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(matrix).all():
        bad = int((~np.isfinite(matrix)).sum())
        raise ValueError(f"{bad} values are NaN or infinite (in float32)")
    return matrix


def load_matrix(path: str | os.PathLike) -> np.ndarray:
    """Load the HHT matrix of one ``.npz`` file.

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
        with open(path, "rb") as stream:
            magic = stream.read(4)
        if magic not in _ZIP_MAGICS:
            what = "empty" if not magic else "not an .npz (zip) archive"
            raise MatrixFileError(path, f"the file is {what}")
        with np.load(path, allow_pickle=False) as archive:
            return validate_matrix(_pick_array(archive))
    except ValueError as error:
        if isinstance(error, MatrixFileError):
            raise
        message = str(error)
        if "allow_pickle" in message:
            message = "holds an object array, refused because loading it would unpickle"
        raise MatrixFileError(path, message) from None
    except zipfile.BadZipFile as error:
        raise MatrixFileError(path, f"damaged .npz (zip) archive: {error}") from None
    except (OSError, EOFError, KeyError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise MatrixFileError(path, f"cannot be read: {reason or type(error).__name__}") from None


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
