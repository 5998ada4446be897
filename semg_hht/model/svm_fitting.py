"""Fitting a head on a feature set: block-weighted standardisation, then a calibrated SVC or the scalable head.

Imported only to fit: predicting uses the fitted model's arrays (:class:`~semg_hht.model.svm_head.SVMHead`,
:class:`~semg_hht.model.scalable_head.ScalableHead`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data

from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_head import kernel_gamma

SCALABLE_COMPONENTS = 300
"""Nystroem components of the scalable head: within 0.01 balanced accuracy of 1,000 on simulated
descriptors, at a third of the fitting time (docs/scaling.md)."""
SCALABLE_TOLERANCE = 1e-3
"""Stopping tolerance of the logistic regression's L-BFGS: 10^6 samples converge in about 130
iterations instead of 250 at scikit-learn's 1e-4, with the same balanced accuracy."""
SCALABLE_MAX_ITERATIONS = 500
MAPPING_CHUNK = 65_536
"""Rows mapped through the Nystroem kernel at a time: bounds its float64 temporaries to about 150 MB."""


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


def fit_scalable_head(
    features: np.ndarray, y: np.ndarray, weights: np.ndarray, svm: dict[str, Any], seed: int
) -> tuple[StandardScaler, Pipeline, ScalableHead]:
    """Fit the scalable head on (n, d) features: block-weighted standardisation -> Nystroem -> logistic regression.

    The kernel is the SVM's (``svm``: C, kernel, gamma; ``gamma="scale"`` as the SVC computes it),
    approximated by :data:`SCALABLE_COMPONENTS` training rows drawn with ``seed``; ``C`` is the
    logistic regression's inverse regularisation. The mapped features are held as float32
    (n x 300 x 4 bytes: 1.2 GB for 10^6 samples) and computed in chunks.

    Returns the fitted ``StandardScaler`` (its ``scale_`` divided by ``weights``), the fitted
    ``Pipeline(Nystroem, LogisticRegression)`` that predicts from its output, and their
    :class:`ScalableHead`.
    """
    scaling = BlockWeightedScaler(weights).fit(features)
    scaled = scaling.transform(features)
    nystroem = Nystroem(
        kernel=svm["kernel"],
        gamma=kernel_gamma(svm["gamma"], scaled),
        coef0=0.0,  # the SVC's default (scikit-learn's kernel functions default to 1)
        degree=3,
        n_components=min(SCALABLE_COMPONENTS, len(scaled)),
        random_state=seed,
    ).fit(scaled)
    mapped = np.empty((len(scaled), nystroem.components_.shape[0]), dtype=np.float32)
    for start in range(0, len(scaled), MAPPING_CHUNK):
        mapped[start : start + MAPPING_CHUNK] = nystroem.transform(scaled[start : start + MAPPING_CHUNK])
    del scaled
    linear = LogisticRegression(C=svm["C"], tol=SCALABLE_TOLERANCE, max_iter=SCALABLE_MAX_ITERATIONS)
    linear.fit(mapped, y)
    model = Pipeline([("kernel", nystroem), ("linear", linear)])
    return scaling.scaler_, model, ScalableHead.from_sklearn(scaling.scaler_, nystroem, linear)
