#!/usr/bin/env python3
"""Evidence per recording on real recordings: ours, the classic pipeline under the same steps, and LibEMG.

One command prints one Markdown table (stdout; progress on stderr)::

    python benchmarks/evaluate_recordings.py [--work_dir DIR] [--units whole 1.0/0.5] [--output results.json]

The data: the contraction-intensity recordings of subjects S1-S6 (``../shared/realdata``; 8 forearm
channels at 1 kHz, about 3 s each), labelled MVC -> full, 50 % MVC -> half, 20 % MVC and no
movement (C1) -> invalid (3 classes, chance 1/3). Every method gives **one prediction per
8-channel recording**: the mean of its samples' class probabilities (the sum rule,
``semg_hht.data.aggregation``), scored as balanced accuracy.

Splits, the same for every row:

* leave-one-subject-out (LOSO): train on five subjects, predict the sixth;
* leave-one-motion-out (LOMO): for each held-out subject and each motion (C2 wrist flexion, C3
  wrist extension, C6 chuck grip), train on the other subjects' recordings of the two other
  motions (and their no-movement recording), predict the held-out subject's three recordings of
  that motion; a subject's figure is the mean over its three motions. A lab measuring a new
  movement with the model it has.

Figures are mean +- std over the six held-out subjects. Rows with one matrix per sample are also
scored one matrix at a time (LOSO per matrix: no aggregation).

Rows:

* LibEMG (``benchmarks/libemg_peer.py``, in its own environment made by
  ``benchmarks/setup_libemg.py``; skipped, saying why, where that environment is absent): its
  configuration (window, feature group, classifier) chosen per held-out subject on the training
  subjects only, and its post-hoc best configuration (chosen by looking at the held-out
  subjects, labelled so). LOSO only.
* The classic pipeline as the field feeds it: Hudgins' time-domain features (MAV, WL, ZC, SSC:
  ``semg_hht.hht.time_domain.hudgins_features``) of 200 ms windows every 50 ms of all 8
  channels in one vector, StandardScaler + LDA.
* Under our steps, for each sample unit of ``--units`` (``whole``: one matrix per recording and
  channel, as train.py trains today; ``W/H``: windows of W s every H s, ``compute_hht.py
  --window W --hop H``): the time-domain features (the classic features under our steps, the
  ``td_features`` compute_hht stores), the HHT descriptors, both, the HHT descriptors with the
  activation envelope's (``env``, train.py's default features) with and without the time-domain
  features, the amplitude distribution (``amp``: the segment's kurtosis and mean absolute value over
  RMS) beside the time-domain features, the HHT descriptors, and both, and HHT + time-domain with one of
  two candidates the package does not compute, kept out of it unless these rows show they help:
  IMF-level features (:func:`imf_features`, from each matrix's segment) and marginal-spectrum
  moments with band amplitude statistics (:func:`marginal_features`, from each matrix); each z-scored within
  (subject, channel) as ``--normalise subject_muscle`` does, in two layouts: per channel (each
  matrix one sample, as train.py does) and all 8 channels of a window in one vector (the
  z-scored descriptors of each channel side by side, channel names kept in their order). The head
  and its settings are chosen by nested cross-validation on the training subjects
  (``head_candidates``: LDA, an RBF SVM at three C, a random forest of ``--trees``; at most 5 subject-wise inner
  folds, balanced accuracy of the samples); the chosen heads are counted in the last column. An
  SVM chosen is refitted with Platt's calibration for its probabilities.
* The per-channel rows of whole recordings once more without normalisation (subjects unknown).
* train.py's own estimator (its default model and C x gamma grid, nested), for each unit: one matrix
  per sample, ``HHTClassifier`` with ``--normalise subject_muscle --tune`` (whole recordings only; its
  default features, ``hht``, and each with ``amp``), and window samples (``--sample window --normalise
  subject --tune``: ``HHTClassifier(channels=...)``, all channels of a window in one vector,
  standardised within each subject, which is per subject and channel since each column is one
  channel's) of the HHT descriptors, of HHT + envelope, and of each with the time-domain features.

Shared errors: for each split, the recordings that every row under our steps (all but the classic
pipeline and the rows not normalised) predicted wrong, and those that at least half of them did,
with the classes they were taken for (``--output``'s ``errors``: per recording, how many rows
predicted each wrong class). A recording every row gets wrong caps every row alike.

Throughput: the windows (of all channels) per second per core of our path, conversion (EMD and
the Hilbert spectrum, on ``--workers`` processes) and descriptors together, beside LibEMG's
feature extraction alone (one core, each feature group).

The recordings are copied into one folder of ``--work_dir`` (a temporary folder by default) and
converted once per unit by compute_hht's code with its defaults; the matrices and LibEMG's result
are cached there.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from setup_libemg import DEFAULT_ENV, environment_python
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.data.dataset import extract_file_features
from semg_hht.defaults import DEFAULT_FEATURES
from semg_hht.evaluation.scores import balanced_accuracy
from semg_hht.evaluation.splits import InnerFolds
from semg_hht.hht.decomposition import decompose
from semg_hht.hht.preprocessing import Preprocessing, preprocess
from semg_hht.hht.spectrum import instantaneous_amplitude_frequency
from semg_hht.hht.time_domain import hudgins_features
from semg_hht.io.matrices import list_npz_files
from semg_hht.io.recordings import read_recording
from semg_hht.logs import PACKAGE, configure_logging, quieter
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_sets import block_slices, parse_feature_set
from semg_hht.model.normalisation import FileGroups, PopulationStatistics, normalise_within_groups
from semg_hht.model.svm_fitting import PlattCalibratedSVC
from semg_hht.training.tuning import apply_tuning, tune_svm

DEFAULT_CONTRACTION_DIR = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "contraction-intensity"
)
FS = 1000.0
RECORDING_NAME = re.compile(r"^(S\d+)_(MVC|50P|20P)_C(\d+)_R\d+\.csv$")
CLASSES = ("full", "half", "invalid")
HELD_OUT_MOTIONS = ("2", "3", "6")
CLASSIC_WINDOW_S, CLASSIC_HOP_S = 0.2, 0.05
IMF_SET = "HHT + time-domain + IMF-level"
MARGINAL_SET = "HHT + time-domain + marginal moments"
FEATURE_SETS = {
    "time-domain": ("td",),
    "HHT descriptors": ("hht",),
    "HHT + time-domain": ("hht", "td"),
    "HHT + envelope": ("hht", "env"),
    "HHT + envelope + time-domain": ("hht", "env", "td"),
    "time-domain + amplitude distribution": ("td", "amp"),
    "HHT + amplitude distribution": ("hht", "amp"),
    "HHT + time-domain + amplitude distribution": ("hht", "td", "amp"),
    IMF_SET: ("hht", "td", "imf"),
    MARGINAL_SET: ("hht", "td", "marginal"),
}
CANDIDATE_SETS = (IMF_SET, MARGINAL_SET)  # candidates the package does not compute
IMF_COUNT = 4  # IMF-level features of the first (fastest) IMFs: those that carry the sEMG band at 1 kHz
SAMPLE_BLOCKS = ("hht", "env", "td", "amp")  # the package's blocks each matrix is described by


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Recordings:
    """The labelled recordings, parallel: names, class indices (of ``CLASSES``), subjects, motions and signals."""

    names: list[str]
    labels: np.ndarray
    subjects: np.ndarray
    motions: np.ndarray
    signals: list[np.ndarray]  # (n_samples, n_channels) each
    channels: list[str]  # the channels' names, in the signals' column order
    preprocessed: list[np.ndarray] = field(default_factory=list)  # the signals as compute_hht preprocesses them


@dataclass(frozen=True)
class Samples:
    """One sample unit's matrices, parallel: their recording (index), segment, channel, and features (the
    hht+env+td+amp blocks, then the candidates: :func:`columns` finds each block)."""

    recording: np.ndarray
    segment: np.ndarray
    channel: np.ndarray
    features: np.ndarray


@dataclass(frozen=True)
class Fold:
    """Train on the recordings ``train``, predict ``test``; ``subject`` is the held-out subject."""

    scheme: str
    subject: str
    train: np.ndarray
    test: np.ndarray


def read_recordings(folder: Path) -> Recordings:
    """The recordings of ``folder``'s subject folders, read by compute_hht's reader (its channel names), and
    each channel preprocessed whole as compute_hht does (mean removed, band-passed)."""
    sources = sorted(p for p in folder.glob("S*/*.csv") if RECORDING_NAME.match(p.name))
    names, labels, subjects, motions, signals = [], [], [], [], []
    channels: list[str] = []
    for source in sources:
        subject, level, motion = RECORDING_NAME.match(source.name).groups()
        names.append(source.stem)
        labels.append(2 if motion == "1" or level == "20P" else CLASSES.index("full" if level == "MVC" else "half"))
        subjects.append(subject)
        motions.append(motion)
        recorded = read_recording(source).channels
        signals.append(np.stack([channel.signal for channel in recorded], axis=1))
        channels = [channel.name for channel in recorded]
    preprocessed = [np.stack([preprocess(c, FS, Preprocessing()) for c in signal.T], axis=1) for signal in signals]
    return Recordings(names, np.array(labels), np.array(subjects), np.array(motions), signals, channels, preprocessed)


def folds(recordings: Recordings) -> list[Fold]:
    """The LOSO folds, then the LOMO folds (module docstring)."""
    subjects, motions = recordings.subjects, recordings.motions
    result = [
        Fold("LOSO", s, np.flatnonzero(subjects != s), np.flatnonzero(subjects == s)) for s in np.unique(subjects)
    ]
    for s in np.unique(subjects):
        for motion in HELD_OUT_MOTIONS:
            train = np.flatnonzero((subjects != s) & (motions != motion))
            result.append(Fold("LOMO", s, train, np.flatnonzero((subjects == s) & (motions == motion))))
    return result


# --- samples ------------------------------------------------------------------------------------


def unit_window(unit: str) -> tuple[float | None, float | None]:
    """``whole`` -> (None, None); ``W/H`` -> window W s every H s."""
    if unit == "whole":
        return None, None
    window, hop = unit.split("/")
    return float(window), float(hop)


def gathered(source: Path, work: Path) -> Path:
    """The recordings of every subject folder of ``source`` copied into one folder of ``work`` (one conversion
    run per sample unit; about 13 MB)."""
    folder = work / "recordings"
    folder.mkdir(exist_ok=True)
    for recording in source.glob("S*/*.csv"):
        if RECORDING_NAME.match(recording.name) and not (folder / recording.name).exists():
            shutil.copyfile(recording, folder / recording.name)
    return folder


def convert(source: Path, work: Path, unit: str, workers: int) -> tuple[Path, float | None]:
    """The matrices of every recording and channel cut as ``unit`` (converted once, cached in ``work``), and
    the seconds the conversion took (None where cached)."""
    output = work / ("matrices_" + unit.replace("/", "_"))
    if output.is_dir():
        return output, None
    started = time.perf_counter()
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    window, hop = unit_window(unit)
    options = ConversionOptions(
        input=str(source), output_dir=str(partial), fs=FS, channel="all", window=window, hop=hop, workers=workers
    )
    with quieter(PACKAGE, logging.ERROR):
        if run_conversion(options) != 0:
            raise SystemExit(f"converting {source} failed")
    partial.rename(output)
    return output, time.perf_counter() - started


@dataclass(frozen=True)
class Cost:
    """What one sample unit's matrices cost: conversion seconds on ``workers`` processes (None: cached), the
    descriptors' seconds in this process, and the candidates' seconds (outside our path: the IMF-level
    ones decompose each segment again, on ``workers`` processes)."""

    matrices: int
    conversion_s: float | None
    workers: int
    description_s: float
    candidates_s: float

    def line(self, unit: str, channels: int) -> str:
        """The unit's throughput in windows of all channels per second per core (module docstring)."""
        windows = self.matrices / channels
        if self.conversion_s is None:
            return f"ours [{unit}]: {windows:.0f} windows of {channels} channels, matrices cached (not timed)"
        core_seconds = self.conversion_s * self.workers + self.description_s
        return (
            f"ours [{unit}]: {windows:.0f} windows of {channels} channels converted and described in "
            f"{self.conversion_s:.1f} s on {self.workers} processes + {self.description_s:.1f} s: "
            f"{windows / core_seconds:.0f} windows/s per core (the candidates took {self.candidates_s:.1f} s more)"
        )


def prepare_unit(source: Path, work: Path, unit: str, workers: int, recordings: Recordings) -> tuple[Samples, Cost]:
    """One sample unit's matrices (converted or cached) with their features, and what they cost."""
    folder, conversion_s = convert(source, work, unit, workers)
    started = time.perf_counter()
    samples, spans = samples_of(folder, recordings)
    described = time.perf_counter()
    candidates = np.hstack(
        [segments_imf_features(recordings, samples, spans, workers), marginal_features(list_npz_files(folder))]
    )
    cost = Cost(len(samples.recording), conversion_s, workers, described - started, time.perf_counter() - described)
    features = np.hstack([samples.features, candidates])
    return Samples(samples.recording, samples.segment, samples.channel, features), cost


def samples_of(folder: Path, recordings: Recordings) -> tuple[Samples, list[tuple[int, int]]]:
    """Every matrix of ``folder`` with its recording, segment, channel and hht+env+td+amp features, and the
    samples of its recording it covers (start, stop)."""
    paths = list_npz_files(folder)
    index = {name: i for i, name in enumerate(recordings.names)}
    owners, segments, channels, spans = [], [], [], []
    for path in paths:
        with np.load(path, allow_pickle=False) as stored:
            owners.append(index[str(stored["recording"])])
            segments.append(int(stored["segment_index"]) if "segment_index" in stored.files else 0)
            channels.append(str(stored["channel"]))
            start = round(float(stored["segment_start_s"]) * FS)
            spans.append((start, start + round(float(stored["duration_s"]) * FS)))
    with quieter(PACKAGE, logging.ERROR):
        encoded = extract_file_features(HHTClassifier(features="+".join(SAMPLE_BLOCKS)), paths, 64)
    if len(encoded.paths) != len(paths):
        raise SystemExit(f"{len(paths) - len(encoded.paths)} matrices could not be described: {encoded.errors[:3]}")
    features = encoded.features.astype(np.float64)
    return Samples(np.array(owners), np.array(segments), np.array(channels), features), spans


def segments_imf_features(recordings: Recordings, samples: Samples, spans: list, workers: int) -> np.ndarray:
    """:func:`imf_features` of each matrix's segment (its recording's channel, preprocessed whole as compute_hht
    does, then cut), on ``workers`` processes."""
    segments = [
        recordings.preprocessed[owner][start:stop, recordings.channels.index(channel)]
        for owner, channel, (start, stop) in zip(
            samples.recording.tolist(), samples.channel.tolist(), spans, strict=True
        )
    ]
    return np.array(Parallel(n_jobs=workers)(delayed(imf_features)(segment, FS) for segment in segments))


def imf_features(segment: np.ndarray, fs: float) -> np.ndarray:
    """IMF-level features of one preprocessed segment, (3 * IMF_COUNT,): for each of its first ``IMF_COUNT``
    IMFs (EMD, as compute_hht decomposes; IMF 1 the fastest), ``log`` of its mean power, its share of all the
    IMFs' power, and its power-weighted mean instantaneous frequency in Hz (the analytic signal's, Huang et
    al. 1998; the amplitude-weighted mean of Xie & Wang 2006, per IMF). A missing IMF gives -690.8 (the log
    of 1e-300), 0 and 0."""
    imfs = decompose(segment.astype(np.float64), "emd", 0, 0.0, None)
    amplitude, frequency = instantaneous_amplitude_frequency(imfs, fs)
    power = np.mean(imfs**2, axis=1)
    values = []
    for k in range(IMF_COUNT):
        if k < len(imfs):
            weight = amplitude[k] ** 2
            mean_frequency = float(np.sum(weight * np.clip(frequency[k], 0.0, fs / 2)) / np.sum(weight))
            values += [np.log(max(power[k], 1e-300)), power[k] / power.sum(), mean_frequency]
        else:
            values += [np.log(1e-300), 0.0, 0.0]
    return np.array(values)


MARGINAL_NAMES = (
    "peak_frequency_hz",
    "spectral_skewness",
    "spectral_kurtosis",
    *(f"band_amplitude_cv_{k}" for k in range(8)),
)


def marginal_features(paths: list[Path]) -> np.ndarray:
    """Candidates from each matrix's Hilbert spectrum ``H`` (rows: frequency ``f``, columns: time), in the order
    of ``MARGINAL_NAMES``: the peak frequency, skewness and kurtosis of the marginal spectrum
    ``h(f) = sum_t H[f, t]`` (Huang et al. 1998; the spectral moments of Phinyomark et al. 2012, taken on
    the marginal), and the coefficient of variation over time of the amplitude in each of the 8 bands of the
    descriptors (rows 32k .. 32k + 31): how steady each band's amplitude is over the contraction."""
    rows = []
    for path in paths:
        with np.load(path, allow_pickle=False) as stored:
            spectrum, frequency = stored["hht"].astype(np.float64), stored["frequency"].astype(np.float64)
        marginal = spectrum.sum(axis=1)
        weights = marginal / max(marginal.sum(), 1e-300)
        mean = float(weights @ frequency)
        spread = max(float(np.sqrt(weights @ (frequency - mean) ** 2)), 1e-12)
        standardised = (frequency - mean) / spread
        bands = spectrum.reshape(8, -1, spectrum.shape[1]).sum(axis=1)  # (8 bands, time)
        band_cv = bands.std(axis=1) / np.maximum(bands.mean(axis=1), 1e-300)
        peak = float(frequency[np.argmax(marginal)])
        rows.append([peak, float(weights @ standardised**3), float(weights @ standardised**4), *band_cv])
    return np.array(rows)


def classic_windows(recordings: Recordings) -> tuple[np.ndarray, np.ndarray]:
    """Hudgins' features of every 200 ms window (every 50 ms) of all channels in one vector, and its recording."""
    length, hop = round(CLASSIC_WINDOW_S * FS), round(CLASSIC_HOP_S * FS)
    rows, owners = [], []
    for r, signal in enumerate(recordings.preprocessed):
        for start in range(0, len(signal) - length + 1, hop):
            rows.append(hudgins_features(signal[start : start + length].T).reshape(-1))
            owners.append(r)
    return np.array(rows), np.array(owners)


# --- heads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadSearch:
    """The settings of the nested head search: the seed of every random step and the forest's trees."""

    seed: int
    trees: int


def head_candidates(search: HeadSearch) -> list[dict]:
    """The heads nested cross-validation chooses from: LDA, an RBF SVM at three C, a random forest."""
    return [
        {"head": [LinearDiscriminantAnalysis()]},
        {"head": [SVC(gamma="scale", random_state=search.seed)], "head__C": [1.0, 10.0, 100.0]},
        {"head": [RandomForestClassifier(n_estimators=search.trees, random_state=search.seed)]},
    ]


def head_name(pipeline: Pipeline) -> str:
    head = pipeline.named_steps["head"]
    return (
        f"SVM C={head.C:g}"
        if isinstance(head, SVC)
        else {"LinearDiscriminantAnalysis": "LDA"}.get(type(head).__name__, "RF")
    )


def fit_chosen_head(x: np.ndarray, y: np.ndarray, subjects: np.ndarray, search: HeadSearch) -> tuple[Pipeline, str]:
    """The head best in nested cross-validation on the training subjects, refitted on all of them."""
    grid = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("head", LinearDiscriminantAnalysis())]),
        head_candidates(search),
        scoring="balanced_accuracy",
        cv=InnerFolds(5, random_state=search.seed),
        refit=False,
    )
    grid.fit(x, y, groups=subjects)
    chosen = clone(grid.estimator).set_params(**grid.best_params_)
    name = head_name(chosen)
    if isinstance(chosen.named_steps["head"], SVC):  # probabilities for the mean per recording
        chosen.set_params(head=PlattCalibratedSVC(chosen.named_steps["head"]))
    return chosen.fit(x, y), name


def class_probabilities(model, x: np.ndarray) -> np.ndarray:
    """``model``'s probabilities of every class of ``CLASSES`` (n, 3), 0 for a class it was not trained on."""
    probabilities = np.zeros((len(x), len(CLASSES)))
    probabilities[:, model.classes_] = model.predict_proba(x)
    return probabilities


def per_recording(probabilities: np.ndarray, owners: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The class of each recording of ``test`` from the mean probability of its rows (``owners``)."""
    return np.array([probabilities[owners == r].mean(axis=0).argmax() for r in test])


# --- one fold -----------------------------------------------------------------------------------


def columns(blocks: tuple[str, ...]) -> np.ndarray:
    """The columns of ``blocks`` in the features of :class:`Samples`: hht, env, td, amp, imf, marginal."""
    slices = block_slices(SAMPLE_BLOCKS)
    package_stop = slices[SAMPLE_BLOCKS[-1]].stop
    slices["imf"] = slice(package_stop, package_stop + 3 * IMF_COUNT)
    slices["marginal"] = slice(slices["imf"].stop, slices["imf"].stop + len(MARGINAL_NAMES))
    return np.concatenate([np.arange(slices[b].start, slices[b].stop) for b in blocks])


def run_fold(fold: Fold, recordings: Recordings, samples: dict[str, Samples], classic, search: HeadSearch) -> dict:
    """Every row's outcome on ``fold``: {row: {"recordings": class per test recording, "head": the head
    chosen, and for the rows of one matrix per sample "samples" and "truth": class and label per test matrix}}."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    labels = recordings.labels
    result: dict[str, dict] = {}
    with threadpool_limits(1), quieter(PACKAGE, logging.ERROR):
        x, owners = classic
        train = np.isin(owners, fold.train)
        lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(x[train], labels[owners[train]])
        test = np.isin(owners, fold.test)
        result[CLASSIC_ROW] = outcome(class_probabilities(lda, x[test]), owners[test], fold, "LDA")
        for unit, unit_samples in samples.items():
            for name, blocks in FEATURE_SETS.items():
                x, owners = zscored_fold(unit_samples, blocks, recordings.subjects, fold)
                result[steps_row(name, unit)] = chosen_head_outcome(
                    x, owners, recordings, fold, search, per_matrix=True
                )
                if unit == "whole" and name not in CANDIDATE_SETS:
                    raw = unit_samples.features[:, columns(blocks)]
                    row = steps_row(name, unit, normalised=False)
                    result[row] = chosen_head_outcome(raw, owners, recordings, fold, search, per_matrix=True)
                x, owners = channels_in_one_vector(x, unit_samples)
                result[vector_row(name, unit)] = chosen_head_outcome(x, owners, recordings, fold, search)
            if unit == "whole":
                for blocks in TRAIN_PY_FEATURE_SETS:
                    row = train_py_row(blocks)
                    result[row] = train_py_outcome(unit_samples, blocks, recordings, fold, search.seed)
            for blocks in WINDOW_FEATURE_SETS:
                row = train_py_window_row(blocks, unit)
                result[row] = train_py_window_outcome(unit_samples, blocks, recordings, fold, search.seed)
    return result


def outcome(probabilities: np.ndarray, owners: np.ndarray, fold: Fold, head: str, truth=None) -> dict:
    """A row's outcome (:func:`run_fold`) from the test samples' probabilities and recordings; ``truth``
    (the test samples' labels) where each sample is one matrix, to score them one by one too."""
    result = {"recordings": per_recording(probabilities, owners, fold.test).tolist(), "head": head}
    if truth is not None:
        result |= {"samples": probabilities.argmax(axis=1).tolist(), "truth": np.asarray(truth).tolist()}
    return result


def zscored_fold(samples: Samples, blocks: tuple[str, ...], subjects: np.ndarray, fold: Fold) -> tuple:
    """The fold's samples' features of ``blocks``, z-scored within (subject, channel) as ``--normalise
    subject_muscle`` does (the training rows' statistics for a key with too few rows), and each row's
    recording; rows of neither side are 0."""
    x = samples.features[:, columns(blocks)]
    keys = np.char.add(subjects[samples.recording], "/" + samples.channel)
    rows_train, rows_test = np.isin(samples.recording, fold.train), np.isin(samples.recording, fold.test)
    population = PopulationStatistics.of(x[rows_train])
    result = np.zeros_like(x)
    for rows in (rows_train, rows_test):
        result[rows] = normalise_within_groups(x[rows], keys[rows], population)
    return result, samples.recording


def channels_in_one_vector(x: np.ndarray, samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """One row per window of a recording, its channels' features side by side (in channel order), and each
    row's recording; a window missing a channel is left out."""
    windows: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for row, (recording, segment, channel) in enumerate(
        zip(samples.recording, samples.segment, samples.channel, strict=True)
    ):
        windows.setdefault((int(recording), int(segment)), {})[str(channel)] = x[row]
    channels = sorted(set(samples.channel.tolist()))
    complete = [(key, found) for key, found in sorted(windows.items()) if len(found) == len(channels)]
    rows = np.stack([np.concatenate([found[c] for c in channels]) for _, found in complete])
    return rows, np.array([key[0] for key, _ in complete])


def chosen_head_outcome(x, owners, recordings: Recordings, fold: Fold, search: HeadSearch, per_matrix=False) -> dict:
    """The outcome (:func:`outcome`) of the head chosen by nested CV on the fold's training rows."""
    train, test = np.isin(owners, fold.train), np.isin(owners, fold.test)
    head, chosen = fit_chosen_head(
        x[train], recordings.labels[owners[train]], recordings.subjects[owners[train]], search
    )
    truth = recordings.labels[owners[test]] if per_matrix else None
    return outcome(class_probabilities(head, x[test]), owners[test], fold, chosen, truth)


def train_py_outcome(samples: Samples, blocks: tuple[str, ...], recordings: Recordings, fold: Fold, seed: int) -> dict:
    """The outcome of train.py's estimator (``--features BLOCKS --normalise subject_muscle --tune``)."""
    rows_train = np.isin(samples.recording, fold.train)
    rows_test = np.isin(samples.recording, fold.test)
    x = samples.features[:, columns(blocks)]
    groups = FileGroups(recordings.subjects[samples.recording], samples.channel)
    labels = recordings.labels[samples.recording]
    model = HHTClassifier(features="+".join(blocks), normalisation="subject_muscle", seed=seed)
    tuned = tune_svm(model, x[rows_train], labels[rows_train], groups.take(np.flatnonzero(rows_train)), seed)
    apply_tuning(model, tuned)
    model.fit_features(x[rows_train], labels[rows_train], groups.take(np.flatnonzero(rows_train)))
    probabilities = model.predict_proba_features(x[rows_test], groups.take(np.flatnonzero(rows_test)))
    head = tuned_head_name(tuned)
    return outcome(probabilities[:, : len(CLASSES)], samples.recording[rows_test], fold, head, labels[rows_test])


def train_py_window_outcome(
    samples: Samples, blocks: tuple[str, ...], recordings: Recordings, fold: Fold, seed: int
) -> dict:
    """The outcome of train.py's estimator on window samples (``--sample window --normalise subject --tune``)."""
    x, owners = channels_in_one_vector(samples.features[:, columns(blocks)], samples)
    channels = sorted(set(samples.channel.tolist()))
    model = HHTClassifier(features="+".join(blocks), normalisation="subject", seed=seed, channels=channels)
    groups = FileGroups(recordings.subjects[owners], np.full(len(owners), ""))
    labels = recordings.labels[owners]
    train, test = np.flatnonzero(np.isin(owners, fold.train)), np.flatnonzero(np.isin(owners, fold.test))
    tuned = tune_svm(model, x[train], labels[train], groups.take(train), seed)
    apply_tuning(model, tuned)
    model.fit_features(x[train], labels[train], groups.take(train))
    probabilities = model.predict_proba_features(x[test], groups.take(test))
    return outcome(probabilities[:, : len(CLASSES)], owners[test], fold, tuned_head_name(tuned))


def tuned_head_name(tuned: dict) -> str:
    """The head ``--tune`` chose, as the heads column names it."""
    return "RF" if tuned["head"] == "forest" else f"SVM C={tuned['C']:g}"


WINDOW_FEATURE_SETS = (("hht",), ("hht", "td"), ("hht", "env"), ("hht", "env", "td"))
TRAIN_PY_FEATURE_SETS = (parse_feature_set(DEFAULT_FEATURES), ("hht",), ("hht", "env", "amp"), ("hht", "amp"))


def train_py_window_row(blocks: tuple[str, ...], unit: str) -> str:
    return f"train.py: {'+'.join(blocks)}, --sample window --normalise subject --tune [{unit}]"


CLASSIC_ROW = "Hudgins time-domain, all channels in one vector, 200 ms windows + LDA (the classic pipeline)"


def train_py_row(blocks: tuple[str, ...]) -> str:
    default = " (the default features)" if "+".join(blocks) == DEFAULT_FEATURES else ""
    return f"train.py: {'+'.join(blocks)}{default}, --normalise subject_muscle --tune [whole]"


def steps_row(feature_set: str, unit: str, normalised: bool = True) -> str:
    return f"{feature_set} per channel, {'z-scored' if normalised else 'not normalised'}, head by nested CV [{unit}]"


def vector_row(feature_set: str, unit: str) -> str:
    return f"{feature_set}, all channels in one vector, z-scored, head by nested CV [{unit}]"


# --- LibEMG -------------------------------------------------------------------------------------


def run_peer(recordings: Recordings, work: Path, python: Path, jobs: int = 1) -> dict:
    """LibEMG's result (libemg_peer.py in its own environment), cached in ``work``; ``skipped`` says why if absent."""
    if not python.exists():
        return {"skipped": f"LibEMG's environment is absent ({python}); make it with benchmarks/setup_libemg.py"}
    result_path = work / "libemg_result.json"
    if not result_path.exists():
        task = work / "libemg_task.npz"
        offsets = np.concatenate([[0], np.cumsum([len(signal) for signal in recordings.signals])])
        np.savez(
            task,
            signals=np.concatenate(recordings.signals),
            offsets=offsets,
            labels=recordings.labels,
            subjects=recordings.subjects,
            fs=FS,
        )
        log(f"LibEMG: every configuration on every split ({python}) ...")
        partial = result_path.with_name(result_path.name + ".partial")
        script = Path(__file__).with_name("libemg_peer.py")
        # LibEMG prints notices on stdout at import: the table owns stdout, so they go to stderr.
        peer = subprocess.run(
            [str(python), str(script), str(task), str(partial), "--jobs", str(jobs)], stdout=sys.stderr
        )
        if peer.returncode != 0:
            return {"skipped": f"libemg_peer.py failed with exit status {peer.returncode} (its messages above)"}
        partial.replace(result_path)
    return json.loads(result_path.read_text(encoding="utf-8"))


# --- table --------------------------------------------------------------------------------------


def subject_scores(outcomes: list[tuple[Fold, dict]], recordings: Recordings, row: str, figure: str) -> dict:
    """Per held-out subject, one figure of ``row``: ``LOSO`` and ``LOMO`` the balanced accuracy of its
    recordings (LOMO: the mean over its motions), ``LOSO per matrix`` that of its matrices one by one."""
    scheme, _, level = figure.partition(" ")
    by_subject: dict[str, list[float]] = {}
    for fold, rows in outcomes:
        if fold.scheme != scheme or row not in rows or (level and "samples" not in rows[row]):
            continue
        found = rows[row]
        if level:
            score = balanced_accuracy(np.array(found["truth"]), np.array(found["samples"]))
        else:
            score = balanced_accuracy(recordings.labels[fold.test], np.array(found["recordings"]))
        by_subject.setdefault(fold.subject, []).append(score)
    return {subject: float(np.mean(scores)) for subject, scores in sorted(by_subject.items())}


def cell(scores: dict[str, float]) -> str:
    values = list(scores.values())
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "–"


def heads_cell(outcomes: list[tuple[Fold, dict]], row: str) -> str:
    counts = Counter(rows[row]["head"] for _, rows in outcomes if row in rows)
    return ", ".join(f"{head} {count}" for head, count in counts.most_common())


FIGURES = ("LOSO", "LOMO", "LOSO per matrix")


def table(outcomes: list[tuple[Fold, dict]], recordings: Recordings, peer: dict) -> tuple[str, dict]:
    """The Markdown table and its figures per row, figure (``FIGURES``) and subject."""
    figures: dict[str, dict[str, dict[str, float]]] = {}
    lines = [
        "| method | LOSO bal. acc. per recording | LOMO bal. acc. per recording | LOSO bal. acc. per matrix "
        "| heads chosen (folds) |",
        "|---|---|---|---|---|",
    ]
    if "chosen" in peer:
        chosen = {s: fold["score"] for s, fold in peer["chosen"].items()}
        configurations = Counter(fold["configuration"] for fold in peer["chosen"].values())
        figures["LibEMG, chosen on training subjects"] = {"LOSO": chosen}
        lines.append(
            f"| LibEMG {peer['libemg_version']}, configuration chosen on the training subjects "
            f"| {cell(chosen)} | – | – | " + ", ".join(f"{c} {n}" for c, n in configurations.most_common()) + " |"
        )
        best = peer["post_hoc_best"]
        figures["LibEMG, post-hoc best"] = {"LOSO": best["scores"]}
        lines.append(
            f"| LibEMG, post-hoc best configuration ({best['configuration']}; chosen on the held-out subjects) "
            f"| {cell(best['scores'])} | – | – | – |"
        )
    for row in dict.fromkeys(row for _, rows in outcomes for row in rows):
        figures[row] = {figure: subject_scores(outcomes, recordings, row, figure) for figure in FIGURES}
        cells = " | ".join(cell(figures[row][figure]) for figure in FIGURES)
        lines.append(f"| {row} | {cells} | {heads_cell(outcomes, row)} |")
    return "\n".join(lines), figures


def shared_errors(outcomes: list[tuple[Fold, dict]], recordings: Recordings, scheme: str) -> tuple[int, dict]:
    """How many rows under our steps there are (z-scored, per channel or in one vector, and train.py's), and for each
    recording that any of them predicted wrong on ``scheme``'s folds: {name: {predicted class: rows}}."""
    rows = [row for row in dict.fromkeys(r for _, found in outcomes for r in found) if under_our_steps(row)]
    wrong: dict[str, Counter] = {}
    for fold, found in outcomes:
        if fold.scheme != scheme:
            continue
        for row in (row for row in rows if row in found):
            predicted = np.array(found[row]["recordings"])
            for index, label in zip(fold.test, predicted, strict=True):
                if label != recordings.labels[index]:
                    wrong.setdefault(recordings.names[index], Counter())[CLASSES[label]] += 1
    return len(rows), {name: dict(counts) for name, counts in wrong.items()}


def under_our_steps(row: str) -> bool:
    """Whether ``row`` normalises within subject and aggregates per recording (every row but the classic and the
    rows not normalised)."""
    return row != CLASSIC_ROW and "not normalised" not in row


def shared_errors_line(scheme: str, total: int, wrong: dict, recordings: Recordings) -> str:
    """The recordings that every one of the ``total`` rows under our steps, and that most of them, predicted wrong on
    ``scheme`` (``wrong`` as :func:`shared_errors` gives it)."""

    def listed(names: list[str]) -> str:
        described = []
        for name in names:
            truth = CLASSES[recordings.labels[recordings.names.index(name)]]
            predicted = ", ".join(f"{label} {count}" for label, count in Counter(wrong[name]).most_common())
            described.append(f"{name} ({truth}; predicted {predicted})")
        return "; ".join(described) or "none"

    every = sorted(name for name, counts in wrong.items() if sum(counts.values()) == total)
    most = sorted(name for name, counts in wrong.items() if total / 2 <= sum(counts.values()) < total)
    return (
        f"{scheme}: recordings predicted wrong by every one of the {total} rows under our steps: {listed(every)}. "
        f"By at least half of them: {listed(most)}."
    )


# --- main ---------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contraction_dir", type=Path, default=DEFAULT_CONTRACTION_DIR, help="the real recordings")
    parser.add_argument("--units", nargs="+", default=["whole", "1.0/0.5"], help="sample units: whole, or W/H seconds")
    parser.add_argument("--libemg_python", type=Path, default=environment_python(DEFAULT_ENV))
    parser.add_argument("--no_peer", action="store_true", help="leave LibEMG out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=300, help="trees of the random forest among the heads")
    parser.add_argument("--jobs", type=int, default=2, help="folds run at once")
    parser.add_argument("--workers", type=int, default=2, help="conversion processes")
    parser.add_argument("--work_dir", type=Path, help="cache of matrices and LibEMG's result (default: temporary)")
    parser.add_argument("--output", type=Path, help="write the table's figures per subject as JSON")
    args = parser.parse_args(argv)
    for unit in args.units:
        if unit != "whole" and not re.fullmatch(r"\d+(\.\d+)?/\d+(\.\d+)?", unit):
            parser.error(f"--units: {unit!r} is neither 'whole' nor WINDOW/HOP in seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    configure_logging(logging.ERROR)
    if not any(args.contraction_dir.glob("S*/*.csv")):
        raise SystemExit(f"the contraction-intensity recordings are not present: {args.contraction_dir}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        recordings = read_recordings(args.contraction_dir)
        source = gathered(args.contraction_dir, work)
        prepared = {unit: prepare_unit(source, work, unit, args.workers, recordings) for unit in args.units}
        samples = {unit: unit_samples for unit, (unit_samples, _) in prepared.items()}
        log(
            f"{len(recordings.names)} recordings of {len(np.unique(recordings.subjects))} subjects; samples: "
            + ", ".join(f"{unit} {len(s.recording)}" for unit, s in samples.items())
            + f" ({time.perf_counter() - started:.0f} s)"
        )
        classic = classic_windows(recordings)
        all_folds = folds(recordings)
        search = HeadSearch(args.seed, args.trees)
        predictions = Parallel(n_jobs=args.jobs)(
            delayed(run_fold)(fold, recordings, samples, classic, search) for fold in all_folds
        )
        log(f"ours and the classic pipeline: {len(all_folds)} folds ({time.perf_counter() - started:.0f} s)")
        peer = {"skipped": "--no_peer"} if args.no_peer else run_peer(recordings, work, args.libemg_python, args.jobs)
    outcomes = list(zip(all_folds, predictions, strict=True))
    text, figures = table(outcomes, recordings, peer)
    print(text)
    channels = recordings.signals[0].shape[1]
    print(
        f"\nOne prediction per {channels}-channel recording (the mean of its samples' probabilities); "
        f"balanced accuracy, mean ± std over {len(np.unique(recordings.subjects))} held-out subjects; "
        f"chance 1/3. Seed {args.seed}; random forests of {args.trees} trees."
    )
    errors = {scheme: shared_errors(outcomes, recordings, scheme) for scheme in ("LOSO", "LOMO")}
    for scheme, (total, wrong) in errors.items():
        print(shared_errors_line(scheme, total, wrong, recordings))
    print("Throughput: " + "; ".join(cost.line(unit, channels) for unit, (_, cost) in prepared.items()) + ".")
    if "skipped" in peer:
        print(f"LibEMG skipped: {peer['skipped']}")
    else:
        speeds = ", ".join(f"{group} {speed:.0f}" for group, speed in peer["windows_per_second"].items())
        print(f"LibEMG's feature extraction, windows/s on one core: {speeds}; its run took {peer['seconds']:.0f} s.")
    if args.output:
        shared = {scheme: wrong for scheme, (_, wrong) in errors.items()}
        report = {"figures": figures, "errors": shared, "peer": peer}
        args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
