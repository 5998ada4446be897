"""Window samples: one window of a recording with all its channels as one sample.

compute_hht.py writes one matrix per channel and window (``REC_<channel>_seg003.npz``, storing its
``channel`` and ``recording``). A window sample gathers the matrices of one window, one per channel,
and lays their feature vectors side by side in a fixed channel order (channel-major), so the head
sees how the channels relate within the window: the classic pipeline's layout, where the classic
time-domain features of all channels form one vector (Hudgins et al. 1993, IEEE TBME 40:82).

A window is named by its recording and the file name's ``_segNNN`` suffix (``REC_seg003``; the
recording alone for a file without one). A file that stores no channel, a channel the model does
not have, a channel twice in one window, or a window that lacks one of the model's channels cannot
make a sample: each of its files is reported with the reason, and the other windows go on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.data.dataset import FileFeatures
from semg_hht.io.matrices import MatrixFileError

_SEGMENT = re.compile(r"_(seg\d{3,})\.npz$", re.IGNORECASE)
NO_CHANNEL = (
    "stores no channel name ('channel'): a window sample needs each matrix's channel (compute_hht.py stores it)"
)


def window_name(path: Path, recording: str) -> str:
    """The window a matrix file belongs to: its recording and its name's ``_segNNN`` suffix (module docstring)."""
    segment = _SEGMENT.search(path.name)
    return recording if segment is None else f"{recording}_{segment.group(1)}"


def channels_of(channels: Sequence[str | None]) -> tuple[str, ...]:
    """The channels of a set of files, sorted: a model's channel order (files without a channel left out)."""
    return tuple(sorted({channel for channel in channels if channel}))


@dataclass(frozen=True)
class WindowSamples:
    """Feature vectors of whole windows, and the files that could not make one.

    ``names`` (n,) the windows; ``members`` each window's files in the channel order; ``recordings``
    (n,) each window's recording; ``features`` (n, n_channels * n_features) channel-major;
    ``errors`` the files left out, with the reason.
    """

    names: list[str]
    members: list[list[Path]]
    recordings: list[str]
    features: np.ndarray
    errors: list[MatrixFileError]

    def as_file_features(self) -> FileFeatures:
        """The windows as the streaming steps take files: each window as a path in its first file's folder,
        named by the window (no file of that name exists), its recording and files kept, no channel."""
        paths = [members[0].parent / name for name, members in zip(self.names, self.members, strict=True)]
        recordings: list[str | None] = list(self.recordings)
        return FileFeatures(paths, self.features, list(self.errors), [None] * len(paths), recordings, self.members)


def stack_windows(
    encoded: FileFeatures, recordings: Sequence[str], channels: Sequence[str], errors: Sequence[MatrixFileError] = ()
) -> WindowSamples:
    """Gather the files of ``encoded`` (features of one matrix each) into window samples of ``channels``.

    Parameters
    ----------
    encoded : FileFeatures
        Files with their features (n, d) and stored channels.
    recordings : sequence of str, length n
        Each file's recording (:meth:`~semg_hht.data.dataset.SubjectSource.recordings`).
    channels : sequence of str
        The channels of a sample, in order.
    errors : sequence of MatrixFileError
        Failures so far, kept before the new ones.

    Returns
    -------
    WindowSamples
        The complete windows in order of first appearance, features of shape (n_windows, len(channels) * d).
    """
    column = {channel: k for k, channel in enumerate(channels)}
    windows: dict[str, dict[str, int]] = {}
    window_recording: dict[str, str] = {}
    refused: list[MatrixFileError] = list(errors)
    broken: dict[str, str] = {}
    duplicates: dict[str, list[int]] = {}
    for row, (path, channel, recording) in enumerate(zip(encoded.paths, encoded.channels, recordings, strict=True)):
        if not channel:
            refused.append(MatrixFileError(path, NO_CHANNEL))
            continue
        if channel not in column:
            unknown = f"its channel {channel!r} is not one of the model's ({', '.join(channels)})"
            refused.append(MatrixFileError(path, unknown))
            continue
        name = window_name(path, recording)
        members = windows.setdefault(name, {})
        window_recording.setdefault(name, recording)
        if channel in members:
            broken[name] = f"window {name} holds channel {channel!r} twice"
            duplicates.setdefault(name, []).append(row)
            continue
        members[channel] = row
    names: list[str] = []
    member_paths: list[list[Path]] = []
    rows: list[int] = []
    for name, members in windows.items():
        reason = broken.get(name) or _missing_channels(name, members, channels)
        if reason is not None:
            left_out = [*members.values(), *duplicates.get(name, [])]
            refused.extend(MatrixFileError(encoded.paths[row], reason) for row in sorted(left_out))
            continue
        names.append(name)
        member_paths.append([encoded.paths[members[channel]] for channel in channels])
        rows.extend(members[channel] for channel in channels)
    width = encoded.features.shape[1]
    features = encoded.features[rows].reshape(len(names), len(channels) * width)
    return WindowSamples(names, member_paths, [window_recording[name] for name in names], features, refused)


def _missing_channels(name: str, members: dict[str, int], channels: Sequence[str]) -> str | None:
    """Why window ``name`` cannot make a sample for lack of channels; None when it has them all."""
    missing = [channel for channel in channels if channel not in members]
    if not missing:
        return None
    return (
        f"window {name} lacks channel{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
        "a window sample needs every one of the model's channels"
    )
