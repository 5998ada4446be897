"""The CNN-SVM classifier: encoder features -> StandardScaler -> calibrated SVC.

Probabilities come from ``CalibratedClassifierCV(SVC(...), ensemble=False)``:
one SVC is fitted on all training features, and per-class sigmoid (Platt)
calibrators are fitted on its cross-validated decision values. This replaces
``SVC(probability=True)``, deprecated in scikit-learn 1.9. Predictions are made
by the fitted model's arrays (:class:`~semg_hht.svm_head.SVMHead`), so a
checkpoint predicts without scikit-learn. The predicted class is always the most
probable one, so a prediction and its confidence agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .classes import N_CLASSES
from .defaults import DEFAULT_BATCH_SIZE
from .encoder import FEATURE_DIM, HHTEncoder, build_encoder, encode_batches
from .matrices import MATRIX_SHAPE
from .svm_head import SVMHead

SVM_KERNELS = ("rbf", "linear", "poly", "sigmoid")
MAX_CALIBRATION_FOLDS = 5
PREDICTION_CHUNK = 1024


def parse_gamma(value: str | float) -> str | float:
    """An SVC gamma: ``"scale"``, ``"auto"`` or a positive number."""
    if isinstance(value, str) and value in ("scale", "auto"):
        return value
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"gamma must be 'scale', 'auto' or a positive number, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"gamma must be positive, got {number}")
    return number


class HHTClassifier:
    """Classify (n, 256, 256) Hilbert spectra into the six classes.

    Follows scikit-learn's conventions: ``fit(X, y)``, ``predict(X)``,
    ``predict_proba(X)``; ``classes_`` is always ``arange(6)``, so probability
    column j is class ID j even when a class was absent from training (its
    probability is then 0). The ``*_features`` methods take encoder features of
    shape (n, 256) instead, so callers that stream files can encode each file once.

    Parameters
    ----------
    encoder : HHTEncoder, optional
        Defaults to a new encoder initialised from ``seed``.
    svm_C : float
        SVC regularisation.
    svm_kernel : {"rbf", "linear", "poly", "sigmoid"}
    svm_gamma : "scale", "auto" or float
    seed : int
        Seeds the encoder's initial weights and the calibration folds.
    batch_size : int
        Matrices per encoder forward pass.
    device : torch.device or str
    bf16 : bool
        Encode under bfloat16 autocast: faster on hardware with bf16 units, features
        differ from float32 in the third significant digit (see the README's figures).
    """

    def __init__(
        self,
        encoder: HHTEncoder | None = None,
        svm_C: float = 10.0,
        svm_kernel: str = "rbf",
        svm_gamma: str | float = "scale",
        seed: int = 42,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: torch.device | str = "cpu",
        bf16: bool = False,
    ):
        if not svm_C > 0:
            raise ValueError(f"svm_C must be positive, got {svm_C}")
        if svm_kernel not in SVM_KERNELS:
            raise ValueError(f"svm_kernel must be one of {SVM_KERNELS}, got {svm_kernel!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.encoder = encoder if encoder is not None else build_encoder(seed)
        self.svm_C = float(svm_C)
        self.svm_kernel = svm_kernel
        self.svm_gamma = parse_gamma(svm_gamma)
        self.seed = seed
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.bf16 = bf16
        self.classes_ = np.arange(N_CLASSES)
        # Class ID of each SVM label; only checkpoints of the original project differ.
        self.label_map = np.arange(N_CLASSES)
        # What predicts: an SVMHead, or for original-project checkpoints anything with
        # classes_ and predict_proba(features).
        self.head: Any = None
        # The fitted scikit-learn objects, for the checkpoint's pickle files; None in a
        # classifier loaded from a checkpoint, which carries those files' bytes instead.
        self.scaler: Any = None
        self.svm: Any = None
        self.pickled_sklearn: dict[str, bytes] | None = None

    @property
    def is_fitted(self) -> bool:
        return self.head is not None

    def iter_features(self, batches: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        """Encoder features of a stream of (b, 256, 256) batches, one (b, 256) array each."""
        return encode_batches(self.encoder, batches, self.device, self.bf16)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Encoder features of X, shape (n, 256, 256) -> (n, 256), float32."""
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[1:] != MATRIX_SHAPE:
            raise ValueError(f"X must have shape (n, 256, 256), got {X.shape}")
        batches = (X[start : start + self.batch_size] for start in range(0, len(X), self.batch_size))
        features = list(self.iter_features(batches))
        return np.concatenate(features) if features else np.empty((0, FEATURE_DIM), np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray) -> HHTClassifier:
        """Fit scaler and SVM on matrices X (n, 256, 256) with class IDs y (n,)."""
        return self.fit_features(self.transform(X), y)

    def fit_features(self, features: np.ndarray, y: np.ndarray) -> HHTClassifier:
        """Fit scaler and calibrated SVM on encoder features (n, 256) and class IDs (n,).

        Raises
        ------
        ValueError
            Labels outside 0-5, fewer than two classes, or a class with fewer
            than two samples (probability calibration cross-validates).
        """
        # Imported here: predicting from a checkpoint needs no scikit-learn.
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        features = np.asarray(features, dtype=np.float64)
        y = np.asarray(y)
        if features.ndim != 2 or features.shape[0] != y.shape[0]:
            raise ValueError(f"features {features.shape} and labels {y.shape} do not match")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(f"class IDs must be in 0..{N_CLASSES - 1}")
        present, counts = np.unique(y, return_counts=True)
        if len(present) < 2:
            raise ValueError("training needs samples of at least two classes")
        if counts.min() < 2:
            raise ValueError(
                "every class in training needs at least 2 samples for probability "
                f"calibration; class ID {int(present[counts.argmin()])} has {int(counts.min())}"
            )
        folds = StratifiedKFold(
            n_splits=min(MAX_CALIBRATION_FOLDS, int(counts.min())), shuffle=True, random_state=self.seed
        )
        svm = CalibratedClassifierCV(
            SVC(C=self.svm_C, kernel=self.svm_kernel, gamma=self.svm_gamma),
            method="sigmoid",
            cv=folds,
            ensemble=False,
        )
        scaler = StandardScaler()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            svm.fit(scaler.fit_transform(features), y)
        self.scaler, self.svm, self.pickled_sklearn = scaler, svm, None
        self.head = SVMHead.from_sklearn(scaler, svm)
        self.label_map = np.arange(N_CLASSES)
        return self

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 6) from encoder features (n, 256); rows sum to 1."""
        if not self.is_fitted:
            raise RuntimeError("the classifier is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float64)
        probabilities = np.zeros((len(features), N_CLASSES))
        columns = self.label_map[self.head.classes_]
        # In chunks: the kernel matrix is (rows x support vectors) float64 and would
        # otherwise grow with the number of files.
        for start in range(0, len(features), PREDICTION_CHUNK):
            rows = slice(start, start + PREDICTION_CHUNK)
            probabilities[rows, columns] = self.head.predict_proba(features[rows])
        return probabilities

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Most probable class ID (n,) from encoder features (n, 256)."""
        return self.predict_proba_features(features).argmax(axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 6) of matrices X (n, 256, 256)."""
        return self.predict_proba_features(self.transform(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class ID (n,) of matrices X (n, 256, 256)."""
        return self.predict_features(self.transform(X))

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy of ``predict(X)`` against class IDs y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
