#!/usr/bin/env python3
"""Benchmark: one prediction per recording from its 8 channels, on the real contraction-intensity recordings.

One command prints one Markdown table (stdout; progress on stderr)::

    python benchmarks/bench_recordings.py [--work_dir DIR] [--contraction_dir DIR]

The path a user takes: each 8-channel recording of subjects S1-S6 (``--contraction_dir``) is
converted with compute_hht's code and ``--channel all`` (one matrix per recording and channel,
whole recordings), with the default preprocessing (mean removed, 20-450 Hz zero-phase band-pass)
and, for comparison, with none. Labels: MVC -> full, 50P -> half, 20P and motion C1 (no movement)
-> invalid (all male; chance 1/3); subjects from the names (``S<k>``), muscles from the channels.

Leave-one-subject-out, features standardised within (subject, channel) (``subject_muscle``),
each held-out subject with its own statistics: balanced accuracy per held-out subject, mean +-
std over subjects, per matrix and per recording (its 8 channels' probabilities averaged, and by
majority vote). Rows: train.py's default model (factorised SVM) on the HHT descriptors and on
HHT + time-domain features, the time-domain features + the same SVM, and the classic pipeline:
Hudgins' features of the same preprocessed signals (the ``td_features`` compute_hht stores) +
StandardScaler + LDA, under the same normalisation and aggregation. It also prints the
conversion's speed (matrices per second per worker process).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semg_hht.classes import CLASS_NAMES
from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.data.dataset import extract_file_features
from semg_hht.evaluation.scores import balanced_accuracy, recording_scores
from semg_hht.io.matrices import list_npz_files, load_matrix_file
from semg_hht.logs import configure_logging
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import block_slices
from semg_hht.model.normalisation import FileGroups, PopulationStatistics, normalise_within_groups

DEFAULT_CONTRACTION_DIR = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "contraction-intensity"
)
RECORDING_NAME = re.compile(r"^(S\d+)_(MVC|50P|20P)_C(\d+)_R\d+$")
LEVEL_CLASS = {"MVC": CLASS_NAMES.index("M_full"), "50P": CLASS_NAMES.index("M_half")}
INVALID = CLASS_NAMES.index("M_invalid")
NORMALISATION = "subject_muscle"
PREPROCESSING = {"default (mean, 20-450 Hz band-pass)": {}, "none": {"remove_mean": False, "bandpass": None}}
METHODS = {
    "HHT descriptors + SVM (train.py default)": ("svm", "hht"),
    "HHT + time-domain + SVM": ("svm", "hht+td"),
    "time-domain + SVM": ("svm", "td"),
    "time-domain + LDA (classic baseline)": ("lda", "td"),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def convert(contraction_dir: Path, output: Path, settings: dict, workers: int) -> tuple[int, float]:
    """Convert every recording (``--channel all``) once into ``output``; returns matrices and seconds (0 if cached)."""
    if output.is_dir():
        return len(list_npz_files(output)), 0.0
    links = output.with_name(output.name + ".recordings")
    links.mkdir(parents=True, exist_ok=True)
    for source in sorted(contraction_dir.glob("S*/*.csv")):
        if RECORDING_NAME.match(source.stem) and not (links / source.name).exists():
            (links / source.name).symlink_to(source.resolve())
    partial = output.with_name(output.name + ".partial")
    options = ConversionOptions(
        input=str(links), output_dir=str(partial), fs=1000.0, channel="all", workers=workers, overwrite=True, **settings
    )
    started = time.perf_counter()
    if run_conversion(options) != 0:
        raise SystemExit(f"converting {contraction_dir} failed")
    seconds = time.perf_counter() - started
    partial.rename(output)
    return len(list_npz_files(output)), seconds


def load(folder: Path) -> tuple[list[Path], np.ndarray, FileGroups, list[str], np.ndarray]:
    """Matrix paths, class IDs, (subject, channel) groups, recordings and features (hht+td columns) of a folder."""
    paths = list_npz_files(folder)
    labels, subjects, channels, recordings = [], [], [], []
    for path in paths:
        record = load_matrix_file(path)
        subject, level, motion = RECORDING_NAME.match(record.recording).groups()
        labels.append(INVALID if motion == "1" or level == "20P" else LEVEL_CLASS[level])
        subjects.append(subject)
        channels.append(record.channel)
        recordings.append(record.recording)
    encoded = extract_file_features(HHTClassifier(features="hht+td"), paths, 32)
    groups = FileGroups(np.array(subjects), np.array(channels))
    return paths, np.array(labels), groups, recordings, encoded.features.astype(np.float64)


def fit_predict(kind: str, block: str, features, labels, groups, train, test, seed: int) -> np.ndarray:
    """Class probabilities (len(test), 6) of the held-out files after fitting on ``train``."""
    slices = block_slices(("hht", "td"))
    columns = np.concatenate([np.arange(slices[b].start, slices[b].stop) for b in block.split("+")])
    x = features[:, columns]
    if kind == "svm":
        classifier = HHTClassifier(features=block, normalisation=NORMALISATION, model="factorised", seed=seed)
        classifier.fit_features(x[train], labels[train], groups.take(train))
        return classifier.predict_proba_features(x[test], groups.take(test))
    population = PopulationStatistics.of(x[train])
    normalised = normalise_within_groups(x, groups.keys(NORMALISATION), population)
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(normalised[train], labels[train])
    probabilities = np.zeros((len(test), len(CLASS_NAMES)))
    probabilities[:, lda.classes_] = lda.predict_proba(normalised[test])
    return probabilities


def loso(kind: str, block: str, data, seed: int) -> dict[str, list[float]]:
    """Per held-out subject: balanced accuracy per matrix, per recording (mean) and per recording (majority)."""
    _, labels, groups, recordings, features = data
    figures: dict[str, list[float]] = {"matrix": [], "mean": [], "majority": []}
    for subject in np.unique(groups.subjects):
        train, test = np.flatnonzero(groups.subjects != subject), np.flatnonzero(groups.subjects == subject)
        probabilities = fit_predict(kind, block, features, labels, groups, train, test, seed)
        figures["matrix"].append(balanced_accuracy(labels[test], probabilities.argmax(axis=1)))
        for rule in ("mean", "majority"):
            combined = recording_scores(probabilities, labels[test], [recordings[i] for i in test], rule)
            figures[rule].append(combined["balanced_accuracy"])
    return figures


def cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contraction_dir", default=str(DEFAULT_CONTRACTION_DIR))
    parser.add_argument("--work_dir", help="cache of the converted matrices (default: a temporary folder)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    configure_logging()
    # One-file groups do not occur: normalisation's warnings about them would be noise.
    logging.getLogger("semg_hht.model.normalisation").setLevel(logging.ERROR)
    if not Path(args.contraction_dir).is_dir():
        raise SystemExit(f"the real recordings are not present: {args.contraction_dir}")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_recordings_"))
    lines = [
        "| preprocessing | method | per matrix | per recording, mean of 8 channels | per recording, majority vote |",
        "|---|---|---|---|---|",
    ]
    speeds = []
    for label, settings in PREPROCESSING.items():
        folder = work / ("default" if not settings else "none")
        count, seconds = convert(Path(args.contraction_dir), folder, settings, args.workers)
        if seconds:
            speeds.append(
                f"{label}: {count} matrices in {seconds:.1f} s = {count / seconds / args.workers:.1f} per s per worker"
            )
        log(f"{label}: {count} matrices")
        data = load(folder)
        for name, (kind, block) in METHODS.items():
            figures = loso(kind, block, data, args.seed)
            lines.append(
                f"| {label} | {name} | " + " | ".join(cell(figures[k]) for k in ("matrix", "mean", "majority")) + " |"
            )
            log(lines[-1])
    print("\n".join(lines))
    print(
        f"\nLeave-one-subject-out over {len(np.unique(data[2].subjects))} subjects (balanced accuracy, mean ± std over "
        f"held-out subjects; chance 0.333); features standardised within (subject, channel)."
    )
    for speed in speeds:
        print(f"Conversion ({args.workers} workers): {speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
