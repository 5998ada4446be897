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
from typing import IO

import numpy as np

from semg_hht.defaults import DEFAULT_N_FREQ, DEFAULT_N_TIME
from semg_hht.hht.axes import is_frequency_axis
from semg_hht.io.atomic import atomic_open
from semg_hht.io.npyfile import (
    ZIP_MAGICS,
    check_regular_file,
    failure_reason,
    npz_members,
    read_header,
    read_member,
    read_text_member,
)
from semg_hht.memory import keep_freed_memory

MATRIX_SHAPE = (DEFAULT_N_FREQ, DEFAULT_N_TIME)
MATRIX_KEYS = ("hht", "spectrum")
TIME_DOMAIN_KEY = "td_features"
DURATION_KEY = "duration_s"
RECORDING_KEY = "recording"
MAX_STORED_FEATURES = 1024
MAX_CHANNEL_NAME = 256


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
    return printable_path(os.path.basename(path))


def _check_shape_and_dtype(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iuf":
        raise ValueError(f"dtype {dtype} is not a real number type")
    channel_axis = len(shape) == 3 and 1 in (shape[0], shape[-1])
    if shape != MATRIX_SHAPE and not (channel_axis and tuple(n for n in shape if n != 1) == MATRIX_SHAPE):
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
    low, high = matrix.min(), matrix.max()  # NaN propagates into both, an infinity into one
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{int((~np.isfinite(matrix)).sum())} values are NaN or infinite (in float32)")
    if low == high:
        raise ValueError(
            f"the matrix is constant (every value is {matrix.flat[0]:g}): there is no spectrum to classify"
        )
    return matrix


def _choose_member(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> tuple[str, zipfile.ZipInfo]:
    """The member of ``members`` holding the matrix, chosen from array headers alone (no data is read)."""
    for key in MATRIX_KEYS:
        if key in members:
            return key, members[key]

    def dimensions(member: zipfile.ZipInfo) -> int:
        with archive.open(member) as stream:
            return len(read_header(stream)[0])

    two_d = [(key, member) for key, member in members.items() if dimensions(member) == 2]
    if len(two_d) != 1:
        raise ValueError(f"no array named 'hht' or 'spectrum' and {len(two_d)} 2-D arrays (keys: {', '.join(members)})")
    return two_d[0]


@dataclass(frozen=True)
class MatrixRecord:
    """What a matrix file gives the classifier: the matrix, and what may be stored beside it.

    ``channel`` is the recording channel's name (``channel`` array, written by newer
    compute_hht.py runs), ``recording`` the stem of the recording it comes from (``recording``),
    ``time_domain`` the segment's time-domain features (of the preprocessed signal)
    (``td_features``, :func:`semg_hht.hht.time_domain.segment_features`; Hudgins' 4 alone in files of
    release 0.3 and earlier), ``frequency`` the Hz of
    each matrix row (``frequency``, shape (256,)); None where absent.
    """

    matrix: np.ndarray
    channel: str | None = None
    time_domain: np.ndarray | None = None
    recording: str | None = None
    frequency: np.ndarray | None = None


@dataclass(frozen=True)
class MatrixProvenance:
    """Where a matrix comes from, stored beside it by compute_hht.py: texts ``recording``, ``unit``, ``preprocessing``.

    ``recording`` is the input recording's stem (the matrices of one recording's windows and
    channels share it), ``unit`` the unit of the signal transformed, ``preprocessing`` a JSON
    record of :meth:`semg_hht.hht.preprocessing.Preprocessing.describe`.
    """

    recording: str
    unit: str | None
    preprocessing: str


def _check_time_domain(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iuf" or len(shape) != 1 or not 0 < shape[0] <= MAX_STORED_FEATURES:
        raise ValueError(f"'td_features' must be a short 1-D real array, got {dtype} {shape}")


def load_matrix_file(path: str | os.PathLike) -> MatrixRecord:
    """Load the HHT matrix of one ``.npz`` file, with its channel name and time-domain features if stored.

    Every array's header (shape, dtype) is checked before its data is read, so a
    huge, object or mislabelled array is refused without being loaded; nothing
    is ever unpickled.

    Raises
    ------
    MatrixFileError
        The file cannot be read or holds no valid matrix (or an invalid
        ``channel``/``td_features`` array); the message names the file and the reason.
    """
    try:
        check_regular_file(path)
        # One open for the magic and the archive: a folder's files are read at the speed of np.load.
        with open(path, "rb") as stream, _archive(stream) as archive:
            members = npz_members(archive)
            key, member = _choose_member(archive, members)
            array = read_member(archive, member, f"array {key!r}", _check_shape_and_dtype)
            channel = read_text_member(archive, members, "channel", MAX_CHANNEL_NAME)
            recording = read_text_member(archive, members, RECORDING_KEY, MAX_CHANNEL_NAME)
            time_domain = None
            if TIME_DOMAIN_KEY in members:
                stored = read_member(
                    archive, members[TIME_DOMAIN_KEY], f"array {TIME_DOMAIN_KEY!r}", _check_time_domain
                )
                time_domain = stored.astype(np.float64)
                if not np.isfinite(time_domain).all():
                    raise ValueError(f"'{TIME_DOMAIN_KEY}' has values that are NaN or infinite")
            frequency = None
            if "frequency" in members:
                frequency = read_member(archive, members["frequency"], "array 'frequency'", _check_axis)
                frequency = frequency.astype(np.float64)
                if frequency.shape != (MATRIX_SHAPE[0],) or not is_frequency_axis(frequency):
                    raise ValueError("'frequency' must hold 256 finite, increasing Hz, one per row")
        return MatrixRecord(validate_matrix(array), channel, time_domain, recording or None, frequency)
    except Exception as error:
        raise MatrixFileError(path, failure_reason(error, ".npz")) from None


def _archive(stream: IO[bytes]) -> zipfile.ZipFile:
    """The zip archive of an open ``.npz`` file; ``ValueError`` naming why for an empty or other file."""
    magic = stream.read(4)
    if not magic:
        raise ValueError("the file is empty")
    if magic not in ZIP_MAGICS:
        raise ValueError("the file is not an .npz (zip) archive")
    stream.seek(0)
    return zipfile.ZipFile(stream)


@dataclass(frozen=True)
class MatrixAxes:
    """A matrix file's axes for pictures: each row's frequency (Hz), the segment's length (s); None if not stored."""

    frequency: np.ndarray | None
    duration_s: float | None


def _check_axis(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iuf" or shape not in ((MATRIX_SHAPE[0],), ()):
        raise ValueError(f"an axis array must be real, of shape ({MATRIX_SHAPE[0]},) or a scalar, got {dtype} {shape}")


def read_matrix_axes(path: str | os.PathLike) -> MatrixAxes:
    """The stored ``frequency`` axis (256 finite values) and ``duration_s`` of a matrix file.

    What is absent or unusable (older files store no duration) is None: pictures then
    number the rows and show time as a fraction of the segment.
    """
    found: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = npz_members(archive)
            for key in ("frequency", DURATION_KEY):
                if key in members:
                    found[key] = read_member(archive, members[key], f"array {key!r}", _check_axis).astype(np.float64)
    except Exception:  # the matrix itself was read already; a damaged axis only costs the labels
        return MatrixAxes(None, None)
    frequency, duration = found.get("frequency"), found.get(DURATION_KEY)
    usable_frequency = frequency is not None and frequency.shape == (MATRIX_SHAPE[0],) and np.isfinite(frequency).all()
    usable_duration = duration is not None and duration.shape == () and np.isfinite(duration) and duration > 0
    seconds = float(duration) if duration is not None and usable_duration else None
    return MatrixAxes(frequency if usable_frequency else None, seconds)


def load_matrix(path: str | os.PathLike) -> np.ndarray:
    """Load the HHT matrix of one ``.npz`` file: shape (256, 256), float32 (see :func:`load_matrix_file`)."""
    return load_matrix_file(path).matrix


def _optional_arrays(
    channel: str | None,
    time_domain: np.ndarray | None,
    duration_s: float | None,
    provenance: MatrixProvenance | None,
) -> dict[str, np.ndarray]:
    """The arrays a matrix file stores beside the upstream tool's, by key, for those that are given."""
    extras: dict[str, np.ndarray] = {}
    if channel is not None:
        extras["channel"] = np.array(channel)
    if time_domain is not None:
        extras[TIME_DOMAIN_KEY] = np.asarray(time_domain, dtype=np.float64)
    if duration_s is not None:
        extras[DURATION_KEY] = np.float64(duration_s)
    if provenance is not None:
        extras[RECORDING_KEY] = np.array(provenance.recording)
        extras["unit"] = np.array(provenance.unit or "")
        extras["preprocessing"] = np.array(provenance.preprocessing)
    return extras


def write_matrix_file(
    path: str | os.PathLike,
    matrix: np.ndarray,
    fs: float,
    frequency: np.ndarray,
    segment_index: int = 0,
    segment_start_s: float = 0.0,
    channel: str | None = None,
    time_domain: np.ndarray | None = None,
    duration_s: float | None = None,
    provenance: MatrixProvenance | None = None,
) -> None:
    """Write one matrix file atomically, with the arrays the upstream tool writes beside it.

    Parameters
    ----------
    matrix : ndarray of shape (n_freq, n_time)
        Stored as ``hht``.
    fs : float
        Sampling rate of the source recording, Hz (``sampling_rate``).
    frequency : ndarray of shape (n_freq,)
        Frequency of each row, Hz (``frequency``).
    segment_index, segment_start_s
        Which segment of the recording this is, and where it starts (s).
    channel : str, optional
        The recording channel's name (``channel``).
    time_domain : ndarray of shape (n_features,), optional
        The segment's time-domain features (``td_features``).
    duration_s : float, optional
        The segment's length in seconds (``duration_s``), for pictures' time axes.
    provenance : MatrixProvenance, optional
        The recording, unit and preprocessing (``recording``, ``unit``, ``preprocessing``).

    ``time`` is the normalised time axis, 0..1 over the columns.
    """
    extras = _optional_arrays(channel, time_domain, duration_s, provenance)
    with atomic_open(path) as stream:
        np.savez(
            stream,
            hht=matrix,
            time=np.linspace(0.0, 1.0, matrix.shape[1]),
            frequency=frequency,
            sampling_rate=np.float64(fs),
            segment_index=np.int64(segment_index),
            segment_start_s=np.float64(segment_start_s),
            # mypy matches a str-keyed ** against savez's keyword-only `allow_pickle: bool` too;
            # no key of `extras` is allow_pickle.
            **extras,  # type: ignore[arg-type]
        )


def list_npz_files(directory: str | os.PathLike) -> list[Path]:
    """All ``.npz`` files (extension in any case) directly in a folder, sorted by name."""
    folder = Path(directory)
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries if entry.name.lower().endswith(".npz")]
    return [folder / name for name in sorted(names)]


@dataclass
class MatrixBatch:
    """A batch of successfully loaded matrices and the files of the batch that failed.

    ``matrices`` has shape (len(paths), 256, 256), float32, row i from ``paths[i]``;
    ``errors`` holds ``MatrixFileError`` for the files that could not be used;
    ``channels``, ``time_domain``, ``recordings`` and ``frequency`` are parallel to ``paths`` (see
    :class:`MatrixRecord`).
    """

    paths: list[Path]
    matrices: np.ndarray
    errors: list[MatrixFileError] = field(default_factory=list)
    channels: list[str | None] = field(default_factory=list)
    time_domain: list[np.ndarray | None] = field(default_factory=list)
    recordings: list[str | None] = field(default_factory=list)
    frequency: list[np.ndarray | None] = field(default_factory=list)


def _load_batch(paths: Sequence[Path]) -> MatrixBatch:
    batch = MatrixBatch([], np.empty((len(paths), *MATRIX_SHAPE), dtype=np.float32))
    for path in paths:
        try:
            record = load_matrix_file(path)
        except MatrixFileError as error:
            batch.errors.append(error)
            continue
        batch.matrices[len(batch.paths)] = record.matrix
        batch.paths.append(path)
        batch.channels.append(record.channel)
        batch.time_domain.append(record.time_domain)
        batch.recordings.append(record.recording)
        batch.frequency.append(record.frequency)
    batch.matrices = batch.matrices[: len(batch.paths)]
    return batch


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
    keep_freed_memory()  # each 256 KiB matrix read would otherwise be mapped and page-faulted in anew
    chunks = [[Path(p) for p in paths[start : start + batch_size]] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = [reader.submit(_load_batch, chunk) for chunk in chunks[:prefetch]]
        for next_index in range(prefetch, len(chunks) + prefetch):
            batch = pending.pop(0).result()
            if next_index < len(chunks):
                pending.append(reader.submit(_load_batch, chunks[next_index]))
            yield batch
