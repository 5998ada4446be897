"""Train/validation splits that keep every group (a subject) on one side."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .errors import UsageError


def grouped_split(labels: np.ndarray, groups: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/validation split in which no group has members on both sides.

    Stratified by class as far as the groups allow (scikit-learn's
    ``StratifiedGroupKFold`` with about ``1 / test_size`` folds, shuffled by
    ``seed``); of its folds, the validation side is the first one that holds
    every class of the data, or the one holding the most classes.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
    groups : ndarray, shape (n,)
        The group (e.g. subject) of each sample.
    test_size : float in (0, 1)
    seed : int

    Returns
    -------
    train, val : sorted index arrays

    Raises
    ------
    UsageError
        Fewer than two groups.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    unique_groups = np.unique(groups)
    if len(unique_groups) < 2:
        raise UsageError(f"a subject-wise split needs at least 2 subjects, found {len(unique_groups)}")
    n_splits = int(min(max(2, round(1 / test_size)), len(unique_groups)))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(labels, labels, groups)
    n_classes = len(np.unique(labels))
    best: tuple[np.ndarray, np.ndarray] | None = None
    for train, val in folds:
        if best is None or len(np.unique(labels[val])) > len(np.unique(labels[best[1]])):
            best = (train, val)
        if len(np.unique(labels[val])) == n_classes:
            break
    assert best is not None
    return np.sort(best[0]), np.sort(best[1])
