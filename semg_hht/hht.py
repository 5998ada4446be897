"""Hilbert-Huang transform: one 1-D sEMG segment to a (frequency x time) Hilbert spectrum matrix.

The transform has two stages (Huang et al. 1998, Proc. R. Soc. Lond. A 454:903-995):

1. **Empirical mode decomposition** (EMD) splits the signal into intrinsic mode functions
   (IMFs), fastest oscillation first, plus a slowly varying residual. The noise-assisted
   variants EEMD (Wu & Huang 2009) and CEEMDAN (Torres et al. 2011, in the improved form of
   Colominas et al. 2014) are there for users who want a decomposition like the upstream
   preprocessing tool's (CEEMDAN, 30 ensembles); they cost about ``ensembles`` times as much.
2. **Hilbert spectral analysis**: each IMF's analytic signal gives an instantaneous amplitude
   and frequency; the amplitudes are binned into a grid of frequency rows and time columns.

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
from scipy.linalg.lapack import dgtsv
from scipy.signal import hilbert

DEFAULT_N_FREQ = 256
"""Frequency rows of the spectrum matrix."""
DEFAULT_N_TIME = 256
"""Time columns of the spectrum matrix."""
DEFAULT_F_MIN = 20.0
"""Frequency of row 0 in Hz: below it lie motion artefacts and baseline drift."""
DEFAULT_F_MAX = 450.0
"""Frequency of the last row in Hz: the upper edge of surface-EMG content."""
MIN_SAMPLES = 256
"""Shortest segment :func:`hilbert_spectrum` accepts: one sample per time column at least."""
DEFAULT_MAX_SIFTS = 10
"""Cap on sifting iterations per IMF; more mostly flattens the IMF's amplitude (Wang et al. 2010)."""
DEFAULT_SD_THRESHOLD = 0.2
"""Sifting stops once the Cauchy-type SD (see :func:`emd`) falls below this."""
DEFAULT_ENSEMBLES = 30
"""Noise realisations averaged by EEMD and CEEMDAN; 30 is what the upstream tool uses."""
DEFAULT_NOISE_WIDTH = 0.2
"""Standard deviation of the added noise relative to the signal's (Wu & Huang 2009)."""
MIRRORED_EXTREMA = 2
"""Extrema of each kind reflected beyond each end so that the envelopes do not swing there."""
NEGLIGIBLE_RESIDUAL = 1e-10
"""Residual std, relative to the signal's, below which only rounding noise is left to decompose."""

Method = Literal["emd", "eemd", "ceemdan"]
Extrema = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Positions (samples, ascending) and values of the maxima, then of the minima."""
Quantity = Literal["amplitude", "power"]


class HHTInputError(ValueError):
    """A signal or parameter the transform cannot use; ``str()`` names the problem."""


# --- input checks -------------------------------------------------------------------------


def _as_signal(signal: np.ndarray) -> np.ndarray:
    """Return ``signal`` as a finite 1-D float64 array, or raise :class:`HHTInputError`."""
    array = np.asarray(signal)
    if array.dtype.kind not in "iuf":
        raise HHTInputError(f"the signal must be real numbers; got dtype {array.dtype}")
    if array.ndim != 1:
        raise HHTInputError(f"the signal must be 1-D; got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise HHTInputError(
            f"the signal has {int(bad.sum())} non-finite sample(s) (NaN or inf), the first at index {first}"
        )
    return array


def _check_not_flat(x: np.ndarray) -> None:
    if np.ptp(x) == 0:
        what = "all zero" if x[0] == 0 else f"constant ({x[0]:g})"
        raise HHTInputError(f"the signal is {what}: there is nothing to decompose")


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HHTInputError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_rate(fs: float) -> float:
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise HHTInputError(f"the sampling rate must be a number in Hz; got {fs!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise HHTInputError(f"the sampling rate must be a positive finite number of Hz; got {fs!r}")
    return rate


# --- empirical mode decomposition ---------------------------------------------------------


def _extrema(x: np.ndarray) -> Extrema:
    """Positions (in samples, fractional) and values of the interior local maxima and minima.

    Extrema are refined by parabolas (Rato et al. 2008): at a few samples per cycle, envelopes
    through the sampled peaks would wobble with the sampling grid, and sifting would imprint
    that wobble on the IMF. A strict extremum takes the vertex of the parabola through it and
    its two neighbours. A flat run counts once, at its middle, and only if the signal turns
    there. A pair of equal samples is a smooth peak sampled symmetrically: it gets the mean of
    the vertices of the parabolas through either sample of the pair and its outer neighbour,
    the value it would get were the two one rounding error apart. A longer run is a flat top
    (clipping, saturation, a coarse ADC) and keeps its value, so that clipped peaks give
    level envelopes.
    """
    slope = np.diff(x)
    moving = np.flatnonzero(slope)
    rising = slope[moving] > 0
    turn = np.flatnonzero(rising[1:] != rising[:-1])
    # The extremum is the run of equal samples between the last step before the turn and the
    # first step after it; usually a single sample.
    first = moving[turn] + 1
    last = moving[turn + 1]
    before, at, after = x[first - 1], x[first], x[last + 1]
    run = last - first
    single = run == 0
    curvature = np.where(single, before - 2.0 * at + after, 1.0)
    offset = np.where(single, 0.5 * (before - after) / curvature, 0.0)
    position = 0.5 * (first + last) + offset
    value = np.where(single, at - 0.25 * (before - after) * offset, at)
    value = np.where(run == 1, at + (2.0 * at - before - after) / 16.0, value)
    is_max = rising[turn]
    return position[is_max], value[is_max], position[~is_max], value[~is_max]


def _left_mirror(start_value: float, extrema: Extrema) -> Extrema:
    """Knots reflected beyond the start of the signal, for the upper and the lower envelope.

    Rilling, Flandrin & Goncalves (2003): the extrema nearest the start are reflected about the
    first extremum, or about the start itself when the signal there lies beyond the first
    extremum of the opposite kind (the start then counts as such an extremum). Positions come
    out ascending and at most 0, in the layout of :func:`_extrema`.
    """
    max_t, max_v, min_t, min_v = extrema
    n = MIRRORED_EXTREMA
    if max_t[0] < min_t[0]:
        if start_value > min_v[0]:
            axis, up_t, up_v, lo_t, lo_v = max_t[0], max_t[1 : n + 1], max_v[1 : n + 1], min_t[:n], min_v[:n]
        else:
            axis, up_t, up_v = 0.0, max_t[:n], max_v[:n]
            lo_t, lo_v = np.concatenate(([0.0], min_t[: n - 1])), np.concatenate(([start_value], min_v[: n - 1]))
    elif start_value < max_v[0]:
        axis, up_t, up_v, lo_t, lo_v = min_t[0], max_t[:n], max_v[:n], min_t[1 : n + 1], min_v[1 : n + 1]
    else:
        axis, lo_t, lo_v = 0.0, min_t[:n], min_v[:n]
        up_t, up_v = np.concatenate(([0.0], max_t[: n - 1])), np.concatenate(([start_value], max_v[: n - 1]))
    if axis > 0 and (up_t.size == 0 or lo_t.size == 0 or 2 * axis - max(up_t[-1], lo_t[-1]) > 0):
        # Reflected about the first extremum, the knots would not reach past the start.
        axis, up_t, up_v, lo_t, lo_v = 0.0, max_t[:n], max_v[:n], min_t[:n], min_v[:n]
    return 2 * axis - up_t[::-1], up_v[::-1], 2 * axis - lo_t[::-1], lo_v[::-1]


def _natural_spline_second_derivatives(knots: list[np.ndarray], values: list[np.ndarray]) -> list[np.ndarray]:
    """Second derivatives at the knots of natural cubic splines, all systems in one LAPACK call.

    Each spline's interior equations form a symmetric tridiagonal system; the systems are
    stacked into one block-diagonal tridiagonal matrix (zero couplings between blocks), so one
    call serves both envelopes.
    """
    lower, diagonal, rhs, sizes = [], [], [], []
    for t, y in zip(knots, values, strict=True):
        h = np.diff(t)
        diagonal.append(2.0 * (h[:-1] + h[1:]))
        rhs.append(6.0 * np.diff(np.diff(y) / h))
        lower.append(np.append(h[1:-1], 0.0))
        sizes.append(t.size - 2)
    off_diagonal = np.concatenate(lower)[:-1]
    *_, solution, info = dgtsv(off_diagonal, np.concatenate(diagonal), off_diagonal, np.concatenate(rhs))
    if info != 0:  # pragma: no cover - the matrix is strictly diagonally dominant
        raise RuntimeError(f"spline system is singular (LAPACK dgtsv info={info})")
    pieces = np.split(solution.ravel(), np.cumsum(sizes)[:-1])
    return [np.concatenate(([0.0], piece, [0.0])) for piece in pieces]


def _spline_on_samples(t: np.ndarray, y: np.ndarray, m: np.ndarray, n_samples: int) -> np.ndarray:
    """Evaluate the cubic spline (knots ``t``, values ``y``, second derivatives ``m``) at 0..n-1."""
    h = np.diff(t)
    c1 = np.diff(y) / h - h * (2.0 * m[:-1] + m[1:]) / 6.0
    c2 = m[:-1] / 2.0
    c3 = np.diff(m) / (6.0 * h)
    # Sample n lies in knot interval i when t[i] <= n < t[i + 1]. The outer knots lie beyond
    # the ends; should a reflection fall short, the outer intervals extrapolate.
    edges = np.clip(np.ceil(t), 0, n_samples).astype(np.intp)
    edges[0], edges[-1] = 0, n_samples
    interval = np.repeat(np.arange(t.size - 1), np.diff(edges))
    local = np.arange(n_samples) - t[interval]
    return y[:-1][interval] + local * (c1[interval] + local * (c2[interval] + local * c3[interval]))


def _envelope_mean(x: np.ndarray, extrema: Extrema) -> np.ndarray:
    """Mean of the upper and lower cubic-spline envelopes of ``x``, ends mirrored.

    Solving for both splines at once and evaluating them at the samples by ``np.repeat`` takes
    about half the time of two ``scipy.interpolate.CubicSpline`` fits and evaluations (measured
    at 2000 and 4000 samples; ``make_interp_spline`` is slower still), with the same result to
    1e-15. Sifting spends most of its time here.
    """
    last = x.size - 1
    max_t, max_v, min_t, min_v = extrema
    left = _left_mirror(x[0], extrema)
    # The end, seen from the reversed signal, is a start.
    right = _left_mirror(x[-1], (last - max_t[::-1], max_v[::-1], last - min_t[::-1], min_v[::-1]))
    knots_upper = np.concatenate((left[0], max_t, last - right[0][::-1]))
    values_upper = np.concatenate((left[1], max_v, right[1][::-1]))
    knots_lower = np.concatenate((left[2], min_t, last - right[2][::-1]))
    values_lower = np.concatenate((left[3], min_v, right[3][::-1]))
    m_upper, m_lower = _natural_spline_second_derivatives([knots_upper, knots_lower], [values_upper, values_lower])
    upper = _spline_on_samples(knots_upper, values_upper, m_upper, x.size)
    lower = _spline_on_samples(knots_lower, values_lower, m_lower, x.size)
    return 0.5 * (upper + lower)


def _enough_extrema(extrema: Extrema) -> bool:
    # Three extrema (maxima and minima alternate, so one of each kind at least) make the
    # fewest that hold an oscillation; with fewer the signal is monotonic or a single swing.
    return extrema[0].size + extrema[2].size >= 3


def _is_trend(residual: np.ndarray, signal_std: float) -> bool:
    """Whether the residual has no oscillation left: too few extrema, or only rounding noise."""
    return residual.std() <= NEGLIGIBLE_RESIDUAL * signal_std or not _enough_extrema(_extrema(residual))


def _sift(x: np.ndarray, max_sifts: int, sd_threshold: float) -> np.ndarray:
    """One IMF of ``x`` (which must have enough extrema) by the sifting process."""
    h = x
    for _ in range(max_sifts):
        extrema = _extrema(h)
        if not _enough_extrema(extrema):
            break
        mean = _envelope_mean(h, extrema)
        h = h - mean
        energy = float(np.dot(h, h))
        if energy == 0.0 or float(np.dot(mean, mean)) < sd_threshold * energy:
            break
    return h


def _default_max_imfs(n_samples: int) -> int:
    # Each IMF holds roughly half the frequency of the one before (Flandrin et al. 2004).
    return max(1, int(np.log2(n_samples)))


def _emd(x: np.ndarray, max_imfs: int, max_sifts: int, sd_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """EMD of a checked float64 signal; see :func:`emd`."""
    # Sift the demeaned signal: an offset (raw ADC counts sit near 32768) would cost precision
    # in every envelope. The mean ends up in the residual.
    residual = x - x.mean()
    signal_std = residual.std()
    imfs = []
    while len(imfs) < max_imfs and not _is_trend(residual, signal_std):
        imf = _sift(residual, max_sifts, sd_threshold)
        imfs.append(imf)
        residual = residual - imf
    stacked = np.array(imfs) if imfs else np.empty((0, x.size))
    return stacked, x - stacked.sum(axis=0)


def emd(
    signal: np.ndarray,
    max_imfs: int | None = None,
    max_sifts: int = DEFAULT_MAX_SIFTS,
    sd_threshold: float = DEFAULT_SD_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical mode decomposition of a 1-D signal into IMFs and a residual.

    Sifting (Huang et al. 1998) repeatedly subtracts the mean of the upper and lower envelopes,
    natural cubic splines through the local maxima and minima. At each end, the two nearest
    extrema of each kind are mirrored beyond it (Rilling et al. 2003) so that the splines do not
    diverge there.

    Extrema are located to a fraction of a sample by parabolic interpolation (Rato et al. 2008).

    **Stopping rule**: the Cauchy-type SD criterion of Huang et al. (1998), with energies
    summed over the segment rather than compared sample by sample. Sifting of one IMF stops
    after iteration k when ``SD_k = ||m_k||^2 / ||h_k||^2 < sd_threshold``, where ``m_k`` is the
    envelope mean removed and ``h_k`` the candidate IMF after removing it; or after
    ``max_sifts`` iterations; or when the candidate has fewer than three extrema. SD is a ratio
    of energies, so the rule does not depend on the signal's scale. Decomposition stops after
    ``max_imfs`` IMFs, or when the residual has fewer than three extrema (it is monotonic or a
    single swing) or a standard deviation below ``NEGLIGIBLE_RESIDUAL`` times the signal's
    (only rounding noise is left).

    Parameters
    ----------
    signal : array_like of shape (N,)
        Real samples, any unit; N >= 3.
    max_imfs : int, optional
        Most IMFs to extract; default ``floor(log2(N))``.
    max_sifts : int
        Cap on sifting iterations per IMF.
    sd_threshold : float
        Threshold of the SD criterion; smaller sifts more.

    Returns
    -------
    imfs : ndarray of shape (n_imfs, N)
        The IMFs, highest frequency first, in the signal's unit; ``n_imfs`` may be 0.
    residual : ndarray of shape (N,)
        What is left, including the signal's mean. ``imfs.sum(axis=0) + residual`` equals the
        signal to floating-point precision.

    Raises
    ------
    HHTInputError
        If the signal is not 1-D, not real, has non-finite samples or fewer than 3 samples.
    """
    x = _as_signal(signal)
    if x.size < 3:
        raise HHTInputError(f"the signal needs at least 3 samples; got {x.size}")
    max_imfs = _default_max_imfs(x.size) if max_imfs is None else _check_count("max_imfs", max_imfs, 1)
    max_sifts = _check_count("max_sifts", max_sifts, 1)
    if not sd_threshold > 0:
        raise HHTInputError(f"sd_threshold must be positive; got {sd_threshold!r}")
    return _emd(x, max_imfs, max_sifts, float(sd_threshold))


def _eemd(x: np.ndarray, max_imfs: int, ensembles: int, noise_width: float, rng: np.random.Generator) -> np.ndarray:
    """Ensemble EMD (Wu & Huang 2009): mean IMFs of EMDs of the signal plus white noise.

    IMF k is averaged over all realisations, counting zero for those with fewer IMFs.
    """
    total = np.zeros((max_imfs, x.size))
    n_imfs = 0
    scale = noise_width * x.std()
    for _ in range(ensembles):
        imfs, _ = _emd(x + scale * rng.standard_normal(x.size), max_imfs, DEFAULT_MAX_SIFTS, DEFAULT_SD_THRESHOLD)
        total[: len(imfs)] += imfs
        n_imfs = max(n_imfs, len(imfs))
    return total[:n_imfs] / ensembles


def _ceemdan(x: np.ndarray, max_imfs: int, ensembles: int, noise_width: float, rng: np.random.Generator) -> np.ndarray:
    """Improved CEEMDAN (Colominas, Schlotthauer & Torres 2014).

    With ``r_0`` the demeaned signal, ``E_k(w)`` the k-th EMD mode of white noise ``w`` and
    ``M(y) = y - E_1(y)`` the local mean, stage k (from 1) computes
    ``r_k = mean_i M(r_{k-1} + b E_k(w_i))`` and IMF k ``= r_{k-1} - r_k``, the noise mode
    scaled to standard deviation ``noise_width * std(r_{k-1})``. Averaging local means rather
    than first IMFs (Torres et al. 2011) keeps the noise's own mean out of the IMFs and avoids
    the spurious early modes of the original CEEMDAN.
    """
    # The modes of each noise realisation, computed once; row k - 1 is E_k(w).
    noise_modes = [
        _emd(noise, max_imfs, DEFAULT_MAX_SIFTS, DEFAULT_SD_THRESHOLD)[0]
        for noise in rng.standard_normal((ensembles, x.size))
    ]
    residual = x - x.mean()
    signal_std = residual.std()
    imfs = []
    while len(imfs) < max_imfs and not _is_trend(residual, signal_std):
        level = len(imfs)
        target = noise_width * residual.std()
        local_mean = np.zeros(x.size)
        for modes in noise_modes:
            # A realisation with no mode this slow adds nothing.
            noisy = residual + modes[level] * (target / modes[level].std()) if level < len(modes) else residual
            local_mean += noisy
            # A noisy residual with too few extrema is its own local mean.
            if _enough_extrema(_extrema(noisy)):
                local_mean -= _sift(noisy, DEFAULT_MAX_SIFTS, DEFAULT_SD_THRESHOLD)
        local_mean /= ensembles
        imfs.append(residual - local_mean)
        residual = local_mean
    return np.array(imfs) if imfs else np.empty((0, x.size))


def ensemble_emd(
    signal: np.ndarray,
    method: Literal["eemd", "ceemdan"] = "ceemdan",
    ensembles: int = DEFAULT_ENSEMBLES,
    noise_width: float = DEFAULT_NOISE_WIDTH,
    seed: int | None = None,
    max_imfs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-assisted EMD: EEMD or CEEMDAN.

    ``"eemd"`` (Wu & Huang 2009) averages the IMFs of ``ensembles`` EMDs of the signal plus
    independent white noise of standard deviation ``noise_width * std(signal)``. ``"ceemdan"``
    (the improved CEEMDAN of Colominas et al. 2014) extracts one IMF at a time: the current
    residual minus the average local mean (residual minus first IMF) of the residual plus the
    matching EMD mode of each noise realisation, scaled to ``noise_width * std(residual)``. It
    leaves less noise in the IMFs than EEMD. Sifting follows :func:`emd` with its default
    stopping rule. Noise is relative to the signal, so the result does not depend on the
    signal's scale.

    Parameters
    ----------
    signal : array_like of shape (N,)
        Real samples, any unit; N >= 3.
    method : {"eemd", "ceemdan"}
        Which ensemble method.
    ensembles : int
        Number of noise realisations; cost grows linearly with it.
    noise_width : float
        Standard deviation of the added noise relative to the signal (EEMD) or the current
        residual (CEEMDAN).
    seed : int, optional
        Seed of the noise; the same seed gives the same result.
    max_imfs : int, optional
        Most IMFs to extract; default ``floor(log2(N))``.

    Returns
    -------
    imfs : ndarray of shape (n_imfs, N)
        The IMFs, highest frequency first, in the signal's unit.
    residual : ndarray of shape (N,)
        ``signal - imfs.sum(axis=0)``, so the parts reconstruct the signal exactly.

    Raises
    ------
    HHTInputError
        For the input problems listed in :func:`emd`, an unknown method, or bad ensemble settings.
    """
    x = _as_signal(signal)
    if x.size < 3:
        raise HHTInputError(f"the signal needs at least 3 samples; got {x.size}")
    ensembles = _check_count("ensembles", ensembles, 1)
    if not (np.isfinite(noise_width) and noise_width > 0):
        raise HHTInputError(f"noise_width must be a positive number; got {noise_width!r}")
    max_imfs = _default_max_imfs(x.size) if max_imfs is None else _check_count("max_imfs", max_imfs, 1)
    rng = np.random.default_rng(seed)
    if method == "eemd":
        imfs = _eemd(x, max_imfs, ensembles, float(noise_width), rng)
    elif method == "ceemdan":
        imfs = _ceemdan(x, max_imfs, ensembles, float(noise_width), rng)
    else:
        raise HHTInputError(f"method must be 'eemd' or 'ceemdan'; got {method!r}")
    return imfs, x - imfs.sum(axis=0)


# --- Hilbert spectral analysis ------------------------------------------------------------


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
    analytic = hilbert(array.astype(np.float64, copy=False), axis=-1)
    step = np.angle(analytic[:, 1:] * analytic[:, :-1].conj())
    increment = np.empty(array.shape)
    increment[:, 0], increment[:, -1] = step[:, 0], step[:, -1]
    increment[:, 1:-1] = 0.5 * (step[:, 1:] + step[:, :-1])
    return np.abs(analytic), increment * (rate / (2.0 * np.pi))


def frequency_axis(
    n_freq: int = DEFAULT_N_FREQ, f_min: float = DEFAULT_F_MIN, f_max: float = DEFAULT_F_MAX
) -> np.ndarray:
    """Frequency of each spectrum row in Hz: ``n_freq`` linearly spaced values, row 0 = ``f_min``.

    Row i collects the instantaneous frequencies within half a row spacing of its frequency,
    cut to [f_min, f_max].

    Returns
    -------
    ndarray of shape (n_freq,), float64
        ``np.linspace(f_min, f_max, n_freq)``, the ``frequency`` array of the upstream files.
    """
    n_freq = _check_count("n_freq", n_freq, 2)
    low, high = float(f_min), float(f_max)
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
        raise HHTInputError(f"need 0 <= f_min < f_max (finite, Hz); got f_min={f_min!r}, f_max={f_max!r}")
    return np.linspace(low, high, n_freq)


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


def hilbert_spectrum(
    signal: np.ndarray,
    fs: float,
    n_freq: int = DEFAULT_N_FREQ,
    n_time: int = DEFAULT_N_TIME,
    f_min: float = DEFAULT_F_MIN,
    f_max: float = DEFAULT_F_MAX,
    quantity: Quantity = "amplitude",
    log: bool = False,
    method: Method = "emd",
    ensembles: int = DEFAULT_ENSEMBLES,
    noise_width: float = DEFAULT_NOISE_WIDTH,
    seed: int | None = None,
) -> np.ndarray:
    """Hilbert spectrum matrix of one segment, as the upstream preprocessing tool writes it.

    The segment is decomposed into IMFs (the residual is dropped), each IMF's instantaneous
    amplitude ``a_k(n)`` and frequency ``f_k(n)`` are taken from its analytic signal, and

        S[r, c] = mean over samples n in column c of  sum_k a_k(n) [f_k(n) in row r]

    (``a_k**2`` for ``quantity="power"``). Rows are the linear frequencies of
    :func:`frequency_axis`; a sample whose frequency lies outside [f_min, f_max] (negative and
    above-band values included) contributes nothing. Column c holds samples
    ``floor(c N / n_time) <= n < floor((c + 1) N / n_time)``.

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
    method : {"emd", "eemd", "ceemdan"}
        Decomposition: plain EMD (fast, default) or a noise-assisted one of :func:`ensemble_emd`.
    ensembles, noise_width, seed
        Settings of the noise-assisted methods; ignored by ``"emd"``.

    Returns
    -------
    ndarray of shape (n_freq, n_time), float32
        Finite and non-negative, row 0 = ``f_min``; in the signal's unit (squared for power).

    Raises
    ------
    HHTInputError
        If the signal is not 1-D real, has non-finite samples, is constant or all zero, is
        shorter than 256 samples or than ``n_time``, if ``f_max >= fs / 2``, if a setting is
        invalid, or if no instantaneous frequency falls in the band (the matrix would be zero).
    """
    x = _as_signal(signal)
    rate = _check_rate(fs)
    rows = frequency_axis(n_freq, f_min, f_max)
    n_time = _check_count("n_time", n_time, 1)
    if x.size < max(MIN_SAMPLES, n_time):
        raise HHTInputError(f"the segment has {x.size} samples; at least {max(MIN_SAMPLES, n_time)} are needed")
    if rows[-1] >= rate / 2:
        raise HHTInputError(
            f"f_max={rows[-1]:g} Hz is not below the Nyquist frequency {rate / 2:g} Hz of fs={rate:g} Hz; "
            f"use fs > {2 * rows[-1]:g} Hz or a lower f_max"
        )
    if quantity not in ("amplitude", "power"):
        raise HHTInputError(f"quantity must be 'amplitude' or 'power'; got {quantity!r}")
    _check_not_flat(x)
    if method == "emd":
        imfs, _ = _emd(x, _default_max_imfs(x.size), DEFAULT_MAX_SIFTS, DEFAULT_SD_THRESHOLD)
    elif method in ("eemd", "ceemdan"):
        imfs, _ = ensemble_emd(x, method=method, ensembles=ensembles, noise_width=noise_width, seed=seed)
    else:
        raise HHTInputError(f"method must be 'emd', 'eemd' or 'ceemdan'; got {method!r}")
    if len(imfs) == 0:
        raise HHTInputError("the signal has no oscillation to decompose: it has fewer than three extrema")
    amplitude, frequency = instantaneous_amplitude_frequency(imfs, rate)
    if quantity == "power":
        amplitude = amplitude**2
    matrix = _bin(amplitude, frequency, len(rows), n_time, rows[0], rows[-1])
    if not matrix.any():
        raise HHTInputError(
            f"no instantaneous frequency of the signal falls within {rows[0]:g}-{rows[-1]:g} Hz: "
            "the matrix would be all zero"
        )
    return (np.log1p(matrix) if log else matrix).astype(np.float32)
