"""Descriptors of the activation envelope's shape: how a movement unfolds over the segment, blind to its scale.

The HHT descriptors (:mod:`semg_hht.model.descriptors`) say how much amplitude a matrix holds and
at which frequencies; of its timing they keep one threshold (``active_fraction`` at half the
peak), the burst count there and the energy's spread. Movement quality lies mostly in the timing:
a full range of motion keeps the muscle active over most of the segment, a half range over part
of it, and the invalid executions differ in the envelope's shape rather than in its level (short
irregular bursts, a concentric phase cut short, a flat co-contraction, no activity at all). These
descriptors read that shape from the matrix, relative to the segment's own peak, so that they do
not depend on gain, electrode or subcutaneous fat (a matrix and ``c`` times it give the same
values).

From a matrix ``H`` (rows frequency, 256 equal time columns; :mod:`semg_hht.model.descriptors`):

- the **time profile** ``e(t) = sum_i H[i, t]``, the amplitude envelope, and its **linear
  envelope** ``s(t)``, ``e`` smoothed by the centred moving average of
  :data:`~semg_hht.model.descriptors.SMOOTHING_COLUMNS` columns that the HHT descriptors use (the
  rectified-and-smoothed envelope of kinesiological EMG, Winter 2009);
- the **relative envelope** ``r(t) = s(t) / max_t s(t)`` in [0, 1].

The descriptors, the columns of :func:`envelope_descriptors` in the order of ``ENVELOPE_NAMES``:

``active_fraction_k`` (k = 10, 20, 30, 70, 90)
    Share of the columns where ``r(t) >= k / 100``: the time the muscle spends above k % of its
    peak. A threshold relative to the segment's own peak, as for ``active_fraction`` (50 %) of the
    HHT descriptors (Hodges & Bui 1996 compare onset thresholds); several levels give the
    envelope's duration profile, which separates a long repetition with a ramp from a short
    burst or a flat plateau.
``log_envelope_quantile_k`` (k = 10, 25, 50, 75, 90)
    ``log`` of the k-th percentile of ``r(t)`` over the columns (floored at
    :data:`QUANTILE_FLOOR`): the distribution of the envelope's values relative to its peak,
    blind to when they happen. Rest and a flat co-contraction sit high (near 0), a single short
    burst low.
``burst_count_30``, ``burst_count_70``
    Runs of columns with ``r(t)`` at least 30 % and 70 % of the peak: one for a single
    repetition, two for two, several for irregular bursts (the HHT descriptors' ``burst_count``
    is the same count at 50 %).
``activity_centre``, ``activity_spread``
    Mean and standard deviation of time (fractions of the segment, column centres at
    ``(t + 1/2) / 256``) weighted by ``s(t)``: the centre of activity and how widely the activity
    spreads around it (the "centre of activity" of cyclic-movement EMG, Hug & Dorel 2009).
``envelope_roughness``
    Standard deviation of ``s(t) / b(t)`` over the columns with ``r(t) >= 30 %``, ``b`` the
    envelope smoothed over :data:`BROAD_COLUMNS` columns (16 % of the segment): how much the
    activity fluctuates around its slow course. A driven repetition follows a smooth course;
    sustained co-contraction and irregular effort fluctuate more (the simulator draws 8 % force
    fluctuation for repetitions, 15 % and 25 % for irregular bursts and co-contraction, an
    assumption of its own: ``semg_hht.data.simulation``). An onset or offset sharper than the slow
    course counts too: a rectangular burst is rough at its edges.
``main_burst_centre``
    Of the run of columns with ``r(t) >= 50 %`` that holds the peak (the main burst), where its
    activity lies: the ``s``-weighted mean position of its columns, as a fraction of the run from
    its first column (0) to its last (1). 0.5 for a burst that rises and falls alike, above for
    activity that builds up and stops short (a concentric phase cut off), below for an abrupt
    onset that then fades (a concentric phase followed by a weaker eccentric one).

A matrix without energy (``max s = 0``) gives 0 for every descriptor but the quantiles, which
give ``log(QUANTILE_FLOOR)``.

References
----------
- Winter DA (2009) Biomechanics and Motor Control of Human Movement, 4th ed., Wiley.
  (The linear envelope.)
- Hodges PW, Bui BH (1996) A comparison of computer-based methods for the determination of
  onset of muscle contraction using electromyography. Electroencephalogr. Clin. Neurophysiol.
  101:511-519. (Thresholds on the smoothed envelope.)
- Hug F, Dorel S (2009) Electromyographic analysis of pedaling: a review. J. Electromyogr.
  Kinesiol. 19:182-198. (Onset and offset, centre of activity.)
"""

from __future__ import annotations

import numpy as np

from semg_hht.model.descriptors import FLOAT32_SUM_RANGE, SMOOTHING_COLUMNS, checked_matrices, moving_average

COVERAGE_LEVELS = (10, 20, 30, 70, 90)
"""Percentages of the peak for ``active_fraction_k``."""
QUANTILES = (10, 25, 50, 75, 90)
"""Percentiles of the relative envelope for ``log_envelope_quantile_k``."""
BURST_LEVELS = (30, 70)
"""Percentages of the peak for ``burst_count_k``."""
ROUGHNESS_LEVEL = 0.3
"""Columns below this fraction of the peak are left out of ``envelope_roughness``: near rest the
ratio to the slow course is noise."""
MAIN_BURST_LEVEL = 0.5
"""The main burst of ``main_burst_centre``: the run of columns at half the peak or above that holds it."""
BROAD_COLUMNS = 41
"""Moving-average width of the slow course ``b(t)``: 16 % of the segment, 0.32 s of a 2 s one,
longer than the force fluctuation's 0.1 s and shorter than a repetition."""
QUANTILE_FLOOR = 1e-6
"""Floor of the relative envelope's percentiles before the log (a silent stretch is exactly 0)."""

ENVELOPE_NAMES: tuple[str, ...] = (
    *(f"active_fraction_{level}" for level in COVERAGE_LEVELS),
    *(f"log_envelope_quantile_{q}" for q in QUANTILES),
    *(f"burst_count_{level}" for level in BURST_LEVELS),
    "activity_centre",
    "activity_spread",
    "envelope_roughness",
    "main_burst_centre",
)
"""Name of each column of ``envelope_descriptors``' output, in order."""


def envelope_descriptors(matrices: np.ndarray) -> np.ndarray:
    """Shape descriptors of the activation envelope of Hilbert spectrum matrices, one row per matrix.

    Parameters
    ----------
    matrices : ndarray of shape (n, 256, 256) or (256, 256)
        Non-negative, finite Hilbert spectra (rows = frequency, columns = time), any real dtype.

    Returns
    -------
    ndarray of shape (n, len(ENVELOPE_NAMES)) or (len(ENVELOPE_NAMES),), float64
        Always finite; the columns of ``ENVELOPE_NAMES``, in its order (see the module docstring).
        Unchanged when a matrix is multiplied by a positive constant.

    Raises
    ------
    ValueError
        On a wrong shape or dtype, a negative, NaN or infinite value, or a column whose sum
        overflows float64.
    """
    stack, single = checked_matrices(matrices)
    if stack.shape[0] == 0:
        return np.empty((0, len(ENVELOPE_NAMES)))
    values = envelope_from_profile(_time_profile(stack))
    return values[0] if single else values


def envelope_from_profile(profile: np.ndarray) -> np.ndarray:
    """:func:`envelope_descriptors` from the matrices' time profiles ``e(t)``.

    Parameters
    ----------
    profile : ndarray of shape (n, 256)
        Non-negative, finite column sums of each matrix (as
        :func:`~semg_hht.model.descriptors.hht_descriptors_and_time_profile` gives them).

    Returns
    -------
    ndarray of shape (n, len(ENVELOPE_NAMES)), float64
    """
    # Relative to each matrix's largest column, so that the smoothing's sums cannot overflow.
    largest = profile.max(axis=1, keepdims=True)
    profile = np.divide(profile, largest, out=np.zeros_like(profile), where=largest > 0)
    smoothed = moving_average(profile, SMOOTHING_COLUMNS)
    peak = smoothed.max(axis=1, keepdims=True)
    relative = np.divide(smoothed, peak, out=np.zeros_like(smoothed), where=peak > 0)
    values = np.column_stack(
        [
            *((relative >= level / 100).mean(axis=1) for level in COVERAGE_LEVELS),
            *np.log(np.maximum(np.percentile(relative, QUANTILES, axis=1), QUANTILE_FLOOR)),
            *(_runs(relative >= level / 100) for level in BURST_LEVELS),
            *_centre_and_spread(smoothed),
            _roughness(profile, smoothed, relative),
            _main_burst_centre(relative),
        ]
    )
    return values


def _time_profile(stack: np.ndarray) -> np.ndarray:
    """``e(t)`` of each matrix, (n, 256) float64: summed in the stack's dtype (einsum streams float32 at about
    twice the speed of a float64 sum), again in float64 where float32 sums leave 1e-30 .. 1e30.

    Raises
    ------
    ValueError
        Where a column's sum is not finite even in float64.
    """
    with np.errstate(over="ignore"):  # overflow is caught below and summed again
        profile = np.einsum("nft->nt", stack)
    largest = float(profile.max())
    if stack.dtype == np.float32 and not FLOAT32_SUM_RANGE[0] <= largest <= FLOAT32_SUM_RANGE[1]:
        with np.errstate(over="ignore"):
            profile = np.einsum("nft->nt", stack.astype(np.float64))
        largest = float(profile.max())
    if not np.isfinite(largest):
        raise ValueError("matrices must be finite, with column sums that float64 can carry")
    return profile.astype(np.float64)


def _runs(active: np.ndarray) -> np.ndarray:
    """Number of runs of True along the last axis of (n, T), as float64."""
    starts = active[:, 0].astype(np.int64) + (active[:, 1:] & ~active[:, :-1]).sum(axis=1)
    return starts.astype(np.float64)


def _centre_and_spread(smoothed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Envelope-weighted mean and standard deviation of time in [0, 1]; 0 and 0 without energy."""
    time = (np.arange(smoothed.shape[1]) + 0.5) / smoothed.shape[1]
    total = smoothed.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    centre = (smoothed * time).sum(axis=1) / safe
    spread = np.sqrt(np.maximum((smoothed * (time - centre[:, None]) ** 2).sum(axis=1) / safe, 0.0))
    return np.where(total > 0, centre, 0.0), np.where(total > 0, spread, 0.0)


def _roughness(profile: np.ndarray, smoothed: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """Standard deviation of ``s / b`` over the columns at :data:`ROUGHNESS_LEVEL` of the peak or above."""
    broad = moving_average(profile, BROAD_COLUMNS)
    used = (relative >= ROUGHNESS_LEVEL) & (broad > 0)
    ratio = np.divide(smoothed, broad, out=np.zeros_like(smoothed), where=used)
    count = np.maximum(used.sum(axis=1), 1)
    mean = ratio.sum(axis=1) / count
    deviation = np.where(used, ratio - mean[:, None], 0.0)
    return np.sqrt((deviation**2).sum(axis=1) / count)


def _main_burst_centre(relative: np.ndarray) -> np.ndarray:
    """Weighted mean position, in [0, 1] of the run, of the run at :data:`MAIN_BURST_LEVEL` of the peak
    or above that holds the peak; 0 without energy."""
    n_time = relative.shape[1]
    column = np.arange(n_time)
    top = relative.argmax(axis=1)[:, None]
    below = relative < MAIN_BURST_LEVEL
    # The run's first column follows the last column below the level before the peak; its last
    # precedes the first one below the level after it.
    first = np.where(below & (column < top), column, -1).max(axis=1) + 1
    last = np.where(below & (column > top), column, n_time).min(axis=1) - 1
    inside = (column >= first[:, None]) & (column <= last[:, None])
    weights = np.where(inside, relative, 0.0)
    total = weights.sum(axis=1)
    mean = (weights * column).sum(axis=1) / np.where(total > 0, total, 1.0)
    span = np.maximum(last - first, 1)
    return np.where(total > 0, (mean - first) / span, 0.0)
