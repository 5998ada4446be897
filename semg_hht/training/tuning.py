"""Choosing the head and its settings: scikit-learn's ``GridSearchCV`` over the SVM's C x gamma grid and the
random forest, subject-wise.

The search runs on feature vectors computed once (:class:`~semg_hht.model.feature_vectors.FeatureVectorClassifier`),
its folds hold out whole subjects (:class:`~semg_hht.evaluation.splits.InnerFolds`), and the
subjects and muscles reach the classifier through metadata routing (:func:`routing_params`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV

from semg_hht.defaults import DEFAULT_HEAD
from semg_hht.evaluation.splits import InnerFolds
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_vectors import FeatureVectorClassifier
from semg_hht.model.normalisation import FileGroups

C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
GAMMA_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""gamma as multiples of ``1 / sum(w**2)`` (``w`` the block weights): scikit-learn's ``"scale"``
for standardised, block-weighted features."""
FOREST = "forest"
"""The tree candidate among the heads (:mod:`semg_hht.model.forest_head`)."""
MAX_INNER_FOLDS = 5
NO_SETTING = "no head setting could be fitted in the inner folds (too few files per class)"
FILE_GROUPS = "file_groups"
"""The routing name of each file's (subject, muscle), shape (n, 2), which the classifier takes as
``groups``; ``groups`` itself is the subjects (n,), which the grouped splitters take."""


def reference_gamma(weights: np.ndarray) -> float:
    """``"scale"``'s gamma for standardised features weighted by ``weights``
    (:func:`~semg_hht.model.feature_sets.block_weights`)."""
    return float(1.0 / np.sum(np.asarray(weights) ** 2))


def head_grid(classifier: HHTClassifier) -> list[dict[str, list]]:
    """The candidates, ``GridSearchCV``'s grids of :class:`FeatureVectorClassifier` parameters: the kernel head
    (``classifier``'s, or ``auto`` where it asks for the forest) at every C x gamma, C outer; then the forest
    head (:mod:`semg_hht.model.forest_head`), which has no C or gamma."""
    reference = reference_gamma(classifier.column_weights)
    kernel_head = DEFAULT_HEAD if classifier.head == FOREST else classifier.head
    return [
        {
            "classifier__head": [kernel_head],
            "classifier__svm_C": list(C_GRID),
            "classifier__svm_gamma": [factor * reference for factor in GAMMA_FACTORS],
        },
        {"classifier__head": [FOREST]},
    ]


def routed(classifier: HHTClassifier, groups_known: bool) -> FeatureVectorClassifier:
    """``classifier`` on feature vectors, asking for :data:`FILE_GROUPS` in fit, predict_proba and score
    when the files' subjects are known."""
    estimator = FeatureVectorClassifier(classifier)
    if groups_known:
        estimator.set_fit_request(groups=FILE_GROUPS).set_score_request(groups=FILE_GROUPS)
        estimator.set_predict_proba_request(groups=FILE_GROUPS)
    return estimator


def routing_params(groups: FileGroups | None, splitter: bool = True) -> dict[str, np.ndarray]:
    """What ``fit``, ``cross_validate`` and ``GridSearchCV.fit`` take beside X and y: (subject, muscle) for the
    classifier, and with ``splitter`` the subjects for a grouped splitter (scikit-learn refuses metadata that
    nothing asks for); nothing when subjects are unknown."""
    if groups is None:
        return {}
    return {FILE_GROUPS: groups.pairs(), **({"groups": groups.subjects} if splitter else {})}


def svm_search(classifier: HHTClassifier, groups_known: bool, seed: int, refit: bool) -> GridSearchCV:
    """The grid search of C and gamma for ``classifier``: folds of :class:`InnerFolds` (at most 5) shuffled by
    ``seed``, scored by the six-class balanced accuracy; with ``refit``, the best is fitted on all files
    (:func:`best_setting`)."""
    return GridSearchCV(
        routed(classifier, groups_known),
        head_grid(classifier),
        cv=InnerFolds(MAX_INNER_FOLDS, random_state=seed),
        error_score=np.nan,
        refit=best_setting if refit else False,
    )


def best_setting(results: dict[str, Any]) -> int:
    """The index of the best candidate in ``cv_results_``: the highest mean over the folds it could be fitted in;
    ties go to the kernel head over the forest, then to the smaller C, then the smaller gamma.

    Raises
    ------
    ValueError
        No candidate could be fitted in any fold.
    """
    means = _mean_over_fitted(_fold_scores(results))
    if np.isnan(means).all():
        raise ValueError(NO_SETTING)
    params = results["params"]
    keys = [
        (
            -np.inf if np.isnan(mean) else round(mean, 12),
            p.get("classifier__head") != FOREST,
            -p.get("classifier__svm_C", 0.0),
            -p.get("classifier__svm_gamma", 0.0),
        )
        for mean, p in zip(means, params, strict=True)
    ]
    return int(max(range(len(keys)), key=keys.__getitem__))


def _fold_scores(results: dict[str, Any]) -> np.ndarray:
    """The (candidates, folds) test scores of ``cv_results_``; NaN where a candidate could not be fitted."""
    n_folds = sum(key.startswith("split") and key.endswith("_test_score") for key in results)
    return np.column_stack([results[f"split{k}_test_score"] for k in range(n_folds)])


def _mean_over_fitted(scores: np.ndarray) -> np.ndarray:
    """Each candidate's mean over the folds it could be fitted in; NaN where it could be fitted in none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": a candidate fitted nowhere
        return np.nanmean(scores, axis=1)


def tune_svm(
    classifier: HHTClassifier, features: np.ndarray, labels: np.ndarray, groups: FileGroups | None, seed: int
) -> dict[str, Any]:
    """Score every candidate of :func:`head_grid` for ``classifier`` (its features, normalisation and model) by
    the six-class balanced accuracy of :func:`svm_search`'s inner cross-validation on (n, n_features) features.

    Returns
    -------
    dict
        ``head``, ``C`` and ``gamma`` (the best, :func:`best_setting`; C and gamma None for the forest),
        ``score`` (its mean), ``grid`` (every candidate with its mean and per-fold scores, None where it
        could not be fitted), ``folds``, ``scheme``.

    Raises
    ------
    ValueError
        No candidate could be fitted in any fold (too few files per class), or ``features`` holds
        NaN or infinite values or not the classifier's columns.
    """
    width = len(classifier.feature_names)
    if features.ndim != 2 or features.shape[1] != width:
        # Checked here: every candidate would fail alike, and the search would blame the class sizes.
        raise ValueError(f"features {features.shape}: {width} columns of {classifier.feature_set} expected")
    if not np.isfinite(features).all():
        raise ValueError("the features to tune on hold NaN or infinite values")
    search = svm_search(classifier, groups is not None, seed, refit=False)
    with searching():
        search.fit(features, labels, **routing_params(groups))
    results = search.cv_results_
    best = best_setting(results)
    grid = _grid_record(results, classifier)
    return {
        "head": grid[best]["head"],
        "C": grid[best]["C"],
        "gamma": grid[best]["gamma"],
        "score": grid[best]["mean"],
        "grid": grid,
        "folds": search.n_splits_,
        "scheme": "subject-wise" if groups is not None else "stratified",
    }


def apply_tuning(classifier: HHTClassifier, tuning: dict[str, Any]) -> None:
    """Set the chosen head and its C and gamma on ``classifier`` (a record of a release without the forest among
    the candidates has no ``head``: its head stays)."""
    classifier.head = tuning.get("head", classifier.head)
    if tuning.get("C") is not None:
        classifier.svm_C, classifier.svm_gamma = float(tuning["C"]), float(tuning["gamma"])


@contextmanager
def searching() -> Iterator[None]:
    """The settings of a model selection on finite features: metadata routing on; scikit-learn's per-call checks
    of the same arrays off (checked once by the caller: they are about a third of the grid's time); a candidate
    that cannot be fitted in an inner fold (too few files of a class) scored NaN without a warning, and
    none that can be fitted anywhere a ValueError of one line."""
    with (
        sklearn.config_context(enable_metadata_routing=True, assume_finite=True, skip_parameter_validation=True),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", message="One or more of the test scores are non-finite")
        try:
            yield
        except ValueError as error:
            if "fits failed" not in str(error):  # scikit-learn's "All the N fits failed", with every traceback
                raise
            raise ValueError(NO_SETTING) from None


def _grid_record(results: dict[str, Any], classifier: HHTClassifier) -> list[dict[str, Any]]:
    """Every candidate as plain data: head, C, gamma (and its factor of the reference; None for the forest), mean
    and per-fold scores."""
    reference = reference_gamma(classifier.column_weights)
    scores = _fold_scores(results)
    grid = []
    for params, mean, folds in zip(results["params"], _mean_over_fitted(scores), scores, strict=True):
        gamma = params.get("classifier__svm_gamma")
        grid.append(
            {
                "head": str(params["classifier__head"]),
                "C": None if gamma is None else float(params["classifier__svm_C"]),
                "gamma": None if gamma is None else float(gamma),
                "gamma_factor": None if gamma is None else round(float(gamma) / reference, 12),
                "mean": None if np.isnan(mean) else float(mean),
                "folds": [None if np.isnan(score) else float(score) for score in folds],
            }
        )
    return grid
