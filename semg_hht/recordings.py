"""Reading raw sEMG recordings: ``.npy``, ``.npz`` and ``.csv`` files of one or more channels.

Formats (the extension decides, in any case):

- ``.npy``: a 1-D array (one channel) or a 2-D array of samples x channels. A recording has
  more samples than channels, so a 2-D array whose first axis is the shorter one is read as
  channels x samples. It carries no sampling rate.
- ``.npz``: the recording is the array ``signal`` (or, if there is none, ``emg``), 1-D or 2-D as
  for ``.npy``; its sampling rate in Hz is the scalar ``fs`` (or ``sampling_rate``), optional.
- ``.csv``: rows are samples, one column per channel, never transposed. Lines starting with
  ``#`` are comments and blank lines are skipped; the first other line is a header if any of
  its cells is not a number. The delimiter is found on the first data line: ``;`` if it has
  one, else ``,``, else whitespace. It carries no sampling rate.

Arrays are always read with ``allow_pickle=False`` and their headers (shape, dtype) are checked
before any data is read, so an object array is refused without being unpickled.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .matrices import printable_path
from .npyfile import (
    NPY_MAGIC,
    ZIP_MAGICS,
    check_regular_file,
    failure_reason,
    leading_bytes,
    npz_members,
    read_array,
    read_member,
)

SUPPORTED_EXTENSIONS = (".csv", ".npy", ".npz")
"""Extensions of the recordings that can be read, lower case."""
RATELESS_EXTENSIONS = (".csv", ".npy")
"""Formats that carry no sampling rate, so that one must be given."""
SIGNAL_KEYS = ("signal", "emg")
"""Names of the recording in an ``.npz`` archive, in order of preference."""
RATE_KEYS = ("fs", "sampling_rate")
"""Names of the sampling rate (Hz) in an ``.npz`` archive, in order of preference."""
_CELL_SHOWN = 20  # characters of a bad CSV cell quoted in a message


class RecordingError(ValueError):
    """A recording that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable_path(path)}: {reason}")


@dataclass(frozen=True)
class Recording:
    """The samples of one recording file.

    Attributes
    ----------
    samples : ndarray of shape (n_samples, n_channels), float64
        In the file's unit (ADC counts, volts, ...); may hold NaN or inf, see :func:`channel`.
    fs : float or None
        Sampling rate in Hz stored in the file; None when the file holds none.
    """

    samples: np.ndarray
    fs: float | None


def extension(path: str | os.PathLike) -> str:
    """A path's extension, lower case (``""`` if it has none)."""
    return Path(path).suffix.lower()


def read_recording(path: str | os.PathLike) -> Recording:
    """Read one recording file; its extension says the format.

    Raises
    ------
    RecordingError
        The file cannot be read, is not the format its extension says, or holds no usable
        recording; the message names the file and the reason.
    """
    suffix = extension(path)
    try:
        if suffix not in SUPPORTED_EXTENSIONS:
            raise ValueError(f"unsupported extension {suffix or '(none)'!r}")
        if suffix == ".csv":
            check_regular_file(path)
            return Recording(_read_csv(path), None)
        magic = leading_bytes(path, len(NPY_MAGIC))
        if suffix == ".npy":
            if magic != NPY_MAGIC:
                raise ValueError("the file is not a .npy array")
            array = read_array(lambda: open(path, "rb"), os.path.getsize(path), "the array", _check_real)
            return Recording(_as_samples(array), None)
        if magic[:4] not in ZIP_MAGICS:
            raise ValueError("the file is not an .npz (zip) archive")
        return _read_npz(path)
    except Exception as error:
        raise RecordingError(path, failure_reason(error, suffix)) from None


def channel(recording: Recording, index: int) -> np.ndarray:
    """One channel of a recording as a finite 1-D float64 array of shape (n_samples,).

    Raises
    ------
    ValueError
        The channel does not exist (the message gives the number of channels), or it holds
        NaN or infinite samples.
    """
    n_channels = recording.samples.shape[1]
    if not 0 <= index < n_channels:
        have = "1 channel (0)" if n_channels == 1 else f"{n_channels} channels (0-{n_channels - 1})"
        raise ValueError(f"channel {index} does not exist: the recording has {have}")
    signal = recording.samples[:, index]
    bad = ~np.isfinite(signal)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"channel {index} has {int(bad.sum())} non-finite sample(s) (NaN or inf), the first at sample {first}"
        )
    return signal


# --- NumPy formats ------------------------------------------------------------------------


def _check_real(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iuf":
        raise ValueError(f"the array has dtype {dtype}, not a real number type")


def _as_samples(array: np.ndarray) -> np.ndarray:
    """A 1-D or 2-D array as (n_samples, n_channels) float64; the longer axis holds the samples."""
    if array.ndim not in (1, 2):
        raise ValueError(f"the signal has shape {array.shape}; expected 1-D (samples) or 2-D (samples x channels)")
    if array.size == 0:
        raise ValueError(f"the signal is empty (shape {array.shape})")
    if array.ndim == 1:
        array = array[:, None]
    elif array.shape[0] < array.shape[1]:
        array = array.T
    return array.astype(np.float64)


def _read_npz(path: str | os.PathLike) -> Recording:
    with zipfile.ZipFile(path) as archive:
        members = npz_members(archive)
        signal_key = next((key for key in SIGNAL_KEYS if key in members), None)
        if signal_key is None:
            raise ValueError(f"no array named {' or '.join(map(repr, SIGNAL_KEYS))} (keys: {', '.join(members)})")
        samples = _as_samples(read_member(archive, members[signal_key], f"array {signal_key!r}", _check_real))
        rate_key = next((key for key in RATE_KEYS if key in members), None)
        if rate_key is None:
            return Recording(samples, None)
        rate = read_member(archive, members[rate_key], f"array {rate_key!r}", _check_real)
    if rate.size != 1:
        raise ValueError(f"{rate_key!r} must be one number (the sampling rate in Hz); got shape {rate.shape}")
    fs = float(rate.ravel()[0])
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"the sampling rate {rate_key!r} must be a positive number of Hz; got {fs:g}")
    return Recording(samples, fs)


# --- CSV ----------------------------------------------------------------------------------


def _split(line: str, delimiter: str | None) -> list[str]:
    return [cell.strip() for cell in line.split(delimiter)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _delimiter(line: str) -> str | None:
    # None splits on runs of whitespace. A line with ';' is split on ';' (a spreadsheet export).
    return next((candidate for candidate in (";", ",") if candidate in line), None)


def _read_csv(path: str | os.PathLike) -> np.ndarray:
    """Samples of a CSV file as (n_samples, n_channels) float64; see the module docstring."""
    with open(path, "rb") as stream:
        content = stream.read()
    if not content:
        raise ValueError("the file is empty")
    if b"\0" in content:
        raise ValueError("not a UTF-8 or ASCII text (CSV) file: it holds NUL bytes")
    # Only numbers are read, so a header in another encoding does no harm.
    text = content.decode("utf-8-sig", errors="replace")
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if numbered and not all(map(_is_number, _split(numbered[0][1], _delimiter(numbered[0][1])))):
        numbered = numbered[1:]  # the header
    if not numbered:
        raise ValueError("no samples: the file holds only comments, blank lines or a header")
    delimiter = _delimiter(numbered[0][1])
    try:
        return np.loadtxt([line for _, line in numbered], delimiter=delimiter, comments=None, ndmin=2)
    except ValueError as error:
        raise ValueError(_csv_problem(numbered, delimiter) or f"cannot be parsed as CSV: {error}") from None


def _csv_problem(numbered: list[tuple[int, str]], delimiter: str | None) -> str | None:
    """The first ragged row or non-numeric cell, by line and column; None if none is found."""
    first_number, first_line = numbered[0]
    width = len(_split(first_line, delimiter))
    for number, line in numbered:
        cells = _split(line, delimiter)
        if len(cells) != width:
            return f"line {number} has {len(cells)} columns, line {first_number} has {width}"
        for column, cell in enumerate(cells, start=1):
            if not _is_number(cell):
                shown = cell if len(cell) <= _CELL_SHOWN else cell[:_CELL_SHOWN] + "..."
                return f"line {number}, column {column}: " + (f"{shown!r} is not a number" if cell else "empty cell")
    return None
