"""Reading checkpoints: the manifest verified, the metadata unpickled as plain data only, the pickle-free
head read, the classifier rebuilt and checked, falling back to ``.previous/`` when a save was cut short."""

from __future__ import annotations

import json
import logging
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.io.npyfile import npz_members, read_member
from semg_hht.model.checkpoint.format import (
    FACTOR_SEPARATOR,
    HEAD_SUFFIX,
    MANIFEST_SUFFIX,
    TRAINER_SUFFIX,
    CheckpointError,
    checkpoint_files,
    part_path,
    previous_prefix,
    resolve_checkpoint_prefix,
    verify_manifest,
)
from semg_hht.model.checkpoint.metadata import CheckpointMetadata
from semg_hht.model.checkpoint.migration import LegacyLabelEncoder, attach_pickled_head, label_map_of
from semg_hht.model.classifier import FITTED_HEADS, ConstantHead, FittedHead, HHTClassifier
from semg_hht.model.forest_head import HEAD_KIND as FOREST_HEAD_KIND
from semg_hht.model.forest_head import ForestHead
from semg_hht.model.normalisation import PopulationStatistics
from semg_hht.model.scalable_head import HEAD_KIND as SCALABLE_HEAD_KIND
from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_head import SVMHead

if TYPE_CHECKING:
    import torch

    from semg_hht.model.encoder import HHTEncoder

logger = logging.getLogger(__name__)


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits builtin data, NumPy arrays and scalars, and the legacy LabelEncoder as a stub.

    Nothing it admits runs code: any other class or function is refused.
    """

    _NUMPY = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("sklearn.preprocessing._label", "LabelEncoder"):
            return LegacyLabelEncoder
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: metadata must be plain data")


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``*_metadata.pkl`` file with the restricted unpickler."""
    try:
        with open(path, "rb") as stream:
            metadata = _PlainDataUnpickler(stream).load()
    except Exception as error:  # a damaged pickle can fail in many ways; none runs code
        raise CheckpointError(f"{path}: unreadable metadata ({type(error).__name__}: {error})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: metadata is a {type(metadata).__name__}, expected a dict")
    return metadata


def _head_of(arrays: dict[str, np.ndarray]) -> FittedHead:
    """The head stored in ``arrays``: the scalable and forest heads' carry ``head``; the SVM's (every older
    release's) do not."""
    kind = str(arrays["head"]) if "head" in arrays else None
    if kind == SCALABLE_HEAD_KIND:
        return ScalableHead(arrays)
    if kind == FOREST_HEAD_KIND:
        return ForestHead(arrays)
    return SVMHead(arrays)


def _factor_head(arrays: dict[str, np.ndarray]) -> FittedHead | ConstantHead:
    if len(arrays) == 1 and "classes" in arrays and arrays["classes"].shape == (1,):
        return ConstantHead(int(arrays["classes"][0]))
    return _head_of(arrays)


def _read_head(path: Path, model: str) -> tuple[FittedHead, FittedHead | ConstantHead | None]:
    """The head (the quality head of a factorised model) and the gender head (None for a joint model)."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {
                key: read_member(archive, member, f"array {key!r}") for key, member in npz_members(archive).items()
            }
        if model == "joint":
            return _head_of(arrays), None
        factors: dict[str, dict[str, np.ndarray]] = {"quality": {}, "gender": {}}
        for key, array in arrays.items():
            factor, _, name = key.partition(FACTOR_SEPARATOR)
            factors[factor][name] = array
        return _head_of(factors["quality"]), _factor_head(factors["gender"])
    except Exception as error:  # a damaged archive can fail in zipfile, numpy or the shape checks
        raise CheckpointError(f"{path}: not a valid head ({type(error).__name__}: {error})") from None


def _attach_head(classifier: HHTClassifier, prefix: Path, manifest: dict[str, Any] | None, safe: bool) -> None:
    head_path = part_path(prefix, HEAD_SUFFIX)
    if manifest is not None and head_path.name in manifest["files"]:
        classifier.head_, classifier.gender_head_ = _read_head(head_path, classifier.model)
        classifier.scaler_ = classifier.svm_ = None
        # Kept as bytes (verified by the manifest) so that a re-save writes them unchanged.
        classifier.pickled_sklearn_ = {
            part: part_path(prefix, f"_{part}.pkl").read_bytes() for part in ("scaler", "svm")
        }
        return
    attach_pickled_head(classifier, prefix, safe)


def _load_exact(prefix: Path, device: torch.device | str, safe: bool) -> tuple[HHTClassifier, CheckpointMetadata]:
    files = checkpoint_files(prefix)
    missing = [p.name for part, p in files.items() if part != "encoder" and not p.is_file()]
    if missing:
        raise CheckpointError(f"No checkpoint at {prefix}: missing {', '.join(missing)}")
    manifest = None
    if part_path(prefix, MANIFEST_SUFFIX).exists():
        manifest = verify_manifest(prefix)
    elif safe:
        # The literal flag: tests match it on the in-process error.
        raise CheckpointError(f"{prefix}: no manifest (written by an older release), refused by --safe")
    else:
        logger.warning(f"{prefix}: written by an older release without a manifest; its integrity cannot be verified")
    stored = load_metadata(files["metadata"])
    label_map = label_map_of(stored, files["metadata"])
    try:
        metadata = CheckpointMetadata.from_plain(stored)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{files['metadata']}: unusable metadata ({error})") from None
    classifier = _unfitted_classifier(metadata, device, files["metadata"])
    if "cnn" in classifier.feature_blocks:
        classifier.encoder = classifier.encoder_ = _load_encoder(files["encoder"])
    _attach_head(classifier, prefix, manifest, safe)
    kinds = {ScalableHead: "scalable", ForestHead: "forest"}
    classifier.head_kind_ = kinds.get(type(classifier.head_), "svm")
    classifier.head_reason_ = metadata.head_reason or "svm (chosen before heads could be chosen)"
    classifier.label_map_ = label_map
    classifier.classes_ = np.arange(len(CLASS_NAMES))
    _check_widths(classifier, prefix)
    _check_feature_names(classifier, metadata, files["metadata"])
    return classifier, metadata


def _load_encoder(path: Path) -> HHTEncoder:
    """The encoder whose ``state_dict`` is in ``path`` (read with ``weights_only=True``)."""
    import torch  # here: only a model with the CNN block reads its encoder

    from semg_hht.model.encoder import HHTEncoder

    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {str(path)[: -len('_encoder.pt')]}: missing {path.name}")
    encoder = HHTEncoder()
    try:
        encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a valid encoder state_dict ({error})") from None
    return encoder


def _unfitted_classifier(metadata: CheckpointMetadata, device: torch.device | str, path: Path) -> HHTClassifier:
    """The classifier of the settings in ``metadata``, with the training population (and no encoder yet)."""
    try:
        classifier = HHTClassifier(
            svm_C=metadata.svm["C"],
            svm_kernel=metadata.svm["kernel"],
            svm_gamma=metadata.svm["gamma"],
            seed=metadata.seed,
            batch_size=metadata.batch_size,
            device=device,
            features=metadata.features,
            normalisation=metadata.normalisation,
            model=metadata.model,
            head=metadata.head,
            frequency_hz=metadata.frequency_hz,
            channels=metadata.channels,
            gender_features=metadata.gender_features,
        )
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: unusable model settings ({error})") from None
    population = metadata.population
    classifier.population_ = None
    if population is not None:
        classifier.population_ = PopulationStatistics(np.asarray(population["mean"]), np.asarray(population["std"]))
    elif classifier.normalisation != "none":
        raise CheckpointError(
            f"{path}: unusable model settings "
            "(a normalised model without the training files' statistics ('population'))"
        )
    classifier.encoder_ = None
    return classifier


def _check_widths(classifier: HHTClassifier, prefix: Path) -> None:
    width = len(classifier.feature_names)
    population = classifier.population_
    widths = {classifier.head_.n_features} if isinstance(classifier.head_, FITTED_HEADS) else set()
    widths |= {len(population.mean), len(population.std)} if population else set()
    if widths - {width}:
        raise CheckpointError(
            f"{prefix}: the model's arrays have {sorted(widths)} features, "
            f"its feature set {classifier.feature_set} {width}"
        )
    gender_head, gender_width = classifier.gender_head_, len(classifier.gender_columns)
    if isinstance(gender_head, FITTED_HEADS) and gender_head.n_features != gender_width:
        raise CheckpointError(
            f"{prefix}: the gender head has {gender_head.n_features} features, "
            f"its columns ({classifier.gender_features} of {classifier.feature_set}) {gender_width}"
        )


def _check_feature_names(classifier: HHTClassifier, metadata: CheckpointMetadata, path: Path) -> None:
    """The features the checkpoint was fitted on (recorded since format 2) are the ones this release computes.

    A column of another name (a descriptor renamed, reordered or redefined by another release)
    would give predictions from the wrong inputs without any error.
    """
    recorded = metadata.feature_names
    if recorded is None or list(recorded) == classifier.feature_names:
        return
    differ = [
        f"column {i}: checkpoint {old!r}, this release {new!r}"
        for i, (old, new) in enumerate(zip(recorded, classifier.feature_names, strict=False))
        if old != new
    ]
    lengths = f"{len(recorded)} features recorded, {len(classifier.feature_names)} computed"
    raise CheckpointError(
        f"{path}: the checkpoint's features are not the ones this release computes for {classifier.feature_set} "
        f"({lengths}; {'; '.join(differ[:3]) or 'the extra columns differ'})"
    )


def _load_with_fallback(prefix: str | os.PathLike, load: Callable[[Path], Any]) -> Any:
    """``load(prefix)``, or ``load`` of the checkpoint kept in ``.previous/`` when ``prefix`` fails."""
    prefix = resolve_checkpoint_prefix(prefix)
    try:
        return load(prefix)
    except CheckpointError as error:
        previous = previous_prefix(prefix)
        if not part_path(previous, MANIFEST_SUFFIX).is_file():
            raise
        logger.warning(f"{error}; loading the checkpoint it replaced, kept in {previous}")
        return load(previous)


def load_checkpoint(
    prefix: str | os.PathLike, device: torch.device | str = "cpu", safe: bool = False
) -> tuple[HHTClassifier, CheckpointMetadata]:
    """Load checkpoint ``prefix`` (see :func:`resolve_checkpoint_prefix`).

    When ``prefix`` fails verification (a save was interrupted) and the
    checkpoint it replaced is kept in ``.previous/``, that one is loaded instead,
    with a warning.

    Parameters
    ----------
    safe : bool
        Refuse anything that would need unpickling (checkpoints without a
        manifest and head file, i.e. from older releases).

    Returns
    -------
    classifier : HHTClassifier
        Fitted, on ``device``, with the settings it was trained with.
    metadata : CheckpointMetadata
        What the checkpoint records (settings, feature names, frequency axis, train.py's run).
    """
    return _load_with_fallback(prefix, lambda exact: _load_exact(exact, device, safe))


def load_training_checkpoint(
    prefix: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[HHTClassifier, CheckpointMetadata, dict[str, Any] | None]:
    """Like :func:`load_checkpoint`, plus the trainer state (None when the checkpoint has none).

    Classifier, metadata and trainer state always come from the same save.
    """

    def load(exact: Path) -> tuple[HHTClassifier, CheckpointMetadata, dict[str, Any] | None]:
        classifier, metadata = _load_exact(exact, device, safe=False)
        path = part_path(exact, TRAINER_SUFFIX)
        manifest_path = part_path(exact, MANIFEST_SUFFIX)
        listed = manifest_path.is_file() and path.name in json.loads(manifest_path.read_text("utf-8"))["files"]
        if not listed:
            return classifier, metadata, None
        import torch  # the trainer state is the encoder training's

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a bad file
            raise CheckpointError(f"{path}: not a valid trainer state ({error})") from None
        return classifier, metadata, state

    return _load_with_fallback(prefix, load)
