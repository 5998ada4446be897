"""A data folder as the classifier sees it: labelled files, test files, skipped files,
and their encoder features computed in one streaming pass."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .classes import parse_filename
from .classifier import HHTClassifier
from .encoder import FEATURE_DIM
from .matrices import MatrixFileError, iter_matrix_batches, list_npz_files


@dataclass
class DataFolder:
    """The ``.npz`` files of a folder sorted into labelled, test and skipped ones.

    ``labelled`` and ``labels`` are parallel (class IDs); ``skipped`` holds
    (path, reason) for files whose name is neither labelled nor a test name.
    """

    labelled: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scan_data_folder(directory: str | os.PathLike) -> DataFolder:
    """Label every ``.npz`` file of ``directory`` by its name, in sorted order."""
    folder = DataFolder()
    for path in list_npz_files(directory):
        label = parse_filename(path.name)
        if label.kind == "labelled":
            folder.labelled.append(path)
            folder.labels.append(label.class_id)
        elif label.kind == "test":
            folder.test.append(path)
        else:
            folder.skipped.append((path, f"file name cannot be labelled: {label.reason}"))
    return folder


@dataclass
class FileFeatures:
    """Encoder features of the files that loaded (row i from ``paths[i]``) and the failures."""

    paths: list[Path]
    features: np.ndarray
    errors: list[MatrixFileError]


def extract_file_features(
    classifier: HHTClassifier,
    paths: Sequence[Path],
    batch_size: int,
    description: str = "Encoding",
) -> FileFeatures:
    """Read each file once and encode it, streaming in batches with a progress bar.

    Only the (n, 256) features are kept, never the matrices of the whole set.
    A matrix whose features are not finite (values so large that the encoder
    overflows float32) is reported as an error like an unreadable file.
    """
    good: list[Path] = []
    errors: list[MatrixFileError] = []
    # Filled in place: no per-batch pieces to concatenate, and no second copy at the end.
    features = np.empty((len(paths), FEATURE_DIM), dtype=np.float32)
    batch_paths: deque[list[Path]] = deque()

    def matrices() -> Iterator[np.ndarray]:
        for batch in iter_matrix_batches(paths, batch_size):
            errors.extend(batch.errors)
            batch_paths.append(batch.paths)
            progress.update(len(batch.paths) + len(batch.errors))
            yield batch.matrices

    with tqdm(total=len(paths), desc=description, unit="file", leave=False) as progress:
        for batch_features in classifier.iter_features(matrices()):
            for path, row in zip(batch_paths.popleft(), batch_features, strict=True):
                if np.isfinite(row).all():
                    features[len(good)] = row
                    good.append(path)
                else:
                    errors.append(MatrixFileError(path, "values too large: the encoder's output overflows float32"))
    return FileFeatures(good, features[: len(good)], errors)
