"""The train.py workflow: scan, encode, split, train the encoder (optional), fit, report, checkpoint, predict tests."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report

from .aggregation import DEFAULT_RULE, recording_scores
from .atomic import ensure_free_space, remove_temporaries
from .checkpoint import (
    PREVIOUS_DIR,
    CheckpointError,
    CheckpointSave,
    build_metadata,
    checkpoint_files,
    encoder_size,
    load_checkpoint,
    load_training_checkpoint,
    manifest_hash,
    previous_prefix,
    save_checkpoint,
    save_checkpoints,
)
from .classes import CLASS_NAMES, N_CLASSES, NAMING_RULE
from .classifier import MODELS, HHTClassifier, describe_model, parse_gamma
from .cross_validation import Recordings, cross_validate_features, cross_validate_training, cv_report
from .dataset import (
    DataFolder,
    FileFeatures,
    SubjectSource,
    compile_group_pattern,
    extract_file_features,
    scan_data_folder,
    with_groups,
)
from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_FEATURES, DEFAULT_MODEL, DEFAULT_NORMALISATION
from .encoder import resolve_device
from .encoder_training import EncoderTrainer, EncoderTrainingOptions, LabelledFiles, TrainingDataError
from .errors import EXIT_OK, EXIT_OUT_OF_MEMORY, EXIT_PARTIAL, UsageError, WriteError, out_of_memory_advice
from .evaluation import cv_folds, parse_cv, scores
from .feature_sets import feature_names, feature_set_name, parse_feature_set
from .folder_lock import folder_lock
from .importance import importance_summary, permutation_importances
from .labels_file import read_labels_file
from .matrices import MatrixFileError, display_name, list_npz_files, printable_path
from .normalisation import NORMALISATION_MODES, FileGroups, take_groups
from .prediction import combine_by_recording, write_predictions
from .report import (
    TEST_PREDICTIONS_NAME,
    data_fingerprint,
    read_class_spectra,
    retire_run_outputs,
    write_report,
)
from .splits import make_split
from .tuning import tune_svm

RULE = "=" * 60
FIGURE_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "recording_balanced_accuracy": "Balanced accuracy per recording",
    "macro_f1": "Macro F1",
    "gender_accuracy": "Gender accuracy",
    "quality_accuracy": "Movement-quality accuracy",
}
SUMMARY_LIMIT = 50
CHECKPOINTS = ("final", "latest", "best")


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
    epochs: int = DEFAULT_EPOCHS
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 5
    augment: bool = False
    labels: str | None = None
    group_pattern: str | None = None
    cv: str | None = None
    features: str = DEFAULT_FEATURES
    normalise: str = DEFAULT_NORMALISATION
    model: str = DEFAULT_MODEL
    tune: bool = False
    vote: str = DEFAULT_RULE

    def encoder_training(self) -> EncoderTrainingOptions:
        return EncoderTrainingOptions(self.epochs, self.lr, self.weight_decay, self.patience, self.augment)

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
        try:
            self.encoder_training().validate()
        except ValueError as error:
            raise UsageError(str(error)) from None
        self._validate_model()
        if self.group_pattern is not None:
            compile_group_pattern(self.group_pattern)
        if self.cv is not None:
            parse_cv(self.cv)
        if not os.path.isdir(self.data_dir):
            raise UsageError(f"Data directory not found: {self.data_dir}")
        if self.labels is not None and not os.path.isfile(self.labels):
            raise UsageError(f"Labels file not found: {self.labels}")
        if self.resume and self.overwrite:
            raise UsageError(
                "--resume continues the checkpoints in --checkpoint_dir, --overwrite replaces them: pick one"
            )

    def refuse_existing_checkpoints(self) -> None:
        """Refuse to replace checkpoints without --resume or --overwrite (checked under the folder's lock)."""
        existing = existing_checkpoints(self.checkpoint_dir)
        if existing and not (self.resume or self.overwrite):
            raise UsageError(
                f"Checkpoints already exist in {self.checkpoint_dir} ({', '.join(existing)}): pass --resume to "
                "continue that run, --overwrite to replace them, or choose another --checkpoint_dir"
            )

    def _validate_model(self) -> None:
        try:
            blocks = parse_feature_set(self.features)
        except ValueError as error:
            raise UsageError(f"--features: {error}") from None
        if self.normalise not in NORMALISATION_MODES:
            raise UsageError(f"--normalise must be one of {', '.join(NORMALISATION_MODES)}, got {self.normalise!r}")
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.epochs and "cnn" not in blocks:
            raise UsageError(
                f"--epochs {self.epochs} trains the CNN encoder, but --features {self.features} has no cnn block: "
                "pass --epochs 0, or a feature set with cnn"
            )
        if self.tune and self.epochs:
            raise UsageError("--tune chooses the SVM for fixed features: it needs --epochs 0")

    def model_settings(self) -> dict[str, Any]:
        """What the features and the model are: recorded in the checkpoint, compared on resume."""
        return {
            "features": feature_set_name(parse_feature_set(self.features)),
            "normalisation": self.normalise,
            "model": self.model,
        }

    def svm_request(self) -> dict[str, Any]:
        """The SVM settings asked for (``tune`` instead of C and gamma with --tune)."""
        if self.tune:
            return {"tune": True, "kernel": self.svm_kernel}
        return {"C": float(self.svm_C), "kernel": self.svm_kernel, "gamma": parse_gamma(self.svm_gamma)}

    def settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint."""
        training: dict[str, Any] = {"epochs": 0}
        if self.epochs:
            # Batches and bf16 change the training trajectory; with a random encoder they do not matter.
            training = {**self.encoder_training().settings(), "batch_size": self.batch_size, "bf16": self.bf16}
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "svm": self.svm_request(),
            "model_settings": self.model_settings(),
            "training": training,
            "split": {
                "labels_file": file_fingerprints([Path(self.labels)])[Path(self.labels).name] if self.labels else None,
                "group_pattern": self.group_pattern,
                "cv": None if self.cv is None else parse_cv(self.cv),
            },
        }


def _feature_names(options: TrainingOptions) -> list[str]:
    return feature_names(parse_feature_set(options.features))


def existing_checkpoints(checkpoint_dir: str | os.PathLike) -> list[str]:
    """Names (``final``, ``latest``, ``best``) of the checkpoints a run in ``checkpoint_dir`` would replace."""
    return [
        name
        for name in CHECKPOINTS
        if any(path.exists() for path in checkpoint_files(Path(checkpoint_dir) / name).values())
    ]


def confusion_table(matrix: Sequence[Sequence[int]]) -> str:
    """The 6x6 confusion matrix (rows true class, columns predicted class) as text."""
    width = max(len(name) for name in CLASS_NAMES) + 1
    lines = ["true \\ predicted".ljust(width) + "".join(name.rjust(width) for name in CLASS_NAMES)]
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        lines.append(name.ljust(width) + "".join(str(value).rjust(width) for value in row))
    return "\n".join(lines)


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr)


def file_fingerprints(paths: Sequence[Path]) -> dict[str, str]:
    """SHA-256 of each file's content, keyed by file name: what a resume must find unchanged."""
    fingerprints = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        fingerprints[path.name] = digest.hexdigest()
    return fingerprints


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Resumed:
    """What ``latest_*`` holds for a resumed run."""

    classifier: HHTClassifier
    metadata: dict[str, Any]
    trainer_state: dict[str, Any] | None


def _load_resume_checkpoint(options: TrainingOptions, device: torch.device) -> Resumed | None:
    latest = Path(options.checkpoint_dir) / "latest"
    if not checkpoint_files(latest)["encoder"].exists():
        if existing_checkpoints(options.checkpoint_dir):
            raise UsageError(
                f"Cannot resume: {options.checkpoint_dir} holds a final or best checkpoint but no latest_*; "
                "use --overwrite to replace it, or another --checkpoint_dir"
            )
        print(f"No checkpoint to resume in {options.checkpoint_dir}; starting fresh training")
        return None
    try:
        classifier, metadata, trainer_state = load_training_checkpoint(latest, device)
    except CheckpointError as error:
        raise UsageError(f"Cannot resume: {error}") from None
    stored = {key: metadata.get(key) for key in ("seed", "test_size")}
    stored["svm"] = metadata.get("svm_request") or metadata.get("svm")
    # Checkpoints before feature sets: CNN features, no normalisation, one joint SVM.
    stored["model_settings"] = metadata.get("model_settings") or {
        "features": "cnn",
        "normalisation": "none",
        "model": "joint",
    }
    # Checkpoints of release 0.1 have neither key: random encoder, labels from the file names.
    stored["training"] = metadata.get("training") or {"epochs": 0}
    stored["split"] = metadata.get("split") or {"labels_file": None, "group_pattern": None, "cv": None}
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
    if options.epochs and trainer_state is None:
        raise UsageError(f"Cannot resume: {latest} has no trainer state; use --overwrite to train afresh")
    if trainer_state is None:
        print(f"Resuming from checkpoint: {latest} (fitted classifier found; it is not refitted)")
    else:
        print(f"Resuming from checkpoint: {latest} (epoch {trainer_state['epoch']} of {options.epochs} completed)")
    return Resumed(classifier, metadata, trainer_state)


def _resumed_split(
    metadata: dict[str, Any], names: Sequence[str], fingerprints: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    stored_train, stored_val = list(metadata.get("train_files", [])), list(metadata.get("val_files", []))
    stored = set(stored_train) | set(stored_val)
    missing, added = sorted(stored - set(names)), sorted(set(names) - stored)
    # Checkpoints of release 0.1 kept no fingerprints: only the names can be compared.
    stored_fingerprints = metadata.get("data_fingerprints") or {}
    changed = sorted(
        name for name in stored_fingerprints if name in fingerprints and fingerprints[name] != stored_fingerprints[name]
    )
    if missing or added or changed:
        detail = []
        if missing:
            detail.append(f"{len(missing)} files missing (e.g. {missing[0]})")
        if added:
            detail.append(f"{len(added)} new files (e.g. {added[0]})")
        if changed:
            detail.append(f"{len(changed)} files with different content (e.g. {changed[0]})")
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


def _print_validation(train_accuracy: float, y_val: np.ndarray, val_pred: np.ndarray) -> dict[str, Any]:
    """Print the validation figures and return them (:func:`~semg_hht.evaluation.scores`)."""
    figures = scores(y_val, val_pred)
    print(f"Training Accuracy: {train_accuracy:.4f}")
    print(f"Validation Accuracy: {figures['accuracy']:.4f}")
    print(f"Validation balanced accuracy: {figures['balanced_accuracy']:.4f}, macro F1: {figures['macro_f1']:.4f}")
    print(
        f"Validation gender accuracy: {figures['gender_accuracy']:.4f}, "
        f"movement-quality accuracy: {figures['quality_accuracy']:.4f}"
    )
    print("\nValidation classification report:")
    print(
        classification_report(
            y_val, val_pred, labels=list(range(N_CLASSES)), target_names=list(CLASS_NAMES), digits=4, zero_division=0
        )
    )
    print("Validation confusion matrix:")
    print(confusion_table(figures["confusion_matrix"]))
    return figures


def _print_skipped(failures: list[tuple[str, str]]) -> int:
    if not failures:
        return EXIT_OK
    print(f"\nSkipped {len(failures)} files:", file=sys.stderr)
    for name, reason in failures[:SUMMARY_LIMIT]:
        print(f"  {name}: {reason}", file=sys.stderr)
    if len(failures) > SUMMARY_LIMIT:
        print(f"  ... and {len(failures) - SUMMARY_LIMIT} more (each one is named in a warning above)", file=sys.stderr)
    return EXIT_PARTIAL


def run_training(options: TrainingOptions) -> int:
    """Run train.py: returns the exit code (0 all files used, 1 some skipped, 3 out of memory).

    The checkpoint folder is locked for the whole run (:mod:`semg_hht.folder_lock`),
    so everything in it comes from one run.

    Raises
    ------
    UsageError
        Nothing can be trained, or another run holds the checkpoint folder.
    WriteError
        The checkpoint folder cannot be written (read-only, full, no permission).
    """
    options.validate()
    with folder_lock(options.checkpoint_dir, "train.py"):
        remove_temporaries(Path(options.checkpoint_dir) / PREVIOUS_DIR)
        options.refuse_existing_checkpoints()
        return _train_in_locked_folder(options)


def _train_in_locked_folder(options: TrainingOptions) -> int:
    started = time.perf_counter()
    device = resolve_device(options.cpu)
    if device.type == "cpu":
        torch.set_num_threads(available_cpus())
        print(f"Using device: cpu ({torch.get_num_threads()} threads)")
    else:
        print(f"Using device: {device} ({torch.cuda.get_device_name(device)})")
    print(f"Data directory: {options.data_dir}")
    print(f"Checkpoint directory: {options.checkpoint_dir}")

    if not list_npz_files(options.data_dir):
        raise UsageError(f"No .npz files found in {options.data_dir}")
    labels_file = read_labels_file(options.labels) if options.labels else None
    pattern = compile_group_pattern(options.group_pattern) if options.group_pattern else None
    folder = scan_data_folder(options.data_dir, labels_file, pattern)
    for problem in folder.problems:
        _warn(problem)
    if not folder.labelled:
        how = f"none of them is labelled in {options.labels}" if options.labels else NAMING_RULE
        raise UsageError(f"No valid training files found in {options.data_dir}: {how}")
    skipped = list(folder.skipped)
    for path, reason in folder.skipped:
        _warn(f"skipping {printable_path(path)}: {reason}")
    if options.normalise != "none" and not folder.has_subjects:
        raise UsageError(
            f"--normalise {options.normalise} needs the subject of every labelled file: "
            "a labels file with a subject column, or --group_pattern"
        )

    resumed = _load_resume_checkpoint(options, device) if options.resume else None
    classifier = resumed.classifier if resumed else new_classifier(options, device)
    # The encoder's weights alone, in each checkpoint the run writes: certain to be needed.
    needed = (2 if options.epochs == 0 else 3) * encoder_size(classifier)
    ensure_free_space(Path(options.checkpoint_dir), needed, f"checkpoints in {options.checkpoint_dir}")
    classifier.bf16 = options.bf16
    print(describe_model(classifier))

    print("\nLoading data...")
    # A trained encoder changes the features, so test files are encoded after training.
    first_pass = folder.labelled + (folder.test if options.epochs == 0 else [])
    try:
        encoded = extract_file_features(classifier, first_pass, options.batch_size, "Loading and encoding")
    except torch.cuda.OutOfMemoryError:
        print(out_of_memory_advice(options.batch_size), file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    index_of = {path: i for i, path in enumerate(folder.labelled)}
    is_labelled = np.array([path in index_of for path in encoded.paths], dtype=bool)
    train_paths = [path for path in encoded.paths if path in index_of]
    labels = np.array([folder.labels[index_of[path]] for path in train_paths], dtype=int)
    for error in encoded.errors:
        _warn(f"skipping {error}")
    skipped.extend((Path(error.path), error.reason) for error in encoded.errors if Path(error.path) in index_of)

    print(f"Loaded {len(train_paths)} training samples")
    print(f"Found {len(folder.test)} test files (will be used for inference after training)")
    if not train_paths:
        raise UsageError(f"No valid training files found in {options.data_dir}: every labelled file failed to load")
    print("\nClass distribution:")
    counts = np.bincount(labels, minlength=N_CLASSES)
    for name, count in zip(CLASS_NAMES, counts, strict=True):
        print(f"  {name}: {count} samples")
    subjects = None
    if folder.has_subjects:
        subjects = np.array([folder.subjects[index_of[path]] for path in train_paths])
        names = sorted(set(subjects))
        print(f"Subjects: {len(names)} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")

    source = SubjectSource(labels_file, pattern)
    channel_of = dict(zip(encoded.paths, encoded.channels, strict=True))
    # The subjects are the folder scan's (the same rule as SubjectSource's); only the muscles are new.
    groups = None
    if subjects is not None:
        groups = FileGroups(subjects, np.array([source.muscle(path, channel_of[path]) for path in train_paths]))
    recording_of = dict(zip(encoded.paths, source.recordings(encoded), strict=True))
    run = _Run(
        options,
        folder,
        train_paths,
        labels,
        subjects,
        file_fingerprints(train_paths),
        resumed,
        source,
        groups,
        recording_of,
    )
    run.timings["loading_s"] = time.perf_counter() - started
    try:
        run.split([folder.pins[index_of[path]] for path in train_paths])
        if options.tune:
            run.tune(classifier, encoded.features[is_labelled], device)
        if options.cv is not None:
            run.cross_validate(encoded.features[is_labelled], device)
        if options.epochs == 0:
            test_errors = [error for error in encoded.errors if Path(error.path) not in index_of]
            tests = encoded.take(np.flatnonzero(~is_labelled).tolist(), test_errors)
            run.fit_svm(classifier, encoded.features[is_labelled])
            test_errors = run.predict_tests(classifier, tests)
        else:
            test_errors = run.train_encoder(classifier, encoded.features[is_labelled])
    except torch.cuda.OutOfMemoryError:
        print(out_of_memory_advice(options.batch_size), file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    except TrainingDataError as error:
        raise UsageError(str(error)) from None

    failures = [(printable_path(path), reason) for path, reason in skipped]
    failures += [(display_name(error.path), error.reason) for error in test_errors]
    failures += [(Path(options.labels).name, problem) for problem in folder.problems] if options.labels else []
    run.timings["total_s"] = time.perf_counter() - started
    report = run.write_report(failures)
    print(f"\nReport saved to: {report}")
    return _print_skipped(failures)


def _checkpoint_hashes(checkpoint_dir: Path) -> dict[str, dict[str, str]]:
    hashes = {name: manifest_hash(checkpoint_dir / name) for name in CHECKPOINTS}
    return {name: {"manifest_sha256": digest} for name, digest in hashes.items() if digest is not None}


def new_classifier(
    options: TrainingOptions, device: torch.device, svm_C: float | None = None, svm_gamma: str | float | None = None
) -> HHTClassifier:
    """An unfitted classifier with the run's features, model, SVM settings (or the given C and gamma), seed, batch."""
    return HHTClassifier(
        svm_C=options.svm_C if svm_C is None else svm_C,
        svm_kernel=options.svm_kernel,
        svm_gamma=options.svm_gamma if svm_gamma is None else svm_gamma,
        seed=options.seed,
        batch_size=options.batch_size,
        device=device,
        bf16=options.bf16,
        features=options.features,
        normalisation=options.normalise,
        model=options.model,
    )


def _fold_classifier(
    options: TrainingOptions, device: torch.device, features: np.ndarray, labels: np.ndarray, groups: FileGroups | None
) -> HHTClassifier:
    """A cross-validation fold's classifier; with --tune, its SVM is tuned on the fold's training files alone."""
    if not options.tune:
        return new_classifier(options, device)
    tuned = tune_svm(partial(new_classifier, options, device), features, labels, groups, options.seed)
    return new_classifier(options, device, tuned["C"], tuned["gamma"])


@dataclass
class _Run:
    """One train.py run after loading: split, cross-validation, fitting, checkpoints, report."""

    options: TrainingOptions
    folder: DataFolder
    paths: list[Path]
    labels: np.ndarray
    subjects: np.ndarray | None
    fingerprints: dict[str, str]
    resumed: Resumed | None
    source: SubjectSource
    groups: FileGroups | None
    recording_of: dict[Path, str]

    def __post_init__(self) -> None:
        self.names = [path.name for path in self.paths]
        self.train_index = np.arange(len(self.paths))
        self.val_index = np.empty(0, dtype=int)
        self.timings: dict[str, float] = {}
        self.cv: dict[str, Any] | None = self.resumed.metadata.get("cv") if self.resumed else None
        self.validation: dict[str, Any] | None = None
        self.importance: dict[str, Any] | None = None
        self.test_scores: dict[str, Any] | None = None
        self.history: dict[str, list] | None = None
        self.tuning: dict[str, Any] | None = self.resumed.metadata.get("tuning") if self.resumed else None

    def groups_of(self, index: np.ndarray) -> FileGroups | None:
        return take_groups(self.groups, index)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.options.checkpoint_dir)

    def split(self, pins: list[str | None]) -> None:
        """Choose the validation split (none with --cv: the final model is fitted on every labelled file)."""
        if self.resumed is not None:
            self.train_index, self.val_index = _resumed_split(self.resumed.metadata, self.names, self.fingerprints)
        elif self.options.cv is None:
            self.train_index, self.val_index = make_split(
                self.labels, self.split_groups(), pins, self.options.test_size, self.options.seed
            )
        print(f"\nTraining set: {len(self.train_index)} samples")
        print(f"Validation set: {len(self.val_index)} samples")
        if self.subjects is not None and len(self.val_index):
            print(f"Validation subjects (held out): {', '.join(self.held_out_subjects())}")

    def tune(self, classifier: HHTClassifier, features: np.ndarray, device: torch.device) -> None:
        """--tune: choose C and gamma on the training files by an inner cross-validation, and apply them."""
        print(f"\n{RULE}\nTuning the SVM (inner cross-validation on the training files)\n{RULE}")
        if self.tuning is not None:
            print("(result kept from the resumed checkpoint)")
        else:
            started = time.perf_counter()
            train = self.train_index
            make = partial(new_classifier, self.options, device)
            try:
                self.tuning = tune_svm(
                    make, features[train], self.labels[train], self.groups_of(train), self.options.seed
                )
            except ValueError as error:
                raise UsageError(f"Cannot tune: {error}") from None
            self.timings["tuning_s"] = time.perf_counter() - started
        tuning = self.tuning
        print(
            f"Best of {len(tuning['grid'])} settings ({tuning['folds']} {tuning['scheme']} folds): "
            f"C {tuning['C']:g}, gamma {tuning['gamma']:.4g}, inner balanced accuracy {tuning['score']:.4f}"
        )
        classifier.svm_C, classifier.svm_gamma = float(tuning["C"]), float(tuning["gamma"])

    def split_groups(self) -> np.ndarray | None:
        """What a split keeps together: subjects where known, else recordings with several files (their windows
        and channels would otherwise fall on both sides and flatter the figures), else nothing."""
        if self.subjects is not None:
            return self.subjects
        recordings = np.array([self.recording_of[path] for path in self.paths])
        return recordings if len(np.unique(recordings)) < len(recordings) else None

    def held_out_subjects(self) -> list[str]:
        return [] if self.subjects is None else sorted({str(s) for s in self.subjects[self.val_index]})

    def cross_validate(self, features: np.ndarray, device: torch.device) -> None:
        """Run --cv (unless a resumed checkpoint holds its result), print per fold and mean +- std."""
        options = self.options
        cv = parse_cv(options.cv)
        groups = self.split_groups()
        by = "" if groups is None else " by subject" if self.subjects is not None else " by recording"
        scheme = "leave-one-subject-out" if cv == "loso" else f"{cv}-fold{by}"
        print(f"\n{RULE}\nCross-validation: {scheme}\n{RULE}")
        if self.cv is not None:
            print("(result kept from the resumed checkpoint)")
        else:
            started = time.perf_counter()
            folds = cv_folds(self.labels, self.subjects if cv == "loso" else groups, cv, options.seed)
            recordings = Recordings([self.recording_of[path] for path in self.paths], options.vote)
            try:
                if options.epochs == 0:
                    make = partial(_fold_classifier, options, device)
                    results = cross_validate_features(make, features, self.labels, folds, self.groups, recordings)
                else:
                    results = cross_validate_training(
                        partial(new_classifier, options, device),
                        options.encoder_training(),
                        self.paths,
                        self.labels,
                        self.groups,
                        folds,
                        options.test_size,
                        recordings,
                    )
            except ValueError as error:
                raise UsageError(f"Too few files in a cross-validation fold: {error}") from None
            self.cv = cv_report(results, self.names, scheme)
            self.timings["cross_validation_s"] = time.perf_counter() - started
        print(f"Mean +- std over {len(self.cv['folds'])} folds:")
        for key, value in self.cv["summary"].items():
            print(f"  {FIGURE_NAMES[key]}: {value['mean']:.4f} +- {value['std']:.4f}")
        print("(the final model below is fitted on all labelled files)")

    def metadata(self, classifier: HHTClassifier, **fields: Any) -> dict[str, Any]:
        settings = self.options.settings()
        return build_metadata(
            classifier,
            test_size=self.options.test_size,
            training=settings["training"],
            split=settings["split"],
            svm_request=settings["svm"],
            model_settings=settings["model_settings"],
            tuning=self.tuning,
            n_train=len(self.train_index),
            n_val=len(self.val_index),
            train_files=[self.names[i] for i in self.train_index],
            val_files=[self.names[i] for i in self.val_index],
            data_fingerprints=self.fingerprints,
            cv=self.cv,
            resumed=self.resumed is not None,
            **fields,
        )

    def predict_tests(self, classifier: HHTClassifier, tests: FileFeatures) -> list[MatrixFileError]:
        """Predict the test files and write test_predictions.json; returns the files that could not be predicted."""
        predictions_path = self.checkpoint_dir / TEST_PREDICTIONS_NAME
        tests, groups = with_groups(tests, self.source, classifier.normalisation != "none")
        paths = tests.paths
        probabilities = classifier.predict_proba_features(tests.features, groups)
        # Test files need not be in the first pass (encoder training encodes them with the best epoch's encoder).
        test_recordings = self.source.recordings(tests)
        recordings = combine_by_recording(probabilities, test_recordings, self.options.vote)
        try:
            write_predictions(predictions_path, paths, probabilities, tests.errors, recordings=recordings)
        except WriteError as error:
            raise error.with_advice("the checkpoints were saved; report.json was not written") from None
        print(f"\nTest predictions saved to: {predictions_path}")
        known = [i for i, path in enumerate(paths) if path in self.folder.test_labels]
        if known:
            truth = np.array([self.folder.test_labels[paths[i]] for i in known])
            self.test_scores = scores(truth, probabilities[known].argmax(axis=1))
            print(
                f"Test files with known labels: {len(known)}, accuracy {self.test_scores['accuracy']:.4f}, "
                f"balanced {self.test_scores['balanced_accuracy']:.4f}"
            )
            self.test_scores["per_recording"] = self._recording_scores(
                "Test recordings", probabilities[known], truth, [test_recordings[i] for i in known]
            )
        return tests.errors

    def _recording_scores(
        self, what: str, probabilities: np.ndarray, truth: np.ndarray, recordings: list[str]
    ) -> dict[str, Any] | None:
        """Scores of one prediction per recording (``--vote``), printed; None when each recording has one file."""
        try:
            figures = recording_scores(probabilities, truth, recordings, self.options.vote)
        except ValueError as error:
            _warn(f"{what}: {error}; no figures per recording")
            return None
        if figures is None:
            return None
        print(
            f"{what}: {figures['n']} ({self.options.vote} of their files), accuracy {figures['accuracy']:.4f}, "
            f"balanced accuracy {figures['balanced_accuracy']:.4f}"
        )
        return figures

    def _report_validation(
        self, train_accuracy: float, classifier: HHTClassifier, features: np.ndarray, groups: FileGroups | None
    ) -> None:
        """Print and keep the validation figures (per file and per recording) and the permutation importance."""
        if not len(self.val_index):
            print(f"Training Accuracy: {train_accuracy:.4f}")
            print("No validation set: the model is fitted on every labelled file (see the cross-validation above)")
            return
        truth = self.labels[self.val_index]
        recordings = [self.recording_of[self.paths[i]] for i in self.val_index]
        probabilities = classifier.predict_proba_features(features, groups)
        self.validation = _print_validation(train_accuracy, truth, probabilities.argmax(axis=1))
        self.validation["per_recording"] = self._recording_scores(
            "Validation recordings", probabilities, truth, recordings
        )
        started = time.perf_counter()
        self.importance = permutation_importances(classifier, features, truth, groups, self.options.seed)
        self.timings["importance_s"] = time.perf_counter() - started
        print(f"\n{importance_summary(self.importance)}")

    def fit_svm(self, classifier: HHTClassifier, features: np.ndarray) -> None:
        """The random-encoder path (``--epochs 0``): fit the SVM on the first pass's features, save."""
        started = time.perf_counter()
        print(f"\n{RULE}\nTraining SVM Classifier\n{RULE}")
        train, val, labels = self.train_index, self.val_index, self.labels
        if self.resumed is None:
            try:
                classifier.fit_features(features[train], labels[train], self.groups_of(train))
            except ValueError as error:
                raise UsageError(f"Too few files to train: {error}. Add labelled files or lower --test_size.") from None
        else:
            print("Using the fitted SVM from the checkpoint")
        predicted_train = classifier.predict_features(features[train], self.groups_of(train))
        train_accuracy = float(np.mean(predicted_train == labels[train]))
        self._report_validation(train_accuracy, classifier, features[val], self.groups_of(val))
        # A resumed checkpoint's history goes on; older ones may name its keys differently.
        history = dict(self.resumed.metadata.get("history") or {}) if self.resumed else {}
        history.setdefault("train_accuracy", []).append(train_accuracy)
        if self.validation is not None:
            history.setdefault("val_accuracy", []).append(self.validation["accuracy"])
        metadata = self.metadata(classifier, history=history)
        # One save: a run that cannot write both leaves neither, never a latest_* and final_* of two runs.
        save_checkpoints(
            [CheckpointSave(self.checkpoint_dir / name, classifier, metadata) for name in ("latest", "final")]
        )
        retire_run_outputs(self.checkpoint_dir)
        print(f"\nCheckpoints saved: {self.checkpoint_dir / 'final'}_* and {self.checkpoint_dir / 'latest'}_*")
        self.timings["training_s"] = time.perf_counter() - started

    def _load_best(self, best_epoch: int, device: torch.device) -> HHTClassifier:
        """The best epoch's classifier for a resumed run.

        ``best_*`` is saved before ``latest_*``, so a run killed between the two leaves
        a ``best_*`` newer than the trainer state; the one it replaced, kept in
        ``.previous/``, is then the right one (the re-run epoch saves the newer again).
        """
        prefix = self.checkpoint_dir / "best"
        found = []
        for candidate in (prefix, previous_prefix(prefix)):
            try:
                best, metadata = load_checkpoint(candidate, device)
            except CheckpointError as error:
                found.append(str(error))
                continue
            same_run = (
                metadata.get("seed") == self.options.seed
                and metadata.get("training") == (self.options.settings()["training"])
            )
            if metadata.get("epoch") == best_epoch and same_run:
                return best
            found.append(f"{candidate}_* holds epoch {metadata.get('epoch')}" + ("" if same_run else " of another run"))
        raise UsageError(
            f"Cannot resume: no checkpoint of the best epoch ({best_epoch}) that the trainer state names ("
            + "; ".join(found)
            + "); use --overwrite to train afresh"
        )

    def _trainer_options(self) -> EncoderTrainingOptions:
        """The user's training options; after --cv, as many epochs as the folds' median best epoch, all run."""
        options = self.options.encoder_training()
        if self.cv is None:
            return options
        options.epochs = max(1, int(np.median([fold["best_epoch"] for fold in self.cv["folds"]])))
        options.patience = 0
        return options

    def train_encoder(self, classifier: HHTClassifier, initial_features: np.ndarray) -> list[MatrixFileError]:
        """Train the encoder epoch by epoch with checkpoints, then save and apply the best epoch's classifier.

        ``initial_features`` are the untrained encoder's features of the labelled
        files (the first pass), re-used as epoch 0. Returns the test files' errors.
        """
        started = time.perf_counter()
        train, val, paths, labels = self.train_index, self.val_index, self.paths, self.labels
        trainer_options = self._trainer_options()
        if self.cv is None:
            title = f"Training the encoder (at most {trainer_options.epochs} epochs), then the SVM"
        else:
            title = (
                f"Training the encoder on all labelled files for {trainer_options.epochs} epochs "
                "(the folds' median best epoch), then the SVM"
            )
        print(f"\n{RULE}\n{title}\n{RULE}")
        trainer = EncoderTrainer(
            classifier,
            trainer_options,
            LabelledFiles([paths[i] for i in train], labels[train], self.groups_of(train)),
            LabelledFiles([paths[i] for i in val], labels[val], self.groups_of(val)),
        )
        initial = None
        if self.resumed is not None and self.resumed.trainer_state is not None:
            state = self.resumed.trainer_state
            trainer.load_state_dict(
                state, self._load_best(int(state["early_stopping"]["best_epoch"]), classifier.device)
            )
        else:
            initial = np.concatenate([initial_features[train], initial_features[val]])

        def save(improved: bool) -> None:
            fields = {"history": trainer.history, "best_epoch": trainer.best_epoch}
            latest = CheckpointSave(
                self.checkpoint_dir / "latest",
                classifier,
                self.metadata(classifier, epoch=trainer.epoch, **fields),
                trainer.state_dict(),
            )
            saves = [latest]
            if improved:
                # best_* first: latest_* is the commit point of an epoch, so a resume never finds a
                # best_* older than the one its trainer state names.
                metadata = self.metadata(trainer.best, epoch=trainer.epoch, **fields)
                saves.insert(0, CheckpointSave(self.checkpoint_dir / "best", trainer.best, metadata))
            save_checkpoints(saves)
            retire_run_outputs(self.checkpoint_dir)

        try:
            trainer.run(save, initial)
        except ValueError as error:
            raise UsageError(f"Too few files to train: {error}. Add labelled files or lower --test_size.") from None
        best = trainer.best
        self.history = trainer.history
        if len(val):
            print(f"\nBest epoch: {trainer.best_epoch} (validation loss {trainer.best_val_loss:.4f})")

        # The best encoder's features of the validation files (for the report) and the test files.
        encoded = extract_file_features(best, trainer.val.paths + self.folder.test, self.options.batch_size, "Encoding")
        val_set = set(trainer.val.paths)
        for error in encoded.errors:
            if Path(error.path) in val_set:
                raise TrainingDataError(f"{error}: the file changed or vanished while training")
        is_val = np.array([path in val_set for path in encoded.paths], dtype=bool)
        print(f"\n{RULE}\nBest epoch's classifier (encoder + SVM)\n{RULE}")
        train_accuracy = trainer.history["svm_train_accuracy"][trainer.best_epoch]
        # The validation files were encoded in their split's order, so their groups line up.
        self._report_validation(train_accuracy, best, encoded.features[is_val], trainer.val.groups)
        fields = {"history": trainer.history, "best_epoch": trainer.best_epoch}
        try:
            save_checkpoint(
                self.checkpoint_dir / "final", best, self.metadata(best, epoch=trainer.best_epoch, **fields)
            )
        except WriteError as error:
            raise error.with_advice(
                "latest_* holds the trained epochs: once there is room, --resume finishes"
            ) from None
        print(
            f"\nCheckpoints saved: {self.checkpoint_dir / 'final'}_* (= best_*, epoch {trainer.best_epoch}) "
            f"and {self.checkpoint_dir / 'latest'}_* (epoch {trainer.epoch}, with the trainer state for --resume)"
        )
        self.timings["training_s"] = time.perf_counter() - started
        test_errors = [error for error in encoded.errors if Path(error.path) not in val_set]
        return self.predict_tests(best, encoded.take(np.flatnonzero(~is_val).tolist(), test_errors))

    def write_report(self, failures: list[tuple[str, str]]) -> Path:
        """report.json and its pictures in the checkpoint folder."""
        options = self.options
        confusion = None
        validation = self.validation
        if validation is not None:
            confusion = (validation["confusion_matrix"], f"Validation set, {validation['n']} files")
        elif self.cv is not None:
            pooled = self.cv["pooled"]
            confusion = (pooled["confusion_matrix"], f"Cross-validation ({self.cv['scheme']}), {pooled['n']} files")
        report = {
            "settings": {key: value for key, value in vars(options).items()},
            "data": {
                "data_dir": options.data_dir,
                "labels_file": options.labels,
                "n_labelled": len(self.paths),
                "n_test": len(self.folder.test),
                "class_counts": dict(
                    zip(CLASS_NAMES, np.bincount(self.labels, minlength=N_CLASSES).tolist(), strict=True)
                ),
                "subjects": None if self.subjects is None else sorted({str(s) for s in self.subjects}),
                "fingerprint": data_fingerprint(self.fingerprints),
                "skipped": [{"file": name, "reason": reason} for name, reason in failures],
            },
            "split": {
                "train_files": [self.names[i] for i in self.train_index],
                "val_files": [self.names[i] for i in self.val_index],
                "held_out_subjects": self.held_out_subjects(),
            },
            "model": {
                **self.options.model_settings(),
                "feature_names": _feature_names(self.options),
                "svm": self.options.svm_request(),
                "tuning": self.tuning,
            },
            "validation": validation,
            "importance": self.importance,
            "cross_validation": self.cv,
            "test": self.test_scores,
            "training": None if self.history is None else {"history": self.history},
            "timings": self.timings,
            # Which files this report describes: a checkpoint is named by its manifest's SHA-256.
            "checkpoints": _checkpoint_hashes(self.checkpoint_dir),
        }
        train_paths = [self.paths[i] for i in self.train_index]
        spectra = read_class_spectra(train_paths, self.labels[self.train_index])
        return write_report(self.checkpoint_dir, report, confusion, self.history, spectra)
