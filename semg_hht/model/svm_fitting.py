"""Fitting the SVM of a feature set: a scikit-learn ``Pipeline`` of block-weighted standardisation and a calibrated SVC.

Imported only to fit: predicting uses the fitted model's arrays (:class:`~semg_hht.model.svm_head.SVMHead`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data


class BlockWeightedScaler(TransformerMixin, BaseEstimator):
    """StandardScaler, then each column multiplied by its weight (by default 1).

    The weighting is folded into the fitted scaler (``scale_ / weights``), so that ``scaler_`` is a
    plain ``StandardScaler``: what a checkpoint's ``P_scaler.pkl`` holds.

    Parameters
    ----------
    weights : ndarray of shape (d,), optional
    """

    def __init__(self, weights: np.ndarray | None = None):
        self.weights = weights

    def fit(self, X: np.ndarray, y: Any = None) -> BlockWeightedScaler:
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.scaler_ = StandardScaler().fit(X)
        if self.weights is not None:
            self.scaler_.scale_ = self.scaler_.scale_ / np.asarray(self.weights, dtype=np.float64)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # as StandardScaler; the SVC refuses NaN
        return tags

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "scaler_")
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        return self.scaler_.transform(X)


def svm_pipeline(weights: np.ndarray, svm: dict[str, Any], folds: Any) -> Pipeline:
    """The unfitted pipeline: :class:`BlockWeightedScaler` -> sigmoid-calibrated SVC (``svm``: C, kernel, gamma).

    ``CalibratedClassifierCV(ensemble=False)`` fits one SVC on all training features and per-class
    Platt calibrators on its decision values cross-validated over ``folds``.
    """
    svc = SVC(C=svm["C"], kernel=svm["kernel"], gamma=svm["gamma"])
    calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False)
    return Pipeline([("scale", BlockWeightedScaler(weights)), ("svm", calibrated)])
