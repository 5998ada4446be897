"""Conditioning a raw sEMG channel before its transform: mean removal, band-pass, mains notch.

The steps, in this order, each optional:

1. **Mean removal**: subtract the channel's mean (an amplifier's DC offset, which would otherwise
   stay in the decomposition's residue and shift the time-domain features).
2. **Band-pass**: a Butterworth filter of order 4 (second-order sections), applied forwards and
   backwards (``scipy.signal.sosfiltfilt``), so zero-phase with an effective order of 8 and no
   shift of the bursts in time. The default 20-450 Hz is the band of surface EMG (SENIAM;
   De Luca et al. 2010, J. Biomech. 43:1573, for the 20 Hz high-pass against movement
   artefact) and the band the spectrum shows.
3. **Notch**: second-order IIR notches (``scipy.signal.iirnotch``, quality factor 30, also
   zero-phase) at the mains frequency (50 or 60 Hz) and each harmonic below the band's upper
   edge (or the Nyquist frequency without a band-pass).

Each output file stores what was done (:meth:`Preprocessing.describe`) as ``preprocessing``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from semg_hht.defaults import DEFAULT_BANDPASS, DEFAULT_NOTCH, DEFAULT_REMOVE_MEAN, MAINS_FREQUENCIES

BANDPASS_ORDER = 4
NOTCH_QUALITY = 30.0


@dataclass(frozen=True)
class Preprocessing:
    """What is done to each channel before its transform; frequencies in Hz, None for a step left out."""

    remove_mean: bool = DEFAULT_REMOVE_MEAN
    bandpass: tuple[float, float] | None = DEFAULT_BANDPASS
    notch: float | None = DEFAULT_NOTCH

    def __post_init__(self) -> None:
        if self.bandpass is not None:
            low, high = self.bandpass
            if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
                raise ValueError(f"`bandpass` needs 0 < low < high Hz; got {low:g} and {high:g}")
        if self.notch is not None and self.notch not in MAINS_FREQUENCIES:
            raise ValueError(f"`notch` is at the mains frequency, 50 or 60 Hz; got {self.notch:g}")

    def rate_problem(self, fs: float) -> str | None:
        """Why a channel sampled at ``fs`` Hz cannot be filtered so; None if it can."""
        if self.bandpass is not None and self.bandpass[1] >= fs / 2:
            low, high = self.bandpass
            return (
                f"a sampling rate of {fs:g} Hz is too low for the band-pass {low:g}-{high:g} Hz "
                f"(needs more than {2 * high:g} Hz)"
            )
        if self.notch is not None and self.notch >= fs / 2:
            return f"a sampling rate of {fs:g} Hz is too low for a {self.notch:g} Hz notch"
        return None

    def notch_frequencies(self, fs: float) -> list[float]:
        """The mains frequency and its harmonics below the band's upper edge (or the Nyquist frequency)."""
        if self.notch is None:
            return []
        top = min(fs / 2, self.bandpass[1] if self.bandpass else fs / 2)
        return [self.notch * k for k in range(1, int(top // self.notch) + 1) if self.notch * k < top]

    def describe(self) -> dict:
        """A JSON-ready record of the steps, as stored in each output file."""
        return {
            "remove_mean": self.remove_mean,
            "bandpass_hz": None if self.bandpass is None else list(self.bandpass),
            "bandpass": None if self.bandpass is None else f"Butterworth order {BANDPASS_ORDER}, zero-phase",
            "notch_hz": self.notch,
            "notch": None if self.notch is None else f"IIR notch Q {NOTCH_QUALITY:g} with harmonics, zero-phase",
        }

    def summary(self) -> str:
        """One line for a conversion's settings."""
        steps = ["mean removed"] if self.remove_mean else []
        if self.bandpass is not None:
            steps.append(f"band-pass {self.bandpass[0]:g}-{self.bandpass[1]:g} Hz (Butterworth 4, zero-phase)")
        if self.notch is not None:
            steps.append(f"{self.notch:g} Hz notch with harmonics")
        return ", ".join(steps) or "none"


def preprocess(signal: np.ndarray, fs: float, settings: Preprocessing) -> np.ndarray:
    """Apply ``settings`` to one channel.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        Finite samples, in any unit.
    fs : float
        Sampling rate, Hz.
    settings : Preprocessing

    Returns
    -------
    ndarray of shape (n_samples,), float64
        In the signal's unit.

    Raises
    ------
    ValueError
        ``fs`` too low for the band or the notch (:meth:`Preprocessing.rate_problem`).
    """
    problem = settings.rate_problem(fs)
    if problem:
        raise ValueError(problem)
    # Imported here, not with the module: scipy.signal takes about 1 s to import, and a run's client
    # process, which plans the work that its workers do, never filters.
    from scipy import signal as scipy_signal

    result = np.asarray(signal, dtype=np.float64)
    if settings.remove_mean:
        result = result - result.mean()
    if settings.bandpass is not None:
        sos = scipy_signal.butter(BANDPASS_ORDER, settings.bandpass, btype="bandpass", fs=fs, output="sos")
        result = scipy_signal.sosfiltfilt(sos, result)
    for frequency in settings.notch_frequencies(fs):
        b, a = scipy_signal.iirnotch(frequency, NOTCH_QUALITY, fs=fs)
        result = scipy_signal.filtfilt(b, a, result)
    return result


def describe_json(settings: Preprocessing) -> str:
    return json.dumps(settings.describe(), sort_keys=True)
