"""Text tables: plain CSV, named-column exports with a time column (Noraxon MR3 style), Delsys Trigno/EMGworks.

Which layout a file has is read from its first lines:

- **Delsys Trigno / EMGworks export**: lines ``Label: <sensor> Sampling frequency: <Hz> Number of
  points: <n> start: <s> Unit: <unit> Domain Unit: s``, one per channel, then a header of
  (``X[s]``, ``"<label>"``) column pairs: each channel has its own time column and runs at its own
  rate, so a slower channel's cells end early. The body is read; a channel with fewer samples than
  its line announces makes the recording one cut short (``Recording.shortfall``).
  Channels whose label says ``EMG`` are EMG (the IMU's ACC and GYRO channels are not).
- **Named columns with a time column** (Noraxon MR3 and similar exports): optional title lines, a
  header whose first cell is ``time`` (any case, a unit may follow: ``time (s)``, ``Time,s`` is
  not split), then one column per named sensor; a unit in brackets at the end of a name
  (``RT TIB.ANT. (uV)``, ``EMG 1 [mV]``) is the channel's unit. The sampling rate is the inverse of
  the time column's step, which must be regular. Every named column is taken as EMG.
- **Plain**: rows are samples, one column per channel, never transposed. Lines starting with
  ``#`` are comments and blank lines are skipped; the first other line is a header if any of its
  cells is not a number, and its cells name the channels (else ``ch0``, ``ch1``, ...). It carries no
  sampling rate.

The delimiter is found on the first data line: ``;`` if it has one, else ``,``, else whitespace.
"""

from __future__ import annotations

import os
import re

import numpy as np

from semg_hht.io.formats.common import RecordedChannel, Recording, check_rate, in_millivolts
from semg_hht.io.npyfile import check_regular_file

_CELL_SHOWN = 20  # characters of a bad cell quoted in a message
_DELSYS_LABEL = re.compile(
    r"^Label:\s*(?P<label>.+?)\s+Sampling frequency:\s*(?P<fs>\S+)\s+Number of points:\s*(?P<points>\d+)?.*?"
    r"(?:Unit:\s*(?P<unit>\S+))?(?:\s+Domain Unit:.*)?$"
)
_TIME_HEADER = re.compile(r"^\s*time\b", re.IGNORECASE)
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[(\[](?P<unit>[^()\[\]]+)[)\]]\s*$")


def read_table(path: str | os.PathLike) -> Recording:
    """Read a ``.csv`` or plain ``.txt`` recording in any of the layouts of the module docstring."""
    lines = _text_lines(path)
    if lines[0].startswith("Label:"):
        return _read_delsys(lines)
    numbered = [
        (number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise ValueError("no samples: the file holds only comments or blank lines")
    header_at = next((i for i, (_, line) in enumerate(numbered) if _TIME_HEADER.match(line)), None)
    if header_at is not None and header_at < len(numbered) - 1 and _is_data_line(numbered[header_at + 1][1]):
        timed = _read_time_columns(numbered[header_at], numbered[header_at + 1 :])
        if timed is not None:
            return timed
    return _read_plain(numbered)


def has_rate(head: list[str]) -> bool:
    """Whether a table whose first lines are ``head`` gives its sampling rate (Delsys, or a time column)."""
    return bool(head) and (head[0].startswith("Label:") or any(_TIME_HEADER.match(line) for line in head))


def _text_lines(path: str | os.PathLike) -> list[str]:
    check_regular_file(path)
    with open(path, "rb") as stream:
        content = stream.read()
    if not content:
        raise ValueError("the file is empty")
    if b"\0" in content:
        raise ValueError("not a UTF-8 or ASCII text (CSV) file: it holds NUL bytes")
    # Only numbers and names are read, so a header in another encoding does no harm.
    return content.decode("utf-8-sig", errors="replace").splitlines() or [""]


def _split(line: str, delimiter: str | None) -> list[str]:
    return [cell.strip().strip('"').strip() for cell in line.split(delimiter)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _delimiter(line: str) -> str | None:
    # None splits on runs of whitespace. A line with ';' is split on ';' (a spreadsheet export).
    return next((candidate for candidate in (";", ",") if candidate in line), None)


def _is_data_line(line: str) -> bool:
    cells = [cell for cell in _split(line, _delimiter(line)) if cell]
    return bool(cells) and all(map(_is_number, cells))


def _parse(numbered: list[tuple[int, str]], delimiter: str | None) -> np.ndarray:
    """The numeric rows as (n_rows, n_columns) float64; a ragged row or bad cell is named by line and column."""
    try:
        return np.loadtxt([line for _, line in numbered], delimiter=delimiter, comments=None, ndmin=2)
    except ValueError as error:
        raise ValueError(_problem(numbered, delimiter) or f"cannot be parsed as CSV: {error}") from None


def _problem(numbered: list[tuple[int, str]], delimiter: str | None) -> str | None:
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


def _names(header: list[str], count: int) -> list[str]:
    """The header's cells as channel names if they are distinct and non-empty, else ``ch0``, ``ch1``, ..."""
    if len(header) == count and all(header) and len(set(header)) == count:
        return header
    return [f"ch{i}" for i in range(count)]


def _read_plain(numbered: list[tuple[int, str]]) -> Recording:
    header: list[str] = []
    first = _split(numbered[0][1], _delimiter(numbered[0][1]))
    if not all(map(_is_number, first)):
        header, numbered = first, numbered[1:]
    if not numbered:
        raise ValueError("no samples: the file holds only comments, blank lines or a header")
    samples = _parse(numbered, _delimiter(numbered[0][1]))
    names = _names(header, samples.shape[1])
    return Recording(tuple(RecordedChannel(name, samples[:, i], None) for i, name in enumerate(names)), "CSV")


def _named_unit(cell: str) -> tuple[str, str | None]:
    match = _UNIT_SUFFIX.match(cell)
    return (match["name"], match["unit"].strip()) if match and match["name"] else (cell, None)


def _regular_rate(time: np.ndarray, what: str) -> float:
    """The sampling rate of a time column (s): its span over its steps.

    Exports print times rounded (to 1 us, or to 1 ms at 2 kHz), so a step may differ from the
    next; each time must lie within one step of where a regular rate puts it.
    """
    if time.size < 2:
        raise ValueError(f"{what} has {time.size} sample(s): no sampling rate can be read from it")
    span = float(time[-1] - time[0])
    if not span > 0:
        raise ValueError(f"{what} does not advance (from {time[0]:g} to {time[-1]:g} s)")
    step = span / (time.size - 1)
    if np.max(np.abs(time - (time[0] + step * np.arange(time.size)))) > step:
        raise ValueError(
            f"{what} does not advance by a regular step (steps {np.diff(time).min():g} to {np.diff(time).max():g} s)"
        )
    return check_rate(1.0 / step, f"the rate of {what}")


def _read_time_columns(header_line: tuple[int, str], numbered: list[tuple[int, str]]) -> Recording | None:
    """The table as channels at the time column's rate; None when the first column is no time axis (a plain table)."""
    delimiter = _delimiter(numbered[0][1])
    header = _split(header_line[1], delimiter)
    table = _parse(numbered, delimiter)
    if len(header) != table.shape[1]:
        raise ValueError(f"the header (line {header_line[0]}) has {len(header)} columns, the data {table.shape[1]}")
    if table.shape[1] < 2:
        raise ValueError("no signal column: the table has only its time column")
    _, time_unit = _named_unit(header[0])
    scale = 1e-3 if (time_unit or "").lower() == "ms" else 1.0
    try:
        fs = _regular_rate(table[:, 0] * scale, f"the time column {header[0]!r}")
    except ValueError:
        return None
    named = [_named_unit(cell) for cell in header[1:]]
    names = _names([name for name, _ in named], len(named))
    channels = []
    for index, (name, (_, unit)) in enumerate(zip(names, named, strict=True), start=1):
        values, unit = in_millivolts(table[:, index], unit)
        channels.append(RecordedChannel(name, values, fs, unit))
    return Recording(tuple(channels), "CSV with a time column")


def _read_delsys(lines: list[str]) -> Recording:
    labels = []
    position = 0
    while position < len(lines) and lines[position].startswith("Label:"):
        match = _DELSYS_LABEL.match(lines[position].strip())
        if match is None:
            raise ValueError(
                f"line {position + 1} is not a Delsys channel description ('Label: ... Sampling frequency:')"
            )
        labels.append((match["label"], match["unit"], None if match["points"] is None else int(match["points"])))
        position += 1
    header_at = next((i for i in range(position, len(lines)) if lines[i].lstrip().startswith("X[")), None)
    if header_at is None:
        raise ValueError("a Delsys export without its column header (X[s], label pairs): the file is cut short")
    header = _split(lines[header_at], ",")
    if len(header) != 2 * len(labels):
        raise ValueError(f"the column header has {len(header)} columns for {len(labels)} channels (expected pairs)")
    rows = [line.split(",") for line in lines[header_at + 1 :] if line.strip()]
    if not rows:
        raise ValueError("no samples: the Delsys export ends after its header")
    channels = [
        _delsys_channel(rows, 2 * index, header_at + 2, label, unit) for index, (label, unit, _) in enumerate(labels)
    ]
    return Recording(tuple(channels), "Delsys Trigno/EMGworks CSV", shortfall=_delsys_shortfall(labels, channels))


def _delsys_shortfall(labels: list[tuple[str, str | None, int | None]], channels: list[RecordedChannel]) -> str | None:
    """What a Delsys export cut short is missing: the channels with fewer samples than their line announces."""
    short = [
        (label, len(channel.signal), points)
        for (label, _, points), channel in zip(labels, channels, strict=True)
        if points is not None and len(channel.signal) < points
    ]
    if not short:
        return None
    label, read, announced = short[0]
    more = f" (and {len(short) - 1} more channels)" if len(short) > 1 else ""
    return f"the header announces {announced} samples of {label!r}, {read} were read{more}"


def _delsys_channel(
    rows: list[list[str]], column: int, first_line: int, label: str, unit: str | None
) -> RecordedChannel:
    """One (time, value) column pair: the leading rows where both cells are filled."""
    times, values = [], []
    for offset, row in enumerate(rows):
        cells = [cell.strip() for cell in row[column : column + 2]]
        if len(cells) < 2 or not cells[0] or not cells[1]:
            break
        try:
            times.append(float(cells[0]))
            values.append(float(cells[1]))
        except ValueError:
            raise ValueError(
                f"line {first_line + offset}, columns {column + 1}-{column + 2}: {','.join(cells)!r} are not numbers"
            ) from None
    if len(values) < 2:
        raise ValueError(f"channel {label!r} has {len(values)} sample(s)")
    fs = _regular_rate(np.array(times), f"the time column of {label!r}")
    signal, unit = in_millivolts(np.array(values), unit)
    return RecordedChannel(label, signal, fs, unit, is_emg="EMG" in label.upper())
