"""The classic time-domain features of a raw sEMG segment (Hudgins et al. 1993).

Hudgins, Parker & Scott, "A new strategy for multifunction myoelectric control", IEEE Trans.
Biomed. Eng. 40(1):82-94 (1993) describe a segment by four numbers that are still the usual
baseline of myoelectric pattern recognition: its mean absolute value, its waveform length, its
zero crossings and its slope sign changes. :func:`hudgins_features` computes them from the
segment ``x[0..N-1]`` less its mean, with a threshold ``thr``:

``log_mav``
    ``log(sum_k |x[k]| / N)``, the log of the mean absolute value (log of the signal's unit).
``log_wl``
    ``log(sum_k |x[k+1] - x[k]| / N)``, the log of the waveform length per sample.
``zc``
    zero crossings per sample: the number of ``k`` with ``x[k] x[k+1] < 0`` and
    ``|x[k] - x[k+1]| >= thr``, divided by ``N``.
``ssc``
    slope sign changes per sample: the number of ``k`` with ``(x[k] - x[k-1]) (x[k] - x[k+1]) > 0``
    and ``|x[k] - x[k-1]| >= thr`` or ``|x[k] - x[k+1]| >= thr``, divided by ``N``.

where the threshold ``thr`` is ``threshold_fraction`` (default 1 %) of the segment's standard
deviation, so that low-level noise riding on the signal adds no crossings or turns (and a wave
so slow that it moves less than ``thr`` from one sample to the next has none either).

Departures from the paper's raw sums and counts, each so that segments compare:

* The segment's mean is removed first: an amplifier's offset would otherwise hide every zero
  crossing and add to the mean absolute value.
* The waveform length and both counts are divided by ``N``, so they are per sample and windows
  of different lengths give comparable values (a sine of frequency ``f`` sampled at ``fs`` has
  ``zc`` and ``ssc`` near ``2 f / fs`` whatever the window).
* The amplitude features are logarithms: they span decades between subjects and contractions,
  and scaling the signal by ``k`` (millivolts to volts, an amplifier's gain) then shifts them by
  ``log k`` and leaves ``zc`` and ``ssc`` unchanged.
"""

from __future__ import annotations

import math

import numpy as np

TIME_DOMAIN_NAMES: tuple[str, ...] = ("log_mav", "log_wl", "zc", "ssc")
"""The features :func:`hudgins_features` returns, in their order."""
AMPLITUDE_NAMES: tuple[str, ...] = ("kurtosis", "log_mav_rms_ratio")
"""The features :func:`amplitude_distribution_features` returns, in their order."""
SEGMENT_FEATURE_NAMES = TIME_DOMAIN_NAMES + AMPLITUDE_NAMES
"""The features :func:`segment_features` returns (and compute_hht.py stores as ``td_features``), in order."""
DEFAULT_THRESHOLD_FRACTION = 0.01
"""Threshold of ``zc`` and ``ssc``, as a fraction of the segment's standard deviation."""
MIN_SAMPLES = 3
"""Shortest segment: a slope sign change needs a sample with a neighbour on each side."""


def _as_segments(array: np.ndarray) -> np.ndarray:
    """``array`` as a (n, N) float64 array of valid segments, or a :class:`ValueError` saying why not."""
    if array.dtype.kind not in "iuf":
        raise ValueError(f"the signal must be real numbers; got dtype {array.dtype}")
    if array.ndim not in (1, 2):
        raise ValueError(f"the signal must be 1-D (samples) or 2-D (signals x samples); got shape {array.shape}")
    segments = np.atleast_2d(array).astype(np.float64)
    n_signals, n_samples = segments.shape
    if n_signals == 0:
        raise ValueError(f"there is no signal to describe; got shape {array.shape}")
    if n_samples < MIN_SAMPLES:
        raise ValueError(f"each signal needs at least {MIN_SAMPLES} samples; got {n_samples}")
    bad = ~np.isfinite(segments)
    if bad.any():
        row, sample = np.argwhere(bad)[0]
        where = f"signal {row}, sample {sample}" if array.ndim == 2 else f"sample {sample}"
        raise ValueError(f"the signal has {int(bad.sum())} non-finite value(s) (NaN or inf), the first at {where}")
    constant = (segments == segments[:, :1]).all(axis=1)
    if constant.any():
        which = f"signal {int(np.flatnonzero(constant)[0])} is" if array.ndim == 2 else "the signal is"
        raise ValueError(f"{which} constant ({segments[constant][0, 0]:g}): it has no time-domain features")
    return segments


def hudgins_features(signal: np.ndarray, threshold_fraction: float = DEFAULT_THRESHOLD_FRACTION) -> np.ndarray:
    """Hudgins' time-domain features of one segment or of each row: ``log_mav, log_wl, zc, ssc``.

    See the module docstring for the definitions and how they depart from the paper's
    (mean removed, per-sample rates, logarithms of the amplitude features).

    Parameters
    ----------
    signal : ndarray of shape (N,) or (n, N)
        One raw segment, or ``n`` segments of the same length as rows; any real dtype, in any
        unit (volts, millivolts, ADC counts). Needs ``N >= 3`` finite samples, not all equal.
    threshold_fraction : float, default 0.01
        The threshold of ``zc`` and ``ssc`` as a fraction of each segment's standard
        deviation (after its mean is removed); 0 counts every sign change.

    Returns
    -------
    ndarray of shape (4,) or (n, 4), float64
        ``log_mav`` and ``log_wl`` (natural log of the signal's unit), ``zc`` and ``ssc``
        (per sample, 0..1), in the order of :data:`TIME_DOMAIN_NAMES`.

    Raises
    ------
    ValueError
        A signal that is not real, not 1-D or 2-D, shorter than 3 samples, not finite or
        constant, or a threshold fraction that is negative or not finite.
    """
    if not (math.isfinite(threshold_fraction) and threshold_fraction >= 0):
        raise ValueError(f"threshold_fraction must be a finite number >= 0; got {threshold_fraction!r}")
    array = np.asarray(signal)
    segments = _as_segments(array)
    # Every feature is homogeneous in the scale, so the work is done on the segment divided by
    # its largest magnitude: values near the float64 limits can neither overflow (a std or a
    # difference) nor underflow, and the scale comes back exactly as a term of the logarithms.
    scale = np.abs(segments).max(axis=1, keepdims=True)
    x = segments / scale
    x -= x.mean(axis=1, keepdims=True)
    step = np.diff(x, axis=1)
    crossings, turns = _crossings_and_turns(x, step, threshold_fraction * x.std(axis=1, keepdims=True))
    n_samples = segments.shape[1]
    log_mav, log_wl = _log_amplitudes(x, step, np.log(scale[:, 0]))
    features = np.column_stack([log_mav, log_wl, crossings.sum(axis=1) / n_samples, turns.sum(axis=1) / n_samples])
    return features[0] if array.ndim == 1 else features


def _log_amplitudes(x: np.ndarray, step: np.ndarray, log_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log_mav`` and ``log_wl`` of (n, N) segments ``x`` divided by their scales, whose logs are ``log_scale``."""
    # A non-constant segment has a sample off its mean, so both means are positive; the floor
    # only keeps a value lost to rounding from giving -inf.
    tiny = np.finfo(np.float64).tiny
    log_mav = np.log(np.maximum(np.abs(x).mean(axis=1), tiny)) + log_scale
    log_wl = np.log(np.maximum(np.abs(step).sum(axis=1) / x.shape[1], tiny)) + log_scale
    return log_mav, log_wl


def _crossings_and_turns(x: np.ndarray, step: np.ndarray, threshold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the (n, N) demeaned segments ``x`` cross zero and where their slope changes sign.

    ``step`` is ``np.diff(x, axis=1)``, ``threshold`` of shape (n, 1) the smallest step that counts.
    Returns boolean arrays of shape (n, N - 1), crossing between samples k and k + 1, and
    (n, N - 2), turning at sample k + 1.
    """
    big_step = np.abs(step) >= threshold
    # Signs rather than products of samples: a product of two tiny values can underflow to 0.
    sign = np.sign(x)
    crossings = (sign[:, :-1] * sign[:, 1:] < 0) & big_step
    # x[k] - x[k-1] is step[k-1], x[k] - x[k+1] is -step[k]: a turn where they share a sign.
    turns = (np.sign(step[:, :-1]) * np.sign(step[:, 1:]) < 0) & (big_step[:, :-1] | big_step[:, 1:])
    return crossings, turns


def amplitude_distribution_features(signal: np.ndarray) -> np.ndarray:
    """The shape of a segment's amplitude distribution: ``kurtosis, log_mav_rms_ratio``.

    With ``x`` the segment less its mean, ``m_p = sum_k x[k]**p / N``:

    ``kurtosis``
        ``m_4 / m_2**2 - 3``, the excess kurtosis: 0 for Gaussian noise, 3 for a Laplacian,
        -1.5 for a sinusoid; large for isolated spikes on a quiet baseline.
    ``log_mav_rms_ratio``
        ``log(mean |x| / sqrt(m_2))``: ``log sqrt(2 / pi) = -0.226`` for Gaussian noise,
        ``log(1 / sqrt 2) = -0.347`` for a Laplacian, ``log(2 sqrt 2 / pi) = -0.105`` for a
        sinusoid; lower the sparser the signal.

    Why they tell contraction levels apart: at a weak contraction few motor units fire and
    their action potentials stand out of the baseline one by one, a heavy-tailed, super-Gaussian
    signal; as force grows, recruitment and faster firing superimpose more and more trains and,
    by the central limit, the signal tends to a Gaussian (Clancy & Hogan 1999, IEEE Trans.
    Biomed. Eng. 46(6):730-739; Nazarpour et al. 2013, Brain Res. Bull. 90:88-91). Both are
    ratios of moments, so a gain, the unit, or the attenuation of fat (which scales the signal)
    leaves them unchanged, unlike the amplitude itself.

    Parameters
    ----------
    signal : ndarray of shape (N,) or (n, N)
        One raw segment, or ``n`` segments of the same length as rows; any real dtype and unit.
        Needs ``N >= 3`` finite samples, not all equal.

    Returns
    -------
    ndarray of shape (2,) or (n, 2), float64
        In the order of :data:`AMPLITUDE_NAMES`.

    Raises
    ------
    ValueError
        A signal that is not real, not 1-D or 2-D, shorter than 3 samples, not finite or constant.
    """
    array = np.asarray(signal)
    segments = _as_segments(array)
    # Ratios of moments do not depend on the scale: dividing by the largest magnitude first keeps
    # the fourth powers of values near the float64 limits from overflowing.
    x = segments / np.abs(segments).max(axis=1, keepdims=True)
    x -= x.mean(axis=1, keepdims=True)
    power = np.mean(x**2, axis=1)
    kurtosis = np.mean(x**4, axis=1) / power**2 - 3.0
    log_ratio = np.log(np.abs(x).mean(axis=1) / np.sqrt(power))
    features = np.column_stack([kurtosis, log_ratio])
    return features[0] if array.ndim == 1 else features


def segment_features(signal: np.ndarray) -> np.ndarray:
    """Hudgins' features then the amplitude distribution's of one segment or of each row, shape (6,) or (n, 6).

    What compute_hht.py stores as ``td_features``, in the order of :data:`SEGMENT_FEATURE_NAMES`; see
    :func:`hudgins_features` and :func:`amplitude_distribution_features`.
    """
    return np.concatenate([hudgins_features(signal), amplitude_distribution_features(signal)], axis=-1)
