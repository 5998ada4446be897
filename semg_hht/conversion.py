"""Converting raw recordings into HHT matrix files: segmenting, transforming, writing, in parallel.

Each recording (see :mod:`semg_hht.recordings` for the formats) gives one channel; without a
window the whole channel is one segment, otherwise it is cut into windows of ``window`` seconds
starting every ``hop`` seconds, and a trailing part shorter than a window is dropped. Each
segment becomes one ``.npz`` file in the output folder:

========================  ===============  ==================================================
array                     shape, dtype     meaning
========================  ===============  ==================================================
``hht``                   (256, 256) f4    the Hilbert spectrum (:func:`semg_hht.hht.hilbert_spectrum`)
``time``                  (256,) f8        normalised time of each column, 0..1
``frequency``             (256,) f8        frequency of each row in Hz
``sampling_rate``         () f8            of the recording, Hz
``segment_index``         () i8            0-based index of the segment in its recording
``segment_start_s``       () f8            where the segment starts in the recording, s
``td_features``           (4,) f8          the raw segment's Hudgins time-domain features
                                           ``log_mav, log_wl, zc, ssc``
                                           (:func:`semg_hht.time_domain.hudgins_features`)
========================  ===============  ==================================================

named ``<input stem>.npz``, or ``<input stem>_seg<NNN>.npz`` when windowing, so the label in the
input's name carries over. Files are written atomically and an existing one is never replaced
without ``overwrite``.

Files are read and transformed by a pool of processes; a long recording's segments are shared
out among the processes too. Each segment's noise (for the ensemble methods) is seeded from the
seed, the file's name and the segment's index, so the matrices do not depend on the number of
processes.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
import zlib
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import EXIT_OK, EXIT_PARTIAL, EXIT_WRITE_FAILED, UsageError, WriteError
from .figures import save_spectrum
from .folder_lock import folder_lock
from .hht import (
    DEFAULT_ENSEMBLES,
    DEFAULT_F_MAX,
    DEFAULT_F_MIN,
    DEFAULT_N_FREQ,
    MIN_SAMPLES,
    HHTInputError,
    frequency_axis,
    hilbert_spectrum,
)
from .matrices import display_name, printable_path, write_matrix_file
from .recordings import RATELESS_EXTENSIONS, SUPPORTED_EXTENSIONS, RecordingError, channel, extension, read_recording
from .time_domain import hudgins_features

FILES_IN_FLIGHT_PER_WORKER = 2
"""Files read ahead per worker: enough to keep every worker busy, few enough to bound memory."""


@dataclass(frozen=True)
class ConversionOptions:
    """The settings of one conversion run, named as ``compute_hht.py``'s flags.

    Times are in seconds, frequencies and ``fs`` in Hz; ``workers=None`` means one per CPU.
    """

    input: str
    output_dir: str
    fs: float | None = None
    channel: int = 0
    window: float | None = None
    hop: float | None = None
    method: str = "emd"
    ensembles: int = DEFAULT_ENSEMBLES
    f_min: float = DEFAULT_F_MIN
    f_max: float = DEFAULT_F_MAX
    quantity: str = "amplitude"
    log: bool = False
    seed: int = 42
    workers: int | None = None
    overwrite: bool = False
    png: bool = False


@dataclass(frozen=True)
class _Source:
    """One input file and the stem of its outputs."""

    path: Path
    stem: str


@dataclass(frozen=True)
class _Segments:
    """Consecutive segments of a recording's channel, each ``length`` samples long.

    ``signal`` holds the channel from sample ``offset`` on; segment ``first_index + k`` starts
    at sample ``starts[k]`` of the recording.
    """

    signal: np.ndarray
    fs: float
    length: int
    starts: np.ndarray
    offset: int = 0
    first_index: int = 0

    def split(self, n_chunks: int) -> list[_Segments]:
        """Cut into up to ``n_chunks`` runs of segments, each holding only the samples it needs."""
        chunks = []
        for positions in np.array_split(np.arange(self.starts.size), min(n_chunks, self.starts.size)):
            starts = self.starts[positions]
            first, end = int(starts[0]), int(starts[-1]) + self.length
            chunk_signal = self.signal[first - self.offset : end - self.offset]
            chunks.append(_Segments(chunk_signal, self.fs, self.length, starts, first, int(positions[0])))
        return chunks


@dataclass
class _ChunkResult:
    """What transforming some segments of a file did."""

    written: int = 0
    segment_errors: list[tuple[int, str]] = field(default_factory=list)
    write_error: tuple[int, str, bool] | None = None  # segment, message, whether the storage is at fault
    """The segment whose file could not be written, and why; the chunk's later segments were not tried."""


@dataclass
class _FileState:
    """Progress of one file through the pool."""

    source: _Source
    chunks_left: int = 0
    written: int = 0
    segment_errors: list[tuple[int, str]] = field(default_factory=list)
    write_errors: list[tuple[int, str, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Summary:
    files: int = 0
    converted: int = 0
    matrices: int = 0
    failed_files: int = 0
    failed_segments: int = 0
    unwritten_files: int = 0


# --- checks before any data is read ---------------------------------------------------------


def check_options(options: ConversionOptions) -> None:
    """Refuse invalid flag values with a :class:`UsageError`, before anything is read."""

    def positive(flag: str, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{flag} must be a positive number; got {value}")

    positive("fs", options.fs)
    positive("window", options.window)
    positive("hop", options.hop)
    if options.hop is not None and options.window is None:
        raise UsageError("--hop needs --window")
    if options.channel < 0:
        raise UsageError(f"--channel must be 0 or more; got {options.channel}")
    if options.workers is not None and options.workers < 1:
        raise UsageError(f"--workers must be at least 1; got {options.workers}")
    if options.ensembles < 1:
        raise UsageError(f"--ensembles must be at least 1; got {options.ensembles}")
    if options.seed < 0:
        raise UsageError(f"--seed must be 0 or more; got {options.seed}")
    if options.method not in ("emd", "eemd", "ceemdan"):
        raise UsageError(f"--method must be emd, eemd or ceemdan; got {options.method}")
    if options.quantity not in ("amplitude", "power"):
        raise UsageError(f"--quantity must be amplitude or power; got {options.quantity}")
    try:
        frequency_axis(DEFAULT_N_FREQ, options.f_min, options.f_max)
    except HHTInputError:
        raise UsageError(f"need 0 <= --f_min < --f_max; got {options.f_min:g} and {options.f_max:g} Hz") from None
    if options.fs is not None:
        # A rate no file could use is a bad flag, not a bad file.
        problem = _rate_problem(options, options.fs)
        if problem:
            raise UsageError(f"--fs {options.fs:g}: {problem}")


def _rate_problem(options: ConversionOptions, fs: float) -> str | None:
    """Why a recording sampled at ``fs`` Hz cannot be converted with ``options``; None if it can."""
    if options.f_max >= fs / 2:
        return (
            f"a sampling rate of {fs:g} Hz is too low for --f_max {options.f_max:g} Hz "
            f"(needs more than {2 * options.f_max:g} Hz)"
        )
    if options.window is not None:
        length, hop = _segment_samples(options.window, options.hop, fs)
        if length < MIN_SAMPLES:
            return f"--window {options.window:g} s is {length} samples at {fs:g} Hz; at least {MIN_SAMPLES} are needed"
        if hop < 1:
            return f"--hop {options.hop:g} s is less than one sample at {fs:g} Hz"
    return None


def _segment_samples(window: float, hop: float | None, fs: float) -> tuple[int, int]:
    """Window and hop (s; the hop defaults to the window) in samples at ``fs`` Hz."""
    length = round(window * fs)
    return length, (length if hop is None else round(hop * fs))


def _inputs(options: ConversionOptions) -> tuple[list[Path], Counter[str]]:
    """The recordings ``--input`` names, sorted, and the other files of a folder by extension."""
    path = options.input
    if os.path.isdir(path):
        recordings, ignored = [], Counter()
        with os.scandir(path) as entries:
            for entry in entries:
                suffix = extension(entry.name)
                if suffix in SUPPORTED_EXTENSIONS:
                    recordings.append(Path(path) / entry.name)
                elif not entry.is_dir():
                    ignored[suffix or "(no extension)"] += 1
        if not recordings:
            others = f" ({_ignored_text(ignored)})" if ignored else ""
            raise UsageError(f"No {', '.join(SUPPORTED_EXTENSIONS)} files in {printable_path(path)}{others}")
        return sorted(recordings), ignored
    if not os.path.lexists(path):
        raise UsageError(f"Input not found: {printable_path(path)}")
    if extension(path) not in SUPPORTED_EXTENSIONS:
        raise UsageError(f"--input {printable_path(path)}: not a {', '.join(SUPPORTED_EXTENSIONS)} file")
    return [Path(path)], Counter()


def _ignored_text(ignored: Counter[str]) -> str:
    count = sum(ignored.values())
    return f"ignored {count} file{'s' if count != 1 else ''} with other extensions: {', '.join(sorted(ignored))}"


def _check_output_dir(options: ConversionOptions, inputs: list[Path]) -> None:
    """Refuse an output folder whose outputs could replace inputs."""
    output = os.path.realpath(options.output_dir)
    if os.path.isdir(options.input):
        if output == os.path.realpath(options.input):
            raise UsageError("--output_dir must not be the input folder: its recordings could be overwritten")
    elif extension(inputs[0]) == ".npz" and output == os.path.realpath(inputs[0].parent):
        raise UsageError("--output_dir must not be the folder of an .npz input: the input could be overwritten")


def _plan(options: ConversionOptions, inputs: list[Path]) -> tuple[list[_Source], list[tuple[Path, str]]]:
    """The inputs to convert, and those refused without reading them (with the reason)."""
    rateless = [path for path in inputs if extension(path) in RATELESS_EXTENSIONS]
    if options.fs is None and rateless and (len(rateless) == len(inputs) or not os.path.isdir(options.input)):
        raise UsageError("--fs is required: .csv and .npy files carry no sampling rate")
    sources, refused = [], []
    # Compared ignoring case: on macOS and Windows file systems a.npz and A.npz are one file.
    owners: dict[str, Path] = {}
    for path in inputs:
        stem = path.stem
        if options.fs is None and extension(path) in RATELESS_EXTENSIONS:
            refused.append((path, f"needs --fs: {extension(path)} files carry no sampling rate"))
        elif stem.casefold() in owners:
            first = owners[stem.casefold()]
            reason = f"not converted: its outputs would have the same names as those of {display_name(first)}"
            refused.append((path, reason))
        else:
            owners[stem.casefold()] = path
            sources.append(_Source(path, stem))
    return sources, refused


# --- work done in the worker processes -------------------------------------------------------


def _output_name(stem: str, index: int, windowed: bool) -> str:
    return f"{stem}_seg{index:03d}.npz" if windowed else f"{stem}.npz"


def _segment_seed(seed: int, name: str, index: int) -> int:
    """The noise seed of one segment: from the run's seed, the file's name and the segment's index."""
    entropy = [seed, zlib.crc32(os.fsencode(name)), index]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _load_segments(source: _Source, options: ConversionOptions) -> _Segments | str:
    """Read a recording and plan its segments; the reason as text if the file cannot be used."""
    try:
        recording = read_recording(source.path)
        emg = channel(recording, options.channel)
    except RecordingError as error:
        return error.reason
    except ValueError as error:
        return str(error)
    fs = recording.fs if recording.fs is not None else options.fs
    if fs is None:
        return "the file holds no sampling rate ('fs' or 'sampling_rate'); give --fs"
    problem = _rate_problem(options, fs)
    if problem:
        return problem
    n = emg.size
    if options.window is None:
        length, hop = n, n
        if n < MIN_SAMPLES:
            return f"the recording has {n} samples; at least {MIN_SAMPLES} are needed"
    else:
        length, hop = _segment_samples(options.window, options.hop, fs)
        if n < length:
            return f"the recording is {n / fs:g} s ({n} samples), shorter than one --window of {options.window:g} s"
    if np.ptp(emg) == 0:
        what = "all zero" if emg[0] == 0 else f"constant ({emg[0]:g})"
        return f"channel {options.channel} is {what}: there is nothing to decompose"
    starts = np.arange(0, n - length + 1, hop)
    if not options.overwrite:
        windowed = options.window is not None
        names = [_output_name(source.stem, index, windowed) for index in range(starts.size)]
        if options.png:
            names += [str(Path(name).with_suffix(".png")) for name in names]
        existing = [printable_path(name) for name in names if os.path.lexists(Path(options.output_dir) / name)]
        if len(names) == 1 and existing:
            return f"its output {existing[0]} exists already; use --overwrite to replace it"
        if existing:
            return (
                f"{len(existing)} of its {len(names)} outputs exist already ({existing[0]}, ...); "
                "use --overwrite to replace them"
            )
    return _Segments(emg, fs, length, starts)


def _spectrum(segment: np.ndarray, fs: float, options: ConversionOptions, seed: int) -> np.ndarray:
    """The (256, 256) float32 Hilbert spectrum of one segment, checked to be finite."""
    # Samples near the float64 limits overflow inside the transform; that is reported as such.
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = hilbert_spectrum(
            segment,
            fs,
            f_min=options.f_min,
            f_max=options.f_max,
            quantity=options.quantity,
            log=options.log,
            method=options.method,
            ensembles=options.ensembles,
            seed=seed,
        )
    if not np.isfinite(matrix).all():
        raise HHTInputError("the values are too large: the spectrum overflows float32")
    return matrix


def _convert_segments(source: _Source, options: ConversionOptions, segments: _Segments) -> _ChunkResult:
    """Transform the segments of one recording and write a matrix file for each."""
    result = _ChunkResult()
    windowed = options.window is not None
    frequency = frequency_axis(DEFAULT_N_FREQ, options.f_min, options.f_max)
    for index, start in enumerate(segments.starts.tolist(), start=segments.first_index):
        begin = start - segments.offset
        segment = segments.signal[begin : begin + segments.length]
        try:
            matrix = _spectrum(segment, segments.fs, options, _segment_seed(options.seed, source.path.name, index))
        except HHTInputError as error:
            result.segment_errors.append((index, str(error)))
            continue
        # The transform has refused what these features would (non-finite, constant, too short).
        time_domain = hudgins_features(segment)
        path = Path(options.output_dir) / _output_name(source.stem, index, windowed)
        try:
            write_matrix_file(
                path,
                matrix,
                segments.fs,
                frequency,
                index,
                start / segments.fs,
                time_domain=time_domain,
                duration_s=segments.length / segments.fs,
            )
            if options.png:
                quantity = f"log(1 + {options.quantity})" if options.log else options.quantity
                title = f"{path.name} (from {start / segments.fs:g} s)"
                save_spectrum(
                    path.with_suffix(".png"), matrix, frequency, segments.length / segments.fs, title, quantity
                )
        except WriteError as error:
            # The next writes would fail the same way (disk full, read-only, name too long): stop here.
            result.write_error = (index, f"cannot write {display_name(path)}: {error.reason}", error.is_storage_fault)
            break
        result.written += 1
    return result


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the main process alone handles it (and ends the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _InProcessExecutor(Executor):
    """Runs each task when it is submitted, in this process: ``--workers 1``."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


# --- the run ---------------------------------------------------------------------------------


def run_conversion(options: ConversionOptions) -> int:
    """Convert the recordings ``options.input`` names into matrix files in ``options.output_dir``.

    Prints the settings and a summary to stdout, a progress bar and one line per failed file or
    segment to stderr.

    Returns
    -------
    int
        The exit code: 0 everything converted, 1 some files or segments failed (the rest are
        written), 4 the outputs of some files could not be written (a full disk, a read-only
        folder; each named).

    Raises
    ------
    FolderInUseError
        Another run is writing into the output folder (it is locked for the whole conversion).
    WriteError
        The output folder cannot be created or written.
    UsageError
        Invalid flags, no input, no supported files, an output folder that could replace inputs,
        or ``--fs`` missing where every input needs it.
    """
    check_options(options)
    inputs, ignored = _inputs(options)
    _check_output_dir(options, inputs)
    with folder_lock(options.output_dir, "compute_hht.py"):
        return _convert_in_locked_folder(options, inputs, ignored)


def _convert_in_locked_folder(options: ConversionOptions, inputs: list[Path], ignored: Counter[str]) -> int:
    sources, refused = _plan(options, inputs)
    workers = options.workers or os.cpu_count() or 1
    if options.window is None or not sources:
        # Each file is one task: more workers than files would only cost their start-up time.
        workers = max(1, min(workers, len(sources)))

    print(f"Input: {printable_path(options.input)} ({len(inputs)} recording{'s' if len(inputs) != 1 else ''})")
    if ignored:
        print(_ignored_text(ignored).capitalize())
    print(f"Output directory: {printable_path(options.output_dir)}")
    hop = options.hop or options.window
    segmenting = "whole recordings" if options.window is None else f"--window {options.window:g} s, --hop {hop:g} s"
    print(
        f"Transform: {options.method}, {options.f_min:g}-{options.f_max:g} Hz, {options.quantity}"
        f"{', log' if options.log else ''}; {segmenting}; {workers} worker{'s' if workers != 1 else ''}"
    )

    summary = _Summary(files=len(inputs), failed_files=len(refused))
    for path, reason in refused:
        print(f"Error: {printable_path(path)}: {reason}", file=sys.stderr)
    started = time.perf_counter()
    if workers == 1:
        _convert_all(sources, options, _InProcessExecutor(), 1, summary)
    else:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)
        # The pool starts a worker per task submitted while none is idle, and a worker takes about a
        # second to import numpy and scipy: start them all now, together, rather than one by one
        # as a long recording's segments arrive.
        for _ in range(workers):
            pool.submit(int)
        try:
            _convert_all(sources, options, pool, workers, summary)
        except KeyboardInterrupt:
            # Workers ignore Ctrl-C; without this the pool would finish its running files first.
            pool.shutdown(wait=False, cancel_futures=True)
            for process in multiprocessing.active_children():
                process.terminate()
            raise
        pool.shutdown()

    elapsed = time.perf_counter() - started
    print(
        f"\nConverted {summary.converted} of {summary.files} file{'s' if summary.files != 1 else ''}: "
        f"{summary.matrices} matri{'ces' if summary.matrices != 1 else 'x'} written in {elapsed:.1f} s"
    )
    if summary.failed_files or summary.failed_segments:
        print(f"Failed: {summary.failed_files} file(s), {summary.failed_segments} segment(s) (each reported on stderr)")
    if summary.unwritten_files:
        print(
            f"Error: the outputs of {summary.unwritten_files} file(s) could not be written (reasons above)",
            file=sys.stderr,
        )
        return EXIT_WRITE_FAILED
    return EXIT_PARTIAL if summary.failed_files or summary.failed_segments else EXIT_OK


def _convert_all(
    sources: list[_Source], options: ConversionOptions, pool: Executor, workers: int, summary: _Summary
) -> None:
    """Read each file, then transform its segments in chunks, keeping every worker busy."""
    waiting = deque(sources)
    # A future's file, and whether the future reads it (else it converts a chunk of it).
    running: dict[Future, tuple[_FileState, bool]] = {}
    open_files = 0
    with tqdm(total=len(sources), desc="Converting", unit="file", leave=False, file=sys.stderr) as progress:
        while waiting or running:
            while waiting and open_files < FILES_IN_FLIGHT_PER_WORKER * workers:
                state = _FileState(waiting.popleft())
                running[pool.submit(_load_segments, state.source, options)] = (state, True)
                open_files += 1
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                state, is_read = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # a worker that died (out of memory) or a bug
                    outcome = f"the conversion failed ({type(error).__name__}: {error})"
                if isinstance(outcome, str):
                    state.errors.append(outcome)
                elif is_read:
                    for chunk in outcome.split(workers):
                        running[pool.submit(_convert_segments, state.source, options, chunk)] = (state, False)
                        state.chunks_left += 1
                else:
                    state.written += outcome.written
                    state.segment_errors += outcome.segment_errors
                    state.write_errors += [outcome.write_error] if outcome.write_error else []
                if not is_read:
                    state.chunks_left -= 1
                if state.chunks_left == 0:
                    _finish(state, options, summary)
                    open_files -= 1
                    progress.update(1)


def _finish(state: _FileState, options: ConversionOptions, summary: _Summary) -> None:
    """Report a file's errors and count it."""
    name = printable_path(state.source.path)
    summary.matrices += state.written
    if state.write_errors:
        # Every chunk of the file may have failed the same way (disk full, read-only): report the first.
        _, reason, is_storage_fault = min(state.write_errors)
        state.errors.append(reason)
        summary.unwritten_files += is_storage_fault
    segment_errors = sorted(state.segment_errors)
    if options.window is None:
        # The whole recording is the one segment: its failure is the file's.
        state.errors += [reason for _, reason in segment_errors]
        segment_errors = []
    for index, reason in segment_errors:
        tqdm.write(f"Error: {name}: segment {index}: {reason}", file=sys.stderr)
    for reason in state.errors:
        tqdm.write(f"Error: {name}: {reason}", file=sys.stderr)
    summary.failed_segments += len(segment_errors)
    if state.errors:
        summary.failed_files += 1
    elif state.written:
        summary.converted += 1
