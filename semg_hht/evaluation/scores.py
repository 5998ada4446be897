"""Scores of 6-class predictions, and cross-validation folds (subject-wise when subjects are known)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from semg_hht.classes import CLASS_NAMES, N_CLASSES, gender_of, quality_of
from semg_hht.data.aggregation import aggregate, recording_labels
from semg_hht.defaults import DEFAULT_AGGREGATION_RULE


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in ``truth`` (scikit-learn's ``balanced_accuracy_score``)."""
    with warnings.catch_warnings():
        # A predicted class that no file has is a wrong prediction, counted as such; nothing to warn about.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(truth, predicted))


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Figures of 6-class predictions against the true class IDs (both shape (n,)).

    Returns
    -------
    dict
        ``n``; ``accuracy``; ``balanced_accuracy`` (mean recall over the classes
        present); ``macro_f1`` (mean F1 over the classes present in ``truth`` or
        ``predicted``); ``gender_accuracy`` and ``quality_accuracy``: the share of
        files whose predicted class has the right gender, and the right movement
        quality, whatever the other axis; ``per_class``: precision, recall, F1 and
        support by class name; ``confusion_matrix``: 6 x 6, rows true, columns
        predicted, in class ID order.
    """
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    present = sorted(set(truth.tolist()) | set(predicted.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(N_CLASSES)), zero_division=0
    )
    return {
        "n": int(len(truth)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": balanced_accuracy(truth, predicted),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "gender_accuracy": float(accuracy_score(gender_of(truth), gender_of(predicted))),
        "quality_accuracy": float(accuracy_score(quality_of(truth), quality_of(predicted))),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=list(range(N_CLASSES))).tolist(),
    }


def summarise_folds(fold_scores: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over folds of each headline figure."""
    keys = ("accuracy", "balanced_accuracy", "macro_f1", "gender_accuracy", "quality_accuracy")
    return {
        key: {
            "mean": float(np.mean([fold[key] for fold in fold_scores])),
            "std": float(np.std([fold[key] for fold in fold_scores])),
        }
        for key in keys
    }


def recording_scores(
    probabilities: np.ndarray, truth: np.ndarray, recordings: Sequence[str], rule: str = DEFAULT_AGGREGATION_RULE
) -> dict[str, Any] | None:
    """:func:`scores` of one prediction per recording; None when each recording
    has one file.

    Raises
    ------
    ValueError
        The files of a recording have different labels in ``truth``.
    """
    combined = aggregate(probabilities, recordings, rule)
    if len(combined) == len(recordings):
        return None
    recording_truth = recording_labels(combined, np.asarray(truth))
    if recording_truth is None:
        raise ValueError("the files of a recording have different labels")
    return scores(recording_truth, np.array([c.probabilities.argmax() for c in combined]))
