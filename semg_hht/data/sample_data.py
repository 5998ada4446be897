"""A sample data set made the way real data is: simulated raw sEMG through the real HHT.

Each file is one recording simulated by :mod:`semg_hht.data.simulation` (a subject of
the file's gender performing the file's movement; ``fatiguetest`` recordings,
the full movements, carry the spectral compression of fatigue) and turned into
its 256x256 Hilbert spectrum by :func:`semg_hht.hht.spectrum.hilbert_spectrum`. Simulated
subjects contribute several files each, so files of one subject are alike, as
in real data. ``labels.csv`` beside the files names each file's class and
subject; with ``save_signals`` the raw recordings are written too, for
``compute_hht.py``.

Labelled files are named ``MUSCLE_movement_GENDER_###.npz`` (movements
``fatiguetest``, ``half``, ``invalid``), test files ``MUSCLE_test_###.npz``,
recorded by simulated subjects not among the labelled files' subjects, of
random classes; ``labels.csv`` gives every file's gender, movement and
subject (``split`` is ``test`` for the test files). Each file holds ``hht``
(float32, 256x256, mV), ``time``, ``frequency``, ``sampling_rate``, ``duration_s``,
``channel``, ``recording``, ``unit``, ``preprocessing`` and ``td_features``, as
compute_hht.py writes them with its default preprocessing.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semg_hht.classes import GENDERS, MOVEMENTS
from semg_hht.cpus import available_cpus
from semg_hht.data.simulation import Subject, draw_subject, simulate_recording
from semg_hht.defaults import (
    DEFAULT_SAMPLE_TEST_FILES,
    DEFAULT_SAMPLES_PER_CLASS,
    DEFAULT_SEED,
    DEFAULT_SIMULATED_DURATION_S,
    DEFAULT_SIMULATED_FS,
)
from semg_hht.engine import open_engine
from semg_hht.errors import WriteError
from semg_hht.hht.preprocessing import Preprocessing, describe_json, preprocess
from semg_hht.hht.spectrum import frequency_axis, hilbert_spectrum
from semg_hht.hht.time_domain import segment_features
from semg_hht.io.atomic import atomic_open, make_folder
from semg_hht.io.folder_lock import folder_lock
from semg_hht.io.formats.common import UNIT_MV
from semg_hht.io.matrices import MatrixProvenance, write_matrix_file

MUSCLES = ("BICEPS", "TRICEPS", "FOREARM", "DELTOID")
MOVEMENT_FILE_TOKENS = {"full": "fatiguetest", "half": "half", "invalid": "invalid"}
RECORDINGS_PER_SUBJECT_AND_MOVEMENT = 4
SIGNAL_UNIT_SCALE = 1e3  # simulated volts are written and transformed in millivolts
LABELS_FILE = "labels.csv"
SIGNALS_FOLDER = "signals"
FILES_PER_WORKER = 100
"""Files each worker process must have by default: a worker's start (importing NumPy and SciPy,
about 1.5 s) is paid back only after about 150 files of 0.026 s each on one core (measured: 33
files take 2.2 s in one process and 4.3 s with two; 190 files 6.7 s and 5.5 s)."""
FILES_PER_TASK = 8
"""Files one Dask task makes in a row: a task costs a few milliseconds of scheduling, a file about 26 ms."""
SIGNAL_CHANNEL = "ch0"
"""The channel name compute_hht.py gives the one channel of a saved signal."""


@dataclass(frozen=True)
class _Recording:
    """One file to make: where it goes, who records what, and its own random stream."""

    path: Path
    subject_id: str
    subject: Subject
    movement: str
    seed: np.random.SeedSequence
    split: str


@dataclass(frozen=True)
class _Batch:
    """Files one worker makes in a row, with the settings they share."""

    recordings: tuple[_Recording, ...]
    fs: float
    duration_s: float
    signals_dir: Path | None


def _make_batch(batch: _Batch) -> int:
    """Make the batch's files (this runs on a worker); how many."""
    for recording in batch.recordings:
        _make(recording, batch.fs, batch.duration_s, batch.signals_dir)
    return len(batch.recordings)


def _make(recording: _Recording, fs: float, duration_s: float, signals_dir: Path | None) -> None:
    rng = np.random.default_rng(recording.seed)
    signal_mv = simulate_recording(recording.subject, recording.movement, rng, fs, duration_s) * SIGNAL_UNIT_SCALE
    # Preprocessed and stored as compute_hht.py does by default, so the sample files are what converted
    # recordings are (and a model trained on them predicts converted ones).
    settings = Preprocessing()
    conditioned = preprocess(signal_mv, fs, settings)
    write_matrix_file(
        recording.path,
        hilbert_spectrum(conditioned, fs),
        fs,
        frequency_axis(),
        channel=SIGNAL_CHANNEL,
        time_domain=segment_features(conditioned),
        duration_s=duration_s,
        provenance=MatrixProvenance(recording.path.stem, UNIT_MV, describe_json(settings)),
    )
    if signals_dir is not None:
        with atomic_open(signals_dir / recording.path.name) as stream:
            np.savez(stream, signal=signal_mv, fs=np.float64(fs), unit=np.array(UNIT_MV))


def _plan(output_dir: Path, n_samples: int, n_test: int, seed: int) -> list[_Recording]:
    rng = np.random.default_rng(seed)
    seeds = iter(np.random.SeedSequence(seed).spawn(6 * n_samples + n_test))
    subjects_per_gender = math.ceil(n_samples / RECORDINGS_PER_SUBJECT_AND_MOVEMENT)
    subjects = {gender: [draw_subject(gender, rng) for _ in range(subjects_per_gender)] for gender in GENDERS}
    plan = []
    number = 0
    for gender in GENDERS:
        for movement in MOVEMENTS:
            for index in range(n_samples):
                number += 1
                which = index // RECORDINGS_PER_SUBJECT_AND_MOVEMENT
                name = (
                    f"{MUSCLES[(number - 1) % len(MUSCLES)]}_{MOVEMENT_FILE_TOKENS[movement]}_{gender}_{number:03d}.npz"
                )
                subject_id = f"{gender}{which + 1:02d}"
                plan.append(
                    _Recording(output_dir / name, subject_id, subjects[gender][which], movement, next(seeds), "")
                )
    # Test recordings come from subjects never seen in training, of random class.
    for index in range(n_test):
        if index % RECORDINGS_PER_SUBJECT_AND_MOVEMENT == 0:  # true at index 0, so the subject is always set
            gender = str(rng.choice(GENDERS))
            test_id = f"T{index // RECORDINGS_PER_SUBJECT_AND_MOVEMENT + 1:02d}"
            test_subject = draw_subject(gender, rng)
        name = f"{MUSCLES[index % len(MUSCLES)]}_test_{index + 1:03d}.npz"
        movement = str(rng.choice(MOVEMENTS))
        plan.append(_Recording(output_dir / name, test_id, test_subject, movement, next(seeds), "test"))
    return plan


def _write_labels(path: Path, plan: Sequence[_Recording]) -> None:
    with atomic_open(path, "w") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["file", "gender", "movement", "subject", "split"])
        for recording in plan:
            gender = recording.subject.gender
            writer.writerow([recording.path.name, gender, recording.movement, recording.subject_id, recording.split])


def _make_all(
    plan: Sequence[_Recording],
    fs: float,
    duration_s: float,
    signals_dir: Path | None,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Make every planned file; the first write that fails stops the rest (they would fail alike)."""
    batches = [
        _Batch(tuple(plan[start : start + FILES_PER_TASK]), fs, duration_s, signals_dir)
        for start in range(0, len(plan), FILES_PER_TASK)
    ]
    workers = workers or default_workers(len(plan))
    with (
        open_engine(workers, scheduler, len(batches)) as engine,
        tqdm(total=len(plan), desc="Simulating", unit="file", leave=False, disable=None, file=sys.stderr) as progress,
    ):
        if batches:
            folder = plan[0].path.parent
            engine.check_access(str(folder), str(signals_dir or folder))
        for outcome in engine.run(_make_batch, batches, "generate_sample_data"):
            if outcome.exception is not None:
                raise outcome.exception
            if outcome.error is not None:
                raise RuntimeError(f"simulating sample files failed: {outcome.error}")
            progress.update(outcome.value)


def generate_sample_data(
    output_dir: str | os.PathLike,
    n_samples: int = DEFAULT_SAMPLES_PER_CLASS,
    n_test: int = DEFAULT_SAMPLE_TEST_FILES,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
    save_signals: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    fs: float = DEFAULT_SIMULATED_FS,
    duration_s: float = DEFAULT_SIMULATED_DURATION_S,
) -> list[Path]:
    """Write ``6 * n_samples`` labelled files, ``n_test`` test files and ``labels.csv`` into ``output_dir``.

    The files are named and filled as the module docstring says.

    Parameters
    ----------
    save_signals : bool
        Also write each raw recording, in mV, as ``signals/<name>.npz``
        (arrays ``signal``, ``fs`` and ``unit``).
    workers : int, optional
        Worker processes of the local Dask cluster to simulate and transform in (1: this
        process, no cluster); default: :func:`default_workers` (one per 100 files, at most all
        CPU cores). The files do not depend on it.
    scheduler : str, optional
        Address of a running Dask scheduler whose workers do the work instead (they share
        this file system); ``workers`` is then unused.
    fs, duration_s : float
        Sampling rate (Hz) and length (s) of each simulated recording.

    Returns
    -------
    list of Path
        The matrix files written, labelled first.

    Raises
    ------
    FileExistsError
        A file to be written exists and ``overwrite`` is false; nothing is written.
    FolderInUseError
        Another process is writing into ``output_dir``.
    WriteError
        A file cannot be written (a full disk, a read-only folder); the files
        written so far stay, ``labels.csv`` is not written.
    """
    if n_samples < 0 or n_test < 0:
        raise ValueError("n_samples and n_test must not be negative")
    # Absolute: workers may run in another folder, or on another machine that mounts the same file system.
    directory = Path(os.path.abspath(output_dir))
    plan = _plan(directory, n_samples, n_test, seed)
    signals_dir = directory / SIGNALS_FOLDER if save_signals else None
    with folder_lock(directory, "generate_sample_data.py"):
        _refuse_existing(directory, plan, signals_dir, overwrite)
        _write_data_set(directory, plan, fs, duration_s, signals_dir, workers, scheduler)
    return [recording.path for recording in plan]


def default_workers(n_files: int) -> int:
    """Processes to make ``n_files`` files in: one per :data:`FILES_PER_WORKER` files, at most one per CPU core."""
    return max(1, min(available_cpus(), math.ceil(n_files / FILES_PER_WORKER)))


def _write_data_set(
    directory: Path,
    plan: Sequence[_Recording],
    fs: float,
    duration_s: float,
    signals_dir: Path | None,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Make the planned files (and signals), then ``labels.csv``; see :func:`generate_sample_data`."""
    if signals_dir is not None:
        make_folder(signals_dir)
    # Written last, so a labels file is there only when every file it names is.
    (directory / LABELS_FILE).unlink(missing_ok=True)
    try:
        _make_all(plan, fs, duration_s, signals_dir, workers, scheduler)
    except WriteError as error:
        raise error.with_advice(
            f"the data set in {directory} is incomplete and has no {LABELS_FILE}: run again with `overwrite`"
        ) from None
    _write_labels(directory / LABELS_FILE, plan)


def _refuse_existing(directory: Path, plan: Sequence[_Recording], signals_dir: Path | None, overwrite: bool) -> None:
    """Raise :class:`FileExistsError` unless ``overwrite`` or none of the files to write exists."""
    targets = [directory / LABELS_FILE] + [recording.path for recording in plan]
    if signals_dir is not None:
        targets += [signals_dir / recording.path.name for recording in plan]
    existing = [path for path in targets if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{len(existing)} files already exist in {directory} (e.g. {existing[0].name}); "
            "use another folder or `overwrite`"
        )
