"""The train.py workflow: scan, encode once, split, fit, report, checkpoint, predict tests."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.model_selection import train_test_split

from .checkpoint import CheckpointError, build_metadata, checkpoint_files, load_checkpoint, save_checkpoint
from .classes import CLASS_NAMES, N_CLASSES, NAMING_RULE
from .classifier import HHTClassifier, parse_gamma
from .dataset import extract_file_features, scan_data_folder
from .defaults import DEFAULT_BATCH_SIZE
from .encoder import resolve_device
from .errors import EXIT_OK, EXIT_OUT_OF_MEMORY, EXIT_PARTIAL, UsageError, out_of_memory_advice
from .matrices import display_name, list_npz_files, printable_path
from .prediction import write_predictions

RULE = "=" * 60
SUMMARY_LIMIT = 50


@dataclass
class TrainingOptions:
    data_dir: str
    checkpoint_dir: str = "./checkpoints"
    batch_size: int = DEFAULT_BATCH_SIZE
    test_size: float = 0.2
    resume: bool = False
    overwrite: bool = False
    cpu: bool = False
    bf16: bool = False
    seed: int = 42
    svm_C: float = 10.0
    svm_kernel: str = "rbf"
    svm_gamma: str = "scale"

    def validate(self) -> None:
        """Reject impossible values before any data is read."""
        if not 0 < self.test_size < 1:
            raise UsageError(f"--test_size must be between 0 and 1 (exclusive), got {self.test_size}")
        if self.batch_size < 1:
            raise UsageError(f"--batch_size must be at least 1, got {self.batch_size}")
        if not self.svm_C > 0:
            raise UsageError(f"--svm_C must be positive, got {self.svm_C}")
        try:
            parse_gamma(self.svm_gamma)
        except ValueError as error:
            raise UsageError(f"--svm_gamma: {error}") from None
        if not os.path.isdir(self.data_dir):
            raise UsageError(f"Data directory not found: {self.data_dir}")
        if self.resume and self.overwrite:
            raise UsageError(
                "--resume continues the checkpoints in --checkpoint_dir, --overwrite replaces them: pick one"
            )
        existing = existing_checkpoints(self.checkpoint_dir)
        if existing and not (self.resume or self.overwrite):
            raise UsageError(
                f"Checkpoints already exist in {self.checkpoint_dir} ({', '.join(existing)}): pass --resume to "
                "continue that run, --overwrite to replace them, or choose another --checkpoint_dir"
            )

    def settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint."""
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "svm": {"C": float(self.svm_C), "kernel": self.svm_kernel, "gamma": parse_gamma(self.svm_gamma)},
        }


def existing_checkpoints(checkpoint_dir: str | os.PathLike) -> list[str]:
    """Names (``final``, ``latest``) of the checkpoints a run in ``checkpoint_dir`` would replace."""
    return [
        name
        for name in ("final", "latest")
        if any(path.exists() for path in checkpoint_files(Path(checkpoint_dir) / name).values())
    ]


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/validation split, with a clear error when impossible."""
    counts = np.bincount(labels, minlength=N_CLASSES)
    too_few = [f"{CLASS_NAMES[c]} ({counts[c]})" for c in range(N_CLASSES) if counts[c] == 1]
    if too_few:
        raise UsageError(
            "Too few files for a stratified train/validation split: "
            f"{', '.join(too_few)} has only one file. Each class that appears needs at "
            "least 2 labelled files (3 or more recommended); add files or remove that class."
        )
    n_classes = int((counts > 0).sum())
    n_val = math.ceil(test_size * len(labels))
    if n_val < n_classes or len(labels) - n_val < n_classes:
        raise UsageError(
            f"--test_size {test_size} puts {n_val} of {len(labels)} files in validation, but both "
            f"sides need at least one file of each of the {n_classes} classes; "
            "change --test_size or add files."
        )
    indices = np.arange(len(labels))
    train, val = train_test_split(indices, test_size=test_size, random_state=seed, stratify=labels)
    for side, name in ((train, "training"), (val, "validation")):
        missing = [CLASS_NAMES[c] for c in range(N_CLASSES) if counts[c] and not (labels[side] == c).any()]
        if missing:
            raise UsageError(
                f"--test_size {test_size} leaves the {name} set without {', '.join(missing)} "
                "(too few files of that class); change --test_size or add files."
            )
    return np.sort(train), np.sort(val)


def confusion_table(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """The 6x6 confusion matrix as text, rows true class, columns predicted class."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(N_CLASSES)))
    width = max(len(name) for name in CLASS_NAMES) + 1
    lines = ["true \\ predicted".ljust(width) + "".join(name.rjust(width) for name in CLASS_NAMES)]
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        lines.append(name.ljust(width) + "".join(str(value).rjust(width) for value in row))
    return "\n".join(lines)


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr)


def _load_resume_checkpoint(
    options: TrainingOptions, device: torch.device
) -> tuple[HHTClassifier | None, dict[str, Any]]:
    latest = Path(options.checkpoint_dir) / "latest"
    if not checkpoint_files(latest)["encoder"].exists():
        if existing_checkpoints(options.checkpoint_dir):
            raise UsageError(
                f"Cannot resume: {options.checkpoint_dir} holds a final checkpoint but no latest_*; "
                "use --overwrite to replace it, or another --checkpoint_dir"
            )
        print(f"No checkpoint to resume in {options.checkpoint_dir}; starting fresh training")
        return None, {}
    try:
        classifier, metadata = load_checkpoint(latest, device)
    except CheckpointError as error:
        raise UsageError(f"Cannot resume: {error}") from None
    stored = {key: metadata.get(key) for key in ("seed", "test_size", "svm")}
    wanted = options.settings()
    differences = [
        f"{key}: checkpoint {stored[key]}, this run {wanted[key]}" for key in wanted if stored[key] != wanted[key]
    ]
    if differences:
        raise UsageError(
            "Cannot resume: the checkpoint was trained with other settings ("
            + "; ".join(differences)
            + "). Pass the same flags, or use --overwrite (or another --checkpoint_dir) to train afresh."
        )
    print(f"Resuming from checkpoint: {latest} (fitted classifier found; it is not refitted)")
    return classifier, metadata


def _resumed_split(metadata: dict[str, Any], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    stored_train, stored_val = list(metadata.get("train_files", [])), list(metadata.get("val_files", []))
    stored = set(stored_train) | set(stored_val)
    missing, added = sorted(stored - set(names)), sorted(set(names) - stored)
    if missing or added:
        detail = []
        if missing:
            detail.append(f"{len(missing)} files missing (e.g. {missing[0]})")
        if added:
            detail.append(f"{len(added)} new files (e.g. {added[0]})")
        raise UsageError(
            "Cannot resume: the labelled files differ from the checkpoint's ("
            + ", ".join(detail)
            + "). Use --overwrite (or another --checkpoint_dir) to fit a new model on this data."
        )
    position = {name: i for i, name in enumerate(names)}
    return (
        np.array(sorted(position[n] for n in stored_train), dtype=int),
        np.array(sorted(position[n] for n in stored_val), dtype=int),
    )


def run_training(options: TrainingOptions) -> int:
    """Run train.py: returns the exit code (0 all files used, 1 some skipped, 3 out of memory).

    Raises :class:`UsageError` when nothing can be trained.
    """
    options.validate()
    device = resolve_device(options.cpu)
    print(f"Using device: {device}")
    print(f"Data directory: {options.data_dir}")
    print(f"Checkpoint directory: {options.checkpoint_dir}")

    if not list_npz_files(options.data_dir):
        raise UsageError(f"No .npz files found in {options.data_dir}")
    folder = scan_data_folder(options.data_dir)
    if not folder.labelled:
        raise UsageError(f"No valid training files found in {options.data_dir}. {NAMING_RULE}")
    skipped = list(folder.skipped)
    for path, reason in folder.skipped:
        _warn(f"skipping {printable_path(path)}: {reason}")

    resumed, metadata = (None, {})
    if options.resume:
        resumed, metadata = _load_resume_checkpoint(options, device)
    classifier = resumed or HHTClassifier(
        svm_C=options.svm_C,
        svm_kernel=options.svm_kernel,
        svm_gamma=options.svm_gamma,
        seed=options.seed,
        batch_size=options.batch_size,
        device=device,
    )
    classifier.bf16 = options.bf16

    print("\nLoading data...")
    try:
        encoded = extract_file_features(
            classifier, folder.labelled + folder.test, options.batch_size, "Loading and encoding"
        )
    except torch.cuda.OutOfMemoryError:
        print(out_of_memory_advice(options.batch_size), file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    label_of = dict(zip(folder.labelled, folder.labels, strict=True))
    is_labelled = np.array([path in label_of for path in encoded.paths], dtype=bool)
    train_paths = [path for path in encoded.paths if path in label_of]
    test_paths = [path for path in encoded.paths if path not in label_of]
    labels = np.array([label_of[path] for path in train_paths], dtype=int)
    features, test_features = encoded.features[is_labelled], encoded.features[~is_labelled]
    for error in encoded.errors:
        _warn(f"skipping {error}")
    skipped.extend((Path(error.path), error.reason) for error in encoded.errors if Path(error.path) in label_of)

    print(f"Loaded {len(train_paths)} training samples")
    print(f"Found {len(folder.test)} test files (will be used for inference after training)")
    if not train_paths:
        raise UsageError(f"No valid training files found in {options.data_dir}: every labelled file failed to load")
    print("\nClass distribution:")
    counts = np.bincount(labels, minlength=N_CLASSES)
    for name, count in zip(CLASS_NAMES, counts, strict=True):
        print(f"  {name}: {count} samples")

    names = [path.name for path in train_paths]
    if resumed is not None:
        train_index, val_index = _resumed_split(metadata, names)
    else:
        train_index, val_index = stratified_split(labels, options.test_size, options.seed)
    print(f"\nTraining set: {len(train_index)} samples")
    print(f"Validation set: {len(val_index)} samples")

    print(f"\n{RULE}\nTraining SVM Classifier\n{RULE}")
    if resumed is None:
        try:
            classifier.fit_features(features[train_index], labels[train_index])
        except ValueError as error:
            raise UsageError(f"Too few files to train: {error}. Add labelled files or lower --test_size.") from None
    else:
        print("Using the fitted SVM from the checkpoint")
    train_pred = classifier.predict_features(features[train_index])
    val_pred = classifier.predict_features(features[val_index])
    train_accuracy = float(np.mean(train_pred == labels[train_index]))
    val_accuracy = float(np.mean(val_pred == labels[val_index]))
    print(f"Training Accuracy: {train_accuracy:.4f}")
    print(f"Validation Accuracy: {val_accuracy:.4f}")
    print("\nValidation classification report:")
    print(
        classification_report(
            labels[val_index],
            val_pred,
            labels=list(range(N_CLASSES)),
            target_names=list(CLASS_NAMES),
            digits=4,
            zero_division=0,
        )
    )
    print("Validation confusion matrix:")
    print(confusion_table(labels[val_index], val_pred))

    # A resumed checkpoint's history goes on; older ones may name its keys differently.
    history = dict(metadata.get("history") or {})
    history.setdefault("train_accuracy", []).append(train_accuracy)
    history.setdefault("val_accuracy", []).append(val_accuracy)
    new_metadata = build_metadata(
        classifier,
        history=history,
        test_size=options.test_size,
        n_train=len(train_index),
        n_val=len(val_index),
        train_files=[names[i] for i in train_index],
        val_files=[names[i] for i in val_index],
        resumed=resumed is not None,
    )
    checkpoint_dir = Path(options.checkpoint_dir)
    for name in ("latest", "final"):
        save_checkpoint(checkpoint_dir / name, classifier, new_metadata)
    print(f"\nCheckpoints saved: {checkpoint_dir / 'final'}_* and {checkpoint_dir / 'latest'}_*")

    test_errors = [error for error in encoded.errors if Path(error.path) not in label_of]
    predictions_path = checkpoint_dir / "test_predictions.json"
    write_predictions(predictions_path, test_paths, classifier.predict_proba_features(test_features), test_errors)
    print(f"\nTest predictions saved to: {predictions_path}")

    failures = [(printable_path(path), reason) for path, reason in skipped]
    failures += [(display_name(error.path), error.reason) for error in test_errors]
    if not failures:
        return EXIT_OK
    print(f"\nSkipped {len(failures)} files:", file=sys.stderr)
    for name, reason in failures[:SUMMARY_LIMIT]:
        print(f"  {name}: {reason}", file=sys.stderr)
    if len(failures) > SUMMARY_LIMIT:
        print(f"  ... and {len(failures) - SUMMARY_LIMIT} more (each one is named in a warning above)", file=sys.stderr)
    return EXIT_PARTIAL
