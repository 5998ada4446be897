"""Subject-wise normalisation: standardising features within each subject's (or subject and muscle's) files.

Between subjects, sEMG amplitude and spectra differ by skin, fat, electrode placement and
muscle size far more than between contraction levels of one subject; clinical practice
therefore normalises to a subject's own reference contraction (MVC normalisation, e.g.
Burden 2010, J. Electromyogr. Kinesiol. 20:1023). Standardising every feature within a
subject's files is the classifier's analogue: each file is described relative to the same
subject's other files. It assumes that a subject's files cover the classes much as the
training subjects' do, and it removes whatever is constant within a subject (its gender
among it).

A group too small to estimate its own statistics (one file) is standardised with the
training population's mean and standard deviation instead, and a feature that does not
vary within a group (standard deviation 0) is divided by the population's; both are logged
as warnings naming the group.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.defaults import NORMALISATION_MODES

logger = logging.getLogger(__name__)


def muscle_of(name: str, channel: str | None) -> str:
    """The muscle of a matrix file: its name's first token (the naming rule's MUSCLE), with its channel if stored."""
    token = Path(name).name.split("_", 1)[0]
    return token if channel is None else f"{token}/{channel}"


@dataclass(frozen=True)
class FileGroups:
    """Who each file comes from: subject and muscle, arrays of strings of shape (n,)."""

    subjects: np.ndarray
    muscles: np.ndarray

    def __post_init__(self) -> None:
        if self.subjects.shape != self.muscles.shape or self.subjects.ndim != 1:
            raise ValueError(f"subjects {self.subjects.shape} and muscles {self.muscles.shape} do not match")

    def __len__(self) -> int:
        return len(self.subjects)

    def pairs(self) -> np.ndarray:
        """(subject, muscle) of each file, shape (n, 2): the form scikit-learn slices fold by fold."""
        return np.column_stack([self.subjects, self.muscles])

    def take(self, index: np.ndarray) -> FileGroups:
        return FileGroups(self.subjects[index], self.muscles[index])

    def keys(self, mode: str) -> np.ndarray:
        """The group of each file under ``mode`` (``subject`` or ``subject_muscle``)."""
        if mode == "subject":
            return self.subjects
        if mode == "subject_muscle":
            return np.array([f"{s} / {m}" for s, m in zip(self.subjects, self.muscles, strict=True)])
        raise ValueError(f"normalisation mode must be one of {', '.join(NORMALISATION_MODES[1:])}, got {mode!r}")


GroupsLike = FileGroups | np.ndarray | Sequence[str] | None
"""What the estimator takes as ``groups``: :class:`FileGroups`, or an array that scikit-learn can slice
(cross-validation routes it fold by fold): subjects of shape (n,), or (subject, muscle) of shape (n, 2)."""


def as_file_groups(groups: GroupsLike) -> FileGroups | None:
    """``groups`` as :class:`FileGroups`; an array of subjects alone puts every file in one muscle."""
    if groups is None or isinstance(groups, FileGroups):
        return groups
    array = np.asarray(groups).astype(str)
    if array.ndim == 1:
        return FileGroups(array, np.full(len(array), ""))
    if array.ndim == 2 and array.shape[1] == 2:
        return FileGroups(array[:, 0], array[:, 1])
    raise ValueError(f"groups must be subjects (n,) or (subject, muscle) pairs (n, 2), got shape {array.shape}")


def take_groups(groups: FileGroups | None, index: np.ndarray) -> FileGroups | None:
    """The groups of the files at ``index``; None stays None (subjects unknown)."""
    return None if groups is None else groups.take(index)


@dataclass(frozen=True)
class PopulationStatistics:
    """Per-feature mean and standard deviation of the training files, shape (n_features,): the fallback."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> PopulationStatistics:
        features = np.asarray(features, dtype=np.float64)
        std = features.std(axis=0)
        return cls(features.mean(axis=0), np.where(std > 0, std, 1.0))


def normalise_within_groups(features: np.ndarray, keys: np.ndarray, population: PopulationStatistics) -> np.ndarray:
    """Standardise the features of each group with the group's own mean and standard deviation.

    Parameters
    ----------
    features : ndarray of shape (n, n_features)
    keys : ndarray of shape (n,)
        The group of each row.
    population : PopulationStatistics
        The fallback for a one-file group, and for a feature constant within a group.

    Returns
    -------
    ndarray of shape (n, n_features), float64
        ``(x - mean_g) / std_g`` per group ``g``.
    """
    features = np.asarray(features, dtype=np.float64)
    if len(keys) != len(features):
        raise ValueError(f"{len(keys)} group keys for {len(features)} rows")
    normalised = np.empty_like(features)
    for key in np.unique(keys):
        rows = keys == key
        group = features[rows]
        if len(group) < 2:
            logger.warning(
                "group %s has one file, too few to estimate its own statistics: "
                "standardised with the training population's mean and standard deviation",
                key,
            )
            normalised[rows] = (group - population.mean) / population.std
            continue
        std = group.std(axis=0)
        constant = ~(std > 1e-12 * np.maximum(np.abs(group.mean(axis=0)), 1.0))
        if constant.any():
            logger.warning(
                "group %s: %d features do not vary within it; they are divided by the population's standard deviation",
                key,
                int(constant.sum()),
            )
        std = np.where(constant, population.std, std)
        normalised[rows] = (group - group.mean(axis=0)) / std
    return normalised
