"""The classifier: features of each matrix (CNN, HHT descriptors, time-domain) -> StandardScaler -> calibrated SVC.

Two models (``model``): ``joint``, one six-class SVM; ``factorised``, a gender SVM on the
features as they are (gender is a property of the subject, which subject-wise normalisation
would erase; with subjects known, a subject's files share the mean of their gender
probabilities) times a movement-quality SVM on the (optionally subject-normalised) features:
``P(class 3 g + q) = P(gender g) P(quality q)``.

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
from typing import Any

import numpy as np
import torch

from .classes import N_CLASSES
from .defaults import DEFAULT_BATCH_SIZE
from .descriptors import hht_descriptors
from .encoder import HHTEncoder, build_encoder, encode_batches
from .feature_sets import BLOCK_NAMES, block_slices, block_weights, feature_names, feature_set_name, parse_feature_set
from .matrices import MATRIX_SHAPE
from .normalisation import NORMALISATION_MODES, FileGroups, PopulationStatistics, normalise_within_groups
from .svm_head import SVMHead

SVM_KERNELS = ("rbf", "linear", "poly", "sigmoid")
MODELS = ("joint", "factorised")
N_GENDERS, N_QUALITIES = 2, 3
PLURALS = {"class": "classes", "gender": "genders", "movement quality": "movement qualities"}
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


class ConstantHead:
    """The head of a factor with a single class in training (e.g. only male subjects): probability 1."""

    def __init__(self, class_id: int):
        self.classes_ = np.array([class_id])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.ones((len(features), 1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"classes": self.classes_}


def _check_labels(y: np.ndarray, what: str) -> None:
    present, counts = np.unique(y, return_counts=True)
    if len(present) < 2:
        raise ValueError(f"training needs samples of at least two {PLURALS[what]}")
    if counts.min() < 2:
        raise ValueError(
            f"every {what} in training needs at least 2 samples for probability "
            f"calibration; {what} ID {int(present[counts.argmin()])} has {int(counts.min())}"
        )


def fit_calibrated_svm(
    features: np.ndarray, y: np.ndarray, weights: np.ndarray, svm: dict[str, Any], seed: int, what: str = "class"
) -> tuple[Any, Any, SVMHead]:
    """StandardScaler (columns weighted by ``weights`` after standardising) + calibrated SVC on (n, d) features.

    Returns the fitted scaler, ``CalibratedClassifierCV`` and their :class:`SVMHead`.
    """
    # Imported here: predicting from a checkpoint needs no scikit-learn.
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    _check_labels(y, what)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    folds = StratifiedKFold(n_splits=min(MAX_CALIBRATION_FOLDS, smallest), shuffle=True, random_state=seed)
    calibrated = CalibratedClassifierCV(
        SVC(C=svm["C"], kernel=svm["kernel"], gamma=svm["gamma"]), method="sigmoid", cv=folds, ensemble=False
    )
    scaler = StandardScaler().fit(features)
    scaler.scale_ = scaler.scale_ / weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        calibrated.fit(scaler.transform(features), y)
    return scaler, calibrated, SVMHead.from_sklearn(scaler, calibrated)


def _head_probabilities(head: Any, features: np.ndarray, n_columns: int, columns: np.ndarray) -> np.ndarray:
    probabilities = np.zeros((len(features), n_columns))
    # In chunks: the kernel matrix is (rows x support vectors) float64 and would
    # otherwise grow with the number of files.
    for start in range(0, len(features), PREDICTION_CHUNK):
        rows = slice(start, start + PREDICTION_CHUNK)
        probabilities[rows, columns] = head.predict_proba(features[rows])
    return probabilities


def pool_by_subject(probabilities: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its subject's rows: one answer per subject for a subject's property."""
    pooled = np.empty_like(probabilities)
    for subject in np.unique(subjects):
        rows = subjects == subject
        pooled[rows] = probabilities[rows].mean(axis=0)
    return pooled


class HHTClassifier:
    """Classify (n, 256, 256) Hilbert spectra into the six classes.

    Follows scikit-learn's conventions: ``fit(X, y)``, ``predict(X)``,
    ``predict_proba(X)``; ``classes_`` is always ``arange(6)``, so probability
    column j is class ID j even when a class was absent from training (its
    probability is then 0). The ``*_features`` methods take the feature vectors
    of :meth:`features_of` instead, so callers that stream files compute each
    file's features once.

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
    features : str
        Feature set (:mod:`semg_hht.feature_sets`): ``cnn``, ``hht``, ``td`` joined by ``+``.
    normalisation : {"none", "subject", "subject_muscle"}
        Standardise the features within each subject's (and muscle's) files
        (:mod:`semg_hht.normalisation`); fitting and predicting then need ``groups``.
    model : {"joint", "factorised"}
        One six-class SVM, or gender x movement quality (see the module docstring).
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
        features: str = "cnn",
        normalisation: str = "none",
        model: str = "joint",
    ):
        if not svm_C > 0:
            raise ValueError(f"svm_C must be positive, got {svm_C}")
        if svm_kernel not in SVM_KERNELS:
            raise ValueError(f"svm_kernel must be one of {SVM_KERNELS}, got {svm_kernel!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if normalisation not in NORMALISATION_MODES:
            raise ValueError(f"normalisation must be one of {NORMALISATION_MODES}, got {normalisation!r}")
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        self.encoder = encoder if encoder is not None else build_encoder(seed)
        self.svm_C = float(svm_C)
        self.svm_kernel = svm_kernel
        self.svm_gamma = parse_gamma(svm_gamma)
        self.seed = seed
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.bf16 = bf16
        self.feature_blocks = parse_feature_set(features)
        self.normalisation = normalisation
        self.model = model
        self.classes_ = np.arange(N_CLASSES)
        # Class ID of each SVM label; only checkpoints of the original project differ.
        self.label_map = np.arange(N_CLASSES)
        # What predicts: an SVMHead, or for original-project checkpoints anything with
        # classes_ and predict_proba(features). With the factorised model it is the
        # quality head and gender_head the gender one.
        self.head: Any = None
        self.gender_head: Any = None
        # The training files' feature statistics: the normalisation's fallback.
        self.population: PopulationStatistics | None = None
        # The fitted scikit-learn objects (dicts by head for the factorised model), for the
        # checkpoint's pickle files; None in a classifier loaded from a checkpoint, which
        # carries those files' bytes instead.
        self.scaler: Any = None
        self.svm: Any = None
        self.pickled_sklearn: dict[str, bytes] | None = None

    @property
    def is_fitted(self) -> bool:
        return self.head is not None

    @property
    def features(self) -> str:
        return feature_set_name(self.feature_blocks)

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.feature_blocks)

    @property
    def cnn_columns(self) -> slice:
        """The CNN block's columns of a feature vector (what the encoder's training head sees)."""
        slices = block_slices(self.feature_blocks)
        if "cnn" not in slices:
            raise ValueError(f"feature set {self.features} has no CNN block")
        return slices["cnn"]

    def features_of(self, matrices: np.ndarray, time_domain: list[np.ndarray | None] | None = None) -> np.ndarray:
        """The feature vectors (b, n_features) of a batch of (b, 256, 256) matrices.

        ``time_domain`` holds each matrix's stored time-domain features (needed by the
        ``td`` block; None where a file has none, which is then a ValueError).
        """
        parts = []
        for block in self.feature_blocks:
            if block == "cnn":
                parts.append(next(encode_batches(self.encoder, [matrices], self.device, self.bf16)))
            elif block == "hht":
                parts.append(hht_descriptors(matrices))
            else:
                if time_domain is None or any(row is None for row in time_domain):
                    raise ValueError("the td block needs time-domain features stored in each matrix file")
                parts.append(np.stack(time_domain) if len(matrices) else np.empty((0, len(BLOCK_NAMES["td"]))))
        # float32 like the encoder's output: half the memory of a folder's features, and the
        # descriptors need no more than its 7 significant digits.
        return np.concatenate([np.asarray(part, dtype=np.float32) for part in parts], axis=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Feature vectors of matrices X, shape (n, 256, 256) -> (n, n_features), float32."""
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[1:] != MATRIX_SHAPE:
            raise ValueError(f"X must have shape (n, 256, 256), got {X.shape}")
        batches = [self.features_of(X[start : start + self.batch_size]) for start in range(0, len(X), self.batch_size)]
        return np.concatenate(batches) if batches else np.empty((0, len(self.feature_names)), np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray, groups: FileGroups | None = None) -> HHTClassifier:
        """Fit on matrices X (n, 256, 256) with class IDs y (n,)."""
        return self.fit_features(self.transform(X), y, groups)

    def _svm_settings(self) -> dict[str, Any]:
        return {"C": self.svm_C, "kernel": self.svm_kernel, "gamma": self.svm_gamma}

    def _model_input(self, features: np.ndarray, groups: FileGroups | None) -> np.ndarray:
        if self.normalisation == "none":
            return features
        if groups is None:
            raise ValueError(f"{self.normalisation}-wise normalisation needs the subject of every file")
        assert self.population is not None
        return normalise_within_groups(features, groups.keys(self.normalisation), self.population)

    def fit_features(self, features: np.ndarray, y: np.ndarray, groups: FileGroups | None = None) -> HHTClassifier:
        """Fit on feature vectors (n, n_features) and class IDs (n,); ``groups`` where the normalisation needs them.

        Raises
        ------
        ValueError
            Labels outside 0-5, fewer than two classes, a class (joint model) or a
            gender or quality (factorised) with fewer than two samples (probability
            calibration cross-validates), or no groups for a normalised model.
        """
        features = np.asarray(features, dtype=np.float64)
        y = np.asarray(y)
        if features.ndim != 2 or features.shape[0] != y.shape[0] or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"features {features.shape} and labels {y.shape} do not match "
                f"({len(self.feature_names)} features of {self.features} expected)"
            )
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(f"class IDs must be in 0..{N_CLASSES - 1}")
        if groups is not None and len(groups) != len(y):
            raise ValueError(f"{len(groups)} groups for {len(y)} files")
        weights = block_weights(self.feature_blocks)
        # Kept for every model: the normalisation's fallback, and the reference of the explanations.
        self.population = PopulationStatistics.of(features)
        model_input = self._model_input(features, groups)
        if self.model == "joint":
            self.scaler, self.svm, self.head = fit_calibrated_svm(
                model_input, y, weights, self._svm_settings(), self.seed
            )
            self.gender_head = None
        else:
            self._fit_factorised(features, model_input, y, weights)
        self.pickled_sklearn = None
        self.label_map = np.arange(N_CLASSES)
        return self

    def _fit_factorised(
        self, features: np.ndarray, model_input: np.ndarray, y: np.ndarray, weights: np.ndarray
    ) -> None:
        svm = self._svm_settings()
        quality_scaler, quality_svm, self.head = fit_calibrated_svm(
            model_input, y % N_QUALITIES, weights, svm, self.seed, "movement quality"
        )
        genders = np.unique(y // N_QUALITIES)
        if len(genders) == 1:
            gender_scaler = gender_svm = None
            self.gender_head = ConstantHead(int(genders[0]))
        else:
            gender_scaler, gender_svm, self.gender_head = fit_calibrated_svm(
                features, y // N_QUALITIES, weights, svm, self.seed, "gender"
            )
        self.scaler = {"quality": quality_scaler, "gender": gender_scaler}
        self.svm = {"quality": quality_svm, "gender": gender_svm}

    def predict_proba_features(self, features: np.ndarray, groups: FileGroups | None = None) -> np.ndarray:
        """Class probabilities (n, 6) from feature vectors (n, n_features); rows sum to 1."""
        if not self.is_fitted:
            raise RuntimeError("the classifier is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float64)
        model_input = self._model_input(features, groups)
        if self.model == "joint":
            return _head_probabilities(self.head, model_input, N_CLASSES, self.label_map[self.head.classes_])
        quality = _head_probabilities(self.head, model_input, N_QUALITIES, self.head.classes_)
        gender = _head_probabilities(self.gender_head, features, N_GENDERS, self.gender_head.classes_)
        if groups is not None:
            gender = pool_by_subject(gender, groups.subjects)
        return (gender[:, :, None] * quality[:, None, :]).reshape(len(features), N_CLASSES)

    def predict_features(self, features: np.ndarray, groups: FileGroups | None = None) -> np.ndarray:
        """Most probable class ID (n,) from feature vectors (n, n_features)."""
        return self.predict_proba_features(features, groups).argmax(axis=1)

    def predict_proba(self, X: np.ndarray, groups: FileGroups | None = None) -> np.ndarray:
        """Class probabilities (n, 6) of matrices X (n, 256, 256)."""
        return self.predict_proba_features(self.transform(X), groups)

    def predict(self, X: np.ndarray, groups: FileGroups | None = None) -> np.ndarray:
        """Most probable class ID (n,) of matrices X (n, 256, 256)."""
        return self.predict_features(self.transform(X), groups)

    def score(self, X: np.ndarray, y: np.ndarray, groups: FileGroups | None = None) -> float:
        """Accuracy of ``predict(X)`` against class IDs y."""
        return float(np.mean(self.predict(X, groups) == np.asarray(y)))


def describe_model(classifier: HHTClassifier) -> str:
    """One line saying what the classifier sees: feature set and width, normalisation, model."""
    normalisation = {
        "none": "none",
        "subject": "within each subject",
        "subject_muscle": "within each subject and muscle",
    }
    return (
        f"Features: {classifier.features} ({len(classifier.feature_names)} per file); "
        f"normalisation: {normalisation[classifier.normalisation]}; model: {classifier.model}"
    )
