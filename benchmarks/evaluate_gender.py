#!/usr/bin/env python3
"""Evidence on gender from real recordings: the Sapsanis set, leave-one-subject-out, beside the classic pipeline.

One command prints one Markdown table (stdout; progress on stderr)::

    python benchmarks/evaluate_gender.py [--work_dir DIR] [--sapsanis_dir DIR]

The data (``../shared/realdata/sapsanis-db1``, its README gives source and licence): 5 subjects
(3 female, 2 male), 2 forearm channels at 500 Hz, 6 grasps x 30 trials of 6 s. The ``.mat`` files
are converted with compute_hht's code, ``--mat_layout trials --fs 500 --channel all`` (one 2-channel
recording per grasp and trial, one matrix per trial and channel; the default preprocessing, mean
removed and band-passed, and the band fitted to the 500 Hz rate: 20-225 Hz). The label is the
subject's sex; the grasp is not used. Subjects come from the file names.

Leave-one-subject-out: train on four subjects, predict the fifth. Figures per held-out subject:
the share of its trials given its sex, one prediction per trial (its two channels' probabilities
averaged, the suite's ``--aggregate recording``), and whether its one prediction per subject (the
mean over all its trials) is right. Rows: our classifier (joint SVM, no normalisation: within-
subject normalisation would remove the sex, a property of the subject) on the HHT descriptors and
on HHT + time-domain features, per channel and aggregated per trial; the factorised model's gender
head (the same SVM on the descriptors of the subject, ``HHTClassifier.gender_columns``); the classic pipeline,
Hudgins' features of the same preprocessed signals (the ``td_features`` compute_hht stores) +
StandardScaler + LDA, both per channel with the same aggregation and as one 8-feature vector per
trial (both channels), as the field usually feeds it. Chance is 0.5 per trial; with 5 subjects
one wrong subject moves the per-subject figure by 0.2.
"""

from __future__ import annotations

import argparse
import logging
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
from semg_hht.io.matrices import list_npz_files, load_matrix_file
from semg_hht.logs import configure_logging
from semg_hht.model.classifier import HHTClassifier, fit_calibrated_svm
from semg_hht.model.feature_sets import block_slices

DEFAULT_SAPSANIS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "sapsanis-db1"
FS = 500.0
CLASS_OF_SEX = {"male": CLASS_NAMES.index("M_full"), "female": CLASS_NAMES.index("F_full")}
METHODS = {
    "HHT descriptors + SVM (per channel, mean per trial)": ("svm", "hht", "channel"),
    "the factorised model's gender head: HHT descriptors of the subject + SVM (per channel, mean per trial)": (
        "gender_head",
        "hht",
        "channel",
    ),
    "HHT + time-domain + SVM (per channel, mean per trial)": ("svm", "hht+td", "channel"),
    "time-domain + LDA (per channel, mean per trial)": ("lda", "td", "channel"),
    "time-domain + LDA (classic: both channels in one vector)": ("lda", "td", "trial"),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def convert(sapsanis_dir: Path, work: Path, workers: int) -> tuple[Path, int, float]:
    """The matrices of every trial and channel (cached in ``work``); their folder, count and seconds (0 if cached).

    The ``.mat`` files are read in the trials layout: ``<grasp>_ch1`` and ``<grasp>_ch2`` (trials x samples) give
    one 2-channel recording per grasp and trial, ``<subject>_<grasp>-t<k>``.
    """
    output = work / "matrices"
    if output.is_dir():
        return output, len(list_npz_files(output)), 0.0
    partial = work / "matrices.partial"
    options = ConversionOptions(
        input=str(sapsanis_dir),
        output_dir=str(partial),
        fs=FS,
        channel="all",
        mat_layout="trials",
        workers=workers,
        overwrite=True,
    )
    started = time.perf_counter()
    if run_conversion(options) != 0:
        raise SystemExit(f"converting {sapsanis_dir} failed")
    seconds = time.perf_counter() - started
    partial.rename(output)
    return output, len(list_npz_files(output)), seconds


def load(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per matrix: class IDs (the sex), subjects, trials (the recording) and features (hht+td columns)."""
    paths = list_npz_files(folder)
    records = [load_matrix_file(path) for path in paths]
    trials = np.array([record.recording for record in records])
    subjects = np.array([trial.split("_")[0] + "_" + trial.split("_")[1] for trial in trials])
    labels = np.array([CLASS_OF_SEX[subject.split("_")[0]] for subject in subjects])
    classifier = HHTClassifier(features="hht+td", frequency_hz=list(records[0].frequency))
    encoded = extract_file_features(classifier, paths, 64)
    if len(encoded.paths) != len(paths):
        raise SystemExit(f"{len(paths) - len(encoded.paths)} matrices could not be described: {encoded.errors[:3]}")
    return labels, subjects, trials, encoded.features.astype(np.float64)


def columns(block: str) -> np.ndarray:
    slices = block_slices(("hht", "td"))
    return np.concatenate([np.arange(slices[b].start, slices[b].stop) for b in block.split("+")])


def male_probability(kind: str, block: str, x: np.ndarray, labels: np.ndarray, train, test, seed: int) -> np.ndarray:
    """P(male) of each held-out row after fitting on the rows ``train``."""
    male = CLASS_OF_SEX["male"]
    if kind == "svm":
        classifier = HHTClassifier(features=block, model="joint", seed=seed)
        classifier.fit_features(x[train], labels[train])
        return classifier.predict_proba_features(x[test])[:, male]
    if kind == "gender_head":  # what HHTClassifier(model="factorised") fits for gender: its columns and settings
        settings = HHTClassifier(features=block, model="factorised", seed=seed)
        used = settings.gender_columns
        svm = {"C": settings.svm_C, "kernel": settings.svm_kernel, "gamma": settings.svm_gamma}
        weights = settings.column_weights[used]
        _, _, head = fit_calibrated_svm(x[train][:, used], labels[train], weights, svm, seed, "gender")
        return head.predict_proba(x[test][:, used])[:, list(head.classes_).index(male)]
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(x[train], labels[train])
    return lda.predict_proba(x[test])[:, list(lda.classes_).index(male)]


def per_trial_rows(x: np.ndarray, trials: np.ndarray, labels: np.ndarray, subjects: np.ndarray):
    """One row per trial: its channels' features side by side (sorted by channel file), with its label and subject."""
    names = np.unique(trials)
    rows = np.stack([x[trials == name].reshape(-1) for name in names])
    first = [np.flatnonzero(trials == name)[0] for name in names]
    return rows, names, labels[first], subjects[first]


def loso(kind: str, block: str, unit: str, data, seed: int) -> tuple[list[float], list[bool]]:
    """Per held-out subject: the share of its trials given its sex, and whether its subject prediction is right."""
    labels, subjects, trials, features = data
    x = features[:, columns(block)]
    if unit == "trial":
        x, trials, labels, subjects = per_trial_rows(x, trials, labels, subjects)
    male = CLASS_OF_SEX["male"]
    trial_scores, subject_right = [], []
    for subject in np.unique(subjects):
        train, test = np.flatnonzero(subjects != subject), np.flatnonzero(subjects == subject)
        probability = male_probability(kind, block, x, labels, train, test, seed)
        held_out_trials = trials[test]
        by_trial = np.array([probability[held_out_trials == name].mean() for name in np.unique(held_out_trials)])
        is_male = labels[test][0] == male
        trial_scores.append(float(np.mean((by_trial > 0.5) == is_male)))
        subject_right.append(bool((by_trial.mean() > 0.5) == is_male))
    return trial_scores, subject_right


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sapsanis_dir", default=str(DEFAULT_SAPSANIS_DIR))
    parser.add_argument("--work_dir", help="cache of the converted matrices (default: a temporary folder)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    configure_logging()
    logging.getLogger("semg_hht.conversion").setLevel(logging.WARNING)  # a band note per recording otherwise
    sapsanis_dir = Path(args.sapsanis_dir)
    if not any(sapsanis_dir.glob("*.mat")):
        raise SystemExit(f"the Sapsanis recordings are not present: {sapsanis_dir}")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="evaluate_gender_"))
    folder, count, seconds = convert(sapsanis_dir, work, args.workers)
    log(f"{count} matrices" + (f", converted in {seconds:.1f} s" if seconds else " (cached)"))
    data = load(folder)
    subjects = list(np.unique(data[1]))
    lines = [
        "| method | per trial (share of a held-out subject's trials given its sex, mean ± std over subjects) "
        "| per subject (right / subjects) | " + " | ".join(subjects) + " |",
        "|---|---|---|" + "---|" * len(subjects),
    ]
    for name, (kind, block, unit) in METHODS.items():
        trial_scores, subject_right = loso(kind, block, unit, data, args.seed)
        by_subject = " | ".join(f"{score:.2f}" for score in trial_scores)
        lines.append(
            f"| {name} | {np.mean(trial_scores):.3f} ± {np.std(trial_scores):.3f} | "
            f"{sum(subject_right)} / {len(subject_right)} | {by_subject} |"
        )
        log(lines[-1])
    print("\n".join(lines))
    print(
        f"\nLeave-one-subject-out over {len(subjects)} subjects ({count} matrices: 2 channels x 180 trials each); "
        "chance 0.5 per trial. Per-subject columns: the share of that subject's trials given its sex."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
