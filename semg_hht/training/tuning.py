"""Choosing the SVM's C and gamma by an inner, subject-wise cross-validation over a small grid."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn

from semg_hht.evaluation.scores import balanced_accuracy, cv_folds
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import block_weights
from semg_hht.model.normalisation import FileGroups, take_groups

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
GAMMA_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""gamma as multiples of ``1 / sum(w**2)`` (``w`` the block weights): scikit-learn's ``"scale"``
for standardised, block-weighted features."""
MAX_INNER_FOLDS = 5
logger = logging.getLogger(__name__)


def reference_gamma(blocks: tuple[str, ...]) -> float:
    """``"scale"``'s gamma for standardised features weighted as :func:`~semg_hht.model.feature_sets.block_weights`."""
    return float(1.0 / np.sum(block_weights(blocks) ** 2))


def _inner_folds(labels: np.ndarray, subjects: np.ndarray | None, seed: int) -> list:
    if subjects is not None:
        return cv_folds(labels, subjects, min(MAX_INNER_FOLDS, len(np.unique(subjects))), seed)
    counts = np.bincount(labels)
    return cv_folds(labels, None, min(MAX_INNER_FOLDS, int(counts[counts > 0].min())), seed)


def tune_svm(
    make_classifier: Callable[[float, float], HHTClassifier],
    features: np.ndarray,
    labels: np.ndarray,
    groups: FileGroups | None,
    seed: int,
) -> dict[str, Any]:
    """Score every (C, gamma) of the grid by the six-class balanced accuracy of an inner cross-validation.

    Folds hold out whole subjects when ``groups`` is given (StratifiedGroupKFold), else they
    are stratified by class; at most 5. ``make_classifier(C, gamma)`` builds the candidate
    (same features, normalisation and model as the final one).

    Returns
    -------
    dict
        ``C`` and ``gamma`` (the best; ties go to the smaller C, then the smaller gamma),
        ``grid`` (every candidate with its mean and per-fold scores), ``folds``, ``scheme``.

    Raises
    ------
    ValueError
        No candidate could be fitted in any fold (too few files per class), or ``features`` holds
        NaN or infinite values.
    """
    if not np.isfinite(features).all():
        raise ValueError("the features to tune on hold NaN or infinite values")
    subjects = None if groups is None else groups.subjects
    folds = _inner_folds(labels, subjects, seed)
    # Checked once above: the grid's fits (30 settings x folds, each calibrated in folds of its own)
    # skip scikit-learn's per-call checks of the same arrays, about a third of their time.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        grid = _score_grid(make_classifier, features, labels, groups, folds)
    scored = [entry for entry in grid if entry["mean"] is not None]
    if not scored:
        raise ValueError("no SVM setting could be fitted in the inner folds (too few files per class)")
    best = max(scored, key=lambda entry: (round(entry["mean"], 12), -entry["C"], -entry["gamma"]))
    scheme = "subject-wise" if groups is not None else "stratified"
    return {
        "C": best["C"],
        "gamma": best["gamma"],
        "score": best["mean"],
        "grid": grid,
        "folds": len(folds),
        "scheme": scheme,
    }


def _score_grid(
    make_classifier: Callable[[float, float], HHTClassifier],
    features: np.ndarray,
    labels: np.ndarray,
    groups: FileGroups | None,
    folds: list,
) -> list[dict[str, Any]]:
    """Every (C, gamma) candidate with its per-fold scores (None where it could not be fitted) and their mean."""
    reference = reference_gamma(make_classifier(1.0, 1.0).feature_blocks)
    grid = []
    for C in C_GRID:
        for factor in GAMMA_FACTORS:
            fold_scores = [
                _fold_score(make_classifier(C, factor * reference), features, labels, groups, fold) for fold in folds
            ]
            usable = [score for score in fold_scores if score is not None]
            mean = float(np.mean(usable)) if usable else None
            grid.append(
                {"C": C, "gamma": factor * reference, "gamma_factor": factor, "mean": mean, "folds": fold_scores}
            )
    return grid


def _fold_score(
    classifier: HHTClassifier, features: np.ndarray, labels: np.ndarray, groups: FileGroups | None, fold: Any
) -> float | None:
    train_groups, test_groups = take_groups(groups, fold.train), take_groups(groups, fold.test)
    try:
        classifier.fit_features(features[fold.train], labels[fold.train], train_groups)
    except ValueError as error:
        logger.debug("inner fold %s skipped: %s", fold.name, error)
        return None
    return balanced_accuracy(labels[fold.test], classifier.predict_features(features[fold.test], test_groups))
