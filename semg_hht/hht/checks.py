"""Checks of the transform's inputs, shared by the decomposition, the spectrum and its axes (numpy only)."""

from __future__ import annotations

import numpy as np


class HHTInputError(ValueError):
    """A signal or parameter the transform cannot use; ``str()`` names the problem."""


def checked_signal(signal: np.ndarray) -> np.ndarray:
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


def checked_count(name: str, value: int, minimum: int) -> int:
    """``value`` as an int, or :class:`HHTInputError` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HHTInputError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
