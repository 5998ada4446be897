#!/usr/bin/env python3
"""Evidence table: the field's classic baseline against our feature sets and models, on the same data.

One command prints one Markdown table (stdout; progress on stderr)::

    python benchmarks/evaluate_features.py [--work_dir DIR] [--output results.json]

What is measured
----------------
Every row is one method, with and without normalisation within subjects, fitted and scored on
the same files in the same run:

* the baseline of myoelectric pattern recognition: Hudgins' four time-domain features of the
  preprocessed signal (``semg_hht.hht.time_domain.hudgins_features``) with StandardScaler + LDA; normalised,
  the four features are standardised within each group before the LDA (training and test
  subjects each with their own group statistics);
* our SVM (``HHTClassifier``) on the time-domain block, the CNN block (random encoder, and the
  encoder trained on the training files for ``--epochs`` epochs with a subject-wise 20 %
  early-stopping split), the HHT descriptors, the activation envelope's shape descriptors, the
  amplitude distribution (``amp``: the segment's kurtosis and mean absolute value over RMS) and their
  combinations (block-weighted, as the library combines them, and a naive concatenation with all
  weights 1), the factorised model (gender x quality; its gender head on the subject's columns, as
  the library's default, or on every column, as before that default), and the HHT models with the
  head tuned by ``semg_hht.training.tuning.tune_svm`` (the SVM at each C x gamma of its grid, or the
  random forest) inside each training set only (nested).

The ``td`` and ``amp`` blocks of our models are the ``td_features`` stored in the matrix files (by
compute_hht.py and by the generator); the baseline computes its features from the signals itself, after the
same preprocessing (mean removed, 20-450 Hz band-pass: compute_hht.py's default).
Each file's features are computed once per run and encoder; methods take column slices.

Data sets
---------
``contraction`` (real; ``--contraction_dir``): 8-channel forearm recordings of subjects S1-S6,
one matrix per recording and channel (whole recording), labelled MVC -> full, 50P -> half,
20P and motion C1 (no movement) -> invalid, all male. Leave-one-subject-out; balanced accuracy
per held-out subject (chance 1/3), mean +- std over subjects. Normalised means within
(subject, channel). The stress column restricts the held-out subject to the files of one class
(each class in turn, the group statistics computed on those files only) and gives the mean over
classes and subjects of the accuracy: normalisation then removes exactly what tells the
classes apart. It uses the first of ``--seeds``.

``simulated``: ``generate_sample_data`` per seed, trained on the labelled files, tested on the
test files (subjects never seen in training; classes from ``labels.csv``): gender accuracy,
quality accuracy and six-class balanced accuracy (chance 1/2, 1/3, 1/6), mean +- std over
seeds. Normalised means within subject (test subjects with their own files).

Cost
----
The contraction folds and simulated seeds run as jobs in ``--jobs`` processes (default: one per
CPU), each with its share of the threads (of ``OMP_NUM_THREADS`` where that is set); a single job
runs in the script's own process. On 2 CPU cores the defaults take about 10 minutes: about 1
minute to convert the recordings and compute the features, then six contraction folds of about 2.5
minutes each, two at a time (most of it the encoder training on about 400 files), and two
simulated seeds of about 1.5 minutes. Converted and generated data are cached in ``--work_dir``;
``--output`` is rewritten after every job, so an interrupted run keeps what it did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from semg_hht.classes import CLASS_NAMES, gender_of, quality_of
from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.cpus import cpu_threads
from semg_hht.data.dataset import extract_file_features
from semg_hht.data.sample_data import SIGNALS_FOLDER, generate_sample_data
from semg_hht.evaluation.scores import balanced_accuracy
from semg_hht.evaluation.splits import grouped_split
from semg_hht.hht.preprocessing import Preprocessing, preprocess
from semg_hht.hht.time_domain import hudgins_features
from semg_hht.io.labels_file import read_labels_file
from semg_hht.io.recordings import read_recording
from semg_hht.logs import PACKAGE, configure_logging, quieter
from semg_hht.model.classifier import HHTClassifier, fit_calibrated_svm
from semg_hht.model.feature_sets import FEATURE_BLOCKS, block_slices
from semg_hht.model.normalisation import FileGroups, PopulationStatistics, muscle_of, normalise_within_groups
from semg_hht.training.trainer import EncoderTrainer, EncoderTrainingOptions, LabelledFiles
from semg_hht.training.tuning import apply_tuning, tune_svm

DEFAULT_CONTRACTION_DIR = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "contraction-intensity"
)
CONTRACTION_FS = 1000.0
CONTRACTION_CHANNELS = tuple(range(8))
RECORDING_NAME = re.compile(r"^(S\d+)_(MVC|50P|20P)_C(\d+)_R\d+\.csv$")
LEVEL_CLASS = {"MVC": CLASS_NAMES.index("M_full"), "50P": CLASS_NAMES.index("M_half")}
INVALID = CLASS_NAMES.index("M_invalid")
SVM = {"C": 10.0, "kernel": "rbf", "gamma": "scale"}
NORMALISED_LABEL = "within subject"
COLUMNS = (
    "contraction LOSO bal. acc. (mean ± std over subjects)",
    "contraction, held-out subject with one class (acc., mean ± std over subjects)",
    "simulated gender acc.",
    "simulated quality acc.",
    "simulated six-class bal. acc.",
)

# The figure behind each column: (data set, key of a fold's scores).
COLUMN_FIGURES = (
    ("contraction", "balanced"),
    ("contraction", "one_class"),
    ("simulated", "gender"),
    ("simulated", "quality"),
    ("simulated", "balanced"),
)

Predictor = Callable[[np.ndarray, FileGroups], np.ndarray]


@dataclass(frozen=True)
class Method:
    """One row's method: feature blocks (canonical order) and how they are classified.

    ``kind``: ``lda`` (the baseline, on the preprocessed signal's Hudgins features), ``joint`` or
    ``factorised`` (HHTClassifier's models), ``naive`` (the joint SVM with every column weighted
    1), ``tuned`` (joint, C and gamma tuned in the training set). ``trained``: the CNN block comes
    from the encoder trained on the training files. ``head`` and ``gender_features``: HHTClassifier's.
    """

    name: str
    blocks: tuple[str, ...]
    kind: str = "joint"
    trained: bool = False
    normalisations: tuple[bool, ...] = (False, True)
    head: str = "svm"
    gender_features: str = "subject"


BASELINE = "time-domain + LDA (baseline)"
METHODS = (
    Method(BASELINE, ("td",), "lda"),
    Method("time-domain + SVM", ("td",)),
    Method("CNN, random encoder + SVM", ("cnn",)),
    Method("CNN, trained encoder + SVM", ("cnn",), trained=True),
    Method("HHT descriptors + SVM", ("hht",)),
    Method("CNN + HHT, block-weighted + SVM", ("cnn", "hht")),
    Method("CNN + HHT, naive concatenation + SVM", ("cnn", "hht"), "naive"),
    Method("HHT + TD + SVM", ("hht", "td")),
    Method("HHT descriptors, scalable head", ("hht",), head="scalable"),
    Method("HHT + envelope + SVM", ("hht", "env")),
    Method("HHT, factorised", ("hht",), "factorised"),
    Method("HHT, factorised, gender on every column", ("hht",), "factorised", gender_features="all"),
    Method("HHT + envelope, factorised", ("hht", "env"), "factorised"),
    Method("HHT + envelope, factorised, gender on every column", ("hht", "env"), "factorised", gender_features="all"),
    Method("HHT + envelope + TD, factorised", ("hht", "env", "td"), "factorised"),
    Method("time-domain + amplitude distribution + SVM", ("td", "amp")),
    Method("HHT + amplitude distribution, factorised", ("hht", "amp"), "factorised"),
    Method("HHT + envelope + amplitude distribution, factorised", ("hht", "env", "amp"), "factorised"),
    Method("HHT, factorised, scalable head", ("hht",), "factorised", head="scalable"),
    Method("HHT + TD, factorised", ("hht", "td"), "factorised"),
    Method("CNN + HHT, factorised", ("cnn", "hht"), "factorised"),
    Method("HHT, head tuned (SVM C x gamma, or forest)", ("hht",), "tuned", normalisations=(True,)),
    Method("HHT + TD, head tuned (SVM C x gamma, or forest)", ("hht", "td"), "tuned", normalisations=(True,)),
)


@dataclass
class Data:
    """A data set's files, parallel: matrix paths, class IDs, subjects and muscles, and features.

    ``features`` holds the cnn (random encoder), hht, env, td and amp blocks in that order; ``raw_td`` the
    Hudgins features of the preprocessed signal, computed by the benchmark (the baseline's input);
    ``mode`` the normalisation that "within subject" means on this set.
    """

    paths: list[Path]
    labels: np.ndarray
    groups: FileGroups
    features: np.ndarray
    raw_td: np.ndarray
    mode: str


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the library's progress lines and warnings: the table is the result."""
    with quieter(PACKAGE, logging.ERROR):
        yield


def rows(args: argparse.Namespace) -> list[tuple[Method, bool]]:
    """Every (method, normalised) row this run computes, in table order."""
    methods = [method for method in METHODS if not (args.no_tune and method.kind == "tuned")]
    chosen = re.compile(args.rows)
    methods = [method for method in methods if method.kind == "lda" or chosen.search(method.name)]
    return [(method, normalised) for method in methods for normalised in method.normalisations]


def row_key(method: Method, normalised: bool) -> str:
    return f"{method.name} | {NORMALISED_LABEL if normalised else 'none'}"


# --- scoring and aggregation -------------------------------------------------------------------


def simulated_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Gender accuracy, movement-quality accuracy and six-class balanced accuracy of class IDs."""
    return {
        "gender": float(np.mean(gender_of(truth) == gender_of(predicted))),
        "quality": float(np.mean(quality_of(truth) == quality_of(predicted))),
        "balanced": balanced_accuracy(truth, predicted),
    }


def one_class_accuracy(predict_on: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, index: np.ndarray) -> float:
    """Mean over the classes of ``labels[index]`` of the accuracy when only that class's files are predicted.

    ``predict_on(rows)`` predicts the files ``rows`` together (a normalised model computes its
    group statistics on them alone).
    """
    accuracies = []
    for class_id in np.unique(labels[index]):
        rows = index[labels[index] == class_id]
        accuracies.append(float(np.mean(predict_on(rows) == class_id)))
    return float(np.mean(accuracies))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation over folds or seeds."""
    return float(np.mean(values)), float(np.std(values))


def cell(values: list[float]) -> str:
    """A table cell: ``mean ± std``, or ``–`` with nothing to show."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.3f} ± {std:.3f}"


def figures(results: dict, data: str, key: str, row: str) -> list[float]:
    """One figure of one row over the folds (contraction) or seeds (simulated) done so far."""
    return [fold[key] for fold in results.get(data, {}).get(row, {}).values()]


def table(results: dict, args: argparse.Namespace) -> str:
    lines = ["| method | normalisation | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for method, normalised in rows(args):
        key = row_key(method, normalised)
        cells = [cell(figures(results, data, figure, key)) for data, figure in COLUMN_FIGURES]
        lines.append(f"| {method.name} | {NORMALISED_LABEL if normalised else 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


DEFAULT_ROW_PREFIX = "HHT + envelope, factorised |"


def best_rows(results: dict, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per-subject contraction figures of the baseline rows, of our best row with and without normalisation,
    and of train.py's default features and model (the factorised HHT + envelope rows)."""
    by_subject = results.get("contraction", {})
    keys = [key for key in by_subject if key.startswith(DEFAULT_ROW_PREFIX)]
    for normalised in (False, True):
        ours = [row_key(m, n) for m, n in rows(args) if n == normalised and m.kind != "lda"]
        ours = [key for key in ours if key in by_subject]
        best = [max(ours, key=lambda key: np.mean(figures(results, "contraction", "balanced", key)))] if ours else []
        keys += [row_key(METHODS[0], normalised), *best]
    return {
        key: {s: by_subject[key][s]["balanced"] for s in sorted(by_subject[key])} for key in keys if key in by_subject
    }


def notes(results: dict, args: argparse.Namespace, skipped: dict[str, str]) -> str:
    """The lines under the table: what normalisation means, skipped data sets, per-subject figures."""
    lines = [
        "",
        f"Normalisation '{NORMALISED_LABEL}': within (subject, channel) on contraction, within subject on simulated. "
        f"Contraction: seed {args.seeds[0]}; simulated: seeds {' '.join(map(str, args.seeds))}, "
        f"{args.sim_samples} labelled files per class, {args.sim_test} test files; encoder training: at most "
        f"{args.epochs} epochs, patience {args.patience}.",
    ]
    lines += [f"{data} skipped: {reason}" for data, reason in skipped.items()]
    best = best_rows(results, args)
    if best:
        per_subject = "; ".join(
            f"{key}: " + ", ".join(f"{s} {value:.3f}" for s, value in subjects.items())
            for key, subjects in best.items()
        )
        lines.append(f"Contraction LOSO balanced accuracy per held-out subject: {per_subject}.")
    return "\n".join(lines)


# --- fitting ------------------------------------------------------------------------------------


def columns(blocks: tuple[str, ...]) -> np.ndarray:
    """The columns of ``blocks`` in the feature matrix of every block (cnn+hht+env+td+amp)."""
    slices = block_slices(FEATURE_BLOCKS)
    return np.concatenate([np.arange(slices[block].start, slices[block].stop) for block in blocks])


def normaliser(train_features: np.ndarray, normalisation: str) -> Callable[[np.ndarray, FileGroups], np.ndarray]:
    """Standardisation within groups as HHTClassifier does it, for the models outside it."""
    if normalisation == "none":
        return lambda features, groups: features
    population = PopulationStatistics.of(train_features)
    return lambda features, groups: normalise_within_groups(features, groups.keys(normalisation), population)


def fit_lda(features: np.ndarray, labels: np.ndarray, groups: FileGroups, normalisation: str) -> Predictor:
    prepare = normaliser(features, normalisation)
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(prepare(features, groups), labels)
    return lambda features, groups: lda.predict(prepare(features, groups))


def fit_naive(features: np.ndarray, labels: np.ndarray, groups: FileGroups, normalisation: str, seed: int) -> Predictor:
    """The joint SVM with every standardised column weighted 1 (the blocks simply concatenated)."""
    prepare = normaliser(features, normalisation)
    _, _, head = fit_calibrated_svm(prepare(features, groups), labels, np.ones(features.shape[1]), SVM, seed)
    return lambda features, groups: head.classes_[head.predict_proba(prepare(features, groups)).argmax(axis=1)]


def classifier(method: Method, normalisation: str, seed: int, C: float = SVM["C"], gamma=SVM["gamma"]) -> HHTClassifier:
    model = "factorised" if method.kind == "factorised" else "joint"
    blocks = "+".join(method.blocks)
    return HHTClassifier(
        svm_C=C,
        svm_gamma=gamma,
        seed=seed,
        features=blocks,
        normalisation=normalisation,
        model=model,
        head=method.head,
        gender_features=method.gender_features,
    )


def fit(method: Method, normalisation: str, features: np.ndarray, labels: np.ndarray, groups: FileGroups, seed: int):
    """Fit one row's model on the training files; returns its predictor of class IDs."""
    if method.kind == "lda":
        return fit_lda(features, labels, groups, normalisation)
    if method.kind == "naive":
        return fit_naive(features, labels, groups, normalisation, seed)
    model = classifier(method, normalisation, seed)
    if method.kind == "tuned":
        apply_tuning(model, tune_svm(model, features, labels, groups, seed))
    return model.fit_features(features, labels, groups).predict_features


def trained_cnn_features(
    data: Data, train: np.ndarray, seed: int, args: argparse.Namespace
) -> tuple[np.ndarray, dict[str, float]]:
    """Train the encoder on the files ``train`` (subject-wise early-stopping split).

    Returns the best epoch's CNN features of every file, and the training's best epoch, epochs
    run and seconds.
    """
    inner_fit, inner_val = grouped_split(data.labels[train], data.groups.subjects[train], 0.2, seed)
    fit_files, val_files = (
        LabelledFiles([data.paths[i] for i in train[side]], data.labels[train[side]]) for side in (inner_fit, inner_val)
    )
    options = EncoderTrainingOptions(epochs=args.epochs, patience=args.patience)
    trainer = EncoderTrainer(
        HHTClassifier(features="cnn", model="joint", seed=seed, batch_size=args.batch_size),
        options,
        fit_files,
        val_files,
        False,
    )
    started = time.perf_counter()
    with quiet():
        trainer.run()
        assert trainer.best is not None
        encoded = extract_file_features(trainer.best, data.paths, args.batch_size)
    if encoded.errors:
        raise SystemExit(f"cannot encode {encoded.errors[0]}")
    info = {"best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch, "seconds": time.perf_counter() - started}
    return encoded.features, info


def predictor_on(predict: Predictor, features: np.ndarray, groups: FileGroups) -> Callable[[np.ndarray], np.ndarray]:
    """``predict_on(rows)``: the class IDs ``predict`` gives the files ``rows``, predicted together."""
    return lambda rows: predict(features[rows], groups.take(rows))


def contraction_scores(predict_on: Callable, labels: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """The held-out subject's balanced accuracy, and its accuracy with one class at a time."""
    return {
        "balanced": balanced_accuracy(labels[test], predict_on(test)),
        "one_class": one_class_accuracy(predict_on, labels, test),
    }


def simulated_test_scores(predict_on: Callable, labels: np.ndarray, test: np.ndarray) -> dict[str, float]:
    return simulated_scores(labels[test], predict_on(test))


@dataclass
class Job:
    """One fold (contraction: a held-out subject) or seed (simulated): fit every row on ``train``, score on ``test``."""

    dataset: str
    fold: str
    data: Data
    train: np.ndarray
    test: np.ndarray
    seed: int


def run_job(job: Job, args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Every row's scores on the job's test files, and what the job's encoder training did (with its seconds)."""
    started = time.perf_counter()
    data, train = job.data, job.train
    score = contraction_scores if job.dataset == "contraction" else simulated_test_scores
    trained, info = None, {}
    if any(method.trained for method, _ in rows(args)):
        trained, info = trained_cnn_features(data, train, job.seed, args)
    scores = {}
    for method, normalised in rows(args):
        if method.kind == "lda":
            features = data.raw_td
        else:
            features = trained if method.trained and trained is not None else data.features[:, columns(method.blocks)]
        features = features.astype(np.float64)
        normalisation = data.mode if normalised else "none"
        predict = fit(method, normalisation, features[train], data.labels[train], data.groups.take(train), job.seed)
        scores[row_key(method, normalised)] = score(predictor_on(predict, features, data.groups), data.labels, job.test)
    return scores, {**info, "job_seconds": time.perf_counter() - started}


def init_worker(threads: int) -> None:
    """A job process: its share of the CPU's threads, and no group-normalisation warnings."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy's and scikit-learn's pools too: idle threads spinning would take the CPU
    logging.getLogger("semg_hht").setLevel(logging.ERROR)


# --- data sets ----------------------------------------------------------------------------------


def random_features(paths: list[Path], blocks: str, seed: int, args: argparse.Namespace) -> np.ndarray:
    """Every block of ``blocks`` of every file, the CNN block from the random encoder of ``seed``."""
    with quiet():
        encoded = extract_file_features(HHTClassifier(seed=seed, features=blocks), paths, args.batch_size)
    if encoded.errors:
        raise SystemExit(f"cannot read {encoded.errors[0]}")
    return encoded.features


def convert_channel(recordings: Path, output: Path, channel: int, workers: int | None) -> None:
    """Convert every recording's ``channel`` into ``output`` once (made aside, then renamed: a cache)."""
    if output.exists():
        return
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    options = ConversionOptions(
        input=str(recordings), output_dir=str(partial), fs=CONTRACTION_FS, channel=str(channel), workers=workers
    )
    with quiet():
        code = run_conversion(options)
    if code != 0:
        raise SystemExit(f"converting channel {channel} of {recordings} failed")
    partial.rename(output)


def baseline_features(source: Path) -> np.ndarray:
    """Hudgins' features (n_channels, 4) of a recording's channels, preprocessed as compute_hht.py does."""
    signals = [preprocess(c.signal, CONTRACTION_FS, Preprocessing()) for c in read_recording(source).channels]
    return hudgins_features(np.stack(signals))


def contraction_data(work: Path, seed: int, args: argparse.Namespace) -> Data:
    """The real recordings, one matrix per recording and channel (converted once, cached in ``work``)."""
    sources = sorted(p for p in Path(args.contraction_dir).glob("S*/*.csv") if RECORDING_NAME.match(p.name))
    links = work / "contraction" / "recordings"  # one flat folder: one conversion run per channel
    links.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if not (links / source.name).exists():
            (links / source.name).symlink_to(source.resolve())
    # The baseline's features of each channel after the preprocessing compute_hht.py applies (the same steps).
    raw = {source.name: baseline_features(source) for source in sources}
    paths, labels, subjects, muscles, raw_td = [], [], [], [], []
    for channel in args.channels:
        folder = work / "contraction" / f"channel{channel}"
        convert_channel(links, folder, channel, args.workers)
        for source in sources:
            subject, level, motion = RECORDING_NAME.match(source.name).groups()
            paths.append(folder / f"{source.stem}.npz")
            labels.append(INVALID if motion == "1" or level == "20P" else LEVEL_CLASS[level])
            subjects.append(subject)
            muscles.append(f"ch{channel}")
            raw_td.append(raw[source.name][channel])
    features = random_features(paths, "+".join(FEATURE_BLOCKS), seed, args)
    groups = FileGroups(np.array(subjects), np.array(muscles))
    return Data(paths, np.array(labels), groups, features, np.array(raw_td), "subject_muscle")


def simulated_folder(work: Path, seed: int, args: argparse.Namespace) -> Path:
    """The simulated set of ``seed``, generated once into ``work`` (made aside, then renamed)."""
    folder = work / f"simulated_seed{seed}_{args.sim_samples}_{args.sim_test}"
    if not folder.exists():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with quiet():
            generate_sample_data(
                partial,
                n_samples=args.sim_samples,
                n_test=args.sim_test,
                seed=seed,
                save_signals=True,
                workers=args.workers,
            )
        partial.rename(folder)
    return folder


def simulated_data(work: Path, seed: int, args: argparse.Namespace) -> tuple[Data, np.ndarray]:
    """The simulated set of ``seed`` and the indices of its test files."""
    folder = simulated_folder(work, seed, args)
    labelled = read_labels_file(folder / "labels.csv").rows
    names = sorted(labelled)
    paths = [folder / name for name in names]
    raw_td = []
    for name in names:
        with np.load(folder / SIGNALS_FOLDER / name) as stored:
            raw_td.append(hudgins_features(preprocess(stored["signal"], float(stored["fs"]), Preprocessing())))
    features = random_features(paths, "+".join(FEATURE_BLOCKS), seed, args)
    groups = FileGroups(np.array([labelled[n].subject for n in names]), np.array([muscle_of(n, None) for n in names]))
    labels = np.array([labelled[name].class_id for name in names])
    test = np.flatnonzero([labelled[name].split == "test" for name in names])
    return Data(paths, labels, groups, features, np.array(raw_td), "subject"), test


def contraction_jobs(work: Path, args: argparse.Namespace) -> list[Job]:
    """Leave-one-subject-out: one job per held-out subject, all with the first seed."""
    data = contraction_data(work, args.seeds[0], args)
    subjects = data.groups.subjects
    log(f"contraction: {len(data.paths)} files, {len(np.unique(subjects))} subjects")
    return [
        Job("contraction", str(s), data, np.flatnonzero(subjects != s), np.flatnonzero(subjects == s), args.seeds[0])
        for s in np.unique(subjects)
    ]


def simulated_jobs(work: Path, args: argparse.Namespace) -> list[Job]:
    """One job per seed: trained on the labelled files, tested on the test files."""
    jobs = []
    for seed in args.seeds:
        data, test = simulated_data(work, seed, args)
        train = np.setdiff1d(np.arange(len(data.paths)), test)
        jobs.append(Job("simulated", str(seed), data, train, test, seed))
    log(f"simulated: seeds {' '.join(map(str, args.seeds))}, {len(data.paths)} files each")
    return jobs


# --- main ---------------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets", nargs="+", default=["contraction", "simulated"], choices=["contraction", "simulated"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3, help="encoder training epochs per fold and seed")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--no_tune", action="store_true", help="leave out the rows with the head tuned")
    parser.add_argument(
        "--rows",
        default="",
        help="only the rows whose name matches this regular expression (the baseline always runs; default: every row)",
    )
    parser.add_argument("--sim_samples", type=int, default=40, help="simulated labelled files per class")
    parser.add_argument("--sim_test", type=int, default=120, help="simulated test files (unseen subjects)")
    parser.add_argument("--contraction_dir", default=str(DEFAULT_CONTRACTION_DIR), help="the real recordings")
    parser.add_argument("--channels", nargs="+", type=int, default=list(CONTRACTION_CHANNELS), help="of contraction")
    parser.add_argument("--workers", type=int, default=None, help="processes for the HHT (default: one per CPU)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="folds and seeds run at once")
    parser.add_argument("--work_dir", help="keep converted and generated data here (default: a temporary folder)")
    parser.add_argument("--output", help="write all results as JSON")
    return parser.parse_args()


def prepare_jobs(work: Path, args: argparse.Namespace, skipped: dict, seconds: dict) -> list[Job]:
    """Convert or generate each data set (cached), compute its features, and make its jobs."""
    jobs = []
    for dataset in args.datasets:
        if dataset == "contraction" and not Path(args.contraction_dir).is_dir():
            skipped[dataset] = f"no recordings at {args.contraction_dir}"
            log(f"contraction skipped: {skipped[dataset]}")
            continue
        started = time.perf_counter()
        jobs += contraction_jobs(work, args) if dataset == "contraction" else simulated_jobs(work, args)
        seconds[dataset] = {"prepare": time.perf_counter() - started, "jobs": 0.0}
    return jobs


def run_jobs(jobs: list[Job], args: argparse.Namespace, document: dict, save: Callable[[], None]) -> None:
    """Run the jobs in ``args.jobs`` processes; record each one's scores as it ends, and save."""
    processes = max(1, min(args.jobs, len(jobs)))
    threads = max(1, cpu_threads() // processes)
    if processes == 1:
        # One job at a time: a worker process would only add its start (about 5 s of imports).
        init_worker(threads)
        for job in jobs:
            record_job(job, run_job(job, args), document, save)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(run_job, job, args): job for job in jobs}
        for future in as_completed(futures):
            record_job(futures[future], future.result(), document, save)


def record_job(job: Job, outcome: tuple[dict, dict], document: dict, save: Callable[[], None]) -> None:
    """Put one finished job's scores and encoder information into ``document``, save it, and log."""
    scores, info = outcome
    for key, fold_scores in scores.items():
        document["results"].setdefault(job.dataset, {}).setdefault(key, {})[job.fold] = fold_scores
    document["encoder"].setdefault(job.dataset, {})[job.fold] = info
    document["seconds"][job.dataset]["jobs"] += info["job_seconds"]
    save()
    baseline = scores[row_key(METHODS[0], False)]["balanced"]
    encoder = "no encoder trained"
    if "best_epoch" in info:
        encoder = f"encoder: best epoch {info['best_epoch']} of {info['epochs_run']}, {info['seconds']:.0f} s"
    log(f"{job.dataset} {job.fold}: {info['job_seconds']:.0f} s ({encoder}); baseline balanced accuracy {baseline:.3f}")


def main() -> int:
    args = parse_arguments()
    configure_logging(logging.ERROR)
    started = time.perf_counter()
    document: dict = {"settings": vars(args), "results": {}, "encoder": {}, "skipped": {}, "seconds": {}}

    def save() -> None:
        document["best_rows_per_subject"] = best_rows(document["results"], args)
        document["table"] = table(document["results"], args)
        if args.output:  # after every job, so that an interrupted run keeps what it did
            Path(args.output).write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.work_dir or temporary)
        work.mkdir(parents=True, exist_ok=True)
        jobs = prepare_jobs(work, args, document["skipped"], document["seconds"])
        run_jobs(jobs, args, document, save)
    document["seconds"]["total"] = time.perf_counter() - started
    save()
    print(document["table"])
    print(notes(document["results"], args, document["skipped"]))
    for dataset, spent in document["seconds"].items():
        if dataset != "total":
            log(f"{dataset}: data and features {spent['prepare']:.0f} s, jobs {spent['jobs']:.0f} s (summed)")
    log(f"total {document['seconds']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
