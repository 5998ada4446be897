"""The classifier on feature vectors computed beforehand: what model selection runs on.

Cross-validation and tuning fit the same classifier dozens of times on the same files; the
features of a file (the CNN's, the descriptors') do not change between those fits, so train.py
computes them once (:meth:`~semg_hht.model.classifier.HHTClassifier.features_of`) and hands
scikit-learn's ``cross_validate`` and ``GridSearchCV`` this estimator, whose ``X`` is those
vectors: ``FeatureVectorClassifier(HHTClassifier(...))`` fits and predicts exactly as the
classifier's ``fit_features`` / ``predict_proba_features`` do, and its parameters are the
classifier's (``classifier__svm_C``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.estimator_base import Estimator, GroupsConsumer, balanced_accuracy_score, classifier_tags
from semg_hht.model.normalisation import GroupsLike


class FeatureVectorClassifier(GroupsConsumer, Estimator):
    """``classifier`` fitted and applied on feature vectors (n, n_features) instead of matrices.

    Parameters
    ----------
    classifier : HHTClassifier
        The settings (features, normalisation, model, head, SVM); copied by ``fit``, never changed.

    Attributes
    ----------
    classifier_ : HHTClassifier
        The fitted copy.
    classes_ : ndarray of shape (6,)
    """

    def __init__(self, classifier: HHTClassifier | None = None):
        self.classifier = classifier

    def fit(self, X: np.ndarray, y: np.ndarray, groups: GroupsLike = None) -> FeatureVectorClassifier:
        """Fit a copy of ``classifier`` on feature vectors X (n, n_features), class IDs y (n,) and ``groups``."""
        from sklearn.base import clone

        self.classifier_ = clone(self.classifier if self.classifier is not None else HHTClassifier())
        self.classifier_.fit_features(X, y, groups)
        self.classes_ = self.classifier_.classes_
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classifier_")

    def __sklearn_tags__(self) -> Any:
        return classifier_tags(three_d_input=False)

    def predict_proba(self, X: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Class probabilities (n, 6) of feature vectors X (n, n_features)."""
        if not hasattr(self, "classifier_"):
            raise RuntimeError("the classifier is not fitted; call fit() first")
        return self.classifier_.predict_proba_features(X, groups)

    def predict(self, X: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Most probable class ID (n,) of feature vectors X (n, n_features)."""
        return self.predict_proba(X, groups).argmax(axis=1)

    def score(self, X: np.ndarray, y: np.ndarray, groups: GroupsLike = None, sample_weight: Any = None) -> float:
        """Balanced accuracy of ``predict(X)`` against class IDs y (as :meth:`HHTClassifier.score`)."""
        return balanced_accuracy_score(y, self.predict(X, groups), sample_weight)
