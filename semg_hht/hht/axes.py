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


def is_frequency_axis(frequency: np.ndarray) -> bool:
    """Whether ``frequency`` (n,) is a usable axis: finite and strictly increasing Hz."""
    values = np.asarray(frequency, dtype=np.float64)
    return bool(values.ndim == 1 and np.isfinite(values).all() and np.all(np.diff(values) > 0))


def same_axis(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two frequency axes are the same rows (to a millionth of a Hz: float32 files round)."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0, atol=1e-6 * max(1.0, float(np.abs(b).max()))))


def axis_text(frequency: np.ndarray) -> str:
    """An axis as a person reads it: ``20-450 Hz (256 rows)``."""
    values = np.asarray(frequency, dtype=np.float64)
    return f"{values[0]:g}-{values[-1]:g} Hz ({len(values)} rows)"


def resample_rows(matrices: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spectra (n, rows, columns) on frequency axis ``source`` (rows,) re-read on axis ``target`` (rows,).

    Each column is interpolated linearly in frequency between the two nearest source rows; a target
    frequency outside the source's range gets 0 (no amplitude was measured there). The total
    amplitude changes with the rows' spacing: the result is the same spectrum sampled on other rows,
    not a redistribution of its energy.
    """
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    upper = np.clip(np.searchsorted(source, target), 1, len(source) - 1)
    lower = upper - 1
    weight = (target - source[lower]) / (source[upper] - source[lower])
    inside = (target >= source[0]) & (target <= source[-1])
    stack = np.asarray(matrices)
    result = stack[:, lower, :] * (1.0 - weight)[None, :, None] + stack[:, upper, :] * weight[None, :, None]
    result[:, ~inside, :] = 0.0
    return result.astype(stack.dtype, copy=False)
