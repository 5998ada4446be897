"""The fitted StandardScaler + calibrated SVC as plain arrays, evaluated with numpy alone.

A checkpoint stores this head as ``P_head.npz`` (read with ``allow_pickle=False``), so
predicting from a checkpoint neither unpickles anything nor imports scikit-learn. The
arithmetic is scikit-learn's, step by step (tests hold it to the library's output):

1. standardise: ``z = (x - mean) / scale``;
2. kernel ``K(z, s)`` with every support vector ``s``: RBF ``exp(-gamma |z - s|^2)``, linear
   ``z.s``, polynomial ``(gamma z.s + coef0)^degree`` or sigmoid ``tanh(gamma z.s + coef0)``;
3. one-vs-one decision values (libsvm's layout): for classes ``i < j``,
   ``d_ij = sum_{s in i} alpha_{j-1,s} K + sum_{s in j} alpha_{i,s} K + b_ij``; with two
   classes, the single value ``sum_s alpha_s K + b``;
4. with more than two classes, scikit-learn's one-vs-rest shape: votes of the pairwise
   decisions plus their summed confidences mapped into (-1/3, 1/3);
5. Platt sigmoid per class, ``p_k = 1 / (1 + exp(a_k f_k + b_k))``, normalised to sum to 1
   (two classes: ``p_0 = 1 - p_1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semg_hht.defaults import SVM_KERNELS

_ARRAY_KEYS = (
    "classes",
    "mean",
    "scale",
    "support_vectors",
    "dual_coef",
    "intercept",
    "n_support",
    "kernel_parameters",
    "calibration_a",
    "calibration_b",
    "kernel",
)


def kernel_gamma(gamma: str | float, scaled_features: np.ndarray) -> float:
    """The kernel coefficient of an SVC with parameter ``gamma`` fitted on ``scaled_features`` (n, d).

    scikit-learn's rule: ``"scale"`` is ``1 / (d * X.var())`` (1 when the variance is 0), ``"auto"``
    is ``1 / d``, a number is itself.
    """
    if gamma == "scale":
        variance = np.asarray(scaled_features, dtype=np.float64).var()
        return 1.0 / (scaled_features.shape[1] * variance) if variance != 0 else 1.0
    if gamma == "auto":
        return 1.0 / scaled_features.shape[1]
    return float(gamma)


def kernel_matrix(
    kernel: str, z: np.ndarray, vectors: np.ndarray, gamma: float, coef0: float, degree: float
) -> np.ndarray:
    """Kernel values (n, m) between rows of ``z`` (n, d) and ``vectors`` (m, d), as scikit-learn's SVC defines them.

    RBF ``exp(-gamma |z - v|^2)``, linear ``z.v``, polynomial ``(gamma z.v + coef0)^degree``, sigmoid
    ``tanh(gamma z.v + coef0)``.
    """
    if kernel == "rbf":
        squared = (z**2).sum(1)[:, None] + (vectors**2).sum(1)[None, :]
        squared -= 2.0 * z @ vectors.T
        return np.exp(-gamma * np.maximum(squared, 0.0))
    dot = z @ vectors.T
    if kernel == "linear":
        return dot
    if kernel == "poly":
        return (gamma * dot + coef0) ** degree
    return np.tanh(gamma * dot + coef0)


def _gamma_of_scaler(gamma: str | float, scaler: Any) -> float:
    """:func:`kernel_gamma` of the scaler's own training features, from its statistics alone.

    Standardised columns have mean 0, so the variance of all values is the mean of the columns'
    variances, ``var_ / scale_**2``.
    """
    if gamma != "scale":
        return kernel_gamma(gamma, np.empty((0, len(scaler.mean_))))
    variance = float(np.mean(np.asarray(scaler.var_) / np.asarray(scaler.scale_) ** 2))
    return 1.0 / (len(scaler.mean_) * variance) if variance != 0 else 1.0


def standardisation_arrays(
    arrays: dict[str, np.ndarray], keys: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A head's ``classes``, ``mean`` and ``scale``, once ``arrays`` is known to hold every name of ``keys``."""
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(f"missing arrays {', '.join(missing)}")
    classes = np.asarray(arrays["classes"], dtype=np.int64)
    return classes, np.asarray(arrays["mean"], dtype=np.float64), np.asarray(arrays["scale"], dtype=np.float64)


class SVMHead:
    """Predict class probabilities from encoder features with the arrays of a fitted model.

    Parameters
    ----------
    arrays : dict of str to ndarray
        As made by :meth:`from_sklearn` (see :meth:`to_arrays`); checked for consistent shapes.
    """

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.classes_, self.mean, self.scale = standardisation_arrays(arrays, _ARRAY_KEYS)
        self.support_vectors = np.asarray(arrays["support_vectors"], dtype=np.float64)
        self.dual_coef = np.asarray(arrays["dual_coef"], dtype=np.float64)
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        self.n_support = np.asarray(arrays["n_support"], dtype=np.int64)
        self.gamma, self.coef0, self.degree = (float(v) for v in np.asarray(arrays["kernel_parameters"]))
        self.calibration_a = np.asarray(arrays["calibration_a"], dtype=np.float64)
        self.calibration_b = np.asarray(arrays["calibration_b"], dtype=np.float64)
        self.kernel = str(np.asarray(arrays["kernel"]))
        self._check()

    def _check(self) -> None:
        n_classes, (n_sv, n_features) = len(self.classes_), self.support_vectors.shape
        n_pairs = n_classes * (n_classes - 1) // 2
        n_calibrators = 1 if n_classes == 2 else n_classes
        expected = {
            "mean": (self.mean.shape, (n_features,)),
            "scale": (self.scale.shape, (n_features,)),
            "dual_coef": (self.dual_coef.shape, (n_classes - 1, n_sv)),
            "intercept": (self.intercept.shape, (n_pairs,)),
            "n_support": (self.n_support.shape, (n_classes,)),
            "calibration_a": (self.calibration_a.shape, (n_calibrators,)),
            "calibration_b": (self.calibration_b.shape, (n_calibrators,)),
        }
        wrong = [f"{key} {got} (expected {want})" for key, (got, want) in expected.items() if got != want]
        if n_classes < 2 or self.n_support.sum() != n_sv or self.kernel not in SVM_KERNELS or wrong:
            raise ValueError(f"inconsistent SVM arrays: {', '.join(wrong) or 'classes, support or kernel'}")

    @classmethod
    def from_sklearn(cls, scaler: Any, calibrated: Any, scaled_features: np.ndarray | None = None) -> SVMHead:
        """The head of a fitted ``StandardScaler`` and :class:`~semg_hht.model.svm_fitting.PlattCalibratedSVC`.

        ``scaled_features`` (n, d): what the SVC was fitted on, ``scaler.transform`` of the training
        features; it fixes ``gamma="scale"`` exactly as scikit-learn computed it. Without it, that
        gamma is computed from the scaler's statistics (equal up to rounding).
        """
        svc = calibrated.svc_
        if scaled_features is not None:
            gamma = kernel_gamma(svc.gamma, scaled_features)
        else:
            gamma = _gamma_of_scaler(svc.gamma, scaler)
        return cls(
            {
                "classes": svc.classes_,
                "mean": scaler.mean_,
                "scale": scaler.scale_,
                "support_vectors": svc.support_vectors_,
                "dual_coef": svc.dual_coef_,
                "intercept": svc.intercept_,
                "n_support": svc.n_support_,
                "kernel_parameters": np.array([gamma, svc.coef0, svc.degree], dtype=np.float64),
                "calibration_a": calibrated.calibration_a_,
                "calibration_b": calibrated.calibration_b_,
                "kernel": np.array(svc.kernel),
            }
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (plain numeric and unicode arrays: no pickle needed)."""
        return {
            "classes": self.classes_,
            "mean": self.mean,
            "scale": self.scale,
            "support_vectors": self.support_vectors,
            "dual_coef": self.dual_coef,
            "intercept": self.intercept,
            "n_support": self.n_support,
            "kernel_parameters": np.array([self.gamma, self.coef0, self.degree]),
            "calibration_a": self.calibration_a,
            "calibration_b": self.calibration_b,
            "kernel": np.array(self.kernel),
        }

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """SVC decision values, (n,) with two classes, else (n, n_classes) one-vs-rest shaped."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        kernel = kernel_matrix(self.kernel, z, self.support_vectors, self.gamma, self.coef0, self.degree)
        n_classes = len(self.classes_)
        if n_classes == 2:
            return kernel @ self.dual_coef[0] + self.intercept[0]
        starts = np.concatenate([[0], np.cumsum(self.n_support)])
        blocks = [slice(starts[c], starts[c + 1]) for c in range(n_classes)]
        votes = np.zeros((len(kernel), n_classes))
        confidence = np.zeros((len(kernel), n_classes))
        pair = 0
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                decision = (
                    kernel[:, blocks[i]] @ self.dual_coef[j - 1, blocks[i]]
                    + kernel[:, blocks[j]] @ self.dual_coef[i, blocks[j]]
                    + self.intercept[pair]
                )
                votes[:, i] += decision >= 0
                votes[:, j] += decision < 0
                confidence[:, i] += decision
                confidence[:, j] -= decision
                pair += 1
        return votes + confidence / (3 * (np.abs(confidence) + 1))

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, n_classes) of features (n, n_features), columns as ``classes_``."""
        return platt_probabilities(self.decision_function(features), self.calibration_a, self.calibration_b)


def platt_probabilities(decision: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Platt's sigmoid ``1 / (1 + exp(a_k f_k + b_k))`` of each class's decision value, normalised to sum to 1.

    ``decision`` is (n,) with two classes (the second class's value: ``p_0 = 1 - p_1``), else
    (n, n_classes); a row whose sigmoids are all 0 gets the uniform distribution.
    """
    with np.errstate(over="ignore"):  # exp overflow means a probability of 0, as scipy's expit gives
        if decision.ndim == 1:
            positive = 1.0 / (1.0 + np.exp(a[0] * decision + b[0]))
            return np.column_stack([1.0 - positive, positive])
        probabilities = 1.0 / (1.0 + np.exp(a * decision + b))
    total = probabilities.sum(axis=1, keepdims=True)
    uniform = np.full_like(probabilities, 1.0 / decision.shape[1])
    return np.divide(probabilities, total, out=uniform, where=total != 0)
