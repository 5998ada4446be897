"""The spectrum's frequency axis: without SciPy, so that describing a matrix at prediction does not load it."""

from __future__ import annotations

import numpy as np

from semg_hht.defaults import DEFAULT_F_MAX, DEFAULT_F_MIN, DEFAULT_N_FREQ
from semg_hht.hht.checks import HHTInputError, checked_count


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
    n_freq = checked_count("n_freq", n_freq, 2)
    low, high = float(f_min), float(f_max)
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
        raise HHTInputError(f"need 0 <= f_min < f_max (finite, Hz); got f_min={f_min!r}, f_max={f_max!r}")
    return np.linspace(low, high, n_freq)
