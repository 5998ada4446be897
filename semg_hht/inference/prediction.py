"""Predicting files with a fitted classifier, and the predictions JSON document.

The JSON document maps each file name to its prediction, then (with one prediction per
recording) each recording to its combined prediction under ``"recordings"``, and lists the
files that could not be read under ``"errors"``::

    {
      "BICEPS_test_001_ch0.npz": {
        "prediction": "M_full", "class_id": 0, "confidence": 0.8523,
        "probabilities": {"M_full": 0.8523, "M_half": 0.0234, ...}
      },
      "recordings": {
        "BICEPS_test_001": {"prediction": "M_full", ..., "rule": "mean",
                            "members": ["BICEPS_test_001_ch0.npz", "BICEPS_test_001_ch1.npz"]}
      },
      "errors": {"broken.npz": "the file is empty"}
    }

A model of window samples (:mod:`semg_hht.data.windows`) predicts windows: each record is named by
its window (``BICEPS_test_001_seg000``) and lists its files under ``"files"``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.data.aggregation import RecordingPrediction, aggregate
from semg_hht.data.dataset import FileFeatures, SubjectSource, compile_group_pattern, extract_file_features, with_groups
from semg_hht.data.windows import stack_windows
from semg_hht.defaults import (
    AGGREGATE_LEVELS,
    AGGREGATION_RULES,
    DEFAULT_AGGREGATE,
    DEFAULT_AGGREGATION_RULE,
    DEFAULT_BATCH_SIZE,
)
from semg_hht.errors import (
    EXIT_OK,
    EXIT_OUT_OF_MEMORY,
    EXIT_PARTIAL,
    UsageError,
    WriteError,
    is_out_of_device_memory,
    out_of_memory_advice,
)
from semg_hht.evaluation.explanation import check_explanation_folder, explain_files
from semg_hht.io.atomic import atomic_open, ensure_writable
from semg_hht.io.labels_file import read_labels_file
from semg_hht.io.matrices import MatrixFileError, display_name, list_npz_files
from semg_hht.logs import TO_STDERR
from semg_hht.model.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_prefix
from semg_hht.model.classifier import HHTClassifier, describe_model
from semg_hht.model.normalisation import FileGroups

logger = logging.getLogger(__name__)


def prediction_record(probabilities: np.ndarray) -> dict[str, Any]:
    """The JSON record of one file from its (6,) class probabilities."""
    best = int(np.argmax(probabilities))
    return {
        "prediction": CLASS_NAMES[best],
        "class_id": best,
        "confidence": float(probabilities[best]),
        "probabilities": {name: float(p) for name, p in zip(CLASS_NAMES, probabilities, strict=True)},
    }


@dataclass(frozen=True)
class RecordingPredictions:
    """The per-recording predictions of a predictions document, and the rule that combined them."""

    predictions: list[RecordingPrediction]
    rule: str

    def records(self, paths: list[Path]) -> dict[str, dict[str, Any]]:
        """Recording name -> its :func:`prediction_record` with the rule and its member files."""
        return {
            combined.recording: prediction_record(combined.probabilities)
            | {"rule": self.rule, "members": [display_name(paths[i]) for i in combined.members]}
            for combined in self.predictions
        }


def combine_by_recording(probabilities: np.ndarray, recordings: list[str], rule: str) -> RecordingPredictions | None:
    """One prediction per recording (:func:`~semg_hht.data.aggregation.aggregate`); None when each has one file."""
    if len(set(recordings)) == len(recordings):
        return None
    return RecordingPredictions(aggregate(probabilities, recordings, rule), rule)


def write_predictions(
    path: str | os.PathLike,
    paths: list[Path],
    probabilities: np.ndarray,
    errors: list[MatrixFileError],
    explanations: dict[Path, dict[str, Any]] | None = None,
    recordings: RecordingPredictions | None = None,
    members: list[list[Path]] | None = None,
) -> None:
    """Write the predictions JSON atomically, one record at a time.

    The object maps each file name (or window name, with its files under ``"files"`` from
    ``members``) to its :func:`prediction_record` (one line per file),
    with the file's record of ``explanations`` under ``"explanation"`` where given, then
    ``"recordings"`` (one line per recording) where ``recordings`` is given, and ends with
    ``"errors"``: file name -> reason. Records are made as they are written,
    so memory does not grow with the number of files.

    Raises
    ------
    WriteError
        The file cannot be written; the predictions are then written to stdout
        instead, in the same form, so that none is lost, and the message says so.
    """
    try:
        with atomic_open(path, "w") as stream:
            _write_document(stream, paths, probabilities, errors, explanations or {}, recordings, members)
    except WriteError as error:
        _write_document(sys.stdout, paths, probabilities, errors, explanations or {}, recordings, members)
        sys.stdout.flush()
        raise error.with_advice("the predictions are printed on stdout instead, as JSON") from None


def _write_document(
    stream: IO[str],
    paths: list[Path],
    probabilities: np.ndarray,
    errors: list[MatrixFileError],
    explanations: dict[Path, dict[str, Any]],
    recordings: RecordingPredictions | None,
    members: list[list[Path]] | None,
) -> None:
    stream.write("{\n")
    for k, (file, row) in enumerate(zip(paths, probabilities, strict=True)):
        fields: dict[str, Any] = {"explanation": explanations[file]} if file in explanations else {}
        if members is not None:
            fields["files"] = [display_name(member) for member in members[k]]
        record = json.dumps(prediction_record(row) | fields, ensure_ascii=False)
        stream.write(f"  {json.dumps(display_name(file), ensure_ascii=False)}: {record},\n")
    if recordings is not None:
        lines = [
            f"    {json.dumps(name, ensure_ascii=False)}: {json.dumps(record, ensure_ascii=False)}"
            for name, record in recordings.records(paths).items()
        ]
        stream.write('  "recordings": {\n' + ",\n".join(lines) + "\n  },\n")
    failures = {display_name(error.path): error.reason for error in errors}
    stream.write(f'  "errors": {json.dumps(failures, ensure_ascii=False, indent=4)}\n}}\n')


@dataclass
class InferenceOptions:
    checkpoint: str
    input: str
    output: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    cpu: bool = False
    safe: bool = False
    bf16: bool = False
    labels: str | None = None
    group_pattern: str | None = None
    explain: str | None = None
    aggregate: str = DEFAULT_AGGREGATE
    vote: str = DEFAULT_AGGREGATION_RULE
    resample_axis: bool = False

    def subject_source(self) -> SubjectSource:
        """Where the input files' subjects come from (checked before any data is read)."""
        if self.labels is not None and not os.path.isfile(self.labels):
            raise UsageError(f"Labels file not found: {self.labels}")
        return SubjectSource(
            read_labels_file(self.labels, require_labels=False) if self.labels else None,
            compile_group_pattern(self.group_pattern) if self.group_pattern else None,
        )


def input_files(path: str) -> list[Path]:
    """The ``.npz`` files an ``input`` names: the file itself, or a folder's files."""
    if os.path.isdir(path):
        files = list_npz_files(path)
        if not files:
            raise UsageError(f"No .npz files found in {path}")
        return files
    if os.path.lexists(path):
        return [Path(path)]
    raise UsageError(f"Input not found: {path}")


def _check_output(output: str, inputs: list[Path]) -> None:
    # Folder inputs all end in .npz, so refusing .npz outputs protects them; a single
    # input may have any name, so it is compared too.
    target = os.path.realpath(output)
    if target.lower().endswith(".npz") or any(target == os.path.realpath(path) for path in inputs[:1]):
        raise UsageError(f"`output` {output} would overwrite an input or .npz file; give a .json path")
    if os.path.isdir(target):
        raise UsageError(f"`output` {output} is a folder; give a JSON file path")
    if not os.path.isdir(os.path.dirname(target)):
        raise UsageError(f"`output` {output}: its folder does not exist")
    ensure_writable(Path(target).parent)


def run_inference(options: InferenceOptions) -> int:
    """Predict a file or folder with a checkpoint; log the results, optionally explain them and write JSON.

    Returns the exit code: 0 all predicted, 1 some files failed (the rest are
    predicted and written), 3 out of device memory. Raises :class:`UsageError`
    for a missing checkpoint or input, :class:`WriteError` for results that
    cannot be written.
    """
    prefix, files, source = _check_inference_inputs(options)
    classifier = _load_classifier(options, prefix)
    channels = classifier.channel_names
    if channels is not None and options.explain:
        raise UsageError(
            f"`explain` explains one matrix at a time; {prefix}'s samples are windows of {len(channels)} channels: "
            "predict without `explain`"
        )
    needs_subjects = classifier.normalisation != "none"
    if needs_subjects and not source.gives_subjects:
        raise UsageError(
            f"{prefix} standardises features within each subject's files ({classifier.normalisation}): "
            "give the input files' subjects with `group_pattern` or `labels` (a CSV with file and subject columns)"
        )

    try:
        encoded = extract_file_features(classifier, files, options.batch_size, "Predicting", options.resample_axis)
    except Exception as failure:
        if not is_out_of_device_memory(failure):
            raise
        logger.info(out_of_memory_advice(options.batch_size), extra=TO_STDERR)
        return EXIT_OUT_OF_MEMORY
    if channels is not None:
        encoded = stack_windows(encoded, source.recordings(encoded), channels, encoded.errors).as_file_features()
    encoded, groups = with_groups(encoded, source, needs_subjects)
    probabilities = classifier.predict_proba_features(encoded.features, groups)
    recordings = None
    if options.aggregate == "recording":
        recordings = RecordingPredictions(
            aggregate(probabilities, source.recordings(encoded), options.vote), options.vote
        )
    if os.path.isdir(options.input):
        _log_folder_results(encoded, probabilities, len(files))
    elif encoded.paths:
        _log_single_result(prediction_record(probabilities[0]))
    if recordings is not None:
        _log_recording_results(recordings)
    for error in encoded.errors:
        logger.error(str(error))

    _write_results(options, classifier, encoded, probabilities, groups, recordings)
    return EXIT_PARTIAL if encoded.errors else EXIT_OK


def _check_inference_inputs(options: InferenceOptions) -> tuple[Path, list[Path], SubjectSource]:
    """The checkpoint prefix, the input files and where their subjects come from, each checked
    (with the output, explanation folder and option values) before anything is loaded."""
    if options.batch_size < 1:
        raise UsageError(f"`batch_size` must be at least 1, got {options.batch_size}")
    if options.aggregate not in AGGREGATE_LEVELS or options.vote not in AGGREGATION_RULES:
        raise UsageError(
            f"`aggregate` must be {' or '.join(AGGREGATE_LEVELS)} and `vote` {' or '.join(AGGREGATION_RULES)}"
        )
    try:
        prefix = resolve_checkpoint_prefix(options.checkpoint)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    files = input_files(options.input)
    if options.output:
        _check_output(options.output, files)
    if options.explain:
        check_explanation_folder(options.explain, files)
    return prefix, files, options.subject_source()


def _load_classifier(options: InferenceOptions, prefix: Path) -> HHTClassifier:
    """The checkpoint's classifier on the chosen device, with what was loaded logged.

    Only a model with the CNN block imports torch and looks for a GPU; a model of descriptors
    runs on the CPU with numpy alone.
    """
    logger.info(f"Loading model from: {prefix}")
    try:
        classifier, _ = load_checkpoint(prefix, "cpu", safe=options.safe)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    if "cnn" in classifier.feature_blocks:
        from semg_hht.model.encoder import resolve_device

        classifier.device = resolve_device(options.cpu)
        logger.info(f"Using device: {classifier.device}")
    else:
        logger.info("Using device: cpu (numpy; a model without the CNN block needs no GPU or torch)")
    classifier.bf16 = options.bf16
    logger.info(describe_model(classifier))
    return classifier


def _write_results(
    options: InferenceOptions,
    classifier: HHTClassifier,
    encoded: FileFeatures,
    probabilities: np.ndarray,
    groups: FileGroups | None,
    recordings: RecordingPredictions | None,
) -> None:
    """``explain``'s files and ``output``'s JSON; the predictions are written even when explanations cannot be."""
    explanations = None
    if options.explain:
        try:
            explanations, seconds = explain_files(
                classifier, encoded.paths, encoded.features, groups, Path(options.explain)
            )
        except WriteError as error:
            if not options.output:
                raise
            write_predictions(
                options.output, encoded.paths, probabilities, encoded.errors, None, recordings, encoded.members
            )
            raise error.with_advice(f"the predictions were written to {options.output}, without explanations") from None
        files = f"{len(explanations)} file{'s' if len(explanations) != 1 else ''}"
        logger.info(f"\nExplanations of {files} saved to: {options.explain} ({seconds:.2f} s per file)")
    if options.output:
        write_predictions(
            options.output, encoded.paths, probabilities, encoded.errors, explanations, recordings, encoded.members
        )
        logger.info(f"\nPredictions saved to: {options.output}")


def _log_single_result(record: dict[str, Any]) -> None:
    logger.info(f"\nPrediction: {record['prediction']}")
    logger.info(f"Confidence: {record['confidence']:.4f}")
    logger.info("\nClass probabilities:")
    for name, probability in record["probabilities"].items():
        logger.info(f"  {name}: {probability:.4f}")


def _log_recording_results(recordings: RecordingPredictions) -> None:
    how = "mean of its files' probabilities" if recordings.rule == "mean" else "majority vote of its files"
    logger.info(f"\nOne prediction per recording ({how}):")
    for combined in recordings.predictions:
        best = int(combined.probabilities.argmax())
        files = f"{len(combined.members)} file{'s' if len(combined.members) != 1 else ''}"
        logger.info(f"{combined.recording}: {CLASS_NAMES[best]} ({combined.probabilities[best]:.4f}, {files})")


def _log_folder_results(encoded: FileFeatures, probabilities: np.ndarray, n_files: int) -> None:
    predicted = probabilities.argmax(axis=1)
    logger.info("")
    for path, row, best in zip(encoded.paths, probabilities, predicted, strict=True):
        logger.info(f"{display_name(path)}: {CLASS_NAMES[best]} (confidence: {row[best]:.4f})")
    counts = np.bincount(predicted, minlength=len(CLASS_NAMES))
    predicted_files = len(encoded.paths) if encoded.members is None else sum(map(len, encoded.members))
    windows = "" if encoded.members is None else f" in {len(encoded.paths)} windows"
    logger.info(f"\nPredicted {predicted_files} of {n_files} files{windows}")
    logger.info("Predictions per class:")
    for name, count in zip(CLASS_NAMES, counts, strict=True):
        logger.info(f"  {name}: {count}")
    if predicted_files < n_files:
        logger.info(f"Failed: {n_files - predicted_files} files (each is named with its reason on stderr)")
