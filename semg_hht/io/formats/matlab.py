"""MATLAB ``.mat`` recordings: version 5 (up to 7.2) through SciPy, version 7.3 (HDF5) through h5py.

Public EMG data is mostly ``.mat`` (NinaPro DB1-DB10, the UCI hand-movement sets). Which variables
hold the signal, and how, is the layout (:class:`MatSelection`):

- ``channels``: each chosen variable is one channel (a vector) or samples x channels (a matrix, its
  longer side the samples); the file is one recording.
- ``trials``: each chosen variable is trials x samples (its longer side the samples) and is named
  ``<group>_<channel>`` (the UCI sEMG for Basic Hand movements set: ``cyl_ch1``, ``cyl_ch2``):
  trial k of a group's variables are the channels of one recording, ``<group>-t<k>``.
- ``ninapro``: NinaPro's ``emg`` (samples x channels) cut into one recording per movement
  repetition, ``mov<stimulus>-rep<repetition>``, by ``restimulus``/``rerepetition`` (the
  relabelled movement), else ``stimulus``/``repetition``; rest (stimulus 0) is left out.
- ``auto``: ``ninapro`` where the file has ``emg``, else ``channels``.

The sampling rate is the file's scalar ``frequency``, ``fs`` or ``sampling_rate`` where it has one
(NinaPro DB2 on: ``frequency``), else ``--fs``. MATLAB writes version 7.3 arrays column-major, so
h5py gives them transposed: they are turned back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from semg_hht.defaults import MAT_LAYOUTS
from semg_hht.io.formats.common import RecordedChannel, Recording, check_rate
from semg_hht.io.npyfile import check_regular_file

RATE_NAMES = ("frequency", "fs", "sampling_rate")
V73_MAGIC = b"MATLAB 7.3 MAT-file"
NINAPRO_LABELS = (("restimulus", "rerepetition"), ("stimulus", "repetition"))


@dataclass(frozen=True)
class MatSelection:
    """Which variables of a ``.mat`` file hold the signal (``variables``; empty: every numeric one, or NinaPro's
    ``emg``), and how (``layout``, one of :data:`MAT_LAYOUTS`)."""

    variables: tuple[str, ...] = ()
    layout: str = "auto"

    @classmethod
    def parse(cls, variables: str | None, layout: str) -> MatSelection:
        """``--mat_variables`` (comma-separated names, or None) and ``--mat_layout``."""
        if layout not in MAT_LAYOUTS:
            raise ValueError(f"`mat_layout` must be one of {', '.join(MAT_LAYOUTS)}; got {layout!r}")
        names = tuple(name.strip() for name in (variables or "").split(",") if name.strip())
        return cls(names, layout)


def mat_variables(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every numeric array of a ``.mat`` file by name, as MATLAB shows it (column-major order undone)."""
    check_regular_file(path)
    with open(path, "rb") as stream:
        header = stream.read(128)
    if header.startswith(V73_MAGIC):
        return _hdf5_variables(path)
    if not header.startswith(b"MATLAB"):
        raise ValueError("not a MATLAB .mat file (no 'MATLAB' header)")
    import scipy.io  # imported here: conversion only

    try:
        loaded = scipy.io.loadmat(path, squeeze_me=False)
    except NotImplementedError as error:  # a format version SciPy does not read
        raise ValueError(f"a MATLAB file SciPy cannot read ({error})") from None
    return {name: value for name, value in loaded.items() if not name.startswith("__") and _is_numeric(value)}


def _hdf5_variables(path: str | os.PathLike) -> dict[str, np.ndarray]:
    import h5py

    found = {}
    with h5py.File(path, "r") as archive:
        for name, item in archive.items():
            if isinstance(item, h5py.Dataset) and not name.startswith("#") and item.dtype.kind in "iuf":
                found[name] = np.asarray(item[()]).T
    return found


def _is_numeric(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.size > 0


def read_mat(path: str | os.PathLike, selection: MatSelection | None = None) -> Recording:
    """Read a ``.mat`` recording in the layout of ``selection`` (module docstring); channels of one recording
    of several (a trial, a movement repetition) carry its name as ``part``."""
    selection = selection or MatSelection()
    variables = mat_variables(path)
    fs = _stored_rate(variables)
    layout = selection.layout
    if layout == "auto":
        layout = "ninapro" if "emg" in variables else "channels"
    if layout == "ninapro":
        channels = _ninapro(variables, selection.variables or ("emg",), fs)
    else:
        chosen = _chosen(variables, selection.variables)
        channels = _trials(chosen, fs) if layout == "trials" else _channels(chosen, fs)
    return Recording(tuple(channels), f"MATLAB .mat ({layout})")


def _stored_rate(variables: dict[str, np.ndarray]) -> float | None:
    for name in RATE_NAMES:
        value = variables.get(name)
        if value is not None and value.size == 1:
            return check_rate(float(value.reshape(-1)[0]), f"the file's {name!r}")
    return None


def _chosen(variables: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The variables named (all numeric ones but the rate where none is), each at most 2-D after squeezing."""
    if names:
        missing = [name for name in names if name not in variables]
        if missing:
            raise ValueError(f"no numeric variable named {missing[0]!r} ({_variable_list(variables)})")
    chosen = {name: variables[name] for name in names} if names else dict(variables)
    chosen = {name: value for name, value in chosen.items() if names or name not in RATE_NAMES}
    for name, value in chosen.items():
        if np.squeeze(value).ndim > 2:
            raise ValueError(f"variable {name!r} has shape {value.shape}: a signal has at most 2 dimensions")
    if not chosen:
        raise ValueError(f"no numeric variable holds a signal ({_variable_list(variables)})")
    return chosen


def describe_variables(path: str | os.PathLike) -> str:
    """What ``compute_hht.py --list`` shows of a ``.mat`` file: its numeric variables and their shapes."""
    return _variable_list(mat_variables(path))


def _variable_list(variables: dict[str, np.ndarray]) -> str:
    shown = ", ".join(f"{name} {'x'.join(map(str, value.shape))}" for name, value in list(variables.items())[:12])
    return f"{len(variables)} numeric variables: {shown}" if variables else "no numeric variables"


def _samples_first(value: np.ndarray) -> np.ndarray:
    """A 2-D array with its samples down the rows (the longer side)."""
    matrix = np.atleast_2d(np.squeeze(value).astype(np.float64))
    return matrix.T if matrix.shape[0] < matrix.shape[1] else matrix


def _channels(chosen: dict[str, np.ndarray], fs: float | None) -> list[RecordedChannel]:
    channels = []
    for name, value in chosen.items():
        samples = _samples_first(value)
        for column in range(samples.shape[1]):
            label = name if samples.shape[1] == 1 else f"{name}{column + 1}"
            channels.append(RecordedChannel(label, samples[:, column], fs))
    return channels


def _trials(chosen: dict[str, np.ndarray], fs: float | None) -> list[RecordedChannel]:
    channels = []
    for name, value in chosen.items():
        group, _, channel = name.rpartition("_")
        if not group:
            raise ValueError(f"variable {name!r} is not named <group>_<channel>, as the trials layout needs")
        trials = _samples_first(value).T  # one row per trial
        for index, signal in enumerate(trials, start=1):
            channels.append(RecordedChannel(channel, signal, fs, part=f"{group}-t{index:02d}"))
    return sorted(channels, key=lambda channel: channel.part or "")


def _ninapro(variables: dict[str, np.ndarray], names: tuple[str, ...], fs: float | None) -> list[RecordedChannel]:
    emg = _samples_first(_chosen(variables, names[:1])[names[0]])
    stimulus_name, repetition_name = next(
        (pair for pair in NINAPRO_LABELS if all(name in variables for name in pair)), (None, None)
    )
    if stimulus_name is None or repetition_name is None:
        raise ValueError("a NinaPro file without 'restimulus'/'rerepetition' or 'stimulus'/'repetition'")
    stimulus = np.asarray(variables[stimulus_name]).reshape(-1)
    repetition = np.asarray(variables[repetition_name]).reshape(-1)
    if not stimulus.size == repetition.size == len(emg):
        raise ValueError(
            f"'{stimulus_name}' ({stimulus.size}) and '{repetition_name}' ({repetition.size}) do not have one value "
            f"per sample of 'emg' ({len(emg)})"
        )
    channels = []
    for part, rows in _repetitions(stimulus, repetition):
        channels += [RecordedChannel(f"ch{k + 1}", emg[rows, k], fs, part=part) for k in range(emg.shape[1])]
    if not channels:
        raise ValueError(f"'{stimulus_name}' marks no movement (it is 0 throughout)")
    return channels


def _repetitions(stimulus: np.ndarray, repetition: np.ndarray) -> list[tuple[str, slice]]:
    """Each run of one (movement, repetition) with movement not 0: its name and its samples."""
    changes = np.flatnonzero((np.diff(stimulus) != 0) | (np.diff(repetition) != 0)) + 1
    starts, ends = np.concatenate([[0], changes]), np.concatenate([changes, [len(stimulus)]])
    runs: list[tuple[str, slice]] = []
    seen: dict[str, int] = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        movement, number = int(stimulus[start]), int(repetition[start])
        if movement == 0:
            continue
        name = f"mov{movement:02d}-rep{number:02d}"
        seen[name] = seen.get(name, 0) + 1
        runs.append((name if seen[name] == 1 else f"{name}-{seen[name]}", slice(start, end)))
    return runs
