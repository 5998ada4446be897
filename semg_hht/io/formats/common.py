"""What every reader returns: a recording's channels, each with its name, sampling rate and unit.

Signals in volts, millivolts or microvolts are given in millivolts (the unit of the
simulator and of PLUX's transfer function), so that amplitudes from different systems are
comparable; other units (ADC counts, arbitrary units) are kept and named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MILLIVOLTS_PER = {"v": 1e3, "mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3}
"""Factor to millivolts of each voltage unit, keyed by the unit in lower case."""
UNIT_MV = "mV"


@dataclass(frozen=True)
class RecordedChannel:
    """One channel of a recording.

    Attributes
    ----------
    name : str
        As the file labels it (``ch0``, ``ch1``, ... where the file names none).
    signal : ndarray of shape (n_samples,), float64
        May hold NaN or inf; see :func:`semg_hht.io.recordings.finite_signal`.
    fs : float or None
        Sampling rate in Hz; None where the file holds none.
    unit : str or None
        ``mV`` for any voltage, else the file's unit; None where the file names none.
    is_emg : bool
        Whether the file marks the channel as EMG (see each reader); ``--channel all`` takes these.
    part : str or None
        Which recording of the file the channel belongs to where a file holds several (a trial, a
        movement repetition; letters, digits and ``-``); None where the file is one recording.
    """

    name: str
    signal: np.ndarray
    fs: float | None
    unit: str | None = None
    is_emg: bool = True
    part: str | None = None


@dataclass(frozen=True)
class Recording:
    """The channels of one recording file, the format's name, a note on unit conversion if one was made, and,
    for a file cut short whose complete part was read, what is missing (``shortfall``)."""

    channels: tuple[RecordedChannel, ...]
    format: str
    conversion: str | None = None
    shortfall: str | None = None


def in_millivolts(values: np.ndarray, unit: str | None) -> tuple[np.ndarray, str | None]:
    """Values in a voltage unit converted to mV, others unchanged; returns the values and their unit."""
    key = (unit or "").strip().lower()
    if key in MILLIVOLTS_PER:
        return np.asarray(values, dtype=np.float64) * MILLIVOLTS_PER[key], UNIT_MV
    return np.asarray(values, dtype=np.float64), (unit or "").strip() or None


def is_voltage(unit: str | None) -> bool:
    return (unit or "").strip().lower() in MILLIVOLTS_PER


def numbered_channels(samples: np.ndarray, fs: float | None, unit: str | None = None) -> tuple[RecordedChannel, ...]:
    """The columns of a (n_samples, n_channels) array as channels ``ch0``, ``ch1``, ..."""
    return tuple(RecordedChannel(f"ch{i}", samples[:, i], fs, unit) for i in range(samples.shape[1]))


def check_rate(fs: float, what: str) -> float:
    """``fs`` as a float, or ValueError naming ``what`` when it is not a positive finite number of Hz."""
    rate = float(fs)
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"{what} must be a positive number of Hz; got {fs!r}")
    return rate
