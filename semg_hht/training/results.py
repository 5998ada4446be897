"""The result steps of train.py: validation figures, test predictions, the skipped files, report.json."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report

from semg_hht.classes import CLASS_NAMES, N_CLASSES
from semg_hht.data.dataset import DataFolder, SubjectSource, with_groups
from semg_hht.errors import EXIT_OK, EXIT_PARTIAL, WriteError
from semg_hht.evaluation.importance import importance_summary, permutation_importances
from semg_hht.evaluation.report import TEST_PREDICTIONS_NAME, data_fingerprint, read_class_spectra, write_report
from semg_hht.evaluation.scores import recording_scores, scores
from semg_hht.inference.prediction import combine_by_recording, write_predictions
from semg_hht.io.matrices import MatrixFileError, display_name, printable_path
from semg_hht.logs import TO_STDERR
from semg_hht.model.checkpoint import manifest_hash
from semg_hht.training.fit import Fitted
from semg_hht.training.options import CHECKPOINTS
from semg_hht.training.run_record import RunRecord

logger = logging.getLogger(__name__)

SUMMARY_LIMIT = 50
"""Skipped files named one by one in the closing summary."""


def confusion_table(matrix: Sequence[Sequence[int]]) -> str:
    """The 6x6 confusion matrix (rows true class, columns predicted class) as text."""
    width = max(len(name) for name in CLASS_NAMES) + 1
    lines = ["true \\ predicted".ljust(width) + "".join(name.rjust(width) for name in CLASS_NAMES)]
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        lines.append(name.ljust(width) + "".join(str(value).rjust(width) for value in row))
    return "\n".join(lines)


def _recording_figures(
    what: str, rule: str, probabilities: np.ndarray, truth: np.ndarray, recordings: list[str]
) -> dict[str, Any] | None:
    """Scores of one prediction per recording (`vote` ``rule``), logged; None when each recording has one file."""
    try:
        figures = recording_scores(probabilities, truth, recordings, rule)
    except ValueError as error:
        logger.warning(f"{what}: {error}; no figures per recording")
        return None
    if figures is None:
        return None
    logger.info(
        f"{what}: {figures['n']} ({rule} of their files), accuracy {figures['accuracy']:.4f}, "
        f"balanced accuracy {figures['balanced_accuracy']:.4f}"
    )
    return figures


def _log_validation(train_accuracy: float, truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Log the validation figures and return them (:func:`~semg_hht.evaluation.scores.scores`)."""
    figures = scores(truth, predicted)
    logger.info(f"Training Accuracy: {train_accuracy:.4f}")
    logger.info(f"Validation Accuracy: {figures['accuracy']:.4f}")
    logger.info(
        f"Validation balanced accuracy: {figures['balanced_accuracy']:.4f}, macro F1: {figures['macro_f1']:.4f}"
    )
    logger.info(
        f"Validation gender accuracy: {figures['gender_accuracy']:.4f}, "
        f"movement-quality accuracy: {figures['quality_accuracy']:.4f}"
    )
    logger.info("\nValidation classification report:")
    report = classification_report(
        truth, predicted, labels=list(range(N_CLASSES)), target_names=list(CLASS_NAMES), digits=4, zero_division=0
    )
    logger.info(report)
    logger.info("Validation confusion matrix:")
    logger.info(confusion_table(figures["confusion_matrix"]))
    return figures


@dataclass(frozen=True)
class Evaluation:
    """The validation figures (per file, with ``per_recording``) and permutation importance; None without
    validation files. ``timings`` holds ``importance_s`` where the importance was measured."""

    validation: dict[str, Any] | None = None
    importance: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)


def evaluate(record: RunRecord, fitted: Fitted) -> Evaluation:
    """Score the fitted classifier on the validation files (per file and per recording), and the permutation
    importance of its features there; all logged."""
    val = record.split.val
    if not len(val):
        logger.info(f"Training Accuracy: {fitted.train_accuracy:.4f}")
        logger.info("No validation set: the model is fitted on every labelled file (see the cross-validation above)")
        return Evaluation()
    classifier, features, groups = fitted.classifier, fitted.val_features, fitted.val_groups
    truth = record.data.labels[val]
    probabilities = classifier.predict_proba_features(features, groups)
    validation = _log_validation(fitted.train_accuracy, truth, probabilities.argmax(axis=1))
    recordings = [record.data.recordings[i] for i in val]
    validation["per_recording"] = _recording_figures(
        "Validation recordings", record.options.vote, probabilities, truth, recordings
    )
    started = time.perf_counter()
    importance = permutation_importances(classifier, features, truth, groups, record.options.seed)
    timings = {"importance_s": time.perf_counter() - started}
    logger.info(f"\n{importance_summary(importance)}")
    return Evaluation(validation, importance, timings)


@dataclass(frozen=True)
class TestResults:
    """The test files' scores where their labels are known (None otherwise), and the files not predicted."""

    scores: dict[str, Any] | None
    errors: list[MatrixFileError]


def predict_tests(record: RunRecord, fitted: Fitted, folder: DataFolder, source: SubjectSource) -> TestResults:
    """Predict the test files with the final classifier and write test_predictions.json; score those whose
    labels are known.

    Raises
    ------
    WriteError
        test_predictions.json could not be written (the checkpoints are saved).
    """
    classifier, path = fitted.classifier, record.checkpoint_dir / TEST_PREDICTIONS_NAME
    tests, groups = with_groups(fitted.tests, source, classifier.normalisation != "none")
    probabilities = classifier.predict_proba_features(tests.features, groups)
    # Test files need not be in the first pass (encoder training encodes them with the best epoch's encoder).
    recordings = source.recordings(tests)
    try:
        write_predictions(
            path,
            tests.paths,
            probabilities,
            tests.errors,
            recordings=combine_by_recording(probabilities, recordings, record.options.vote),
            members=tests.members,
        )
    except WriteError as error:
        raise error.with_advice("the checkpoints were saved; report.json was not written") from None
    logger.info(f"\nTest predictions saved to: {path}")
    known = [i for i in range(len(tests.paths)) if tests.source_file(i) in folder.test_labels]
    if not known:
        return TestResults(None, tests.errors)
    truth = np.array([folder.test_labels[tests.source_file(i)] for i in known])
    test_scores = scores(truth, probabilities[known].argmax(axis=1))
    logger.info(
        f"Test files with known labels: {len(known)}, accuracy {test_scores['accuracy']:.4f}, "
        f"balanced {test_scores['balanced_accuracy']:.4f}"
    )
    test_scores["per_recording"] = _recording_figures(
        "Test recordings", record.options.vote, probabilities[known], truth, [recordings[i] for i in known]
    )
    return TestResults(test_scores, tests.errors)


def failures_of(
    record: RunRecord, folder: DataFolder, skipped: list[tuple[Path, str]], test_errors: list[MatrixFileError]
) -> list[tuple[str, str]]:
    """Every file (and labels-file row) the run could not use, as (name, reason)."""
    failures = [(printable_path(path), reason) for path, reason in skipped]
    failures += [(display_name(error.path), error.reason) for error in test_errors]
    labels = record.options.labels
    failures += [(Path(labels).name, problem) for problem in folder.problems] if labels else []
    return failures


def summarise_skipped(failures: list[tuple[str, str]]) -> int:
    """Log the files not used (on stderr) and return the exit code: 0 none, 1 some."""
    if not failures:
        return EXIT_OK
    logger.info(f"\nSkipped {len(failures)} files:", extra=TO_STDERR)
    for name, reason in failures[:SUMMARY_LIMIT]:
        logger.info(f"  {name}: {reason}", extra=TO_STDERR)
    if len(failures) > SUMMARY_LIMIT:
        logger.info(
            f"  ... and {len(failures) - SUMMARY_LIMIT} more (each one is named in a warning above)", extra=TO_STDERR
        )
    return EXIT_PARTIAL


def _checkpoint_hashes(checkpoint_dir: Path) -> dict[str, dict[str, str]]:
    hashes = {name: manifest_hash(checkpoint_dir / name) for name in CHECKPOINTS}
    return {name: {"manifest_sha256": digest} for name, digest in hashes.items() if digest is not None}


@dataclass(frozen=True)
class RunResults:
    """What the steps after the run record was settled found, for the report."""

    fitted: Fitted
    evaluation: Evaluation
    test_scores: dict[str, Any] | None
    failures: list[tuple[str, str]]
    timings: dict[str, float]


def write_run_report(record: RunRecord, folder: DataFolder, results: RunResults) -> Path:
    """report.json and its pictures in the checkpoint folder; returns the report's path."""
    validation, history = results.evaluation.validation, results.fitted.history
    confusion = None
    if validation is not None:
        confusion = (validation["confusion_matrix"], f"Validation set, {validation['n']} files")
    elif record.cv is not None:
        pooled = record.cv["pooled"]
        confusion = (pooled["confusion_matrix"], f"Cross-validation ({record.cv['scheme']}), {pooled['n']} files")
    report = {
        "settings": dict(vars(record.options)),
        "data": _data_record(record, folder, results.failures),
        "split": _split_record(record),
        "model": {
            **record.options.model_settings(),
            "feature_names": results.fitted.classifier.feature_names,
            "svm": record.options.svm_request(),
            "head": {"used": results.fitted.classifier.head_kind_, "why": results.fitted.classifier.head_reason_},
            "tuning": record.tuning,
        },
        "validation": validation,
        "importance": results.evaluation.importance,
        "cross_validation": record.cv,
        "test": results.test_scores,
        "training": None if history is None else {"history": history},
        "timings": results.timings,
        # Which files this report describes: a checkpoint is named by its manifest's SHA-256.
        "checkpoints": _checkpoint_hashes(record.checkpoint_dir),
    }
    spectra = read_class_spectra(*record.data.matrix_files(record.split.train))
    return write_report(record.checkpoint_dir, report, confusion, history, spectra)


def _data_record(record: RunRecord, folder: DataFolder, failures: list[tuple[str, str]]) -> dict[str, Any]:
    data, options = record.data, record.options
    return {
        "data_dir": options.data_dir,
        "labels_file": options.labels,
        "n_labelled": len(data.paths),
        "n_test": len(folder.test),
        "class_counts": dict(zip(CLASS_NAMES, np.bincount(data.labels, minlength=N_CLASSES).tolist(), strict=True)),
        "subjects": None if data.subjects is None else sorted({str(s) for s in data.subjects}),
        "fingerprint": data_fingerprint(data.fingerprints),
        "skipped": [{"file": name, "reason": reason} for name, reason in failures],
    }


def _split_record(record: RunRecord) -> dict[str, Any]:
    names, split = record.data.names, record.split
    return {
        "train_files": [names[i] for i in split.train],
        "val_files": [names[i] for i in split.val],
        "held_out_subjects": split.held_out_subjects(record.data),
    }
