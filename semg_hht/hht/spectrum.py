"""Hilbert-Huang transform: one 1-D sEMG segment to a (frequency x time) Hilbert spectrum matrix.

The transform has two stages (Huang et al. 1998, Proc. R. Soc. Lond. A 454:903-995):

1. **Empirical mode decomposition** (:mod:`semg_hht.hht.decomposition`: EMD, EEMD, CEEMDAN) splits
   the signal into intrinsic mode functions (IMFs), fastest oscillation first, plus a slowly
   varying residual.
2. **Hilbert spectral analysis** (here): each IMF's analytic signal gives an instantaneous
   amplitude ``a_k(n)`` and frequency ``f_k(n)``; the amplitudes are binned into a grid of
   frequency rows and time columns,

       S[r, c] = mean over samples n in column c of  sum_k a_k(n) [f_k(n) in row r]

   (``a_k**2`` for ``quantity="power"``). Rows are the linear frequencies of
   :func:`frequency_axis`; a sample whose frequency lies outside [f_min, f_max] (negative and
   above-band values included) contributes nothing. Column c holds samples
   ``floor(c N / n_time) <= n < floor((c + 1) N / n_time)``.

The matrix matches the files of the upstream tool (``PRIMOCOSMOS/sEMG-pre-processing``):
256 linear frequency rows from 20 Hz (row 0) to 450 Hz, 256 time columns over the segment,
each column the mean over the samples falling in it. Unlike that tool, instantaneous
frequencies outside the band are dropped rather than clipped into the first and last rows,
and a frequency goes to the nearest row rather than to the row below it.

Everything is homogeneous in the signal's scale: a segment in volts and the same segment in
millivolts decompose identically, and their spectra differ only by that factor (unless the
optional log scale is asked for).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from semg_hht.defaults import (
    DEFAULT_ENSEMBLES,
    DEFAULT_F_MAX,
    DEFAULT_F_MIN,
    DEFAULT_HHT_METHOD,
    DEFAULT_N_FREQ,
    DEFAULT_N_TIME,
    DEFAULT_NOISE_WIDTH,
    DEFAULT_SPECTRUM_QUANTITY,
    SPECTRUM_QUANTITIES,
)
from semg_hht.hht.axes import frequency_axis
from semg_hht.hht.checks import HHTInputError, checked_count, checked_signal
from semg_hht.hht.decomposition import Method, decompose

MIN_SAMPLES = 256
"""Shortest segment :func:`hilbert_spectrum` accepts: one sample per time column at least."""

Quantity = Literal["amplitude", "power"]


def _check_rate(fs: float) -> float:
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise HHTInputError(f"the sampling rate must be a number in Hz; got {fs!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise HHTInputError(f"the sampling rate must be a positive finite number of Hz; got {fs!r}")
    return rate


def _check_not_flat(x: np.ndarray) -> None:
    if np.ptp(x) == 0:
        what = "all zero" if x[0] == 0 else f"constant ({x[0]:g})"
        raise HHTInputError(f"the signal is {what}: there is nothing to decompose")


def instantaneous_amplitude_frequency(imfs: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Instantaneous amplitude and frequency of each IMF from its analytic signal.

    The analytic signal ``z = imf + i H[imf]`` (H the Hilbert transform, by FFT) gives the
    amplitude ``|z|`` and the frequency ``f = (fs / 2 pi) d/dn unwrap(arg z)``, the derivative
    taken by central differences (one-sided at the ends). The differences of the unwrapped
    phase are computed directly as ``arg(z[n+1] conj(z[n]))``, which is the same and faster.

    Parameters
    ----------
    imfs : array_like of shape (n_imfs, N) or (N,)
        IMFs, one per row.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    amplitude : ndarray of shape (n_imfs, N)
        In the IMFs' unit.
    frequency : ndarray of shape (n_imfs, N)
        In Hz, within [-fs/2, fs/2]. Where an IMF's phase runs backwards (amplitude near zero,
        riding waves) the value is negative or meaningless; :func:`hilbert_spectrum` drops
        every value outside its band rather than clipping it.
    """
    rate = _check_rate(fs)
    array = np.atleast_2d(np.asarray(imfs))
    if array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] < 2:
        raise HHTInputError(f"imfs must be real, of shape (n_imfs, N) with N >= 2; got {array.dtype} {array.shape}")
    if not np.isfinite(array).all():
        raise HHTInputError("imfs have non-finite values (NaN or inf)")
    from scipy.signal import hilbert  # imported here for the reason preprocessing.preprocess gives

    analytic = hilbert(array.astype(np.float64, copy=False), axis=-1)
    step = np.angle(analytic[:, 1:] * analytic[:, :-1].conj())
    increment = np.empty(array.shape)
    increment[:, 0], increment[:, -1] = step[:, 0], step[:, -1]
    increment[:, 1:-1] = 0.5 * (step[:, 1:] + step[:, :-1])
    return np.abs(analytic), increment * (rate / (2.0 * np.pi))


def _bin(
    amplitude: np.ndarray, frequency: np.ndarray, n_freq: int, n_time: int, f_min: float, f_max: float
) -> np.ndarray:
    """Pool (n_imfs, N) amplitudes into an (n_freq, n_time) grid by frequency row and time column."""
    n_samples = amplitude.shape[1]
    spacing = (f_max - f_min) / (n_freq - 1)
    in_band = (frequency >= f_min) & (frequency <= f_max)
    row = np.rint((frequency[in_band] - f_min) / spacing).astype(np.intp)
    # Column c holds samples floor(c N / n_time) <= n < floor((c + 1) N / n_time), the upstream
    # tool's pooling windows.
    edges = np.arange(n_time + 1) * n_samples // n_time
    column_of_sample = np.repeat(np.arange(n_time), np.diff(edges))
    column = np.broadcast_to(column_of_sample, amplitude.shape)[in_band]
    cells = np.bincount(row * n_time + column, weights=amplitude[in_band], minlength=n_freq * n_time)
    return cells.reshape(n_freq, n_time) / np.diff(edges)


def _checked_spectrum_settings(
    x: np.ndarray, fs: float, n_freq: int, n_time: int, f_min: float, f_max: float, quantity: Quantity
) -> tuple[float, np.ndarray, int]:
    """The sampling rate (Hz), the row frequencies (Hz) and ``n_time`` of a spectrum of the checked
    signal ``x``, or :class:`HHTInputError` naming the first setting (or signal) that cannot be used."""
    rate = _check_rate(fs)
    rows = frequency_axis(n_freq, f_min, f_max)
    n_time = checked_count("n_time", n_time, 1)
    if x.size < max(MIN_SAMPLES, n_time):
        raise HHTInputError(f"the segment has {x.size} samples; at least {max(MIN_SAMPLES, n_time)} are needed")
    if rows[-1] >= rate / 2:
        raise HHTInputError(
            f"f_max={rows[-1]:g} Hz is not below the Nyquist frequency {rate / 2:g} Hz of fs={rate:g} Hz; "
            f"use fs > {2 * rows[-1]:g} Hz or a lower f_max"
        )
    if quantity not in SPECTRUM_QUANTITIES:
        raise HHTInputError(f"quantity must be 'amplitude' or 'power'; got {quantity!r}")
    _check_not_flat(x)
    return rate, rows, n_time


def _spectrum_of_imfs(imfs: np.ndarray, fs: float, rows: np.ndarray, n_time: int, quantity: Quantity) -> np.ndarray:
    """The (len(rows), n_time) float64 Hilbert spectrum of IMFs (n_imfs, N) sampled at ``fs`` Hz."""
    if len(imfs) == 0:
        raise HHTInputError("the signal has no oscillation to decompose: it has fewer than three extrema")
    amplitude, frequency = instantaneous_amplitude_frequency(imfs, fs)
    if quantity == "power":
        amplitude = amplitude**2
    matrix = _bin(amplitude, frequency, len(rows), n_time, rows[0], rows[-1])
    if not matrix.any():
        raise HHTInputError(
            f"no instantaneous frequency of the signal falls within {rows[0]:g}-{rows[-1]:g} Hz: "
            "the matrix would be all zero"
        )
    return matrix


def hilbert_spectrum(
    signal: np.ndarray,
    fs: float,
    n_freq: int = DEFAULT_N_FREQ,
    n_time: int = DEFAULT_N_TIME,
    f_min: float = DEFAULT_F_MIN,
    f_max: float = DEFAULT_F_MAX,
    quantity: Quantity = DEFAULT_SPECTRUM_QUANTITY,
    log: bool = False,
    method: Method = DEFAULT_HHT_METHOD,
    ensembles: int = DEFAULT_ENSEMBLES,
    noise_width: float = DEFAULT_NOISE_WIDTH,
    seed: int | None = None,
) -> np.ndarray:
    """Hilbert spectrum matrix ``S`` of one segment (see the module docstring), as the upstream tool writes it.

    Parameters
    ----------
    signal : array_like of shape (N,)
        Real samples, any unit (ADC counts, volts); N >= max(256, n_time).
    fs : float
        Sampling rate in Hz; ``f_max`` must lie below the Nyquist frequency ``fs / 2``.
    n_freq, n_time : int
        Rows and columns of the matrix.
    f_min, f_max : float
        Frequencies of the first and last row in Hz.
    quantity : {"amplitude", "power"}
        Sum instantaneous amplitudes, or their squares.
    log : bool
        Return ``log1p`` of the matrix (compresses its range; no longer homogeneous in scale).
    method, ensembles, noise_width, seed
        Decomposition (:func:`~semg_hht.hht.decomposition.decompose`): plain ``"emd"`` (fast, default)
        or a noise-assisted ``"eemd"``/``"ceemdan"`` with these settings.

    Returns
    -------
    ndarray of shape (n_freq, n_time), float32
        Finite and non-negative, row 0 = ``f_min``; in the signal's unit (squared for power).

    Raises
    ------
    HHTInputError
        For a signal not 1-D, real and finite, constant (or zero), or under max(256, ``n_time``)
        samples; ``f_max >= fs / 2``; an invalid setting; no frequency in the band (a zero matrix).
    """
    x = checked_signal(signal)
    rate, rows, n_time = _checked_spectrum_settings(x, fs, n_freq, n_time, f_min, f_max, quantity)
    imfs = decompose(x, method, ensembles, noise_width, seed)
    matrix = _spectrum_of_imfs(imfs, rate, rows, n_time, quantity)
    return (np.log1p(matrix) if log else matrix).astype(np.float32)
