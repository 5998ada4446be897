"""Reading raw sEMG recordings of every supported format, and choosing their channels.

The extension (any case) decides the reader (:mod:`semg_hht.io.formats`):

===================  ==========================================================  ==============
extension            format                                                      sampling rate
===================  ==========================================================  ==============
``.npy``, ``.npz``   NumPy arrays (:mod:`~semg_hht.io.formats.numeric`)             ``.npz``: may
``.csv``, ``.txt``   OpenSignals text (by its first line), Delsys Trigno /       from the file,
                     EMGworks, named columns with a time column (Noraxon MR3     plain: none
                     style) or plain (:mod:`~semg_hht.io.formats.tables`)
``.h5``              PLUX OpenSignals HDF5 (:mod:`~semg_hht.io.formats.plux`)       in the file
``.c3d``             C3D analog channels (:mod:`~semg_hht.io.formats.c3d_analog`)   in the file
``.edf``, ``.bdf``   EDF, EDF+ and BDF (:mod:`~semg_hht.io.formats.edf`)            in the file
``.mat``             MATLAB v5 and v7.3: channels, trials or NinaPro repetitions   ``frequency``
                     (:mod:`~semg_hht.io.formats.matlab`)                        or ``fs`` if
                                                                                 stored
===================  ==========================================================  ==============

Every reader gives each channel's name, samples, rate and unit (voltages in mV), and says
which channels are EMG.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from semg_hht.classes import NAMING_TOKENS
from semg_hht.io.formats.c3d_analog import read_c3d
from semg_hht.io.formats.common import RecordedChannel, Recording
from semg_hht.io.formats.edf import read_edf
from semg_hht.io.formats.matlab import MatSelection, read_mat
from semg_hht.io.formats.numeric import read_npy, read_npz
from semg_hht.io.formats.plux import is_opensignals_text, read_opensignals_h5, read_opensignals_text
from semg_hht.io.formats.tables import has_rate, read_table
from semg_hht.io.matrices import printable_path
from semg_hht.io.npyfile import check_regular_file, failure_reason

__all__ = ["Recording", "RecordedChannel", "RecordingError", "read_recording", "select_channels"]


def _read_text(path: str | os.PathLike) -> Recording:
    check_regular_file(path)
    with open(path, "rb") as stream:
        first_line = stream.readline(200).decode("utf-8", errors="replace")
    return read_opensignals_text(path) if is_opensignals_text(first_line) else read_table(path)


READERS: dict[str, Callable[[str | os.PathLike], Recording]] = {
    ".bdf": read_edf,
    ".c3d": read_c3d,
    ".csv": _read_text,
    ".edf": read_edf,
    ".h5": read_opensignals_h5,
    ".mat": read_mat,
    ".npy": read_npy,
    ".npz": read_npz,
    ".txt": _read_text,
}
SUPPORTED_EXTENSIONS = tuple(sorted(READERS))
"""Extensions of the recordings that can be read, lower case."""
ALL_CHANNELS = "all"
_TAG_CHARACTERS = re.compile(r"[^0-9A-Za-z-]+")


class RecordingError(ValueError):
    """A recording that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable_path(path)}: {reason}")


def extension(path: str | os.PathLike) -> str:
    """A path's extension, lower case (``""`` if it has none)."""
    return Path(path).suffix.lower()


def read_recording(path: str | os.PathLike, mat: MatSelection | None = None) -> Recording:
    """Read one recording file; its extension says the format (``mat``: the variables and layout of a ``.mat``).

    Raises
    ------
    RecordingError
        The file cannot be read, is not the format its extension says, or holds no usable
        recording; the message names the file and the reason.
    """
    suffix = extension(path)
    try:
        if suffix not in READERS:
            raise ValueError(f"unsupported extension {suffix or '(none)'!r}")
        recording = read_mat(path, mat) if suffix == ".mat" else READERS[suffix](path)
        if not recording.channels:
            raise ValueError("the file holds no channels")
        return recording
    except Exception as error:
        raise RecordingError(path, failure_reason(error, suffix)) from None


def carries_rate(path: str | os.PathLike) -> bool:
    """Whether a recording holds its sampling rate, judged without reading it all.

    ``.npy`` files never do; a ``.csv`` or ``.txt`` file does when it is an OpenSignals or Delsys
    export or has a time column (:func:`~semg_hht.io.formats.tables.has_rate`); the other formats
    do (an ``.npz`` without ``fs`` is refused when read).
    """
    suffix = extension(path)
    if suffix == ".npy":
        return False
    if suffix in (".csv", ".txt"):
        try:
            with open(path, "rb") as stream:
                head = stream.read(16384).decode("utf-8", errors="replace").splitlines()[:64]
        except OSError:
            return True  # reading it will say what is wrong
        return bool(head) and (is_opensignals_text(head[0]) or has_rate(head))
    return True


@dataclass(frozen=True)
class ChannelSelection:
    """``channel``: ``all`` EMG channels, or channels by number (from 0) and by name, in the order given."""

    items: tuple[int | str, ...] = (0,)
    every_emg: bool = False

    @classmethod
    def parse(cls, text: str) -> ChannelSelection:
        """``all``, a number, a name, or a comma-separated list of numbers and names."""
        if text.strip().lower() == ALL_CHANNELS:
            return cls((), True)
        items = [item.strip() for item in text.split(",")]
        if not all(items):
            raise ValueError(f"`channel` {text!r} has an empty item; give numbers or names separated by commas")
        return cls(tuple(int(item) if item.isdigit() else item for item in items))

    @property
    def names_outputs(self) -> bool:
        """Whether each output's name carries its channel (more than one channel can be chosen)."""
        return self.every_emg or len(self.items) > 1


def _channel_list(recording: Recording) -> str:
    names = [channel.name for channel in recording.channels]
    shown = ", ".join(repr(name) for name in names[:12]) + (", ..." if len(names) > 12 else "")
    return f"{len(names)} channel{'s' if len(names) != 1 else ''}: {shown}"


def _find(recording: Recording, item: int | str) -> int:
    channels = recording.channels
    if isinstance(item, int):
        if not 0 <= item < len(channels):
            have = "1 channel (0)" if len(channels) == 1 else f"{len(channels)} channels (0-{len(channels) - 1})"
            raise ValueError(f"channel {item} does not exist: the recording has {have}")
        return item
    exact = [i for i, channel in enumerate(channels) if channel.name == item]
    folded = [i for i, channel in enumerate(channels) if channel.name.casefold() == item.casefold()]
    found = exact or folded
    if len(found) != 1:
        what = "no channel" if not found else f"{len(found)} channels"
        raise ValueError(f"{what} named {item!r} ({_channel_list(recording)})")
    return found[0]


def recording_parts(recording: Recording) -> list[tuple[str | None, Recording]]:
    """The recordings a file holds, in order: ``(part, its channels)``; ``[(None, recording)]`` for a file of one."""
    parts: dict[str | None, list[RecordedChannel]] = {}
    for channel in recording.channels:
        parts.setdefault(channel.part, []).append(channel)
    if list(parts) == [None]:
        return [(None, recording)]
    return [(part, replace(recording, channels=tuple(channels))) for part, channels in parts.items()]


def is_flat(channel: RecordedChannel) -> bool:
    finite = channel.signal[np.isfinite(channel.signal)]
    return finite.size == 0 or np.ptp(finite) == 0


def select_channels(recording: Recording, selection: ChannelSelection) -> tuple[list[int], list[str]]:
    """The indices of the chosen channels, and notes on the EMG channels ``all`` left out (flat ones).

    Raises
    ------
    ValueError
        A number or name that does not exist (the message lists the channels), or ``all`` on a
        recording without a live EMG channel.
    """
    if not selection.every_emg:
        return [_find(recording, item) for item in selection.items], []
    emg = [i for i, channel in enumerate(recording.channels) if channel.is_emg]
    if not emg:
        raise ValueError(f"no EMG channel ({_channel_list(recording)}); choose channels by `channel` number or name")
    flat = [i for i in emg if is_flat(recording.channels[i])]
    live = [i for i in emg if i not in flat]
    if not live:
        raise ValueError(f"every EMG channel is flat (constant or all zero): {len(flat)} channel(s)")
    notes = []
    if flat:
        names = ", ".join(repr(recording.channels[i].name) for i in flat)
        notes.append(f"{len(flat)} flat EMG channel{'s' if len(flat) != 1 else ''} left out (unconnected?): {names}")
    return live, notes


def finite_signal(channel: RecordedChannel) -> np.ndarray:
    """A channel's samples as a finite 1-D float64 array; ValueError naming the channel if any is NaN or inf."""
    bad = ~np.isfinite(channel.signal)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        count = int(bad.sum())
        raise ValueError(
            f"channel {channel.name!r} has {count} non-finite sample(s) (NaN or inf), the first at sample {first}"
        )
    return channel.signal


def channel_tag(name: str) -> str:
    """A channel name as a file-name field: letters, digits and ``-`` only (``_`` separates the name's fields),
    prefixed ``ch-`` where it would read as a label token (a channel named ``F`` or ``test``)."""
    tag = _TAG_CHARACTERS.sub("-", name).strip("-")
    return f"ch-{tag}" if tag.lower() in NAMING_TOKENS else tag


def output_tags(recording: Recording, indices: list[int]) -> list[str]:
    """The :func:`channel_tag` of each chosen channel, made distinct by the channel's number where two are alike."""
    tags: list[str] = []
    for index in indices:
        tag = channel_tag(recording.channels[index].name) or f"ch{index}"
        tags.append(tag if tag not in tags else f"{tag}-{index}")
    return tags


def describe_recording(path: str | os.PathLike, recording: Recording) -> str:
    """What ``compute_hht.py --list`` shows: the format, a line per channel (number, name, EMG, rate, length, unit)."""
    parts = recording_parts(recording)
    held = "" if len(parts) == 1 else f" in {len(parts)} recordings ({parts[0][0]}, ...)"
    lines = [f"{printable_path(path)}: {recording.format}, {_channel_list(recording).split(':')[0]}{held}"]
    if recording.conversion:
        lines.append(f"  ({recording.conversion})")
    lines.append(f"  {'#':>3}  {'name':<32} {'EMG':<4} {'rate (Hz)':>10} {'samples':>9} {'seconds':>8}  unit")
    for index, channel in enumerate(recording.channels):
        rate = "-" if channel.fs is None else f"{channel.fs:g}"
        seconds = "-" if channel.fs is None else f"{channel.signal.size / channel.fs:.2f}"
        emg = ("yes" if channel.is_emg else "no") + ("*" if channel.is_emg and is_flat(channel) else "")
        name = channel.name if channel.part is None else f"{channel.part}/{channel.name}"
        lines.append(
            f"  {index:>3}  {name[:32]:<32} {emg:<4} {rate:>10} {channel.signal.size:>9} {seconds:>8}  "
            f"{channel.unit or '-'}"
        )
    if any(channel.is_emg and is_flat(channel) for channel in recording.channels):
        lines.append("  * flat (constant or all zero): `channel` all leaves it out")
    return "\n".join(lines)
