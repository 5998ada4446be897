#!/usr/bin/env python3
"""Why one matrix of a subject never seen is hard to grade without that subject's other files.

One command prints two Markdown tables (stdout; progress on stderr)::

    python benchmarks/subject_spread.py [--work_dir DIR] [--workers N]

The data are those of ``evaluate_recordings.py``: the contraction-intensity recordings of subjects
S1-S6 (8 forearm channels at 1 kHz), converted whole by compute_hht's code, one matrix per recording
and channel, described by the package's hht+env+td+amp blocks. Levels: the no-movement recording
(C1), then 20 %, 50 % and 100 % (MVC) of the maximum voluntary contraction of each active motion
(C2, C3, C6).

The first table sets, for a few descriptors, the step between adjacent contraction levels of one
subject against the spread between subjects at one level: the within-subject step is the mean over
(subject, channel, motion) of the descriptor's change from one level to the next; the spread is
the standard deviation over subjects of the descriptor at a fixed (channel, motion, level), pooled
(the root of the cells' mean variance). The crossing shares count, over every pair of a lower- and
a higher-level matrix of the same channel and motion, those in which the lower level reads higher
(in the direction of the mean step): across subjects, and within one subject. Where the spread
between subjects is as large as the step, a single matrix's value cannot place its level without
knowing where its subject's scale starts; a subject's own files (``--normalise subject_muscle``)
tell the classifier just that. Sources: Farina, Merletti & Enoka 2004 (J. Appl. Physiol. 96:1486)
on the subject factors (fat, electrode placement, conduction velocity) behind sEMG amplitude and
spectra; Burden 2010 (J. Electromyogr. Kinesiol. 20:1023) on normalising to a subject's reference.

The second table is one matrix at a time, leave-one-subject-out, balanced accuracy (3 classes: MVC
-> full, 50 % -> half, 20 % and no movement -> invalid; mean +- std over the six held-out subjects),
with three fixed heads (standardised LDA, an RBF SVM at C=1 and a logistic regression at C=1),
given the same descriptors four ways: as they are (subjects unknown); with only the amplitude
descriptors (log total and band energies, Hudgins' log MAV and log WL) centred within
(subject, channel), which tells the head nothing but each subject's mean level per channel;
with every descriptor centred within (subject, channel); and z-scored within (subject, channel),
as ``--normalise subject_muscle`` does. A subject's files are normalised among themselves only, so
no fold sees its held-out subject's labels.

The third table holds what else was tried with subjects unknown, on HHT + time-domain + amplitude
distribution: the descriptors as they are; with the channel's identity (one-hot) beside them;
z-scored per channel with the training subjects' statistics (a reference per channel that needs
nothing of the new subject); the scale-free descriptors alone (the amplitude descriptors left
out); and a head trained on the four levels (rest, 20 %, 50 %, MVC) whose 20 % and rest
predictions count as invalid.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from itertools import product
from pathlib import Path

import numpy as np
from evaluate_recordings import (  # this folder is on sys.path when run as a script
    DEFAULT_CONTRACTION_DIR,
    SAMPLE_BLOCKS,
    Recordings,
    convert,
    gathered,
    log,
    read_recordings,
    samples_of,
)
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.evaluation.scores import balanced_accuracy
from semg_hht.model.feature_sets import block_slices, feature_names

LEVELS = ("rest", "20%", "50%", "MVC")
ACTIVE_STEPS = (("20%", "50%"), ("50%", "MVC"))
SPREAD_DESCRIPTORS = (
    "td_log_mav",
    "log_total_energy",
    "mean_frequency_hz",
    "median_frequency_hz",
    "amp_kurtosis",
    "amp_log_mav_rms_ratio",
)
AMPLITUDE_PREFIXES = ("log_total_energy", "log_band_energy_", "td_log_mav", "td_log_wl")  # absolute, unlike env's
FEATURE_SETS = {
    "Hudgins' log MAV alone": None,
    "HHT descriptors": ("hht",),
    "HHT + amplitude distribution": ("hht", "amp"),
    "HHT + time-domain + amplitude distribution": ("hht", "td", "amp"),
}
HEADS = {
    "LDA": lambda: make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()),
    "SVM C=1": lambda: make_pipeline(StandardScaler(), SVC(C=1.0, gamma="scale")),
    "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
}
WITHOUT_SUBJECTS_SET = "HHT + time-domain + amplitude distribution"
LEVEL_CLASSES = {"MVC": 0, "50%": 1, "20%": 2, "rest": 2}  # a level's class index (evaluate_recordings.CLASSES)


def recording_levels(recordings: Recordings) -> np.ndarray:
    """Each recording's level, one of :data:`LEVELS`: C1 is rest at any level, the others by their file name."""
    named = {"20P": "20%", "50P": "50%", "MVC": "MVC"}
    pairs = zip(recordings.names, recordings.motions, strict=True)
    return np.array(["rest" if motion == "1" else named[name.split("_")[1]] for name, motion in pairs])


def within_subject_steps(values: np.ndarray, subjects, channels, motions, levels) -> dict[tuple[str, str], float]:
    """The mean change of ``values`` from each level of :data:`ACTIVE_STEPS` to the next, over every (subject,
    channel, motion) that has both; all arrays of shape (n,), one entry per matrix."""
    steps = {}
    for lower, higher in ACTIVE_STEPS:
        changes = []
        for subject, channel, motion in product(np.unique(subjects), np.unique(channels), np.unique(motions)):
            cell = (subjects == subject) & (channels == channel) & (motions == motion)
            low, high = values[cell & (levels == lower)], values[cell & (levels == higher)]
            if len(low) and len(high):
                changes.append(high.mean() - low.mean())
        steps[(lower, higher)] = float(np.mean(changes))
    return steps


def between_subject_spread(values: np.ndarray, subjects, channels, motions, levels) -> float:
    """The standard deviation over subjects at a fixed (channel, motion, active level), pooled over those cells:
    the root of the cells' mean variance (ddof 1); cells with fewer than two subjects are left out."""
    variances = []
    active = levels != "rest"
    for channel, motion, level in product(np.unique(channels), np.unique(motions[active]), np.unique(levels[active])):
        cell = (channels == channel) & (motions == motion) & (levels == level)
        per_subject = [values[cell & (subjects == s)].mean() for s in np.unique(subjects[cell])]
        if len(per_subject) > 1:
            variances.append(np.var(per_subject, ddof=1))
    return float(np.sqrt(np.mean(variances)))


def crossing_shares(
    values: np.ndarray, subjects, channels, motions, levels, lower: str, higher: str, direction: float
) -> tuple[float, float]:
    """Of every pair of a ``lower``-level and a ``higher``-level matrix of the same channel and motion, the share in
    which the lower level reads higher in ``direction`` (the sign of the mean step): across subjects, and within one."""
    counts = {True: [0, 0], False: [0, 0]}  # same subject -> [crossings, pairs]
    for channel, motion in product(np.unique(channels), np.unique(motions)):
        cell = (channels == channel) & (motions == motion)
        low, high = np.flatnonzero(cell & (levels == lower)), np.flatnonzero(cell & (levels == higher))
        for i, j in product(low, high):
            tally = counts[bool(subjects[i] == subjects[j])]
            tally[0] += int(direction * (values[i] - values[j]) > 0)
            tally[1] += 1
    return counts[False][0] / counts[False][1], counts[True][0] / counts[True][1]


def centred_within(x: np.ndarray, keys: np.ndarray, columns: np.ndarray, scale: bool = False) -> np.ndarray:
    """``x`` (n, d) with ``columns`` (a boolean mask of d) centred (and with ``scale`` divided by their standard
    deviation, where it is not 0) within each group of ``keys`` (n,)."""
    out = x.copy()
    for key in np.unique(keys):
        rows = keys == key
        block = x[np.ix_(rows, columns)]
        shifted = block - block.mean(axis=0)
        if scale:
            deviation = block.std(axis=0)
            shifted = shifted / np.where(deviation > 0, deviation, 1.0)
        out[np.ix_(rows, columns)] = shifted
    return out


def referred_to_training_channels(x: np.ndarray, channels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``x`` (n, d) z-scored per channel with the mean and standard deviation of that channel's ``train`` rows:
    a reference per channel that uses no subject's own files beyond the training subjects'."""
    out = x.copy()
    for channel in np.unique(channels):
        rows, reference = channels == channel, (channels == channel) & train
        deviation = x[reference].std(axis=0)
        out[rows] = (x[rows] - x[reference].mean(axis=0)) / np.where(deviation > 0, deviation, 1.0)
    return out


def leave_one_subject_out(
    x: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    head: str,
    channels: np.ndarray | None = None,
    levels: np.ndarray | None = None,
) -> list[float]:
    """Each held-out subject's balanced accuracy of ``HEADS[head]`` fitted on the other subjects' rows.

    With ``channels``, each fold refers ``x`` to its training subjects' channels
    (:func:`referred_to_training_channels`); with ``levels``, the head learns the four levels and its
    predictions are scored as their classes (:data:`LEVEL_CLASSES`)."""
    scores = []
    for subject in np.unique(subjects):
        test = subjects == subject
        rows = x if channels is None else referred_to_training_channels(x, channels, ~test)
        target = labels if levels is None else levels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LDA's collinear-variables warning on the log energies
            predicted = HEADS[head]().fit(rows[~test], target[~test]).predict(rows[test])
        if levels is not None:
            predicted = np.array([LEVEL_CLASSES[level] for level in predicted])
        scores.append(balanced_accuracy(labels[test], predicted))
    return scores


def set_columns(names: list[str], set_name: str) -> np.ndarray:
    """The columns of :data:`FEATURE_SETS`' ``set_name`` among the hht+env+td+amp features named ``names``."""
    blocks = FEATURE_SETS[set_name]
    if blocks is None:
        return np.array([names.index("td_log_mav")])
    slices = block_slices(SAMPLE_BLOCKS)
    return np.concatenate([np.arange(slices[b].start, slices[b].stop) for b in blocks])


def is_amplitude(names: list[str], columns: np.ndarray) -> np.ndarray:
    """Which of ``columns`` are absolute amplitude descriptors (:data:`AMPLITUDE_PREFIXES`), as a boolean mask."""
    return np.array([names[i].startswith(AMPLITUDE_PREFIXES) for i in columns])


def spread_table(features: np.ndarray, names: list[str], subjects, channels, motions, levels) -> str:
    """The first table (module docstring): steps, spreads and crossing shares of :data:`SPREAD_DESCRIPTORS`."""
    lines = [
        "| descriptor | within-subject step 20 % -> 50 % | 50 % -> MVC | spread between subjects at one level "
        "| lower level reads higher: 20 % vs 50 %, across subjects / within one | 50 % vs MVC, across / within |",
        "|---|---|---|---|---|---|",
    ]
    for name in SPREAD_DESCRIPTORS:
        values = features[:, names.index(name)]
        steps = within_subject_steps(values, subjects, channels, motions, levels)
        spread = between_subject_spread(values, subjects, channels, motions, levels)
        cells = [f"{name}", *(f"{step:+.3f}" for step in steps.values()), f"{spread:.3f}"]
        for (lower, higher), step in steps.items():
            across, within = crossing_shares(values, subjects, channels, motions, levels, lower, higher, np.sign(step))
            cells.append(f"{across:.2f} / {within:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table(features: np.ndarray, names: list[str], labels, subjects, channels) -> str:
    """The second table (module docstring): each of :data:`FEATURE_SETS` and :data:`HEADS`, four normalisations."""
    keys = np.char.add(np.char.add(subjects.astype(str), "/"), channels.astype(str))
    lines = [
        "| descriptors | head | as they are (subjects unknown) | amplitude centred within subject and channel "
        "| all centred within subject and channel | z-scored within subject and channel (subject_muscle) |",
        "|---|---|---|---|---|---|",
    ]
    for set_name in FEATURE_SETS:
        selected = set_columns(names, set_name)
        x = features[:, selected]
        amplitude = is_amplitude(names, selected)
        variants = (
            x,
            centred_within(x, keys, amplitude),
            centred_within(x, keys, np.ones(len(selected), bool)),
            centred_within(x, keys, np.ones(len(selected), bool), scale=True),
        )
        for head in HEADS:
            cells = []
            for variant in variants:
                scores = leave_one_subject_out(variant, labels, subjects, head)
                cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")
            lines.append(f"| {set_name} | {head} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def without_subjects_table(features: np.ndarray, names: list[str], labels, subjects, channels, levels) -> str:
    """What else was tried one matrix at a time with subjects unknown, on :data:`WITHOUT_SUBJECTS_SET`."""
    selected = set_columns(names, WITHOUT_SUBJECTS_SET)
    x = features[:, selected]
    one_hot = (channels[:, None] == np.unique(channels)[None, :]).astype(float)
    variants = {
        "as they are": (x, {}),
        "with the channel's identity (one-hot)": (np.hstack([x, one_hot]), {}),
        "z-scored per channel with the training subjects' statistics": (x, {"channels": channels}),
        "scale-free descriptors only (no absolute amplitude or energy)": (x[:, ~is_amplitude(names, selected)], {}),
        "trained on the four levels, 20 % and rest predicted as invalid": (x, {"levels": levels}),
    }
    header = f"| {WITHOUT_SUBJECTS_SET}, subjects unknown | " + " | ".join(HEADS) + " |"
    lines = [header, "|---" * (len(HEADS) + 1) + "|"]
    for variant, (rows, options) in variants.items():
        cells = []
        for head in HEADS:
            scores = leave_one_subject_out(rows, labels, subjects, head, **options)
            cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contraction_dir", type=Path, default=DEFAULT_CONTRACTION_DIR, help="the real recordings")
    parser.add_argument("--workers", type=int, default=2, help="conversion processes")
    parser.add_argument("--work_dir", type=Path, help="cache of the matrices (default: temporary)")
    args = parser.parse_args(argv)
    if not any(args.contraction_dir.glob("S*/*.csv")):
        raise SystemExit(f"the contraction-intensity recordings are not present: {args.contraction_dir}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        recordings = read_recordings(args.contraction_dir)
        folder, _ = convert(gathered(args.contraction_dir, work), work, "whole", args.workers)
        samples, _ = samples_of(folder, recordings)
    seconds = time.perf_counter() - started
    log(f"{len(samples.recording)} matrices of {len(recordings.names)} recordings ({seconds:.0f} s)")
    names = list(feature_names(SAMPLE_BLOCKS))
    owners = samples.recording
    subjects, motions = recordings.subjects[owners], recordings.motions[owners]
    levels, labels = recording_levels(recordings)[owners], recordings.labels[owners]
    print(spread_table(samples.features, names, subjects, samples.channel, motions, levels))
    print(
        f"\n{len(samples.recording)} matrices (one per recording and channel) of {len(np.unique(subjects))} subjects; "
        "steps and spreads in the descriptor's unit (log amplitude in natural log, frequencies in Hz)."
    )
    print()
    print(accuracy_table(samples.features, names, labels, subjects, samples.channel))
    print()
    print(without_subjects_table(samples.features, names, labels, subjects, samples.channel, levels))
    print(
        "\nOne matrix at a time, leave-one-subject-out, balanced accuracy (chance 1/3), mean ± std over the held-out "
        "subjects; fixed heads, nothing tuned."
    )
    log(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
