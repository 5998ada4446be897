"""The scalable head: a Nystroem kernel map + multinomial logistic regression, as plain arrays evaluated with numpy.

Its fit grows about linearly with the number of samples (the RBF SVM's about as n^2), so it takes
over where the SVM would take minutes (``HHTClassifier(head="auto")``; the figures are in
``docs/scaling.md``). A checkpoint stores it in ``P_head.npz`` beside the SVM head's layout, read
with ``allow_pickle=False``. The arithmetic is scikit-learn's, step by step (tests hold it to the
library's output):

1. standardise: ``z = (x - mean) / scale``;
2. Nystroem feature map (Williams & Seeger 2001, "Using the Nystroem method to speed up kernel
   machines"): ``phi(z) = K(z, C) N^T``, with ``C`` the m components (training rows drawn at
   random), ``K`` the SVM's kernel (:func:`~semg_hht.model.svm_head.kernel_matrix`) and
   ``N = K(C, C)^(-1/2)``, so that ``phi(z).phi(z')`` approximates ``K(z, z')``;
3. logistic regression on ``phi``: logits ``f = phi W^T + b``; probabilities ``softmax(f)``, or with
   two classes ``p_1 = 1 / (1 + exp(-f))`` and ``p_0 = 1 - p_1``. Fitted by minimising the log loss,
   its probabilities are calibrated without a separate calibration step (the benchmark reports
   the expected calibration error).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semg_hht.defaults import SVM_KERNELS
from semg_hht.model.svm_head import kernel_matrix, standardisation_arrays

HEAD_KIND = "scalable"
"""The value of the ``head`` array that marks this head's arrays in a head file."""

_ARRAY_KEYS = (
    "head",
    "classes",
    "mean",
    "scale",
    "components",
    "normalization",
    "kernel",
    "kernel_parameters",
    "coef",
    "intercept",
)


class ScalableHead:
    """Predict class probabilities from features with the arrays of a fitted Nystroem + logistic regression.

    Parameters
    ----------
    arrays : dict of str to ndarray
        As made by :meth:`from_sklearn` (see :meth:`to_arrays`); checked for consistent shapes.
    """

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.classes_, self.mean, self.scale = standardisation_arrays(arrays, _ARRAY_KEYS)
        self.components = np.asarray(arrays["components"], dtype=np.float64)
        self.normalization = np.asarray(arrays["normalization"], dtype=np.float64)
        self.kernel = str(np.asarray(arrays["kernel"]))
        self.gamma, self.coef0, self.degree = (float(v) for v in np.asarray(arrays["kernel_parameters"]))
        self.coef = np.asarray(arrays["coef"], dtype=np.float64)
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        self._check(str(np.asarray(arrays["head"])))

    def _check(self, kind: str) -> None:
        n_classes, (n_components, n_features) = len(self.classes_), self.components.shape
        n_outputs = 1 if n_classes == 2 else n_classes
        expected = {
            "mean": (self.mean.shape, (n_features,)),
            "scale": (self.scale.shape, (n_features,)),
            "normalization": (self.normalization.shape, (n_components, n_components)),
            "coef": (self.coef.shape, (n_outputs, n_components)),
            "intercept": (self.intercept.shape, (n_outputs,)),
        }
        wrong = [f"{key} {got} (expected {want})" for key, (got, want) in expected.items() if got != want]
        if kind != HEAD_KIND or n_classes < 2 or self.kernel not in SVM_KERNELS or wrong:
            raise ValueError(f"inconsistent scalable-head arrays: {', '.join(wrong) or 'kind, classes or kernel'}")

    @classmethod
    def from_sklearn(cls, scaler: Any, nystroem: Any, linear: Any) -> ScalableHead:
        """The head of a fitted ``StandardScaler``, ``Nystroem`` and ``LogisticRegression`` (public attributes only)."""
        return cls(
            {
                "head": np.array(HEAD_KIND),
                "classes": linear.classes_,
                "mean": scaler.mean_,
                "scale": scaler.scale_,
                "components": nystroem.components_,
                "normalization": nystroem.normalization_,
                "kernel": np.array(nystroem.kernel),
                "kernel_parameters": np.array([nystroem.gamma, nystroem.coef0, nystroem.degree], dtype=np.float64),
                "coef": linear.coef_,
                "intercept": linear.intercept_,
            }
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (plain numeric and unicode arrays: no pickle needed)."""
        return {
            "head": np.array(HEAD_KIND),
            "classes": self.classes_,
            "mean": self.mean,
            "scale": self.scale,
            "components": self.components,
            "normalization": self.normalization,
            "kernel": np.array(self.kernel),
            "kernel_parameters": np.array([self.gamma, self.coef0, self.degree]),
            "coef": self.coef,
            "intercept": self.intercept,
        }

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Logits: (n,) with two classes, else (n, n_classes)."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        mapped = kernel_matrix(self.kernel, z, self.components, self.gamma, self.coef0, self.degree)
        logits = mapped @ self.normalization.T @ self.coef.T + self.intercept
        return logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) of features (n, n_features), columns as ``classes_``; rows sum to 1."""
        logits = self.decision_function(features)
        if logits.ndim == 1:
            positive = 0.5 * (1.0 + np.tanh(0.5 * logits))  # the logistic function, free of overflow
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
