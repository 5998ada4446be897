#!/usr/bin/env python3
"""The field's peer, LibEMG, on recordings handed over by evaluate_recordings.py (run in LibEMG's own environment).

LibEMG (Eddy et al. 2023, IEEE Access 11:87380; MIT licence) needs numpy < 2, so it lives in its
own virtual environment, made by ``benchmarks/setup_libemg.py``; this script runs with that
environment's Python and imports only numpy, scikit-learn and libemg, never semg_hht::

    PEER_PYTHON benchmarks/libemg_peer.py TASK.npz RESULT.json [--jobs N]

``TASK.npz`` (written by evaluate_recordings.py, read with ``allow_pickle=False``) holds
``signals`` (all recordings' samples stacked, (n_samples, n_channels)), ``offsets``
(n_recordings + 1: recording r is ``signals[offsets[r]:offsets[r+1]]``), ``labels``
(n_recordings,), ``subjects`` (n_recordings,) and ``fs``.

LibEMG's natural offline pipeline: ``libemg.utils.get_windows`` cuts every recording into
windows of all channels (hop 50 ms), ``FeatureExtractor.extract_features`` computes a feature
group per channel into one vector per window, the features are standardised on the training
windows (the StandardScaler ``extract_features(normalize=True)`` fits) and ``EMGClassifier``
fits one of LibEMG's models. A recording's prediction is the mean of its windows' class
probabilities (the same aggregation as ours), scored as balanced accuracy per held-out subject.

Configurations: every window length x feature group x classifier of ``WINDOWS_MS``,
``FEATURE_GROUPS`` and ``CLASSIFIERS`` (LibEMG's defaults for each model); one whose model cannot
be fitted on some training set (QDA on collinear features) is listed as failed and is never
chosen. For each held-out
subject the configuration is chosen on the training subjects only: the best mean recording-level
balanced accuracy over leave-one-subject-out folds within them. A training set that leaves out
the subjects {a, b} serves both the inner fold of outer subject a that predicts b and the one of
outer subject b that predicts a, so each configuration is fitted once per pair of subjects and
once per outer fold. The post-hoc best is the configuration with the best mean over the outer
folds, chosen by looking at the held-out subjects: reported beside, labelled as such.

``RESULT.json``: the chosen configuration and score per held-out subject, every configuration's
outer scores, LibEMG's version and each feature group's extraction speed (windows per second on one
core, the mean over the window lengths).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

# libemg is imported inside the functions that use it, so that the selection logic below can be
# tested from the suite's own environment, where libemg is absent.

HOP_MS = 50
WINDOWS_MS = (150, 200, 250)
FEATURE_GROUPS = ("HTD", "TDAR", "LS4", "LS9", "TDPSD", "HJORTH")
# LibEMG's statistical models with their own defaults; GB and MLP are left out for their cost.
CLASSIFIERS = ("LDA", "QDA", "KNN", "SVM", "RF", "NB")


def windows_of(signals: np.ndarray, offsets: np.ndarray, length: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """All recordings' windows (n_windows, n_channels, length) and each window's recording index."""
    from libemg.utils import get_windows

    windows, owners = [], []
    for recording in range(len(offsets) - 1):
        cut = get_windows(signals[offsets[recording] : offsets[recording + 1]], length, hop)
        windows.append(cut)
        owners.append(np.full(len(cut), recording))
    return np.concatenate(windows), np.concatenate(owners)


def recording_scores(
    probabilities: np.ndarray, owners: np.ndarray, labels: np.ndarray, subjects: np.ndarray, held_out: list[str]
) -> dict[str, float]:
    """Balanced accuracy of the recordings' mean-probability predictions, per held-out subject."""
    recordings = np.unique(owners)
    mean = np.stack([probabilities[owners == r].mean(axis=0) for r in recordings])
    predicted = mean.argmax(axis=1)
    return {
        s: float(
            balanced_accuracy_score(labels[recordings][subjects[recordings] == s], predicted[subjects[recordings] == s])
        )
        for s in held_out
    }


def fit_and_score(features, owners, labels, subjects, model: str, left_out: tuple[str, ...]) -> dict[str, float]:
    """Fit ``model`` on every subject but ``left_out``'s windows; the left-out subjects' recording scores."""
    from libemg.emg_predictor import EMGClassifier

    window_subjects = subjects[owners]
    train = ~np.isin(window_subjects, left_out)
    scaler = StandardScaler().fit(features[train])
    classifier = EMGClassifier(model, fix_feature_errors=True, silent=True)
    classifier.fit({"training_features": scaler.transform(features[train]), "training_labels": labels[owners[train]]})
    test = ~train
    probabilities = classifier.model.predict_proba(np.nan_to_num(scaler.transform(features[test])))
    full = np.zeros((len(probabilities), int(labels.max()) + 1))
    full[:, classifier.model.classes_] = probabilities
    return recording_scores(full, owners[test], labels, subjects, list(left_out))


def inner_score(scores: dict, configuration: str, outer: str, subjects: list[str]) -> float:
    """A configuration's mean score over outer subject ``outer``'s inner folds (each other subject left out in turn)."""
    inner = [s for s in subjects if s != outer]
    return float(np.mean([scores[configuration][",".join(sorted((outer, s)))][s] for s in inner]))


def choose(scores: dict, configurations: list[str], subjects: list[str]) -> dict:
    """Per outer subject: the configuration best on the training subjects' inner folds, and its outer score.

    ``scores[configuration][left_out][subject]``: the recording score of ``subject`` when the
    subjects ``left_out`` (a sorted, comma-joined name) were left out of training.
    """
    chosen = {}
    for outer in subjects:
        inner = {c: inner_score(scores, c, outer, subjects) for c in configurations}
        best = max(configurations, key=inner.__getitem__)  # the first of equals, in grid order
        chosen[outer] = {"configuration": best, "inner": inner[best], "score": scores[best][outer][outer]}
    return chosen


def configuration_scores(features, owners, labels, subjects, model: str, left_outs: list) -> dict | None:
    """Every left-out set's scores of one configuration; None where LibEMG's model cannot fit (reason logged)."""
    try:
        return {
            ",".join(left_out): fit_and_score(features, owners, labels, subjects, model, left_out)
            for left_out in left_outs
        }
    except (np.linalg.LinAlgError, ValueError) as error:  # e.g. QDA on collinear features
        print(f"libemg: {model} cannot fit: {error}", file=sys.stderr, flush=True)
        return None


def window_and_group(task: dict, window_ms: int, group: str, left_outs: list) -> tuple[dict, list[str], float]:
    """Every classifier on one window length and feature group: their scores (configuration -> left-out set ->
    subject), the configurations that could not be fitted, and the extraction's seconds per window."""
    from libemg.feature_extractor import FeatureExtractor

    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's notices through LibEMG's models
    fs, labels, subjects = task["fs"], task["labels"], task["subjects"]
    length, hop = round(window_ms * fs / 1000), round(HOP_MS * fs / 1000)
    windows, owners = windows_of(task["signals"], task["offsets"], length, hop)
    extractor = FeatureExtractor()
    began = time.perf_counter()
    features = extractor.extract_features(extractor.get_feature_groups()[group], windows, array=True)
    seconds_per_window = (time.perf_counter() - began) / len(windows)
    scores, failed = {}, []
    for model in CLASSIFIERS:
        configuration = f"{group} + {model}, {window_ms} ms"
        outcome = configuration_scores(features, owners, labels, subjects, model, left_outs)
        if outcome is None:
            failed.append(configuration)
        else:
            scores[configuration] = outcome
    print(f"libemg: {group}, {window_ms} ms done", file=sys.stderr, flush=True)
    return scores, failed, seconds_per_window


def main(argv: list[str] | None = None) -> int:
    from joblib import Parallel, delayed

    parser = argparse.ArgumentParser(description="LibEMG on the recordings of TASK (see the module docstring)")
    parser.add_argument("task", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="processes (window length x feature group at once)")
    args = parser.parse_args(argv)
    with np.load(args.task, allow_pickle=False) as stored:
        task = {key: stored[key] for key in ("signals", "offsets", "labels", "subjects")} | {"fs": float(stored["fs"])}
    names = sorted(set(task["subjects"].tolist()))
    left_outs = [(s,) for s in names] + list(itertools.combinations(names, 2))
    started = time.perf_counter()
    pairs = [(window_ms, group) for window_ms in WINDOWS_MS for group in FEATURE_GROUPS]
    outcomes = Parallel(n_jobs=args.jobs)(
        delayed(window_and_group)(task, window_ms, group, left_outs) for window_ms, group in pairs
    )
    scores = {c: s for outcome in outcomes for c, s in outcome[0].items()}
    failed = [c for outcome in outcomes for c in outcome[1]]  # configurations that could not be fitted
    extraction: dict[str, float] = {}  # seconds per window of each feature group, summed over the window lengths
    for (_, group), outcome in zip(pairs, outcomes, strict=True):
        extraction[group] = extraction.get(group, 0.0) + outcome[2]
    configurations = list(scores)  # in grid order: ties in the choice go to the first
    outer = {c: {s: scores[c][s][s] for s in names} for c in configurations}
    post_hoc = max(configurations, key=lambda c: np.mean(list(outer[c].values())))
    result = {
        "libemg_version": version("libemg"),
        "chosen": choose(scores, configurations, names),
        "post_hoc_best": {"configuration": post_hoc, "scores": outer[post_hoc]},
        "outer_scores": outer,
        "failed": failed,
        "windows_per_second": {group: len(WINDOWS_MS) / spent for group, spent in extraction.items()},
        "seconds": time.perf_counter() - started,
    }
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
