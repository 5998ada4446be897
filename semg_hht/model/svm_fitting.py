"""Fitting a head on a feature set: block-weighted standardisation, then a calibrated SVC or the scalable head;
or the calibrated random forest (on the features as they are: a tree's splits do not depend on scale).

Imported only to fit: predicting uses the fitted model's arrays (:class:`~semg_hht.model.svm_head.SVMHead`,
:class:`~semg_hht.model.scalable_head.ScalableHead`, :class:`~semg_hht.model.forest_head.ForestHead`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data

from semg_hht.model.forest_head import ForestHead
from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_head import kernel_gamma

SCALABLE_COMPONENTS = 300
"""Nystroem components of the scalable head: within 0.01 balanced accuracy of 1,000 on simulated
descriptors, at a third of the fitting time (docs/scaling.md)."""
SCALABLE_TOLERANCE = 1e-3
"""Stopping tolerance of the logistic regression's L-BFGS: 10^6 samples converge in about 130
iterations instead of 250 at scikit-learn's 1e-4, with the same balanced accuracy."""
SCALABLE_MAX_ITERATIONS = 500
PLATT_SCALE_FROM = 30.0
"""Decision values this large or larger are scaled into [-1, 1] before the sigmoid's fit (conditioning)."""
FOREST_TREES = 300
"""Trees of the forest head: the benchmark's random forest (TRAINING_GUIDE.md)."""
FOREST_MAX_LEAVES = 1024
"""Leaves per tree at most, so that a forest's arrays stay under about 50 MB whatever the training set's size
(300 trees of 2,047 nodes); a few hundred training rows grow trees well inside it."""
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


class PlattCalibratedSVC(ClassifierMixin, BaseEstimator):
    """An SVC with Platt's sigmoid calibration of its cross-validated decision values.

    One SVC is fitted on all training rows; for each class (the second class alone with two), a
    sigmoid of the SVC's one-vs-rest decision value is fitted (:func:`platt_sigmoid`) on the decision
    values of SVCs fitted without the row (``cv``); the class probabilities are the sigmoids
    normalised to sum to 1. This is what ``CalibratedClassifierCV(SVC, method="sigmoid",
    ensemble=False)`` fits, built from public parts, so that the fitted numbers are attributes of
    this class (``calibration_a_``, ``calibration_b_``) rather than of scikit-learn's private ones.

    Parameters
    ----------
    svc : SVC
    cv : cross-validation splitter or int
        The folds of the decision values that the sigmoids are fitted on.

    Attributes
    ----------
    svc_ : SVC
        Fitted on all rows.
    calibration_a_, calibration_b_ : ndarray of shape (n_calibrated,)
        Platt's ``a`` and ``b`` of each calibrated class.
    classes_ : ndarray of shape (n_classes,)
    """

    def __init__(self, svc: SVC | None = None, cv: Any = 5):
        self.svc = svc
        self.cv = cv

    def fit(self, X: np.ndarray, y: np.ndarray) -> PlattCalibratedSVC:
        svc = self.svc if self.svc is not None else SVC()
        decisions = cross_val_predict(clone(svc), X, y, cv=self.cv, method="decision_function")
        self.svc_ = clone(svc).fit(X, y)
        self.classes_ = self.svc_.classes_
        columns = decisions.reshape(len(decisions), -1)
        calibrated = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        sigmoids = [platt_sigmoid(columns[:, k], np.asarray(y) == label) for k, label in enumerate(calibrated)]
        self.calibration_a_ = np.array([a for a, _ in sigmoids])
        self.calibration_b_ = np.array([b for _, b in sigmoids])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "calibration_a_")
        columns = self.svc_.decision_function(X).reshape(len(X), -1)
        positive = expit(-(self.calibration_a_ * columns + self.calibration_b_))
        if len(self.classes_) == 2:
            return np.column_stack([1.0 - positive[:, 0], positive[:, 0]])
        total = positive.sum(axis=1, keepdims=True)
        uniform = np.full_like(positive, 1.0 / len(self.classes_))
        return np.where(total > 0, positive / np.where(total > 0, total, 1.0), uniform)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def platt_sigmoid(decision: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid ``p = 1 / (1 + exp(a f + b))`` of decision values ``f`` (n,) for labels ``positive`` (n,):
    ``(a, b)``.

    Maximum likelihood for Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``
    (Platt 1999, "Probabilistic outputs for support vector machines"; Lin, Lin & Weng 2007), by
    L-BFGS from ``a = 0``, ``b = log((N- + 1) / (N+ + 1))``, with decision values of 30 or more in
    magnitude divided by the largest for conditioning: scikit-learn's own sigmoid calibration, step
    for step.
    """
    values = np.asarray(decision, dtype=np.float64)
    largest = float(np.abs(values).max()) if values.size else 0.0
    scale = largest if largest >= PLATT_SCALE_FROM else 1.0
    values = values / scale
    n_positive, n_negative = float(positive.sum()), float((~positive).sum())
    targets = np.where(positive, (n_positive + 1.0) / (n_positive + 2.0), 1.0 / (n_negative + 2.0))

    def loss_and_gradient(ab: np.ndarray) -> tuple[float, np.ndarray]:
        raw = -(ab[0] * values + ab[1])  # the log-odds of the positive label
        residual = expit(raw) - targets
        loss = float(np.sum(np.logaddexp(0.0, raw) - targets * raw))
        return loss, np.array([-(residual @ values), -residual.sum()])

    start = np.array([0.0, np.log((n_negative + 1.0) / (n_positive + 1.0))])
    options = {"gtol": 1e-6, "ftol": 64 * np.finfo(float).eps}
    a, b = minimize(loss_and_gradient, start, method="L-BFGS-B", jac=True, options=options).x
    return float(a / scale), float(b)


def svm_pipeline(weights: np.ndarray, svm: dict[str, Any], folds: Any) -> Pipeline:
    """The unfitted pipeline: :class:`BlockWeightedScaler` -> :class:`PlattCalibratedSVC` (``svm``: C, kernel,
    gamma), its sigmoids fitted on decision values cross-validated over ``folds``."""
    svc = SVC(C=svm["C"], kernel=svm["kernel"], gamma=svm["gamma"])
    return Pipeline([("scale", BlockWeightedScaler(weights)), ("svm", PlattCalibratedSVC(svc, cv=folds))])


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


def fit_forest_head(features: np.ndarray, y: np.ndarray, seed: int) -> tuple[None, RandomForestClassifier, ForestHead]:
    """Fit the forest head on (n, d) features: a random forest of :data:`FOREST_TREES` trees seeded by ``seed``,
    and Platt's sigmoid per class on its out-of-bag votes (:mod:`semg_hht.model.forest_head`).

    Returns None (a forest needs no scaler), the fitted ``RandomForestClassifier`` and its :class:`ForestHead`.
    """
    forest = RandomForestClassifier(
        n_estimators=FOREST_TREES,
        max_leaf_nodes=FOREST_MAX_LEAVES,
        oob_score=True,
        random_state=seed,
    ).fit(features, y)
    votes = np.asarray(forest.oob_decision_function_, dtype=np.float64)
    # A row that every tree saw has no out-of-bag vote (rare with 300 trees): the classes' shares stand in.
    unvoted = np.isnan(votes).any(axis=1)
    votes[unvoted] = np.bincount(np.searchsorted(forest.classes_, y), minlength=len(forest.classes_)) / len(y)
    calibrated = forest.classes_[1:] if len(forest.classes_) == 2 else forest.classes_
    columns = [np.searchsorted(forest.classes_, label) for label in calibrated]
    sigmoids = [
        platt_sigmoid(votes[:, k], np.asarray(y) == label) for k, label in zip(columns, calibrated, strict=True)
    ]
    a, b = np.array([a for a, _ in sigmoids]), np.array([b for _, b in sigmoids])
    return None, forest, ForestHead.from_sklearn(forest, a, b)
