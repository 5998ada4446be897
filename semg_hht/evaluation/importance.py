"""Permutation importance of the feature blocks and of the named descriptors (HHT and envelope).

The importance of a feature (Breiman 2001, "Random forests") is the drop in the score when its
values are shuffled among the files, which breaks its link to the class and leaves its
distribution as it is; computed with scikit-learn's ``permutation_importance`` on held-out files,
``n_repeats`` shuffles each, as mean and standard deviation. A block (``cnn``, ``hht``, ``env``, ``td``, ``amp``) is
shuffled as a whole: its columns move together, so the block's internal structure is kept. In a
model of window samples a descriptor's columns in every channel move together too.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from semg_hht.classes import N_CLASSES
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import NAMED_DESCRIPTORS, block_columns
from semg_hht.model.normalisation import FileGroups

SCORING = "balanced_accuracy"
N_REPEATS = 10


class _Columns(BaseEstimator, ClassifierMixin):
    """A fitted classifier as scikit-learn sees it, over some columns of fixed feature vectors.

    ``X`` holds, for each permuted unit (an array of column indices), the row index that the unit's
    columns are taken from: shuffling it moves the unit's columns together.
    """

    def __init__(self, classifier: HHTClassifier, features: np.ndarray, groups: FileGroups | None, units: list):
        self.classifier, self.features, self.groups, self.units = classifier, features, groups, units

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(N_CLASSES)

    def __sklearn_is_fitted__(self) -> bool:
        return True  # the classifier is fitted already: permutation importance only predicts

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Columns:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        features = np.array(self.features, dtype=np.float64)
        for k, unit in enumerate(self.units):
            features[:, unit] = self.features[X[:, k].astype(int)][:, unit]
        return self.classifier.predict_features(features, self.groups)


def permutation_importances(
    classifier: HHTClassifier, features: np.ndarray, labels: np.ndarray, groups: FileGroups | None, seed: int
) -> dict[str, Any]:
    """Importance of each feature block and each named descriptor of the model, on held-out files.

    Parameters
    ----------
    features : ndarray of shape (n, n_features)
        The held-out files' feature vectors; ``labels`` (n,) their class IDs, ``groups`` their subjects.

    Returns
    -------
    dict
        ``metric``, ``n_repeats``, ``baseline`` (the unshuffled score), ``blocks`` and
        ``descriptors``: name -> {``mean``, ``std``} of the drop in the score.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import balanced_accuracy_score

    blocks = block_columns(classifier.feature_blocks, classifier.channel_names)
    per_matrix = classifier.matrix_feature_names
    descriptors = [name for name in NAMED_DESCRIPTORS if name in per_matrix]
    # A descriptor's column in each channel (one matrix a sample: its one column).
    channel_offsets = np.arange(classifier.n_channels) * len(per_matrix)
    descriptor_units = [channel_offsets + per_matrix.index(name) for name in descriptors]
    rows = np.arange(len(features), dtype=np.float64)
    units: dict[str, tuple[list[np.ndarray], np.ndarray]] = {
        "blocks": (list(blocks.values()), np.repeat(rows[:, None], len(blocks), axis=1)),
        "descriptors": (descriptor_units, np.repeat(rows[:, None], len(descriptors), axis=1)),
    }
    names = {"blocks": list(blocks), "descriptors": descriptors}
    result: dict[str, Any] = {"metric": SCORING, "n_repeats": N_REPEATS}
    with warnings.catch_warnings():
        # A shuffle often predicts a class the held-out files lack; the score counts it as it should.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        result["baseline"] = float(balanced_accuracy_score(labels, classifier.predict_features(features, groups)))
        for kind, (unit_list, X) in units.items():
            estimator = _Columns(classifier, features, groups, unit_list)
            if not unit_list:  # no unit of this kind in the feature set (and so no names)
                result[kind] = {}
                continue
            found = permutation_importance(
                estimator, X, labels, scoring=SCORING, n_repeats=N_REPEATS, random_state=seed
            )
            result[kind] = {
                name: {"mean": float(found.importances_mean[k]), "std": float(found.importances_std[k])}
                for k, name in enumerate(names[kind])
            }
    return result


def importance_summary(importance: dict[str, Any], top: int = 5) -> str:
    """Two lines for the run's printout: each block's importance, and the strongest descriptors."""
    blocks = ", ".join(f"{name} {value['mean']:.3f}" for name, value in importance["blocks"].items())
    strongest = sorted(importance["descriptors"].items(), key=lambda item: -item[1]["mean"])[:top]
    lines = [f"Permutation importance on the validation set (drop in {importance['metric']}): {blocks}"]
    if strongest:
        lines.append("Strongest descriptors: " + ", ".join(f"{name} {value['mean']:.3f}" for name, value in strongest))
    return "\n".join(lines)
