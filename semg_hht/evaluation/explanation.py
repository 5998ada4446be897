"""Why a prediction: occlusion maps of the matrix and the contributions of the named descriptors.

Occlusion (Zeiler & Fergus 2014, "Visualizing and understanding convolutional networks"):
the matrix is covered block by block, each of the 16 x 16 blocks of 16 x 16 cells set to
:data:`OCCLUDED_VALUE` (0: no energy at those times and frequencies), and the value of a
block in the map is the drop in the predicted class's probability,

    map[i, j] = p(c | matrix) - p(c | matrix with block (i, j) set to 0),

with ``c`` the predicted class. Positive: the energy there supported the prediction;
negative: it argued against it; near 0: the model did not use it.

Descriptor contributions: each named descriptor of the file (the HHT descriptors and the
activation envelope's, :data:`~semg_hht.model.feature_sets.NAMED_DESCRIPTORS`) set to its mean
over the training files, all else as it is; the contribution is the drop in the predicted class's
probability. A descriptor the model does not use (its block not in the feature set) gives 0.

Both are computed in the context the prediction was made in: when subjects are known, a
file's probability depends on its subject's other files (the subject-wise normalisation
and the gender pooling), so each altered file is predicted with those files unchanged.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from semg_hht.classes import CLASS_NAMES
from semg_hht.errors import UsageError
from semg_hht.io.atomic import atomic_open, make_folder
from semg_hht.io.figures import save_explanation
from semg_hht.io.matrices import (
    MATRIX_SHAPE,
    MatrixAxes,
    MatrixFileError,
    display_name,
    load_matrix_file,
    read_matrix_axes,
)
from semg_hht.io.npyfile import npz_members
from semg_hht.logs import quieter
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import NAMED_DESCRIPTORS
from semg_hht.model.normalisation import FileGroups
from semg_hht.model.svm_head import SVMHead

OCCLUSION_BLOCK = 16
"""Side of an occluded block, in matrix cells: 16 x 16 blocks of a 256 x 256 matrix."""
OCCLUDED_VALUE = 0.0
"""What an occluded block is set to: no energy (the HHT's value where nothing oscillates)."""
VARIANTS_PER_PASS = 64


@dataclass(frozen=True)
class Explanation:
    """Why one file was predicted as it was.

    Attributes
    ----------
    class_id : int
        The predicted class.
    probability : float
        Its probability.
    occlusion : ndarray of shape (16, 16)
        Drop in ``probability`` with each block occluded; row 0 the lowest frequencies.
    descriptors : dict
        Descriptor name -> drop in ``probability`` with that descriptor at its training mean.
    """

    class_id: int
    probability: float
    occlusion: np.ndarray
    descriptors: dict[str, float]


def occluded_copies(matrix: np.ndarray, blocks: range, block: int = OCCLUSION_BLOCK) -> np.ndarray:
    """Copies of a (256, 256) matrix, the k-th with block ``blocks[k]`` set to :data:`OCCLUDED_VALUE`.

    Blocks are numbered row-major over the (256 / block) x (256 / block) grid, row 0 the
    lowest frequencies. Returns shape (len(blocks), 256, 256).
    """
    per_row = matrix.shape[1] // block
    copies = np.repeat(matrix[None], len(blocks), axis=0)
    for k, number in enumerate(blocks):
        row, column = divmod(number, per_row)
        copies[k, row * block : (row + 1) * block, column * block : (column + 1) * block] = OCCLUDED_VALUE
    return copies


def training_mean(classifier: HHTClassifier) -> np.ndarray:
    """Mean of each feature over the training files, shape (n_features,).

    Recorded by this release; for older checkpoints, the mean the SVM's scaler was fitted
    with (the gender head's for a factorised model, whose input is not normalised).
    """
    if classifier.population_ is not None:
        return classifier.population_.mean
    for head in (classifier.gender_head_, classifier.head_):
        if isinstance(head, SVMHead):
            return head.mean
        scaler = getattr(head, "scaler", None)
        if scaler is not None:
            return np.asarray(scaler.mean_, dtype=np.float64)
    raise ValueError("the model records no training mean of its features")


def probabilities_in_context(
    classifier: HHTClassifier, features: np.ndarray, groups: FileGroups | None, row: int, variants: np.ndarray
) -> np.ndarray:
    """Class probabilities (k, 6) of file ``row`` with its feature vector replaced by each of ``variants`` (k, d).

    With ``groups``, each variant is predicted together with the other files of the
    file's subject, unchanged, as the file itself was.
    """
    if groups is None:
        return classifier.predict_proba_features(variants)
    members = np.flatnonzero(groups.subjects == groups.subjects[row])
    position = int(np.flatnonzero(members == row)[0])
    results = []
    # The altered copies are predicted in groups of their own: the warnings about those
    # groups (one file, constant features) were given for the real files already.
    with quieter("semg_hht.model.normalisation", logging.ERROR):
        for start in range(0, len(variants), VARIANTS_PER_PASS):
            chunk = variants[start : start + VARIANTS_PER_PASS]
            batch = np.repeat(features[members][None], len(chunk), axis=0)
            batch[:, position] = chunk
            # Each variant gets a subject of its own, so that it meets only the files it sits among.
            copies = np.repeat(np.arange(len(chunk)), len(members))
            subjects = np.char.add(
                np.tile(groups.subjects[members].astype(str), len(chunk)), np.char.mod("#%d", copies)
            )
            context = FileGroups(subjects, np.tile(groups.muscles[members], len(chunk)))
            probabilities = classifier.predict_proba_features(batch.reshape(-1, features.shape[1]), context)
            results.append(probabilities.reshape(len(chunk), len(members), -1)[:, position])
    return np.concatenate(results)


def explain(
    classifier: HHTClassifier,
    matrix: np.ndarray,
    time_domain: np.ndarray | None,
    features: np.ndarray,
    groups: FileGroups | None,
    row: int,
) -> Explanation:
    """Occlusion map and descriptor contributions of file ``row`` of a predicted batch.

    Parameters
    ----------
    matrix : ndarray of shape (256, 256)
        The file's matrix.
    time_domain : ndarray or None
        Its stored time-domain features (unchanged by occlusion).
    features : ndarray of shape (n, n_features)
        The batch's feature vectors, as predicted; ``groups`` its subjects (or None).
    """
    original = probabilities_in_context(classifier, features, groups, row, features[row : row + 1])[0]
    class_id = int(original.argmax())
    n_blocks = (matrix.shape[0] // OCCLUSION_BLOCK) * (matrix.shape[1] // OCCLUSION_BLOCK)
    drops = []
    for start in range(0, n_blocks, classifier.batch_size):
        blocks = range(start, min(start + classifier.batch_size, n_blocks))
        occluded = classifier.features_of(occluded_copies(matrix, blocks), [time_domain] * len(blocks))
        drops.append(
            original[class_id] - probabilities_in_context(classifier, features, groups, row, occluded)[:, class_id]
        )
    grid = (matrix.shape[0] // OCCLUSION_BLOCK, matrix.shape[1] // OCCLUSION_BLOCK)
    return Explanation(
        class_id,
        float(original[class_id]),
        np.concatenate(drops).reshape(grid),
        descriptor_contributions(classifier, features, groups, row, original[class_id], class_id),
    )


def descriptor_contributions(
    classifier: HHTClassifier,
    features: np.ndarray,
    groups: FileGroups | None,
    row: int,
    probability: float,
    class_id: int,
) -> dict[str, float]:
    """Descriptor name -> drop in the probability of ``class_id`` with that descriptor at its training mean."""
    columns = {name: index for index, name in enumerate(classifier.feature_names)}
    means = training_mean(classifier)
    variants = np.repeat(features[row : row + 1].astype(np.float64), len(NAMED_DESCRIPTORS), axis=0)
    for k, name in enumerate(NAMED_DESCRIPTORS):
        if name in columns:
            variants[k, columns[name]] = means[columns[name]]
    changed = probabilities_in_context(classifier, features, groups, row, variants)[:, class_id]
    return {name: float(probability - p) for name, p in zip(NAMED_DESCRIPTORS, changed, strict=True)}


def explanation_record(explanation: Explanation, picture: Path, arrays: Path, axes: MatrixAxes) -> dict[str, Any]:
    """The JSON record of one file's explanation: where its files are, the strongest block, the descriptors."""
    grid = explanation.occlusion.shape
    row, column = np.unravel_index(int(np.argmax(explanation.occlusion)), grid)
    record: dict[str, Any] = {
        "class": CLASS_NAMES[explanation.class_id],
        "probability": explanation.probability,
        "picture": str(picture),
        "occlusion_map": str(arrays),
        "strongest_block": {
            "drop": float(explanation.occlusion[row, column]),
            "frequency_rows": [int(row) * OCCLUSION_BLOCK, (int(row) + 1) * OCCLUSION_BLOCK - 1],
            "time_columns": [int(column) * OCCLUSION_BLOCK, (int(column) + 1) * OCCLUSION_BLOCK - 1],
        },
        "descriptor_contributions": explanation.descriptors,
    }
    strongest = record["strongest_block"]
    if axes.frequency is not None:
        strongest["frequency_hz"] = [float(axes.frequency[i]) for i in strongest["frequency_rows"]]
    if axes.duration_s is not None:
        seconds_per_column = axes.duration_s / MATRIX_SHAPE[1]
        strongest["time_s"] = [
            seconds_per_column * strongest["time_columns"][0],
            seconds_per_column * (strongest["time_columns"][1] + 1),
        ]
    return record


def write_explanation(
    directory: Path, path: Path, explanation: Explanation, axes: MatrixAxes, matrix: np.ndarray
) -> dict[str, Any]:
    """Write ``DIRECTORY/<stem>.png`` and ``<stem>.npz`` for the file at ``path``; returns its JSON record."""
    picture, arrays = directory / f"{path.stem}.png", directory / f"{path.stem}.npz"
    title = f"{display_name(path)}: {CLASS_NAMES[explanation.class_id]} ({explanation.probability:.2f})"
    save_explanation(picture, matrix, explanation.occlusion, axes, title)
    with atomic_open(arrays) as stream:
        np.savez(
            stream,
            occlusion=explanation.occlusion,
            class_id=np.int64(explanation.class_id),
            probability=np.float64(explanation.probability),
            block=np.int64(OCCLUSION_BLOCK),
            occluded_value=np.float64(OCCLUDED_VALUE),
            descriptor_names=np.array(list(explanation.descriptors)),
            descriptor_contributions=np.array(list(explanation.descriptors.values())),
        )
    return explanation_record(explanation, picture, arrays, axes)


def check_explanation_folder(directory: str | os.PathLike, inputs: list[Path]) -> None:
    """Refuse an ``--explain`` folder whose pictures and arrays could replace data (an input folder, a data file)."""
    target = os.path.realpath(directory)
    if any(os.path.realpath(path.parent) == target for path in inputs[:1]):
        raise UsageError(f"`explain` {directory} is the input folder: its .npz files could be overwritten")
    for path in inputs:
        existing = Path(directory) / f"{path.stem}.npz"
        if existing.exists() and not _is_explanation(existing):
            raise UsageError(
                f"`explain` {directory}: {existing.name} is there and is not an explanation; choose another folder"
            )


def _is_explanation(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "occlusion" in npz_members(archive)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def explain_files(
    classifier: HHTClassifier, paths: list[Path], features: np.ndarray, groups: FileGroups | None, directory: Path
) -> tuple[dict[Path, dict[str, Any]], float]:
    """Explain each predicted file, writing its picture and arrays into ``directory``.

    Returns each file's JSON record and the seconds spent per file (matrix read, occlusion,
    descriptors and both files written).
    """
    make_folder(directory)
    records: dict[Path, dict[str, Any]] = {}
    started = time.perf_counter()
    for row, path in enumerate(tqdm(paths, desc="Explaining", unit="file", leave=False, file=sys.stderr, disable=None)):
        try:
            stored = load_matrix_file(path)
        except MatrixFileError as error:  # changed or removed since it was predicted
            records[path] = {"error": error.reason}
            continue
        explanation = explain(classifier, stored.matrix, stored.time_domain, features, groups, row)
        records[path] = write_explanation(directory, path, explanation, read_matrix_axes(path), stored.matrix)
    return records, (time.perf_counter() - started) / max(1, len(paths))
