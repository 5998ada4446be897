"""A data folder as the classifier sees it: labelled files, test files, skipped files,
and their features computed in one streaming pass."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semg_hht.classes import parse_filename
from semg_hht.data.aggregation import recording_of
from semg_hht.errors import UsageError
from semg_hht.hht.axes import axis_text, resample_rows, same_axis
from semg_hht.io.labels_file import LabelRow, LabelsFile
from semg_hht.io.matrices import MatrixBatch, MatrixFileError, iter_matrix_batches, list_npz_files
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import STORED_COLUMNS
from semg_hht.model.normalisation import FileGroups, muscle_of

DESCRIPTOR_BATCH_SIZE = 64
"""Matrices read and described at a time for a model without the CNN block."""
# Descriptors and stored time-domain features are finite by construction: only the encoder overflows.
OVERFLOW = "values too large: the encoder's output overflows float32"
NO_SUBJECT = "no subject (from the labels file or --group_pattern): the model normalises features within subjects"
NO_TIME_DOMAIN = (
    "holds no time-domain features ('td_features'): convert the recording with compute_hht.py, "
    "or choose a feature set without td"
)
NO_AMPLITUDE = (
    "holds no amplitude-distribution features (its 'td_features' has only Hudgins' 4, as files converted by "
    "release 0.3 or earlier do): convert the recording again with compute_hht.py, or choose a feature set without amp"
)


@dataclass
class DataFolder:
    """The ``.npz`` files of a folder sorted into labelled, test and skipped ones.

    ``labelled``, ``labels`` (class IDs), ``subjects`` and ``pins`` are parallel:
    a subject is None when none is known; a pin is ``"train"``, ``"val"`` or None
    (labels file only). ``test_labels`` holds the class of test files whose labels
    are known (labels file only). ``skipped`` holds (path, reason) for files that
    cannot be used; ``problems`` describes the labels file's rows that were not used.
    """

    labelled: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    subjects: list[str | None] = field(default_factory=list)
    pins: list[str | None] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)
    test_labels: dict[Path, int] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def has_subjects(self) -> bool:
        return bool(self.labelled) and all(subject is not None for subject in self.subjects)


def compile_group_pattern(pattern: str) -> re.Pattern[str]:
    """``group_pattern``: a regular expression with a named group ``subject``.

    Raises
    ------
    UsageError
        The expression is invalid or has no group named ``subject``.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UsageError(f"`group_pattern` {pattern!r} is not a valid regular expression: {error}") from None
    if "subject" not in compiled.groupindex:
        raise UsageError(
            f"`group_pattern` {pattern!r} has no group named 'subject'; write it as (?P<subject>...), "
            "e.g. '^(?P<subject>S\\d+)_'"
        )
    return compiled


def _subject(name: str, listed: str | None, pattern: re.Pattern[str] | None) -> str | None:
    if listed is not None or pattern is None:
        return listed
    match = pattern.search(name)
    return match.group("subject") if match and match.group("subject") else None


@dataclass(frozen=True)
class SubjectSource:
    """Where subjects and muscles come from: a labels file's ``subject``/``muscle`` columns, or a pattern.

    A file's subject is its labels-file row's, else what ``group_pattern`` finds in its
    name; its muscle is the row's ``muscle``, else its name's first token with the channel
    name its matrix file stores (:func:`~semg_hht.model.normalisation.muscle_of`).
    """

    labels_file: LabelsFile | None = None
    group_pattern: re.Pattern[str] | None = None

    @property
    def gives_subjects(self) -> bool:
        return self.group_pattern is not None or (
            self.labels_file is not None and any(row.subject for row in self.labels_file.rows.values())
        )

    def _row(self, path: Path) -> LabelRow | None:
        return None if self.labels_file is None else self.labels_file.rows.get(path.name)

    def subject(self, path: Path) -> str | None:
        row = self._row(path)
        return _subject(path.name, None if row is None else row.subject, self.group_pattern)

    def muscle(self, path: Path, channel: str | None) -> str:
        row = self._row(path)
        return row.muscle if row is not None and row.muscle else muscle_of(path.name, channel)

    def recordings(self, encoded: FileFeatures) -> list[str]:
        """The recording of each encoded file: its labels-file row's, else the stored one, else from its name."""
        recordings = []
        for path, channel, stored in zip(encoded.paths, encoded.channels, encoded.recordings, strict=True):
            row = self._row(path)
            recordings.append(
                row.recording if row is not None and row.recording else recording_of(path.name, stored, channel)
            )
        return recordings

    def groups(self, paths: Sequence[Path], channels: Sequence[str | None]) -> FileGroups | None:
        """The subject and muscle of each file; None when a file has no subject."""
        subjects = [self.subject(path) for path in paths]
        if any(subject is None for subject in subjects):
            return None
        muscles = [self.muscle(path, channel) for path, channel in zip(paths, channels, strict=True)]
        return FileGroups(np.array(subjects, dtype=str), np.array(muscles, dtype=str))


def scan_data_folder(
    directory: str | os.PathLike,
    labels_file: LabelsFile | None = None,
    group_pattern: re.Pattern[str] | None = None,
) -> DataFolder:
    """Label every ``.npz`` file of ``directory``, in sorted order.

    Labels come from the file names, or from ``labels_file`` when given (then a
    file it does not list is skipped, and a row naming a file that is not in the
    folder is reported in ``problems``). A labelled file's subject comes from the
    labels file's ``subject`` column, else from ``group_pattern`` applied to its
    name. When subjects are in use (a pattern, or a subject for some file), a
    labelled file without one is skipped: it could not be kept on one side of a
    subject-wise split.
    """
    folder = DataFolder()
    files = list_npz_files(directory)
    for path in files:
        labelled = _label_by_name(folder, path) if labels_file is None else _label_by_row(folder, path, labels_file)
        if labelled is None:
            continue
        class_id, listed, pin = labelled
        folder.labelled.append(path)
        folder.labels.append(class_id)
        folder.subjects.append(_subject(path.name, listed, group_pattern))
        folder.pins.append(pin)
    if labels_file is not None:
        present = {path.name for path in files}
        folder.problems.extend(labels_file.problems)
        folder.problems.extend(
            f"{labels_file.path.name} lists {name}, which is not in {directory}"
            for name in labels_file.rows
            if name not in present
        )
    if group_pattern is not None or any(subject is not None for subject in folder.subjects):
        _drop_files_without_subject(folder, "--group_pattern" if group_pattern is not None else "the subject column")
    return folder


_Labelled = tuple[int, str | None, str | None]
"""A labelled file's class ID, the subject its labels-file row names, and its pin."""


def _label_by_name(folder: DataFolder, path: Path) -> _Labelled | None:
    """The label of ``path``'s name; None when it is a test file or cannot be labelled (put in ``folder``)."""
    label = parse_filename(path.name)
    if label.kind == "test":
        folder.test.append(path)
        return None
    if label.kind != "labelled":
        folder.skipped.append((path, f"file name cannot be labelled: {label.reason}"))
        return None
    if label.class_id is None:  # parse_filename sets it for every labelled name
        raise ValueError(f"{path.name}: a labelled file name without a class ID")
    return label.class_id, None, None


def _label_by_row(folder: DataFolder, path: Path, labels_file: LabelsFile) -> _Labelled | None:
    """The label of ``path``'s row in ``labels_file``; None when it is a test file or not listed (put in ``folder``)."""
    row = labels_file.rows.get(path.name)
    if row is None:
        folder.skipped.append((path, f"not listed in {labels_file.path.name}"))
        return None
    if row.split == "test":
        folder.test.append(path)
        if row.class_id is not None:
            folder.test_labels[path] = row.class_id
        return None
    if row.class_id is None:  # only a labels file read with require_labels=False has such rows
        raise ValueError(f"{labels_file.path.name} gives no class for {path.name}; read it with require_labels=True")
    return row.class_id, row.subject, row.split


def _drop_files_without_subject(folder: DataFolder, source: str) -> None:
    keep = [i for i, subject in enumerate(folder.subjects) if subject is not None]
    for i in sorted(set(range(len(folder.labelled))) - set(keep)):
        folder.skipped.append((folder.labelled[i], f"no subject from {source}"))
    for name in ("labelled", "labels", "subjects", "pins"):
        values = getattr(folder, name)
        setattr(folder, name, [values[i] for i in keep])


@dataclass
class FileFeatures:
    """Feature vectors of the files that loaded (row i from ``paths[i]``), their stored channel and recording
    names, the failures.

    For window samples (:mod:`semg_hht.data.windows`) a row is a window: ``paths[i]`` names it (no file
    has that path) and ``members[i]`` are its files, in the model's channel order; None for files.
    """

    paths: list[Path]
    features: np.ndarray
    errors: list[MatrixFileError]
    channels: list[str | None] = field(default_factory=list)
    recordings: list[str | None] = field(default_factory=list)
    members: list[list[Path]] | None = None

    def take(self, rows: Sequence[int], errors: list[MatrixFileError]) -> FileFeatures:
        """The files at ``rows``, with ``errors`` as the failures."""
        return FileFeatures(
            [self.paths[i] for i in rows],
            self.features[list(rows)],
            errors,
            [self.channels[i] for i in rows],
            [self.recordings[i] for i in rows],
            None if self.members is None else [self.members[i] for i in rows],
        )

    def source_file(self, row: int) -> Path:
        """The file whose name and labels-file row give row ``row``'s subject: the file, or a window's first."""
        return self.paths[row] if self.members is None else self.members[row][0]


def extract_file_features(
    classifier: HHTClassifier,
    paths: Sequence[Path],
    batch_size: int,
    description: str = "Encoding",
    resample_axis: bool | None = None,
) -> FileFeatures:
    """Read each file once and compute its features (every block of the classifier's feature set)
    from that one read, streaming in batches with a progress bar.

    Only the (n, n_features) features are kept, never the matrices of the whole set.
    A matrix whose features are not finite (values so large that the encoder
    overflows float32), or a file without the stored features the ``td`` or ``amp`` block
    needs, is reported as an error like an unreadable file. So is a matrix whose stored
    frequency axis is not the classifier's (``frequency_axis``), when its features come from the
    matrix (``cnn``, ``hht``, ``env``), unless ``resample_axis``: its rows are then re-read on the
    classifier's axis (:func:`~semg_hht.hht.axes.resample_rows`); ``False`` offers that in the
    message, ``None`` (training) does not. A file that stores no axis is taken to be on the
    classifier's.
    """
    encoded = FileFeatures([], np.empty((len(paths), len(classifier.matrix_feature_names)), np.float32), [])
    stored_width = max((STORED_COLUMNS[b].stop for b in classifier.feature_blocks if b in STORED_COLUMNS), default=0)
    reads_matrix = bool({"cnn", "hht", "env"} & set(classifier.feature_blocks))
    if "cnn" not in classifier.feature_blocks:
        # The batch size bounds the encoder's memory; without it, larger batches cost the
        # descriptors less per file (64 matrices: 16 MB).
        batch_size = max(batch_size, DESCRIPTOR_BATCH_SIZE)
    with tqdm(total=len(paths), desc=description, unit="file", leave=False, disable=None, file=sys.stderr) as progress:
        for batch in iter_matrix_batches(paths, batch_size):
            encoded.errors.extend(batch.errors)
            progress.update(len(batch.paths) + len(batch.errors))
            keep = _with_stored_features(batch, stored_width, encoded.errors)
            keep = _on_the_axis(classifier, batch, keep, resample_axis, encoded.errors) if reads_matrix else keep
            if not keep:  # a batch of refused files: nothing to encode
                continue
            # Indexing copies: only when a file has to be left out.
            matrices = batch.matrices if len(keep) == len(batch.paths) else batch.matrices[keep]
            rows = classifier.features_of(matrices, [batch.time_domain[i] for i in keep])
            for i, row in zip(keep, rows, strict=True):
                if not np.isfinite(row).all():
                    encoded.errors.append(MatrixFileError(batch.paths[i], OVERFLOW))
                    continue
                # Filled in place: no per-batch pieces to concatenate, and no second copy at the end.
                encoded.features[len(encoded.paths)] = row
                encoded.paths.append(batch.paths[i])
                encoded.channels.append(batch.channels[i])
                encoded.recordings.append(batch.recordings[i])
    encoded.features = encoded.features[: len(encoded.paths)]
    return encoded


def _with_stored_features(batch: MatrixBatch, width: int, errors: list[MatrixFileError]) -> list[int]:
    """The positions in ``batch`` of the files that store at least ``width`` features (``td_features``); the
    others are reported in ``errors``, saying what they lack."""
    keep = []
    for i, stored in enumerate(batch.time_domain):
        if width == 0 or (stored is not None and len(stored) >= width):
            keep.append(i)
        else:
            errors.append(MatrixFileError(batch.paths[i], NO_TIME_DOMAIN if stored is None else NO_AMPLITUDE))
    return keep


def _on_the_axis(
    classifier: HHTClassifier, batch: MatrixBatch, keep: list[int], resample: bool | None, errors: list[MatrixFileError]
) -> list[int]:
    """The files of ``keep`` on the classifier's frequency axis; those on another are resampled onto it in
    ``batch.matrices`` (with ``resample``) or refused into ``errors``."""
    axis, kept = classifier.frequency_axis, []
    for i in keep:
        stored = batch.frequency[i]
        if stored is None or same_axis(stored, axis):
            kept.append(i)
        elif resample:
            batch.matrices[i] = resample_rows(batch.matrices[i][None], stored, axis)[0]
            kept.append(i)
        else:
            offer = "" if resample is None else ", or resample it onto the model's axis (`resample_axis`)"
            reason = (
                f"its frequency axis ({axis_text(stored)}) is not the model's ({axis_text(axis)}): "
                f"convert it on the model's band{offer}"
            )
            errors.append(MatrixFileError(batch.paths[i], reason))
    return kept


def with_groups(encoded: FileFeatures, source: SubjectSource, required: bool) -> tuple[FileFeatures, FileGroups | None]:
    """The subjects and muscles of the encoded files (None when a file has no subject).

    When ``required`` (a model that normalises within subjects), a file without a
    subject cannot be predicted: it is moved to the errors and the rest are grouped.
    """
    subjects = [source.subject(encoded.source_file(i)) for i in range(len(encoded.paths))]
    if not required and any(subject is None for subject in subjects):
        return encoded, None
    keep = [i for i, subject in enumerate(subjects) if subject is not None]
    missing = [MatrixFileError(encoded.paths[i], NO_SUBJECT) for i, subject in enumerate(subjects) if subject is None]
    kept = encoded.take(keep, encoded.errors + missing)
    return kept, source.groups([kept.source_file(i) for i in range(len(kept.paths))], kept.channels)
