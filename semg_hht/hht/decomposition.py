"""Empirical mode decomposition of a 1-D signal: EMD, EEMD and CEEMDAN.

The first stage of the Hilbert-Huang transform (Huang et al. 1998, Proc. R. Soc. Lond. A
454:903-995; the second is :mod:`semg_hht.hht.spectrum`): the signal is split into intrinsic mode
functions (IMFs), fastest oscillation first, plus a slowly varying residual.

**Sifting** (:func:`emd`) repeatedly subtracts the mean of the upper and lower envelopes,
natural cubic splines through the local maxima and minima. At each end, the two nearest
extrema of each kind are mirrored beyond it (Rilling et al. 2003) so that the splines do not
diverge there. Extrema are located to a fraction of a sample by parabolic interpolation
(Rato et al. 2008).

**Stopping rule**: the Cauchy-type SD criterion of Huang et al. (1998), with energies summed
over the segment rather than compared sample by sample. Sifting of one IMF stops after
iteration k when ``SD_k = ||m_k||^2 / ||h_k||^2 < sd_threshold``, where ``m_k`` is the envelope
mean removed and ``h_k`` the candidate IMF after removing it; or after ``max_sifts``
iterations; or when the candidate has fewer than three extrema. SD is a ratio of energies, so
the rule does not depend on the signal's scale. Decomposition stops after ``max_imfs`` IMFs,
or when the residual has fewer than three extrema (it is monotonic or a single swing) or a
standard deviation below ``NEGLIGIBLE_RESIDUAL`` times the signal's (only rounding noise is
left).

**Noise-assisted variants** (:func:`ensemble_emd`), for users who want a decomposition like the
upstream preprocessing tool's (CEEMDAN, 30 ensembles); they cost about ``ensembles`` times as
much. ``"eemd"`` (Wu & Huang 2009) averages the IMFs of ``ensembles`` EMDs of the signal plus
independent white noise of standard deviation ``noise_width * std(signal)``. ``"ceemdan"`` (the
improved CEEMDAN of Colominas et al. 2014, after Torres et al. 2011) extracts one IMF at a
time: the current residual minus the average local mean (residual minus first IMF) of the
residual plus the matching EMD mode of each noise realisation, scaled to
``noise_width * std(residual)``. It leaves less noise in the IMFs than EEMD. Sifting follows
:func:`emd` with its default stopping rule. Noise is relative to the signal, so the result does
not depend on the signal's scale.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.linalg.lapack import dgtsv

from semg_hht.defaults import DEFAULT_ENSEMBLES, DEFAULT_NOISE_WIDTH
from semg_hht.hht.checks import HHTInputError, checked_count, checked_signal

DEFAULT_MAX_SIFTS = 10
"""Cap on sifting iterations per IMF; more mostly flattens the IMF's amplitude (Wang et al. 2010)."""
DEFAULT_SD_THRESHOLD = 0.2
"""Sifting stops once the Cauchy-type SD (see the module docstring) falls below this."""
MIRRORED_EXTREMA = 2
"""Extrema of each kind reflected beyond each end so that the envelopes do not swing there."""
NEGLIGIBLE_RESIDUAL = 1e-10
"""Residual std, relative to the signal's, below which only rounding noise is left to decompose."""

Method = Literal["emd", "eemd", "ceemdan"]
Extrema = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Positions (samples, ascending) and values of the maxima, then of the minima."""


def _decomposable(signal: np.ndarray) -> np.ndarray:
    """:func:`checked_signal`, and at least the 3 samples an oscillation needs."""
    x = checked_signal(signal)
    if x.size < 3:
        raise HHTInputError(f"the signal needs at least 3 samples; got {x.size}")
    return x


def _checked_max_imfs(max_imfs: int | None, n_samples: int) -> int:
    return _default_max_imfs(n_samples) if max_imfs is None else checked_count("max_imfs", max_imfs, 1)


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
    imfs: list[np.ndarray] = []
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

    Sifting with mirrored ends and parabolic extrema, stopped by the SD criterion (see the
    module docstring).

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
    x = _decomposable(signal)
    max_imfs = _checked_max_imfs(max_imfs, x.size)
    max_sifts = checked_count("max_sifts", max_sifts, 1)
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
    imfs: list[np.ndarray] = []
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


_ENSEMBLE_METHODS = {"eemd": _eemd, "ceemdan": _ceemdan}


def ensemble_emd(
    signal: np.ndarray,
    method: Literal["eemd", "ceemdan"] = "ceemdan",
    ensembles: int = DEFAULT_ENSEMBLES,
    noise_width: float = DEFAULT_NOISE_WIDTH,
    seed: int | None = None,
    max_imfs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-assisted EMD: EEMD or CEEMDAN (see the module docstring).

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
    x = _decomposable(signal)
    ensembles = checked_count("ensembles", ensembles, 1)
    if not (np.isfinite(noise_width) and noise_width > 0):
        raise HHTInputError(f"noise_width must be a positive number; got {noise_width!r}")
    max_imfs = _checked_max_imfs(max_imfs, x.size)
    rng = np.random.default_rng(seed)
    # A tuple, not the dict: an unhashable method is refused like any other, not a TypeError.
    if method not in tuple(_ENSEMBLE_METHODS):
        raise HHTInputError(f"method must be 'eemd' or 'ceemdan'; got {method!r}")
    imfs = _ENSEMBLE_METHODS[method](x, max_imfs, ensembles, float(noise_width), rng)
    return imfs, x - imfs.sum(axis=0)


def decompose(x: np.ndarray, method: Method, ensembles: int, noise_width: float, seed: int | None) -> np.ndarray:
    """The IMFs of a checked float64 signal by ``method``, shape (n_imfs, N), residual dropped.

    ``"emd"`` sifts with the default settings of :func:`emd`; ``"eemd"`` and ``"ceemdan"`` are
    :func:`ensemble_emd` with ``ensembles``, ``noise_width`` and ``seed`` (ignored by ``"emd"``).
    """
    if method == "emd":
        imfs, _ = _emd(x, _default_max_imfs(x.size), DEFAULT_MAX_SIFTS, DEFAULT_SD_THRESHOLD)
    elif method in tuple(_ENSEMBLE_METHODS):
        imfs, _ = ensemble_emd(x, method=method, ensembles=ensembles, noise_width=noise_width, seed=seed)
    else:
        raise HHTInputError(f"method must be 'emd', 'eemd' or 'ceemdan'; got {method!r}")
    return imfs
