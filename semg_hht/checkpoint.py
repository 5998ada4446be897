"""Saving and loading classifier checkpoints.

A checkpoint with prefix ``P`` (e.g. ``checkpoints/final``) is four files:

* ``P_encoder.pt``: the encoder's ``state_dict`` (``torch.save``; loaded with
  ``weights_only=True``);
* ``P_scaler.pkl``: the fitted ``StandardScaler`` (joblib);
* ``P_svm.pkl``: the fitted calibrated SVM (joblib);
* ``P_metadata.pkl``: a plain-data dict (only builtin types, see
  :func:`plain_data`; read with an unpickler that refuses anything else).

Each file is written to a temporary name, fsynced and renamed, so an
interrupted save never leaves a half-written file.
"""

from __future__ import annotations

import os
import pickle
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import torch

from . import __version__
from .atomic import atomic_open
from .classes import CLASS_NAMES
from .classifier import HHTClassifier
from .encoder import HHTEncoder

FORMAT_VERSION = 1
PART_SUFFIXES = ("_encoder.pt", "_scaler.pkl", "_svm.pkl", "_metadata.pkl")


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be loaded; the message says which file and why."""


def checkpoint_files(prefix: str | os.PathLike) -> dict[str, Path]:
    """The four file paths of checkpoint ``prefix``, keyed by part name."""
    prefix = str(prefix)
    return {suffix[1:].split(".")[0]: Path(prefix + suffix) for suffix in PART_SUFFIXES}


def resolve_checkpoint_prefix(path: str | os.PathLike) -> Path:
    """Turn what a user passes as ``--checkpoint`` into a checkpoint prefix.

    A directory means its ``final`` checkpoint; a path to one of the four files
    means its prefix. Raises :class:`CheckpointError` naming the missing files.
    """
    text = str(path)
    if os.path.isdir(text):
        text = os.path.join(text, "final")
    for suffix in PART_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    missing = [p.name for p in checkpoint_files(text).values() if not p.is_file()]
    if missing:
        raise CheckpointError(f"No checkpoint at {text}: missing {', '.join(missing)}")
    return Path(text)


def package_versions() -> dict[str, str]:
    return {
        "semg_hht": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def build_metadata(classifier: HHTClassifier, **fields: Any) -> dict[str, Any]:
    """Metadata for a checkpoint: the classifier's settings, versions, time, plus ``fields``."""
    metadata: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "epoch": 0,
        "history": {},
        "class_names": list(CLASS_NAMES),
        "is_fitted": classifier.is_fitted,
        "seed": classifier.seed,
        "batch_size": classifier.batch_size,
        "svm": {"C": classifier.svm_C, "kernel": classifier.svm_kernel, "gamma": classifier.svm_gamma},
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    metadata.update(fields)
    return metadata


def plain_data(value: Any) -> Any:
    """``value`` rebuilt from builtin types only (dict, list, str, int, float, bool, None).

    NumPy scalars and arrays and subclasses of builtins (torch's version string)
    become their plain equivalents; anything else raises ``TypeError``.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, dict):
        return {plain_data(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_data(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"metadata must be plain data, got {type(value).__name__}")


def save_checkpoint(prefix: str | os.PathLike, classifier: HHTClassifier, metadata: dict[str, Any]) -> None:
    """Write the four checkpoint files of ``prefix``, each atomically."""
    if not classifier.is_fitted:
        raise ValueError("only a fitted classifier can be saved")
    files = checkpoint_files(prefix)
    files["encoder"].parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu() for key, value in classifier.encoder.state_dict().items()}
    with atomic_open(files["encoder"]) as stream:
        torch.save(state, stream)
    with atomic_open(files["scaler"]) as stream:
        joblib.dump(classifier.scaler, stream)
    with atomic_open(files["svm"]) as stream:
        joblib.dump(classifier.svm, stream)
    with atomic_open(files["metadata"]) as stream:
        pickle.dump(plain_data(metadata), stream, protocol=pickle.HIGHEST_PROTOCOL)


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits only builtin containers and scalars: metadata can never run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: metadata must be plain data")


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``*_metadata.pkl`` file with the restricted, plain-data unpickler."""
    try:
        with open(path, "rb") as stream:
            metadata = _PlainDataUnpickler(stream).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: unreadable metadata ({error})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: metadata is a {type(metadata).__name__}, expected a dict")
    return metadata


def load_checkpoint(
    prefix: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[HHTClassifier, dict[str, Any]]:
    """Load checkpoint ``prefix`` (see :func:`resolve_checkpoint_prefix`).

    Returns
    -------
    classifier : HHTClassifier
        Fitted, on ``device``, with the settings it was trained with.
    metadata : dict
    """
    prefix = resolve_checkpoint_prefix(prefix)
    files = checkpoint_files(prefix)
    metadata = load_metadata(files["metadata"])
    class_names = metadata.get("class_names", list(CLASS_NAMES))
    if list(class_names) != list(CLASS_NAMES):
        raise CheckpointError(f"{files['metadata']}: unknown class table {class_names}")

    encoder = HHTEncoder()
    try:
        state = torch.load(files["encoder"], map_location="cpu", weights_only=True)
        encoder.load_state_dict(state)
    except Exception as error:  # torch raises many types for a bad file
        raise CheckpointError(f"{files['encoder']}: not a valid encoder state_dict ({error})") from None

    svm_settings = metadata.get("svm", {})
    classifier = HHTClassifier(
        encoder=encoder,
        svm_C=svm_settings.get("C", 10.0),
        svm_kernel=svm_settings.get("kernel", "rbf"),
        svm_gamma=svm_settings.get("gamma", "scale"),
        seed=metadata.get("seed", 42),
        batch_size=metadata.get("batch_size", 32),
        device=device,
    )
    try:
        classifier.scaler = joblib.load(files["scaler"])
        classifier.svm = joblib.load(files["svm"])
    except Exception as error:  # unpickling can raise anything
        raise CheckpointError(f"{prefix}: scaler or SVM cannot be loaded ({error})") from None
    if not hasattr(classifier.scaler, "transform") or not hasattr(classifier.svm, "predict_proba"):
        raise CheckpointError(f"{prefix}: scaler or SVM file holds the wrong kind of object")
    return classifier, metadata
