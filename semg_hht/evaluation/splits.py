"""Splits of the labelled files: the validation split (stratified by class, subject-wise when subjects are known,
with pinned files), the folds of `cv`, and the inner folds of model selection."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold, train_test_split

from semg_hht.classes import CLASS_NAMES, N_CLASSES
from semg_hht.errors import UsageError


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


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/validation split, with a clear error when impossible."""
    counts = np.bincount(labels, minlength=N_CLASSES)
    too_few = [f"{CLASS_NAMES[c]} ({counts[c]})" for c in range(N_CLASSES) if counts[c] == 1]
    if too_few:
        raise UsageError(
            "Too few files for a stratified train/validation split: "
            f"{', '.join(too_few)} has only one file. Each class that appears needs at "
            "least 2 labelled files (3 or more recommended); add files or remove that class."
        )
    n_classes = int((counts > 0).sum())
    n_val = math.ceil(test_size * len(labels))
    if n_val < n_classes or len(labels) - n_val < n_classes:
        raise UsageError(
            f"`test_size` {test_size} puts {n_val} of {len(labels)} files in validation, but both "
            f"sides need at least one file of each of the {n_classes} classes; "
            "change `test_size` or add files."
        )
    indices = np.arange(len(labels))
    train, val = train_test_split(indices, test_size=test_size, random_state=seed, stratify=labels)
    for side, name in ((train, "training"), (val, "validation")):
        missing = [CLASS_NAMES[c] for c in range(N_CLASSES) if counts[c] and not (labels[side] == c).any()]
        if missing:
            raise UsageError(
                f"`test_size` {test_size} leaves the {name} set without {', '.join(missing)} "
                "(too few files of that class); change `test_size` or add files."
            )
    return np.sort(train), np.sort(val)


def make_split(
    labels: np.ndarray,
    subjects: np.ndarray | None,
    pins: Sequence[str | None] | None,
    test_size: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The validation split of train.py.

    Files pinned to ``"train"`` or ``"val"`` (``pins``, from a labels file) stay on
    that side; the others are split by :func:`grouped_split` when ``subjects`` (or
    other groups, such as recordings) are given (no group on both sides), else by
    :func:`stratified_split`.

    Returns
    -------
    train, val : sorted index arrays

    Raises
    ------
    UsageError
        A side would be empty, or the free files cannot be split.
    """
    labels = np.asarray(labels)
    pins = list(pins) if pins is not None else [None] * len(labels)
    free = np.array([i for i, pin in enumerate(pins) if pin is None], dtype=int)
    train = [i for i, pin in enumerate(pins) if pin == "train"]
    val = [i for i, pin in enumerate(pins) if pin == "val"]
    if len(free):
        if subjects is None:
            free_train, free_val = stratified_split(labels[free], test_size, seed)
        else:
            free_train, free_val = grouped_split(labels[free], subjects[free], test_size, seed)
        train += free[free_train].tolist()
        val += free[free_val].tolist()
    if not train or not val:
        raise UsageError(
            f"the split column pins every file to one side ({len(train)} training, {len(val)} validation files)"
        )
    return np.array(sorted(train), dtype=int), np.array(sorted(val), dtype=int)


@dataclass
class Fold:
    """One cross-validation fold: indices into the labelled files, and the subjects it holds out."""

    name: str
    train: np.ndarray
    test: np.ndarray
    held_out_subjects: list[str]


def parse_cv(value: str) -> int | str:
    """``cv``: a number of folds (at least 2) or ``loso``."""
    if value.strip().lower() == "loso":
        return "loso"
    try:
        folds = int(value)
    except ValueError:
        raise UsageError(f"`cv` must be a number of folds (2 or more) or 'loso', got {value!r}") from None
    if folds < 2:
        raise UsageError(f"`cv` needs at least 2 folds, got {folds}")
    return folds


def cv_folds(labels: np.ndarray, groups: np.ndarray | None, cv: int | str, seed: int) -> list[Fold]:
    """The folds of ``cv``: leave-one-subject-out, or K folds stratified by class (grouped by subject if known).

    Raises
    ------
    UsageError
        ``loso`` without subjects, more folds than subjects, or more folds than
        files of the rarest class (ungrouped).
    """
    labels = np.asarray(labels)
    indices = np.arange(len(labels))
    if cv == "loso":
        if groups is None:
            raise UsageError("`cv` loso needs subjects: a labels file with a subject column, or `group_pattern`")
        if len(np.unique(groups)) < 2:
            raise UsageError("`cv` loso needs at least 2 subjects")
        splits = LeaveOneGroupOut().split(indices, labels, groups)
    elif not isinstance(cv, int):
        raise UsageError(f"`cv` must be a number of folds (2 or more) or 'loso', got {cv!r}")
    elif groups is not None:
        n_groups = len(np.unique(groups))
        if cv > n_groups:
            raise UsageError(f"`cv` {cv} asks for more folds than there are subjects ({n_groups})")
        splits = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed).split(indices, labels, groups)
    else:
        counts = np.bincount(labels)
        smallest = int(counts[counts > 0].min())
        if cv > smallest:
            raise UsageError(f"`cv` {cv} asks for more folds than the rarest class has files ({smallest})")
        splits = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(indices, labels)
    folds = []
    for number, (train, test) in enumerate(splits, start=1):
        subjects = sorted({str(g) for g in groups[test]}) if groups is not None else []
        name = subjects[0] if cv == "loso" else f"fold {number}"
        folds.append(Fold(name, np.sort(train), np.sort(test), subjects))
    return folds


class InnerFolds(StratifiedGroupKFold):
    """Folds of a model selection on training files: at most ``n_splits``, fewer where there is less to split.

    With subjects (``groups`` (n,)), ``StratifiedGroupKFold`` over at most as many folds as there
    are subjects; without, ``StratifiedKFold`` over at most as many folds as the rarest class has
    files. Both shuffled by ``random_state``. The number is settled by each ``split``, so one
    object serves every outer fold of a nested cross-validation.
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, random_state: int | None = None):
        super().__init__(n_splits=n_splits, shuffle=shuffle, random_state=random_state)

    def _folds_for(self, y: np.ndarray, groups: np.ndarray | None) -> StratifiedGroupKFold | StratifiedKFold:
        if groups is not None:
            n_splits = min(self.n_splits, len(np.unique(groups)))
            return StratifiedGroupKFold(n_splits, shuffle=self.shuffle, random_state=self.random_state)
        counts = np.unique(np.asarray(y), return_counts=True)[1]
        n_splits = min(self.n_splits, int(counts.min()))
        return StratifiedKFold(n_splits, shuffle=self.shuffle, random_state=self.random_state)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from self._folds_for(y, groups).split(X, y, groups)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self._folds_for(y, groups).n_splits
