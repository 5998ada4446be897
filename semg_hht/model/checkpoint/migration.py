"""Checkpoints of older releases: the settings they used before each was recorded, the original project's
alphabetical class order and LabelEncoder, and its pickled ``SVC(probability=True)``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.model.checkpoint.format import CheckpointError, part_path
from semg_hht.model.svm_head import SVMHead

if TYPE_CHECKING:
    from semg_hht.model.classifier import HHTClassifier

logger = logging.getLogger(__name__)

LEGACY_SETTINGS = {
    "C": 10.0,
    "kernel": "rbf",
    "gamma": "scale",
    "seed": 42,
    "features": "cnn",
    "model": "joint",
    "head": "svm",
}
"""What checkpoints written before a setting was recorded used (not the defaults of today)."""


class LegacyLabelEncoder:
    """Stands in for the scikit-learn LabelEncoder in original-project metadata: data only."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.classes_ = [str(name) for name in state.get("classes_", [])]


def label_map_of(metadata: dict[str, Any], path: Path) -> np.ndarray:
    """Class ID of each SVM label: identity, or the original project's alphabetical order."""
    if "class_names" in metadata:
        if list(metadata["class_names"]) != list(CLASS_NAMES):
            raise CheckpointError(f"{path}: unknown class table {metadata['class_names']}")
        return np.arange(len(CLASS_NAMES))
    # The original project labelled the SVM with a LabelEncoder fitted on the class names.
    encoder = metadata.get("label_encoder")
    names = encoder.classes_ if isinstance(encoder, LegacyLabelEncoder) else sorted(CLASS_NAMES)
    if sorted(names) != sorted(CLASS_NAMES):
        raise CheckpointError(f"{path}: unknown class table {names}")
    return np.array([CLASS_NAMES.index(name) for name in names])


class SklearnHead:
    """Predicts with unpickled scikit-learn objects: checkpoints of older releases only."""

    def __init__(self, scaler: Any, svm: Any):
        self.scaler, self.svm, self.classes_ = scaler, svm, svm.classes_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SVC(probability=True) and version-mismatch warnings
            return self.svm.predict_proba(self.scaler.transform(features))


def attach_pickled_head(classifier: HHTClassifier, prefix: Path, safe: bool) -> None:
    """Give ``classifier`` the pickled scaler and SVM of checkpoint ``prefix``, which has no head file
    (written by an older release): unpickled, with a warning, and refused when ``safe``."""
    if classifier.model != "joint":
        raise CheckpointError(f"{prefix}: a {classifier.model} model without its head file")
    if safe:
        raise CheckpointError(
            f"{prefix}: no pickle-free copy of the scaler and SVM (written by an older release); "
            "loading it means unpickling, which can run code: load it without `safe` only if you trust its source"
        )
    logger.warning(f"{prefix}: loading pickled scaler and SVM; only do this for checkpoints from a source you trust")
    try:
        import joblib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version-mismatch warnings of old pickles
            scaler, svm = joblib.load(part_path(prefix, "_scaler.pkl")), joblib.load(part_path(prefix, "_svm.pkl"))
    except Exception as error:  # unpickling can raise anything
        raise CheckpointError(f"{prefix}: scaler or SVM cannot be loaded ({type(error).__name__}: {error})") from None
    if not hasattr(scaler, "transform") or not hasattr(svm, "predict_proba"):
        raise CheckpointError(f"{prefix}: scaler or SVM file holds the wrong kind of object")
    classifier.scaler_, classifier.svm_, classifier.pickled_sklearn_ = scaler, svm, None
    classifier.gender_head_ = None
    try:
        classifier.head_ = SVMHead.from_sklearn(scaler, svm)
    except (AttributeError, TypeError, ValueError):  # the original project's SVC(probability=True)
        classifier.head_ = SklearnHead(scaler, svm)
