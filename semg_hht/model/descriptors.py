"""Named physiological descriptors of a Hilbert spectrum matrix, to sit beside the CNN's features.

The CNN encoder is blind to the matrix's overall scale, so the amplitude of the recording
(contraction level, electrode impedance, subcutaneous fat) and the classic spectral cues of
muscle physiology (frequency content, fatigue trends, activation timing) are made explicit here
as a fixed vector of numbers per matrix.

A matrix ``H`` has shape (256, 256): row i is frequency ``f_i`` in Hz (``frequency_axis()``: 20 Hz
to 450 Hz, linear), column t is one of 256 equal time columns over the segment, and ``H[i, t]``
is the mean instantaneous amplitude (signal units) falling in that cell, so ``H >= 0``. From it:

- the **marginal Hilbert spectrum** ``h(f_i) = sum_t H[i, t]`` (Huang et al. 1998), the
  amplitude contributed by each frequency over the whole segment, and its total
  ``E = sum_i h(f_i)``;
- the **time profile** ``e(t) = sum_i H[i, t]``, the amplitude envelope of the segment;
- the **per-column mean frequency** ``f_c(t) = sum_i f_i H[i, t] / e(t)``, the instantaneous mean
  frequency of the HHT literature (Xie & Wang 2006);
- the **chunk marginals**: the marginal spectrum of each of 8 equal runs of 32 columns.

The descriptors, the columns of :func:`hht_descriptors` in the order of ``DESCRIPTOR_NAMES``:

``log_total_energy``
    ``log E``, the Hilbert spectrum's total amplitude: contraction level, attenuated by
    subcutaneous fat (Huang et al. 1998; Hemingway et al. 1995; Kuiken et al. 2003).
``log_band_energy_k``, ``log_relative_band_energy_k`` (k = 0 .. 7)
    ``log B_k`` and ``log(B_k / E)`` (floored as below), ``B_k`` the marginal spectrum
    summed over rows ``32k .. 32k + 31`` (about 20-72, 74-126, ..., 398-450 Hz on the
    default axis): how the amplitude spreads over frequency, which shifts with fibre
    type, conduction velocity and fatigue (Phinyomark et al. 2012, spectral moments).
``mean_frequency_hz``, ``median_frequency_hz``, ``spectral_spread_hz``
    MNF ``sum f h / E``, MDF (the frequency splitting ``h`` into equal halves, each row a
    bin half a row spacing either side of its frequency) and the amplitude-weighted
    standard deviation of frequency ``sqrt(sum (f - MNF)^2 h / E)`` (Phinyomark et al.
    2012; Xie & Wang 2006).
``if_mean_hz``, ``if_std_hz``
    Mean and standard deviation over the active columns (those of ``active_fraction``) of ``f_c(t)``,
    each active instant counted once: the typical instantaneous frequency during the
    contraction and its variability (Xie & Wang 2006). Counting instants rather than
    energy keeps ``if_mean_hz`` from equalling MNF, which is the energy-weighted mean
    of ``f_c``; columns without energy have no ``f_c`` and are left out.
``active_fraction``, ``burst_count``, ``mean_burst_duration``, ``energy_cv``
    Activation timing from ``e(t)``; see ``_time_profile_descriptors``. Durations are
    fractions of the segment.
``mdf_slope_hz_per_segment``, ``log_energy_slope_per_segment``
    Least-squares slopes, against time in [0, 1] at the 8 chunk centres, of the chunks'
    MDF (Hz per segment; weighted by chunk energy) and of their log energy. A falling
    MDF with a rising energy is the spectral compression of fatigue (De Luca 1984;
    Merletti et al. 1990; Srhoj-Egekher et al. 2011).

Units: frequencies and their spreads and slopes are in Hz; log energies are natural logs of
signal units; durations and time are **fractions of the segment**, because the matrix files
written by other tools do not store the segment's length (for a 2 s segment, multiply by 2 s).

Every descriptor is either amplitude-bearing (``log_total_energy``, ``log_band_energy_*``: they
shift by ``log(c)`` when the matrix is multiplied by ``c``) or scale-free (all others: unchanged).
Logs of energies that can be zero are floored at ``RELATIVE_FLOOR`` (1e-12) times the matrix's
total (a floor that scales with the matrix keeps that split exact), logs of shares of the total
at 1e-12 itself, and both at the smallest positive float64 (``2.2e-308``): an all-zero matrix
gives ``log_total_energy`` and ``log_band_energy_*`` of -708.4 and ``log_relative_band_energy_*``
of -27.6. Statistics with nothing to average (a zero matrix, a chunk without energy) are 0.

References
----------
- Huang NE, Shen Z, Long SR, et al. (1998) The empirical mode decomposition and the Hilbert
  spectrum for nonlinear and non-stationary time series analysis. Proc. R. Soc. Lond. A
  454:903-995. (Hilbert spectrum, marginal spectrum.)
- Hemingway MA, Biedermann HJ, Inglis J (1995) Electromyographic recordings of paraspinal
  muscles: variations related to subcutaneous tissue thickness. Biofeedback Self Regul
  20:39-49; Kuiken TA, Lowery MM, Stoykov NS (2003) The effect of subcutaneous fat on
  myoelectric signal amplitude and cross-talk. Prosthet. Orthot. Int. 27:48-54. (Amplitude.)
- Phinyomark A, Phukpattaranont P, Limsakul C (2012) Feature reduction and selection for EMG
  signal classification. Expert Syst. Appl. 39:7420-7431. (MNF, MDF, spectral moments.)
- Xie H, Wang Z (2006) Mean frequency derived via Hilbert-Huang transform with application to
  fatigue EMG signal analysis. Comput. Methods Programs Biomed. 82:114-120. (HHT mean
  frequency, per-instant mean frequency.)
- De Luca CJ (1984) Myoelectrical manifestations of localized muscular fatigue in humans.
  Crit. Rev. Biomed. Eng. 11:251-279; Merletti R, Knaflitz M, De Luca CJ (1990) Myoelectric
  manifestations of fatigue in voluntary and electrically elicited contractions. J. Appl.
  Physiol. 69:1810-1820. (Spectral compression: MDF falls and amplitude rises with fatigue.)
- Srhoj-Egekher V, Cifrek M, Medved V (2011) The application of Hilbert-Huang transform in the
  analysis of muscle fatigue during cyclic dynamic contractions. Med. Biol. Eng. Comput.
  49:659-669. (HHT median frequency over time and its regression slope.)
- Hodges PW, Bui BH (1996) A comparison of computer-based methods for the determination of
  onset of muscle contraction using electromyography. Electroencephalogr. Clin. Neurophysiol.
  101:511-519. (Smoothed envelope and threshold for activity detection.)
"""

from __future__ import annotations

from typing import cast

import numpy as np

from semg_hht.hht.axes import frequency_axis
from semg_hht.io.matrices import MATRIX_SHAPE

N_BANDS = 8
"""Equal frequency bands of the marginal spectrum: band k is rows ``32k .. 32k + 31``."""
N_CHUNKS = 8
"""Equal time chunks (32 columns each) for the trend descriptors."""
SMOOTHING_COLUMNS = 9
"""Moving-average width for the time profile: 3.5 % of the segment, 70 ms of a 2 s one."""
ACTIVE_LEVEL = 0.5
"""A column is active where the smoothed time profile reaches this fraction of its maximum."""
RELATIVE_FLOOR = 1e-12
"""Floor for logs of energies, as a fraction of the matrix's total energy."""

_TINY = np.finfo(np.float64).tiny
# Where the largest sum of 32 cells lies in this range, float32 sums of a matrix stay far from
# overflow and from subnormals; elsewhere (or on an infinity) the batch is summed in float64.
FLOAT32_SUM_RANGE = (1e-30, 1e30)
# Above this, sums and moments of a matrix could overflow even in float64.
_MAX_CHUNK_SUM = 1e250

_RELATIVE_BAND_ENERGIES = tuple(f"log_relative_band_energy_{k}" for k in range(N_BANDS))
_FREQUENCIES = ("mean_frequency_hz", "median_frequency_hz", "spectral_spread_hz", "if_mean_hz", "if_std_hz")

DESCRIPTOR_NAMES: tuple[str, ...] = (
    "log_total_energy",
    *(f"log_band_energy_{k}" for k in range(N_BANDS)),
    *_RELATIVE_BAND_ENERGIES,
    *_FREQUENCIES,
    "active_fraction",
    "burst_count",
    "mean_burst_duration",
    "energy_cv",
    "mdf_slope_hz_per_segment",
    "log_energy_slope_per_segment",
)
"""Name of each column of ``hht_descriptors``' output, in order."""

SUBJECT_DESCRIPTORS: tuple[str, ...] = ("log_total_energy", *_RELATIVE_BAND_ENERGIES, *_FREQUENCIES)
"""The descriptors a subject's properties shape: the amplitude and how it spreads over frequency,
which subcutaneous fat (attenuation, spectral compression) and conduction velocity (spectral
scale) set. The others describe the movement: its timing, its trends, and the absolute band
energies (the total again times each share, so mostly the contraction's level). The factorised
model's gender head sees these (:mod:`semg_hht.model.feature_sets`)."""


def hht_descriptors(matrices: np.ndarray, frequency: np.ndarray | None = None) -> np.ndarray:
    """Physiological descriptors of Hilbert spectrum matrices, one row per matrix.

    Parameters
    ----------
    matrices : ndarray of shape (n, 256, 256) or (256, 256)
        Non-negative, finite Hilbert spectra (rows = frequency, columns = time), any real dtype.
        float32 input is summed in float32 (relative error a few 1e-6, far below any
        physiological effect); other dtypes, and float32 batches whose largest sum of 32 cells
        lies outside 1e-30 .. 1e30 (near float32's overflow or subnormals), in float64.
    frequency : ndarray of shape (256,), optional
        Frequency of each row in Hz, strictly increasing; default ``frequency_axis()``.

    Returns
    -------
    ndarray of shape (n, len(DESCRIPTOR_NAMES)) or (len(DESCRIPTOR_NAMES),), float64
        Always finite; the columns of ``DESCRIPTOR_NAMES``, in its order (see the module docstring).

    Raises
    ------
    ValueError
        On a wrong shape or dtype, a negative, NaN or infinite value, a sum of 32 cells above
        1e250 (which float64 sums could not carry), or a frequency axis that is not finite and
        strictly increasing.
    """
    table, _ = hht_descriptors_and_time_profile(matrices, frequency)
    return table


def hht_descriptors_and_time_profile(
    matrices: np.ndarray, frequency: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hht_descriptors` and the time profile ``e(t) = sum_i H[i, t]`` they were computed from.

    The envelope's descriptors (:func:`semg_hht.model.envelope.envelope_from_profile`) take the
    profile from here, so that a model of both blocks sums each matrix over frequency once.

    Returns
    -------
    descriptors : ndarray of shape (n, len(DESCRIPTOR_NAMES)) or (len(DESCRIPTOR_NAMES),), float64
    profile : ndarray of shape (n, 256) or (256,), float64
        Non-negative and finite.

    Raises
    ------
    ValueError
        As :func:`hht_descriptors`.
    """
    stack, single = checked_matrices(matrices)
    axis = _checked_frequency(frequency)
    if stack.shape[0] == 0:
        return np.empty((0, len(DESCRIPTOR_NAMES))), np.empty((0, MATRIX_SHAPE[1]))
    chunks, column_energy, column_moment = _reductions(stack, axis)
    values = {
        **_spectral_descriptors(np.einsum("nfc->nf", chunks), axis),
        **_time_profile_descriptors(column_energy, column_moment),
        **_trend_descriptors(chunks, axis),
    }
    table = np.column_stack([values[name] for name in DESCRIPTOR_NAMES])
    return (table[0], column_energy[0]) if single else (table, column_energy)


def checked_matrices(matrices: np.ndarray) -> tuple[np.ndarray, bool]:
    """The input as a C-contiguous (n, 256, 256) float32/float64 stack, and whether it was one matrix."""
    array = np.asarray(matrices)
    expected = MATRIX_SHAPE
    if array.ndim not in (2, 3) or array.shape[-2:] != expected:
        raise ValueError(f"matrices must have shape (n, 256, 256) or (256, 256); got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"matrices must hold real numbers; got dtype {array.dtype}")
    single = array.ndim == 2
    stack = array[None] if single else array
    if stack.size == 0:
        return stack, single
    # The minimum propagates NaN; infinities and overflow show in the sums (``_reductions``).
    low = float(stack.min())
    if np.isnan(low):
        raise ValueError("matrices contain NaN")
    if low < 0:
        raise ValueError(f"matrices must be non-negative (a Hilbert spectrum holds amplitudes); smallest value {low}")
    dtype = np.float32 if stack.dtype == np.float32 else np.float64
    return np.ascontiguousarray(stack, dtype=dtype), single


def _checked_frequency(frequency: np.ndarray | None) -> np.ndarray:
    """The frequency axis in Hz as float64 of shape (256,), checked finite and strictly increasing."""
    if frequency is None:
        return frequency_axis()
    axis = np.asarray(frequency, dtype=np.float64)
    if axis.shape != (MATRIX_SHAPE[0],):
        raise ValueError(f"frequency must have shape (256,), one value per row; got shape {axis.shape}")
    if not np.all(np.isfinite(axis)) or not np.all(np.diff(axis) > 0):
        raise ValueError("frequency must be finite and strictly increasing (Hz per row)")
    return axis


def _reductions(stack: np.ndarray, frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk marginals, time profile and column moment, checked finite and far from overflow.

    Raises
    ------
    ValueError
        Where a matrix holds an infinity, or a sum of 32 cells exceeds 1e250.
    """
    with np.errstate(over="ignore"):  # float32 overflow is caught below and summed again
        sums = _sums(stack, frequency)
    largest = float(sums[0].max())
    if stack.dtype == np.float32 and not FLOAT32_SUM_RANGE[0] <= largest <= FLOAT32_SUM_RANGE[1]:
        sums = _sums(stack.astype(np.float64), frequency)
        largest = float(sums[0].max())
    if not largest <= _MAX_CHUNK_SUM:
        raise ValueError(f"matrices must be finite, with sums of 32 cells up to {_MAX_CHUNK_SUM:g}; got {largest}")
    return sums


def _sums(stack: np.ndarray, frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The only passes over the full matrices: sums in the stack's dtype, memory-bound.

    Everything is einsum or elementwise, never a BLAS product: BLAS's worker threads spin
    after a call and took a core from the CNN encoder running between batches (measured:
    the encoder 65 -> 46 files/s with ``cnn+hht``).

    Returns, in float64: the chunk marginals ``sum_{t in chunk c} H[i, t]`` of shape
    (n, 256, N_CHUNKS), the time profile ``e(t)`` of shape (n, 256) and the column moment
    ``sum_i f_i H[i, t]`` of shape (n, 256).
    """
    n, n_freq, n_time = stack.shape
    per_chunk = n_time // N_CHUNKS
    chunks = np.einsum("rc->r", stack.reshape(-1, per_chunk))
    weights = np.stack([np.ones(n_freq), frequency]).astype(stack.dtype)
    # einsum streams the matrices faster here than matmul's 2-row products per matrix.
    columns = np.einsum("kf,nft->nkt", weights, stack).astype(np.float64)
    return chunks.reshape(n, n_freq, N_CHUNKS).astype(np.float64), columns[:, 0], columns[:, 1]


def _spectral_descriptors(marginal: np.ndarray, frequency: np.ndarray) -> dict[str, np.ndarray]:
    """Energy, band energies, MNF, MDF and spread of marginal spectra ``h`` of shape (n, 256)."""
    total = marginal.sum(axis=-1)
    log_total = np.log(total + _TINY)
    # The spectrum as a distribution over frequency keeps the moments free of overflow.
    density = marginal / (total[:, None] + _TINY)
    bands = marginal.reshape(marginal.shape[0], N_BANDS, -1).sum(axis=-1)
    log_bands = np.log(bands + RELATIVE_FLOOR * total[:, None] + _TINY)
    log_shares = np.log(bands / (total[:, None] + _TINY) + RELATIVE_FLOOR)
    mean = np.einsum("nf,f->n", density, frequency)
    spread = np.sqrt(np.einsum("nf,nf->n", density, (frequency - mean[:, None]) ** 2))
    values = {
        "log_total_energy": log_total,
        "mean_frequency_hz": mean,
        "median_frequency_hz": _median_frequency(marginal, frequency),
        "spectral_spread_hz": spread,
    }
    for k in range(N_BANDS):
        values[f"log_band_energy_{k}"] = log_bands[:, k]
        values[f"log_relative_band_energy_{k}"] = log_shares[:, k]
    return values


def _median_frequency(spectra: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Median frequency in Hz of non-negative spectra over the last axis, 0 where a spectrum is empty.

    Row i is taken as a bin of uniform density from the midpoint with row i - 1 to the midpoint
    with row i + 1 (half a spacing beyond the first and last rows), so that the MDF moves
    continuously with the spectrum and a single row's MDF is its own frequency.

    Parameters
    ----------
    spectra : ndarray of shape (..., F)
    frequency : ndarray of shape (F,), strictly increasing

    Returns
    -------
    ndarray of shape (...,), float64
        ``edge_r + width_r * (E / 2 - C_{r-1}) / h_r``, with ``C`` the cumulative spectrum and
        ``r`` the first row where ``C_r >= E / 2``.
    """
    mid = (frequency[1:] + frequency[:-1]) / 2
    edges = np.concatenate([[2 * frequency[0] - mid[0]], mid, [2 * frequency[-1] - mid[-1]]])
    cumulative = np.cumsum(spectra, axis=-1)
    half = cumulative[..., -1:] / 2
    row = np.argmax(cumulative >= half, axis=-1)[..., None]
    below = np.take_along_axis(cumulative, row, axis=-1) - np.take_along_axis(spectra, row, axis=-1)
    height = np.take_along_axis(spectra, row, axis=-1)
    fraction = np.divide(half - below, height, out=np.zeros_like(half), where=height > 0)
    median = edges[row] + np.diff(edges)[row] * fraction
    return np.where(half > 0, median, 0.0)[..., 0]


def _time_profile_descriptors(energy: np.ndarray, moment: np.ndarray) -> dict[str, np.ndarray]:
    """Activation timing and instantaneous frequency from the time profile ``e(t)``, shape (n, 256).

    ``e(t)`` is smoothed by a centred moving average of ``SMOOTHING_COLUMNS`` columns (fewer at
    the edges, averaging the columns there are), because the Hilbert amplitude of an
    interference pattern of motor-unit potentials flickers from column to column and would
    otherwise break one contraction into many runs. A column is active where the smoothed
    profile is at least half its maximum: a threshold relative to the segment's own peak is
    independent of gain and fat, and needs no rest baseline inside the segment (which Hodges &
    Bui 1996's baseline + k SD rule needs); half the maximum is the full-width-at-half-maximum
    convention for a burst's duration. For a rectangular burst the smoothing ramps cross half
    height at the burst's own edges, so its duration is kept.

    ``active_fraction`` is the share of active columns (0 .. 1); ``burst_count`` the number of
    runs of active columns (tonic contraction 1, phasic activity more); ``mean_burst_duration``
    ``active_fraction / burst_count``, a fraction of the segment; ``energy_cv`` the coefficient
    of variation ``std(e) / mean(e)`` of the raw profile (0 for a steady contraction).
    """
    smoothed = moving_average(energy, SMOOTHING_COLUMNS)
    peak = smoothed.max(axis=-1, keepdims=True)
    active = (smoothed >= ACTIVE_LEVEL * peak) & (smoothed > 0)
    fraction = active.mean(axis=-1)
    bursts = active[:, 0] + (active[:, 1:] & ~active[:, :-1]).sum(axis=-1)
    # Relative to its mean, so that squaring a large profile cannot overflow.
    relative = energy / (energy.mean(axis=-1, keepdims=True) + _TINY)
    values = {
        "active_fraction": fraction,
        "burst_count": bursts.astype(np.float64),
        "mean_burst_duration": fraction / np.maximum(bursts, 1),
        "energy_cv": relative.std(axis=-1),
    }
    return values | _instantaneous_frequency(energy, moment, active)


def moving_average(profile: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over the last axis of (n, T), the window cut to the array at its ends."""
    half, n_time = width // 2, profile.shape[-1]
    padded = np.pad(profile, ((0, 0), (half, half)))
    ones = np.pad(np.ones(n_time), half)
    # Shifted slices summed in turn: exact for non-negative values, unlike differences of a cumsum.
    sums = sum(padded[:, k : k + n_time] for k in range(width))
    # sum() of arrays is an array; mypy types it as ndarray | int.
    return cast(np.ndarray, sums / sum(ones[k : k + n_time] for k in range(width)))


def _instantaneous_frequency(energy: np.ndarray, moment: np.ndarray, active: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and std in Hz of ``f_c(t) = moment / energy`` over active columns that have energy."""
    has_energy = energy > 0
    centroid = np.divide(moment, energy, out=np.zeros_like(energy), where=has_energy)
    used = active & has_energy
    count = np.maximum(used.sum(axis=-1), 1)
    mean = np.where(used, centroid, 0.0).sum(axis=-1) / count
    deviation = np.where(used, centroid - mean[:, None], 0.0)
    return {"if_mean_hz": mean, "if_std_hz": np.sqrt((deviation**2).sum(axis=-1) / count)}


def _trend_descriptors(chunks: np.ndarray, frequency: np.ndarray) -> dict[str, np.ndarray]:
    """MDF and log-energy slopes over the chunk marginals ``chunks`` of shape (n, 256, N_CHUNKS)."""
    spectra = chunks.transpose(0, 2, 1)
    energy = np.einsum("nfc->nc", chunks)
    total = energy.sum(axis=-1, keepdims=True)
    # Chunks without energy have no MDF; weighting by energy also quiets near-silent chunks.
    weights = energy / (total + _TINY)
    log_energy = np.log(energy + RELATIVE_FLOOR * total + _TINY)
    return {
        "mdf_slope_hz_per_segment": _weighted_slope(_median_frequency(spectra, frequency), weights),
        "log_energy_slope_per_segment": _weighted_slope(log_energy, np.ones_like(log_energy)),
    }


def _weighted_slope(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares slope of ``values`` against time at the centres of K equal chunks.

    Parameters
    ----------
    values, weights : ndarray of shape (n, K)
        ``weights >= 0``; a row whose weight sits in one chunk has no slope and gets 0.

    Returns
    -------
    ndarray of shape (n,), float64
        ``sum w (t - t_w)(y - y_w) / sum w (t - t_w)^2`` with ``t_k = (k + 1/2) / K`` (the
        segment runs from 0 to 1, so the slope is a change per segment) and ``t_w``, ``y_w``
        the weighted means.
    """
    t = (np.arange(values.shape[-1]) + 0.5) / values.shape[-1]
    total = weights.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    dt = t - (weights * t).sum(axis=-1, keepdims=True) / safe
    dy = values - (weights * values).sum(axis=-1, keepdims=True) / safe
    variance = (weights * dt**2).sum(axis=-1) / safe[:, 0]
    covariance = (weights * dt * dy).sum(axis=-1) / safe[:, 0]
    # Below this the weight sits in one chunk (rounding only): 1e-9 is far under the 3.9e-3
    # variance of two adjacent chunks of equal weight.
    return np.divide(covariance, variance, out=np.zeros_like(variance), where=variance > 1e-9)
