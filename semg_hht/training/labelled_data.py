"""The data steps of train.py: the device, the folder scan, the first pass of features, the validation split."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semg_hht.classes import CLASS_NAMES, N_CLASSES, NAMING_RULE
from semg_hht.cpus import cpu_threads
from semg_hht.data.dataset import (
    DataFolder,
    FileFeatures,
    SubjectSource,
    compile_group_pattern,
    extract_file_features,
    scan_data_folder,
)
from semg_hht.data.windows import WindowSamples, channels_of, stack_windows
from semg_hht.errors import UsageError
from semg_hht.evaluation.splits import make_split
from semg_hht.hht.axes import axis_text, same_axis
from semg_hht.io.labels_file import read_labels_file
from semg_hht.io.matrices import MatrixFileError, list_npz_files, printable_path, read_matrix_axes
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import parse_feature_set
from semg_hht.model.normalisation import FileGroups, take_groups
from semg_hht.training.options import TrainingOptions, file_fingerprints
from semg_hht.training.resume import Resumed, resumed_split

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)
AXIS_PROBE_FILES = 100
"""Labelled files read for the run's frequency axis, at most (:func:`_take_the_files_axis`)."""


def choose_device(options: TrainingOptions) -> torch.device | str:
    """The device the encoder runs on (on the CPU, `cpu_threads` threads), and the run's folders, logged.

    A model without the CNN block runs on the CPU with numpy and scikit-learn: torch is not imported.
    """
    device, description = _device(options)
    logger.info(f"Using device: {description}")
    logger.info(f"Data directory: {options.data_dir}")
    logger.info(f"Checkpoint directory: {options.checkpoint_dir}")
    return device


def _device(options: TrainingOptions) -> tuple[torch.device | str, str]:
    """The run's device and how it is described: the CPU and its threads, or the GPU's name."""
    if "cnn" not in parse_feature_set(options.features):
        return "cpu", f"cpu ({cpu_threads()} threads)"
    import torch

    from semg_hht.model.encoder import resolve_device

    device = resolve_device(options.cpu)
    if device.type != "cpu":
        return device, f"{device} ({torch.cuda.get_device_name(device)})"
    torch.set_num_threads(cpu_threads())
    return device, f"cpu ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class Scan:
    """The data folder sorted into labelled, test and skipped files, and where subjects and muscles come from."""

    folder: DataFolder
    source: SubjectSource


def scan(options: TrainingOptions) -> Scan:
    """Sort ``options.data_dir`` into labelled and test files (warning about each file skipped).

    Raises
    ------
    UsageError
        No ``.npz`` files, none labelled, or no subjects where `normalise` needs them.
    """
    if not list_npz_files(options.data_dir):
        raise UsageError(f"No .npz files found in {options.data_dir}")
    labels_file = read_labels_file(options.labels) if options.labels else None
    pattern = compile_group_pattern(options.group_pattern) if options.group_pattern else None
    folder = scan_data_folder(options.data_dir, labels_file, pattern)
    for problem in folder.problems:
        logger.warning(problem)
    if not folder.labelled:
        how = f"none of them is labelled in {options.labels}" if options.labels else NAMING_RULE
        raise UsageError(f"No valid training files found in {options.data_dir}: {how}")
    for path, reason in folder.skipped:
        logger.warning(f"skipping {printable_path(path)}: {reason}")
    if options.normalise != "none" and not folder.has_subjects:
        raise UsageError(
            f"`normalise` {options.normalise} needs the subject of every labelled file: "
            "a labels file with a subject column, or `group_pattern`"
        )
    return Scan(folder, SubjectSource(labels_file, pattern))


@dataclass(frozen=True)
class LabelledData:
    """The labelled files that loaded, in the folder's order, with what the later steps need of each.

    ``features`` (n, n_features) are the first pass's (the untrained encoder's); ``labels`` (n,)
    class IDs; ``subjects`` (n,) or None when a file has none; ``groups`` subjects and muscles for
    the normalisation; ``recordings`` (n,) the recording of each file; ``pins`` the labels file's
    split column; ``fingerprints`` each file's SHA-256 by name. With window samples a row is a window
    (:mod:`semg_hht.data.windows`): ``paths`` name the windows, ``members`` hold their files,
    ``channels`` are the windows' channels in order (both None for matrix samples), and a window's
    fingerprint is the SHA-256 of its files' fingerprints.
    """

    paths: list[Path]
    features: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray | None
    groups: FileGroups | None
    recordings: list[str]
    pins: list[str | None]
    fingerprints: dict[str, str]
    members: list[list[Path]] | None = None
    channels: tuple[str, ...] | None = None

    @property
    def names(self) -> list[str]:
        return [path.name for path in self.paths]

    def matrix_files(self, rows: np.ndarray) -> tuple[list[Path], list[int]]:
        """The matrix files of the samples at ``rows`` and their class IDs (a window's files share its class)."""
        if self.members is None:
            return [self.paths[i] for i in rows], self.labels[rows].tolist()
        files = [path for i in rows for path in self.members[i]]
        return files, np.repeat(self.labels[rows], [len(self.members[i]) for i in rows]).tolist()

    def groups_of(self, index: np.ndarray) -> FileGroups | None:
        return take_groups(self.groups, index)

    def split_groups(self) -> np.ndarray | None:
        """What a split keeps together: subjects where known, else recordings with several files (their windows
        and channels would otherwise fall on both sides and flatter the figures), else nothing."""
        if self.subjects is not None:
            return self.subjects
        recordings = np.array(self.recordings)
        return recordings if len(np.unique(recordings)) < len(recordings) else None


@dataclass(frozen=True)
class FirstPass:
    """What the first pass over the files gives: the labelled data, the test files' features where they were
    encoded with it (the random encoder, `epochs` 0; else None), and the files skipped so far (path, reason)."""

    data: LabelledData
    tests: FileFeatures | None
    skipped: list[tuple[Path, str]]


def encode_files(options: TrainingOptions, classifier: HHTClassifier, scanned: Scan) -> FirstPass:
    """Read every labelled file (and with `epochs` 0 every test file) once for its features; log the counts.

    Raises
    ------
    UsageError
        No labelled file could be loaded.
    """
    folder = scanned.folder
    logger.info("\nLoading data...")
    _take_the_files_axis(classifier, folder.labelled)
    # A trained encoder changes the features, so test files are encoded after training.
    first_pass = folder.labelled + (folder.test if options.epochs == 0 else [])
    encoded = extract_file_features(classifier, first_pass, options.batch_size, "Loading and encoding")
    index_of = {path: i for i, path in enumerate(folder.labelled)}
    is_labelled = np.array([path in index_of for path in encoded.paths], dtype=bool)
    for error in encoded.errors:
        logger.warning(f"skipping {error}")
    skipped = list(folder.skipped)
    skipped.extend((Path(error.path), error.reason) for error in encoded.errors if Path(error.path) in index_of)
    labelled = encoded.take(np.flatnonzero(is_labelled).tolist(), [])
    logger.info(f"Loaded {len(labelled.paths)} training samples")
    logger.info(f"Found {len(folder.test)} test files (will be used for inference after training)")
    if not labelled.paths:
        raise UsageError(f"No valid training files found in {options.data_dir}: every labelled file failed to load")
    tests = None
    if options.epochs == 0:
        test_errors = [error for error in encoded.errors if Path(error.path) not in index_of]
        tests = encoded.take(np.flatnonzero(~is_labelled).tolist(), test_errors)
    if options.sample == "window":
        return _window_pass(classifier, scanned, labelled, tests, index_of, skipped)
    return FirstPass(_labelled_data(labelled, scanned, index_of), tests, skipped)


def _window_pass(
    classifier: HHTClassifier,
    scanned: Scan,
    labelled: FileFeatures,
    tests: FileFeatures | None,
    index_of: dict[Path, int],
    skipped: list[tuple[Path, str]],
) -> FirstPass:
    """The first pass with window samples (`sample` window): the files gathered into windows of the model's
    channels (a new model takes the labelled files' channels), each file left out skipped with its reason.

    Raises
    ------
    UsageError
        No labelled file stores its channel, or no window is complete.
    """
    channels = classifier.channel_names or channels_of(labelled.channels)
    if not channels:
        raise UsageError(
            "`sample` window needs matrices that store their channel (compute_hht.py writes it); "
            f"none of the labelled files in {scanned.folder.labelled[0].parent} does"
        )
    classifier.channels = list(channels)
    logger.info(f"Window samples of {len(channels)} channels: {', '.join(channels)}")
    windows = stack_windows(labelled, scanned.source.recordings(labelled), channels)
    windows = _windows_of_one_class(windows, scanned.folder, index_of)
    for error in windows.errors:
        logger.warning(f"skipping {error}")
    skipped = skipped + [(Path(error.path), error.reason) for error in windows.errors]
    logger.info(f"Training samples: {len(windows.names)} windows of {len(channels)} channels")
    if not windows.names:
        folder = scanned.folder.labelled[0].parent
        raise UsageError(f"No complete window of the channels {', '.join(channels)} in {folder}")
    if tests is not None:
        recordings = scanned.source.recordings(tests)
        tests = stack_windows(tests, recordings, channels, tests.errors).as_file_features()
    return FirstPass(_window_data(windows, channels, scanned, index_of), tests, skipped)


def _windows_of_one_class(windows: WindowSamples, folder: DataFolder, index_of: dict[Path, int]) -> WindowSamples:
    """``windows`` without those whose files differ in class, subject or split pin (a labels file's rows can)."""
    keep, errors = [], list(windows.errors)
    for k, (name, members) in enumerate(zip(windows.names, windows.members, strict=True)):
        rows = [index_of[path] for path in members]
        if all(len({values[row] for row in rows}) == 1 for values in (folder.labels, folder.subjects, folder.pins)):
            keep.append(k)
            continue
        reason = f"the files of window {name} differ in class, subject or split: a window sample has one of each"
        errors.extend(MatrixFileError(path, reason) for path in members)
    return WindowSamples(
        [windows.names[k] for k in keep],
        [windows.members[k] for k in keep],
        [windows.recordings[k] for k in keep],
        windows.features[keep],
        errors,
    )


def _window_data(
    windows: WindowSamples, channels: tuple[str, ...], scanned: Scan, index_of: dict[Path, int]
) -> LabelledData:
    """The windows' classes, subjects, muscles (the first file's name's first token) and fingerprints."""
    folder, source = scanned.folder, scanned.source
    samples = windows.as_file_features()
    first = [index_of[members[0]] for members in windows.members]
    labels = np.array([folder.labels[row] for row in first], dtype=int)
    _log_class_counts(labels)
    subjects = groups = None
    if folder.has_subjects:
        subjects = np.array([folder.subjects[row] for row in first])
        _log_subjects(subjects)
        groups = FileGroups(subjects, np.array([source.muscle(members[0], None) for members in windows.members]))
    files = file_fingerprints([path for members in windows.members for path in members])
    fingerprints = {
        name: sha256("".join(files[path.name] for path in members).encode()).hexdigest()
        for name, members in zip(windows.names, windows.members, strict=True)
    }
    return LabelledData(
        samples.paths,
        samples.features,
        labels,
        subjects,
        groups,
        list(windows.recordings),
        [folder.pins[row] for row in first],
        fingerprints,
        windows.members,
        channels,
    )


def _take_the_files_axis(classifier: HHTClassifier, labelled: list[Path]) -> None:
    """A new model describes matrices on the frequency axis of the training files (the first that stores one):
    recordings sampled at 500 Hz are converted on a narrower band than 20-450 Hz. Files on another axis
    are then skipped, each with the reason; a resumed model keeps its own axis."""
    if classifier.frequency_hz is not None:
        return
    # The first files only: a folder of files that store no axis (the descriptors' default) is not read twice.
    first = map(read_matrix_axes, labelled[:AXIS_PROBE_FILES])
    stored = next((axes.frequency for axes in first if axes.frequency is not None), None)
    if stored is not None and not same_axis(stored, classifier.frequency_axis):
        classifier.frequency_hz = [float(f) for f in stored]
    logger.info(f"Frequency axis: {axis_text(classifier.frequency_axis)}")


def _log_class_counts(labels: np.ndarray) -> None:
    logger.info("\nClass distribution:")
    for name, count in zip(CLASS_NAMES, np.bincount(labels, minlength=N_CLASSES), strict=True):
        logger.info(f"  {name}: {count} samples")


def _log_subjects(subjects: np.ndarray) -> None:
    names = sorted({str(subject) for subject in subjects})
    logger.info(f"Subjects: {len(names)} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")


def _labelled_data(encoded: FileFeatures, scanned: Scan, index_of: dict[Path, int]) -> LabelledData:
    """The labelled files' classes, subjects, muscles and recordings; the class counts and subjects logged."""
    folder, source, paths = scanned.folder, scanned.source, encoded.paths
    labels = np.array([folder.labels[index_of[path]] for path in paths], dtype=int)
    _log_class_counts(labels)
    subjects = groups = None
    if folder.has_subjects:
        subjects = np.array([folder.subjects[index_of[path]] for path in paths])
        _log_subjects(subjects)
        # The subjects are the folder scan's (the same rule as SubjectSource's); only the muscles are new.
        muscles = [source.muscle(path, channel) for path, channel in zip(paths, encoded.channels, strict=True)]
        groups = FileGroups(subjects, np.array(muscles))
    return LabelledData(
        paths,
        encoded.features,
        labels,
        subjects,
        groups,
        source.recordings(encoded),
        [folder.pins[index_of[path]] for path in paths],
        file_fingerprints(paths),
    )


@dataclass(frozen=True)
class Split:
    """Indices (into :class:`LabelledData`) of the training and the validation files."""

    train: np.ndarray
    val: np.ndarray

    def held_out_subjects(self, data: LabelledData) -> list[str]:
        return [] if data.subjects is None else sorted({str(s) for s in data.subjects[self.val]})


def choose_split(options: TrainingOptions, data: LabelledData, resumed: Resumed | None) -> Split:
    """The validation split: the resumed checkpoint's, else a new one; none with `cv` (the final model is
    fitted on every labelled file)."""
    if resumed is not None:
        split = Split(*resumed_split(resumed.metadata, data.names, data.fingerprints))
    elif options.cv is None:
        split = Split(*make_split(data.labels, data.split_groups(), data.pins, options.test_size, options.seed))
    else:
        split = Split(np.arange(len(data.paths)), np.empty(0, dtype=int))
    logger.info(f"\nTraining set: {len(split.train)} samples")
    logger.info(f"Validation set: {len(split.val)} samples")
    if data.subjects is not None and len(split.val):
        logger.info(f"Validation subjects (held out): {', '.join(split.held_out_subjects(data))}")
    return split
