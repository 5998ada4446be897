"""The fitting step of train.py (the SVM on fixed features, or encoder training then the SVM) and the final save."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semg_hht.data.dataset import FileFeatures, extract_file_features
from semg_hht.errors import UsageError
from semg_hht.logs import heading
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.normalisation import FileGroups
from semg_hht.training.encoder_options import EncoderTrainingOptions, LabelledFiles, TrainingDataError
from semg_hht.training.resume import restore_trainer
from semg_hht.training.run_record import Checkpoint, RunRecord, save_run_checkpoints

if TYPE_CHECKING:
    from semg_hht.training.trainer import EncoderTrainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fitted:
    """The fitted classifier and what the later steps need of the fit.

    ``val_features`` (n_val, n_features) and ``val_groups`` are the validation files' features
    under the final classifier's encoder, in the split's order; ``tests`` the test files'
    features; ``history``, ``best_epoch`` and ``last_epoch`` describe encoder training
    (None with `epochs` 0).
    """

    classifier: HHTClassifier
    train_accuracy: float
    val_features: np.ndarray
    val_groups: FileGroups | None
    tests: FileFeatures
    history: dict[str, list] | None = None
    best_epoch: int | None = None
    last_epoch: int | None = None


def _too_few_files(error: ValueError) -> UsageError:
    return UsageError(f"Too few files to train: {error}. Add labelled files or lower `test_size`.")


def fit(record: RunRecord, classifier: HHTClassifier, tests: FileFeatures | None, test_paths: list[Path]) -> Fitted:
    """Fit ``classifier``: its SVM on the first pass's features (`epochs` 0, ``tests`` their test features),
    else its encoder epoch by epoch, then the best epoch's classifier encodes ``test_paths``."""
    if tests is not None:
        return fit_svm(record, classifier, tests)
    return train_encoder(record, classifier, test_paths)


def fit_svm(record: RunRecord, classifier: HHTClassifier, tests: FileFeatures) -> Fitted:
    """The random-encoder path (`epochs` 0): fit the SVM on the first pass's training features (a resumed
    checkpoint's SVM is kept)."""
    heading("Training SVM Classifier")
    data, train, val = record.data, record.split.train, record.split.val
    if record.resumed is None:
        try:
            classifier.fit_features(data.features[train], data.labels[train], data.groups_of(train))
        except ValueError as error:
            raise _too_few_files(error) from None
    else:
        logger.info("Using the fitted head from the checkpoint")
    logger.info(f"Head: {classifier.head_reason_}")
    predicted_train = classifier.predict_features(data.features[train], data.groups_of(train))
    train_accuracy = float(np.mean(predicted_train == data.labels[train]))
    return Fitted(classifier, train_accuracy, data.features[val], data.groups_of(val), tests)


def _trainer_options(record: RunRecord) -> EncoderTrainingOptions:
    """The user's training options; after `cv`, as many epochs as the folds' median best epoch, all run."""
    options = record.options.encoder_training()
    if record.cv is None:
        return options
    options.epochs = max(1, int(np.median([fold["best_epoch"] for fold in record.cv["folds"]])))
    options.patience = 0
    return options


def _make_trainer(record: RunRecord, classifier: HHTClassifier) -> EncoderTrainer:
    """The trainer of ``classifier``'s encoder on the split, its title logged."""
    options = _trainer_options(record)
    if record.cv is None:
        heading(f"Training the encoder (at most {options.epochs} epochs), then the SVM")
    else:
        heading(
            f"Training the encoder on all labelled files for {options.epochs} epochs "
            "(the folds' median best epoch), then the SVM"
        )
    data, train, val = record.data, record.split.train, record.split.val
    from semg_hht.training.trainer import EncoderTrainer  # torch: only a model with the CNN block trains

    return EncoderTrainer(
        classifier,
        options,
        LabelledFiles([data.paths[i] for i in train], data.labels[train], data.groups_of(train)),
        LabelledFiles([data.paths[i] for i in val], data.labels[val], data.groups_of(val)),
    )


def _save_epoch(record: RunRecord, classifier: HHTClassifier, trainer: EncoderTrainer, improved: bool) -> None:
    """An epoch's checkpoints: ``latest_*`` with the trainer state, and ``best_*`` when the epoch is the best."""
    fields = {"epoch": trainer.epoch, "history": trainer.history, "best_epoch": trainer.best_epoch}
    checkpoints: dict[str, Checkpoint] = {
        "latest": (classifier, record.metadata(classifier, **fields), trainer.state_dict())
    }
    if improved:
        checkpoints["best"] = (trainer.best_fitted, record.metadata(trainer.best_fitted, **fields), None)
    save_run_checkpoints(record.checkpoint_dir, checkpoints)


def train_encoder(record: RunRecord, classifier: HHTClassifier, test_paths: list[Path]) -> Fitted:
    """Train the encoder epoch by epoch with checkpoints (continuing a resumed run's trainer state); the best
    epoch's classifier then encodes the validation and the test files."""
    trainer = _make_trainer(record, classifier)
    initial = None
    if not restore_trainer(trainer, record.resumed, record.options):
        # The untrained encoder's features of the first pass are epoch 0's.
        initial = np.concatenate([record.data.features[record.split.train], record.data.features[record.split.val]])
    try:
        trainer.run(partial(_save_epoch, record, classifier, trainer), initial)
    except ValueError as error:
        raise _too_few_files(error) from None
    if len(record.split.val):
        logger.info(f"\nBest epoch: {trainer.best_epoch} (validation loss {trainer.best_val_loss:.4f})")
    val_features, tests = _encode_with_best(trainer, test_paths, record.options.batch_size)
    heading("Best epoch's classifier (encoder + SVM)")
    return Fitted(
        trainer.best_fitted,
        trainer.history["svm_train_accuracy"][trainer.best_epoch],
        val_features,
        # The validation files were encoded in their split's order, so their groups line up.
        trainer.val.groups,
        tests,
        trainer.history,
        trainer.best_epoch,
        trainer.epoch,
    )


def _encode_with_best(
    trainer: EncoderTrainer, test_paths: list[Path], batch_size: int
) -> tuple[np.ndarray, FileFeatures]:
    """The best encoder's features of the validation files (for the report) and of the test files."""
    encoded = extract_file_features(trainer.best_fitted, trainer.val.paths + test_paths, batch_size, "Encoding")
    val_set = set(trainer.val.paths)
    for error in encoded.errors:
        if Path(error.path) in val_set:
            raise TrainingDataError(f"{error}: the file changed or vanished while training")
    is_val = np.array([path in val_set for path in encoded.paths], dtype=bool)
    test_errors = [error for error in encoded.errors if Path(error.path) not in val_set]
    return encoded.features[is_val], encoded.take(np.flatnonzero(~is_val).tolist(), test_errors)


def save_final(record: RunRecord, fitted: Fitted, validation: dict[str, Any] | None) -> None:
    """The run's closing checkpoints: ``latest_*`` and ``final_*`` of the fitted SVM (`epochs` 0), or
    ``final_*`` (= ``best_*``) after encoder training, whose epochs ``latest_*`` already holds."""
    folder, classifier = record.checkpoint_dir, fitted.classifier
    if fitted.history is None:
        # A resumed checkpoint's history goes on; older ones may name its keys differently.
        history = dict(record.resumed.metadata.history) if record.resumed else {}
        history.setdefault("train_accuracy", []).append(fitted.train_accuracy)
        if validation is not None:
            history.setdefault("val_accuracy", []).append(validation["accuracy"])
        metadata = record.metadata(classifier, history=history)
        # One save: a run that cannot write both leaves neither, never a latest_* and final_* of two runs.
        save_run_checkpoints(folder, {"latest": (classifier, metadata, None), "final": (classifier, metadata, None)})
        logger.info(f"\nCheckpoints saved: {folder / 'final'}_* and {folder / 'latest'}_*")
        return
    fields = {"epoch": fitted.best_epoch, "history": fitted.history, "best_epoch": fitted.best_epoch}
    save_run_checkpoints(
        folder,
        {"final": (classifier, record.metadata(classifier, **fields), None)},
        advice="latest_* holds the trained epochs: once there is room, `resume` finishes",
    )
    logger.info(
        f"\nCheckpoints saved: {folder / 'final'}_* (= best_*, epoch {fitted.best_epoch}) "
        f"and {folder / 'latest'}_* (epoch {fitted.last_epoch}, with the trainer state for `resume`)"
    )
