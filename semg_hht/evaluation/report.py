"""The report of a training run: ``report.json`` and its pictures in the checkpoint folder."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semg_hht.errors import WriteError
from semg_hht.io.atomic import atomic_open
from semg_hht.io.figures import save_class_differences, save_class_examples, save_confusion_matrix, save_training_curves
from semg_hht.io.matrices import MatrixAxes, MatrixFileError, load_matrix, read_matrix_axes
from semg_hht.model.checkpoint import PREVIOUS_DIR, package_versions

REPORT_NAME = "report.json"
CONFUSION_PICTURE = "confusion_matrix.png"
CURVES_PICTURE = "training_curves.png"
EXAMPLES_PICTURE = "class_examples.png"
DIFFERENCES_PICTURE = "class_differences.png"
TEST_PREDICTIONS_NAME = "test_predictions.json"
RUN_OUTPUTS = (
    REPORT_NAME,
    CONFUSION_PICTURE,
    CURVES_PICTURE,
    EXAMPLES_PICTURE,
    DIFFERENCES_PICTURE,
    TEST_PREDICTIONS_NAME,
)
EXAMPLES_PER_CLASS = 4


def retire_run_outputs(checkpoint_dir: str | os.PathLike) -> None:
    """Move an earlier run's report, pictures and test predictions into ``.previous/``.

    Called after each checkpoint save of a run (a no-op after the first), so that
    the folder does not show one run's report beside another run's checkpoints.
    """
    folder = Path(checkpoint_dir)
    outputs = [folder / name for name in RUN_OUTPUTS if (folder / name).is_file()]
    if not outputs:
        return
    try:
        (folder / PREVIOUS_DIR).mkdir(exist_ok=True)
        for path in outputs:
            os.replace(path, folder / PREVIOUS_DIR / path.name)
    except OSError as error:
        raise WriteError.from_os_error(folder / PREVIOUS_DIR, error) from None


def data_fingerprint(fingerprints: dict[str, str]) -> str:
    """One SHA-256 over the sorted (file name, content SHA-256) pairs of the labelled files."""
    digest = hashlib.sha256()
    for name in sorted(fingerprints):
        digest.update(f"{name}\0{fingerprints[name]}\n".encode("utf-8", "backslashreplace"))
    return digest.hexdigest()


@dataclass(frozen=True)
class ClassSpectra:
    """What the report's class pictures show, from one pass over the training files.

    ``examples``: class ID -> the first readable (file name, matrix) pairs; ``means``: class ID ->
    mean (256, 256) matrix over its readable files; ``axes``: the first file's axes.
    """

    examples: dict[int, list[tuple[str, np.ndarray]]]
    means: dict[int, np.ndarray]
    axes: MatrixAxes


def read_class_spectra(
    paths: Sequence[Path], labels: Sequence[int], per_class: int = EXAMPLES_PER_CLASS
) -> ClassSpectra:
    """Read each file once, one at a time: keep the first ``per_class`` of each class and sum them all."""
    examples: dict[int, list[tuple[str, np.ndarray]]] = {}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for path, label in zip(paths, labels, strict=True):
        try:
            matrix = load_matrix(path)
        except MatrixFileError:
            continue
        label = int(label)
        chosen = examples.setdefault(label, [])
        if len(chosen) < per_class:
            chosen.append((path.name, matrix))
        sums[label] = sums.get(label, 0.0) + matrix.astype(np.float64)
        counts[label] = counts.get(label, 0) + 1
    axes = read_matrix_axes(paths[0]) if len(paths) else MatrixAxes(None, None)
    return ClassSpectra(examples, {label: sums[label] / counts[label] for label in sorted(sums)}, axes)


def write_report(
    checkpoint_dir: str | os.PathLike,
    report: dict[str, Any],
    confusion: tuple[list[list[int]], str] | None,
    history: dict[str, list] | None,
    spectra: ClassSpectra,
) -> Path:
    """Write the pictures that have data, then ``report.json`` naming them; returns the report's path.

    ``confusion`` is (6 x 6 matrix, title); ``history`` the encoder's per-epoch history;
    ``spectra`` the training files' example and mean spectra per class.
    """
    folder = Path(checkpoint_dir)
    pictures = {}
    if confusion is not None:
        save_confusion_matrix(folder / CONFUSION_PICTURE, *confusion)
        pictures["confusion_matrix"] = CONFUSION_PICTURE
    if history is not None and history.get("epoch"):
        save_training_curves(folder / CURVES_PICTURE, history)
        pictures["training_curves"] = CURVES_PICTURE
    if spectra.examples:
        save_class_examples(folder / EXAMPLES_PICTURE, spectra.examples)
        pictures["class_examples"] = EXAMPLES_PICTURE
    if spectra.means:
        save_class_differences(folder / DIFFERENCES_PICTURE, spectra.means, spectra.axes)
        pictures["class_differences"] = DIFFERENCES_PICTURE
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        **report,
        "pictures": pictures,
    }
    path = folder / REPORT_NAME
    with atomic_open(path, "w") as stream:
        json.dump(document, stream, indent=2, ensure_ascii=False)
    return path
