"""The classifier: features of each matrix (CNN, HHT descriptors, time-domain) -> StandardScaler -> a head.

The head (``head``) is the calibrated RBF SVM, or, where the SVM's fit would take minutes, the
scalable head (:mod:`semg_hht.model.scalable_head`): ``auto`` chooses by the number of training
samples (:func:`choose_head`); or, asked for (or chosen by ``--tune``), a random forest with
calibrated votes (:mod:`semg_hht.model.forest_head`).

Two models (``model``): ``joint``, one six-class SVM; ``factorised``, a gender SVM on the
features as they are (gender is a property of the subject, which subject-wise normalisation
would erase; with subjects known, a subject's files share the mean of their gender
probabilities) times a movement-quality SVM on the (optionally subject-normalised) features:
``P(class 3 g + q) = P(gender g) P(quality q)``. The gender SVM sees the columns that describe
the subject (``gender_features="subject"``: :func:`~semg_hht.model.feature_sets.subject_columns`),
not those of the movement's timing, which only add noise to a property of the person; checkpoints
of earlier releases, whose gender SVM saw every column, load as ``gender_features="all"``.

Each SVM is fitted as a scikit-learn ``Pipeline`` (:mod:`semg_hht.model.svm_fitting`): block-weighted standardisation ->
:class:`~semg_hht.model.svm_fitting.PlattCalibratedSVC`; the features come from the transformers of
:mod:`semg_hht.model.feature_steps`. Probabilities come from the calibrated SVC:
one SVC is fitted on all training features, and per-class sigmoid (Platt)
calibrators are fitted on its cross-validated decision values (what
``CalibratedClassifierCV(SVC(...), ensemble=False)`` fits; ``SVC(probability=True)`` is
deprecated in scikit-learn 1.9). Predictions are made
by the fitted model's arrays (:class:`~semg_hht.model.svm_head.SVMHead`), so a
checkpoint predicts without scikit-learn. The predicted class is always the most
probable one, so a prediction and its confidence agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from semg_hht.classes import N_CLASSES, N_GENDERS, N_QUALITIES, gender_of, quality_of
from semg_hht.defaults import (
    AUTO_SVM_MAX_SAMPLES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FEATURES,
    DEFAULT_GENDER_FEATURES,
    DEFAULT_HEAD,
    DEFAULT_MODEL,
    DEFAULT_NORMALISATION,
    DEFAULT_SEED,
    DEFAULT_SVM_C,
    DEFAULT_SVM_GAMMA,
    DEFAULT_SVM_KERNEL,
    GENDER_FEATURE_CHOICES,
    HEADS,
    MODELS,
    NORMALISATION_MODES,
    SVM_KERNELS,
)
from semg_hht.hht.axes import frequency_axis, is_frequency_axis
from semg_hht.io.matrices import MATRIX_SHAPE
from semg_hht.model.estimator_base import Estimator, GroupsConsumer, balanced_accuracy_score, classifier_tags
from semg_hht.model.feature_sets import (
    block_slices,
    block_weights,
    channel_feature_names,
    feature_names,
    feature_set_name,
    parse_feature_set,
    subject_columns,
)
from semg_hht.model.feature_steps import (
    CNNFeatures,
    EnvelopeDescriptors,
    HHTDescriptors,
    StoredSegmentFeatures,
    SubjectNormaliser,
)
from semg_hht.model.forest_head import ForestHead
from semg_hht.model.normalisation import FileGroups, GroupsLike, PopulationStatistics, as_file_groups
from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_head import SVMHead

if TYPE_CHECKING:
    import torch

    from semg_hht.model.encoder import HHTEncoder

__all__ = ["ConstantHead", "HHTClassifier", "choose_head", "describe_model", "fit_calibrated_svm", "parse_gamma"]

FittedHead = SVMHead | ScalableHead | ForestHead
"""A head fitted by this release, stored as plain arrays."""
FITTED_HEADS = (SVMHead, ScalableHead, ForestHead)

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


class ProbabilityHead(Protocol):
    """What predicts a head's classes: an SVMHead, a ConstantHead, or a stand-in for older checkpoints."""

    classes_: np.ndarray

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


class ConstantHead:
    """The head of a factor with a single class in training (e.g. only male subjects): probability 1."""

    def __init__(self, class_id: int):
        self.classes_ = np.array([class_id])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.ones((len(features), 1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"classes": self.classes_}


def _check_labels(y: np.ndarray, what: str, calibrated: bool = True) -> None:
    present, counts = np.unique(y, return_counts=True)
    if len(present) < 2:
        raise ValueError(f"training needs samples of at least two {PLURALS[what]}")
    if calibrated and counts.min() < 2:
        raise ValueError(
            f"every {what} in training needs at least 2 samples for probability "
            f"calibration; {what} ID {int(present[counts.argmin()])} has {int(counts.min())}"
        )


def fit_calibrated_svm(
    features: np.ndarray, y: np.ndarray, weights: np.ndarray, svm: dict[str, Any], seed: int, what: str = "class"
) -> tuple[Any, Any, SVMHead]:
    """Fit :func:`~semg_hht.model.svm_fitting.svm_pipeline` on (n, d) features; calibration folds shuffled by ``seed``.

    Returns the fitted ``StandardScaler`` (its ``scale_`` divided by ``weights``), the
    ``PlattCalibratedSVC`` and their :class:`SVMHead`.
    """
    # Imported here: predicting from a checkpoint needs no scikit-learn.
    from sklearn.model_selection import StratifiedKFold

    from semg_hht.model.svm_fitting import svm_pipeline

    _check_labels(y, what)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    folds = StratifiedKFold(n_splits=min(MAX_CALIBRATION_FOLDS, smallest), shuffle=True, random_state=seed)
    pipeline = svm_pipeline(weights, svm, folds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        pipeline.fit(features, y)
    scaler, calibrated = pipeline["scale"].scaler_, pipeline["svm"]
    return scaler, calibrated, SVMHead.from_sklearn(scaler, calibrated, pipeline["scale"].transform(features))


def choose_head(head: str, n_samples: int) -> tuple[str, str]:
    """The head that ``head`` means for ``n_samples`` training samples, and why: ``(kind, reason)``, the kind
    ``svm``, ``scalable`` or ``forest``.

    ``auto`` takes the SVM up to :data:`~semg_hht.defaults.AUTO_SVM_MAX_SAMPLES` samples, where its
    fit (growing about as n^2) stays under about a minute on 2 cores, and the scalable head above.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    if head != "auto":
        return head, f"{head}, as asked"
    if n_samples <= AUTO_SVM_MAX_SAMPLES:
        return "svm", (
            f"auto: svm for {n_samples:,} training samples (up to {AUTO_SVM_MAX_SAMPLES:,} it fits in about a minute)"
        )
    return "scalable", (
        f"auto: scalable for {n_samples:,} training samples (the SVM's fit, growing as n^2, "
        f"would pass about a minute above {AUTO_SVM_MAX_SAMPLES:,})"
    )


def fit_head(
    kind: str, features: np.ndarray, y: np.ndarray, weights: np.ndarray, svm: dict[str, Any], seed: int, what: str
) -> tuple[Any, Any, FittedHead]:
    """Fit head ``kind`` (``svm``, ``scalable`` or ``forest``) on (n, d) features: (scaler or None, scikit-learn
    model, head arrays)."""
    if kind == "svm":
        return fit_calibrated_svm(features, y, weights, svm, seed, what)
    from semg_hht.model.svm_fitting import fit_forest_head, fit_scalable_head

    if kind == "forest":
        _check_labels(y, what)
        return fit_forest_head(features, y, seed)
    _check_labels(y, what, calibrated=False)
    return fit_scalable_head(features, y, weights, svm, seed)


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


class HHTClassifier(GroupsConsumer, Estimator):
    """Classify (n, 256, 256) Hilbert spectra into the six classes: a scikit-learn classifier.

    ``fit(X, y)``, ``predict(X)``, ``predict_proba(X)`` on matrices; ``clone``, ``get_params``,
    ``cross_val_predict`` and ``GridSearchCV`` work as with any classifier. ``classes_`` is always
    ``arange(6)``, so probability column j is class ID j even when a class was absent from
    training (its probability is then 0). The ``*_features`` methods take the feature vectors of
    :meth:`features_of` instead, so callers that stream files compute each file's features once.

    It follows scikit-learn's estimator contract through :class:`~semg_hht.model.estimator_base.Estimator`
    rather than ``BaseEstimator``, so that predicting from a checkpoint imports no scikit-learn.
    The settings are checked on construction as well as in ``fit`` (scikit-learn checks only in
    ``fit``): a wrong setting is then reported where it was written.

    Parameters
    ----------
    encoder : HHTEncoder, optional
        The CNN encoder; by default one initialised from ``seed``.
    svm_C : float
        SVC regularisation.
    svm_kernel : {"rbf", "linear", "poly", "sigmoid"}
    svm_gamma : "scale", "auto", float, or its text
    seed : int
        Seeds the default encoder's initial weights and the calibration folds.
    batch_size : int
        Matrices per encoder forward pass.
    device : torch.device or str
    bf16 : bool
        Encode under bfloat16 autocast: faster on hardware with bf16 units, features
        differ from float32 in the third significant digit (docs/performance.md has the figures).
    features : str
        Feature set (:mod:`semg_hht.model.feature_sets`): ``cnn``, ``hht``, ``env``, ``td``, ``amp`` joined by ``+``.
        The defaults of every setting are train.py's (:mod:`semg_hht.defaults`, one table for both).
    normalisation : {"none", "subject", "subject_muscle"}
        Standardise the features within each subject's (and muscle's) files
        (:mod:`semg_hht.model.normalisation`); fitting and predicting then need ``groups``.
    model : {"joint", "factorised"}
        One six-class head, or gender x movement quality (see the module docstring).
    gender_features : {"subject", "all"}
        The columns the factorised model's gender head sees: those that describe the subject
        (:attr:`gender_columns`), or every column (as every release before this option).
    head : {"auto", "svm", "scalable"}
        The calibrated RBF SVM, the scalable head (Nystroem approximation of the same kernel +
        logistic regression, ``svm_C`` its inverse regularisation), or ``auto``: chosen by the
        number of training samples (:func:`choose_head`).
    frequency_hz : sequence of 256 floats, optional
        Hz of each matrix row, on which the descriptors are computed (a recording sampled at 500 Hz
        is converted on a narrower band than the default 20-450 Hz); train.py takes it from the
        training files, and predicting refuses a file on another axis unless asked to resample it.
    channels : sequence of str, optional
        With channel names, a sample is one window of these channels (:mod:`semg_hht.data.windows`):
        ``X`` is (n, n_channels, 256, 256) and a feature vector holds each channel's features side by
        side, in this order. None (the default): a sample is one matrix.

    Attributes
    ----------
    encoder_ : HHTEncoder
        The encoder that computes the CNN features (``encoder`` itself when given); see :meth:`active_encoder`.
    head_ : SVMHead, ScalableHead or ForestHead
        What predicts (the quality head of the factorised model); for checkpoints of the original
        project anything with ``classes_`` and ``predict_proba(features)``.
    gender_head_ : SVMHead, ScalableHead, ForestHead, ConstantHead or None
        The factorised model's gender head.
    head_kind_ : {"svm", "scalable", "forest"}
        The head fitted; ``head_reason_`` (str) says why.
    population_ : PopulationStatistics
        The training files' feature statistics: the normalisation's fallback.
    scaler_, svm_ : StandardScaler, PlattCalibratedSVC or Pipeline (dicts by head for the factorised model)
        The fitted scikit-learn objects, for the checkpoint's pickle files; None in a classifier
        loaded from a checkpoint, which carries those files' bytes in ``pickled_sklearn_``.
    label_map_ : ndarray of shape (n_labels,)
        Class ID of each SVM label; only checkpoints of the original project differ from identity.
    classes_ : ndarray of shape (6,)
    """

    # Set by fit, active_encoder and the checkpoint loader; declared here with their full types.
    encoder_: HHTEncoder | None
    head_: ProbabilityHead
    gender_head_: FittedHead | ConstantHead | None
    population_: PopulationStatistics | None

    def __init__(
        self,
        encoder: HHTEncoder | None = None,
        svm_C: float = DEFAULT_SVM_C,
        svm_kernel: str = DEFAULT_SVM_KERNEL,
        svm_gamma: str | float = DEFAULT_SVM_GAMMA,
        seed: int = DEFAULT_SEED,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: torch.device | str = "cpu",
        bf16: bool = False,
        features: str = DEFAULT_FEATURES,
        normalisation: str = DEFAULT_NORMALISATION,
        model: str = DEFAULT_MODEL,
        head: str = DEFAULT_HEAD,
        frequency_hz: Sequence[float] | None = None,
        channels: Sequence[str] | None = None,
        gender_features: str = DEFAULT_GENDER_FEATURES,
    ):
        self.encoder = encoder
        self.svm_C = svm_C
        self.svm_kernel = svm_kernel
        self.svm_gamma = svm_gamma
        self.seed = seed
        self.batch_size = batch_size
        self.device = device
        self.bf16 = bf16
        self.features = features
        self.normalisation = normalisation
        self.model = model
        self.head = head
        self.frequency_hz = frequency_hz
        self.channels = channels
        self.gender_features = gender_features
        self._check_settings()

    def _check_settings(self) -> None:
        if not self.svm_C > 0:
            raise ValueError(f"svm_C must be positive, got {self.svm_C}")
        if self.svm_kernel not in SVM_KERNELS:
            raise ValueError(f"svm_kernel must be one of {SVM_KERNELS}, got {self.svm_kernel!r}")
        parse_gamma(self.svm_gamma)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        parse_feature_set(self.features)
        if self.normalisation not in NORMALISATION_MODES:
            raise ValueError(f"normalisation must be one of {NORMALISATION_MODES}, got {self.normalisation!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.gender_features not in GENDER_FEATURE_CHOICES:
            raise ValueError(f"gender_features must be one of {GENDER_FEATURE_CHOICES}, got {self.gender_features!r}")
        if self.frequency_hz is not None and (
            len(self.frequency_hz) != MATRIX_SHAPE[0] or not is_frequency_axis(np.asarray(self.frequency_hz))
        ):
            raise ValueError("frequency_hz must be 256 finite, increasing Hz: one per matrix row")
        if self.channels is not None and (
            not self.channels or len(set(self.channels)) != len(self.channels) or not all(self.channels)
        ):
            raise ValueError(f"channels must be distinct, non-empty names, got {self.channels!r}")

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

    def __sklearn_tags__(self) -> Any:
        return classifier_tags(three_d_input=True)  # X is a stack of (256, 256) matrices

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "head_", None) is not None

    @property
    def feature_blocks(self) -> tuple[str, ...]:
        """The blocks of ``features``, in canonical order."""
        return parse_feature_set(self.features)

    @property
    def feature_set(self) -> str:
        """``features`` in canonical form (``hht+cnn`` -> ``cnn+hht``)."""
        return feature_set_name(self.feature_blocks)

    @property
    def channel_names(self) -> tuple[str, ...] | None:
        """``channels`` as a tuple: the channels of a window sample, in order; None for one matrix a sample."""
        return None if self.channels is None else tuple(str(channel) for channel in self.channels)

    @property
    def n_channels(self) -> int:
        """Matrices a sample holds: 1, or the channels of a window sample."""
        return 1 if self.channel_names is None else len(self.channel_names)

    @property
    def matrix_feature_names(self) -> list[str]:
        """The names of one matrix's features (what :meth:`features_of` gives per matrix)."""
        return feature_names(self.feature_blocks)

    @property
    def feature_names(self) -> list[str]:
        """The names of one sample's features: one matrix's, or each channel's of a window sample."""
        return channel_feature_names(self.feature_blocks, self.channel_names)

    @property
    def column_weights(self) -> np.ndarray:
        """Each feature column's weight after standardisation (:func:`~semg_hht.model.feature_sets.block_weights`)."""
        return block_weights(self.feature_blocks, self.n_channels)

    @property
    def gender_columns(self) -> np.ndarray:
        """The feature columns the factorised model's gender head sees (``gender_features``), in order."""
        if self.gender_features == "all":
            return np.arange(len(self.feature_names))
        return subject_columns(self.feature_blocks, self.channel_names)

    @property
    def frequency_axis(self) -> np.ndarray:
        """Hz of each matrix row the model describes (``frequency_hz``, or the default conversion's axis)."""
        return frequency_axis() if self.frequency_hz is None else np.asarray(self.frequency_hz, dtype=np.float64)

    @property
    def torch_device(self) -> torch.device:
        import torch  # here: a model without the CNN block never needs torch

        return torch.device(self.device)

    @property
    def cnn_columns(self) -> slice:
        """The CNN block's columns of a feature vector (what the encoder's training head sees)."""
        if self.channel_names is not None:
            raise ValueError("encoder training sees one matrix a sample, not windows of several channels")
        slices = block_slices(self.feature_blocks)
        if "cnn" not in slices:
            raise ValueError(f"feature set {self.feature_set} has no CNN block")
        return slices["cnn"]

    def active_encoder(self) -> HHTEncoder:
        """``encoder_``: made on first use from ``encoder`` (or a new one from ``seed``), then kept.

        Encoder training trains this object in place; :meth:`fit` on matrices starts again from ``encoder``.
        """
        encoder: HHTEncoder | None = getattr(self, "encoder_", None)
        if encoder is None:
            encoder = self.encoder_ = CNNFeatures(self.encoder, self.seed).fit().encoder_
        return encoder

    def features_of(self, matrices: np.ndarray, time_domain: list[np.ndarray | None] | None = None) -> np.ndarray:
        """The feature vectors (b, n_features) of a batch of (b, 256, 256) matrices.

        ``time_domain`` holds each matrix's stored features (``td_features``, needed by the
        ``td`` and ``amp`` blocks; None where a file has none, which is then a ValueError).
        """
        parts = []
        for block in self.feature_blocks:
            if block == "cnn":
                step = CNNFeatures(self.active_encoder(), device=self.device, bf16=self.bf16).fit()
                parts.append(step.transform(matrices))
            elif block == "hht":
                with_envelope = "env" in self.feature_blocks  # both blocks from one pass over the matrices
                parts.append(HHTDescriptors(self.frequency_axis, with_envelope).transform(matrices))
            elif block == "env":
                if "hht" not in self.feature_blocks:  # else the hht block gave its columns already
                    parts.append(EnvelopeDescriptors().transform(matrices))
            else:
                parts.append(StoredSegmentFeatures(block).transform(time_domain))
        # float32 like the encoder's output: half the memory of a folder's features, and the
        # descriptors need no more than its 7 significant digits.
        return np.concatenate([np.asarray(part, dtype=np.float32) for part in parts], axis=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Feature vectors of matrices X, shape (n, 256, 256) -> (n, n_features), float32; of window samples
        (``channels`` set), (n, n_channels, 256, 256) -> (n, n_channels * features per matrix)."""
        X = np.asarray(X)
        shape = MATRIX_SHAPE if self.channel_names is None else (len(self.channel_names), *MATRIX_SHAPE)
        if X.ndim != len(shape) + 1 or X.shape[1:] != shape:
            raise ValueError(f"X must have shape (n, {', '.join(map(str, shape))}), got {X.shape}")
        matrices = X.reshape(-1, *MATRIX_SHAPE)
        batches = [
            self.features_of(matrices[start : start + self.batch_size])
            for start in range(0, len(matrices), self.batch_size)
        ]
        features = np.concatenate(batches) if batches else np.empty((0, len(self.matrix_feature_names)), np.float32)
        return features.reshape(len(X), len(self.feature_names))

    def fit(self, X: np.ndarray, y: np.ndarray, groups: GroupsLike = None) -> HHTClassifier:
        """Fit on matrices X (n, 256, 256) (with ``channels``, windows (n, n_channels, 256, 256)) with class IDs
        y (n,), with the encoder of ``encoder`` (or ``seed``)."""
        self._check_settings()
        self.encoder_ = None
        return self.fit_features(self.transform(X), y, groups)

    def _svm_settings(self) -> dict[str, Any]:
        return {"C": float(self.svm_C), "kernel": self.svm_kernel, "gamma": parse_gamma(self.svm_gamma)}

    def _model_input(self, features: np.ndarray, groups: FileGroups | None) -> np.ndarray:
        if self.normalisation == "none":
            return features
        normaliser = SubjectNormaliser(self.normalisation, self.population_).fit(features)
        return normaliser.transform(features, groups)

    def _checked_training_data(
        self, features: np.ndarray, y: np.ndarray, groups: FileGroups | None
    ) -> tuple[np.ndarray, np.ndarray]:
        features = np.asarray(features, dtype=np.float64)
        y = np.asarray(y)
        if features.ndim != 2 or features.shape[0] != y.shape[0] or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"features {features.shape} and labels {y.shape} do not match "
                f"({len(self.feature_names)} features of {self.feature_set} expected)"
            )
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(f"class IDs must be in 0..{N_CLASSES - 1}")
        if groups is not None and len(groups) != len(y):
            raise ValueError(f"{len(groups)} groups for {len(y)} files")
        return features, y

    def fit_features(self, features: np.ndarray, y: np.ndarray, groups: GroupsLike = None) -> HHTClassifier:
        """Fit on feature vectors (n, n_features) and class IDs (n,); ``groups`` where the normalisation needs them.

        Raises
        ------
        ValueError
            Labels outside 0-5, fewer than two classes, a class (joint model) or a
            gender or quality (factorised) with fewer than two samples (probability
            calibration cross-validates), or no groups for a normalised model.
        """
        self._check_settings()
        groups = as_file_groups(groups)
        features, y = self._checked_training_data(features, y, groups)
        weights = self.column_weights
        # Kept for every model: the normalisation's fallback, and the reference of the explanations.
        self.population_ = PopulationStatistics.of(features)
        model_input = self._model_input(features, groups)
        self.head_kind_, self.head_reason_ = choose_head(self.head, len(y))
        if self.model == "joint":
            self.scaler_, self.svm_, self.head_ = fit_head(
                self.head_kind_, model_input, y, weights, self._svm_settings(), self.seed, "class"
            )
            self.gender_head_ = None
        else:
            self.scaler_, self.svm_, self.head_, self.gender_head_ = self._fit_factorised(
                features, model_input, y, weights
            )
        self.pickled_sklearn_: dict[str, bytes] | None = None
        self.label_map_ = np.arange(N_CLASSES)
        self.classes_ = np.arange(N_CLASSES)
        return self

    def _fit_factorised(
        self, features: np.ndarray, model_input: np.ndarray, y: np.ndarray, weights: np.ndarray
    ) -> tuple[dict[str, Any], dict[str, Any], FittedHead, FittedHead | ConstantHead]:
        """Scalers and scikit-learn models by factor, the quality head and the gender head."""
        svm = self._svm_settings()
        quality_scaler, quality_svm, quality_head = fit_head(
            self.head_kind_, model_input, quality_of(y), weights, svm, self.seed, "movement quality"
        )
        genders = np.unique(gender_of(y))
        gender_head: FittedHead | ConstantHead
        if len(genders) == 1:
            gender_scaler = gender_svm = None
            gender_head = ConstantHead(int(genders[0]))
        else:
            columns = self.gender_columns
            gender_scaler, gender_svm, gender_head = fit_head(
                self.head_kind_, features[:, columns], gender_of(y), weights[columns], svm, self.seed, "gender"
            )
        scalers = {"quality": quality_scaler, "gender": gender_scaler}
        return scalers, {"quality": quality_svm, "gender": gender_svm}, quality_head, gender_head

    def predict_proba_features(self, features: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Class probabilities (n, 6) from feature vectors (n, n_features); rows sum to 1."""
        if not self.is_fitted:
            raise RuntimeError("the classifier is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float64)
        groups = as_file_groups(groups)
        model_input = self._model_input(features, groups)
        if self.model == "joint":
            return _head_probabilities(self.head_, model_input, N_CLASSES, self.label_map_[self.head_.classes_])
        gender_head = self.gender_head_
        if gender_head is None:  # fit and the checkpoint loader set it for every factorised model
            raise RuntimeError("the factorised classifier has no gender head")
        quality = _head_probabilities(self.head_, model_input, N_QUALITIES, self.head_.classes_)
        gender_input = features if isinstance(gender_head, ConstantHead) else features[:, self.gender_columns]
        gender = _head_probabilities(gender_head, gender_input, N_GENDERS, gender_head.classes_)
        if groups is not None:
            gender = pool_by_subject(gender, groups.subjects)
        return (gender[:, :, None] * quality[:, None, :]).reshape(len(features), N_CLASSES)

    def predict_features(self, features: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Most probable class ID (n,) from feature vectors (n, n_features)."""
        return self.predict_proba_features(features, groups).argmax(axis=1)

    def predict_proba(self, X: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Class probabilities (n, 6) of matrices X (n, 256, 256), or of windows (:meth:`transform`)."""
        return self.predict_proba_features(self.transform(X), groups)

    def predict(self, X: np.ndarray, groups: GroupsLike = None) -> np.ndarray:
        """Most probable class ID (n,) of matrices X (n, 256, 256), or of windows (:meth:`transform`)."""
        return self.predict_features(self.transform(X), groups)

    def score(self, X: np.ndarray, y: np.ndarray, groups: GroupsLike = None, sample_weight: Any = None) -> float:
        """Balanced accuracy of ``predict(X)`` against class IDs y: the suite's headline figure, so that
        ``GridSearchCV`` and ``cross_validate`` rank and report as train.py does."""
        return balanced_accuracy_score(y, self.predict(X, groups), sample_weight)


def describe_model(classifier: HHTClassifier) -> str:
    """One line saying what the classifier sees: feature set and width, normalisation, model, and its head."""
    normalisation = {
        "none": "none",
        "subject": "within each subject",
        "subject_muscle": "within each subject and muscle",
    }
    sample = "per file"
    if classifier.channel_names is not None:
        sample = f"per window of {len(classifier.channel_names)} channels: {', '.join(classifier.channel_names)}"
    model = classifier.model
    if model == "factorised" and len(classifier.gender_columns) < len(classifier.feature_names):
        model += f" (gender on the {len(classifier.gender_columns)} columns of the subject)"
    return (
        f"Features: {classifier.feature_set} ({len(classifier.feature_names)} {sample}); "
        f"normalisation: {normalisation[classifier.normalisation]}; model: {model}; "
        f"head: {getattr(classifier, 'head_reason_', classifier.head)}"
    )
