"""Converting raw recordings into HHT matrix files: channels, preprocessing, segmenting, transforming, writing.

Each recording (see :mod:`semg_hht.io.recordings` for the formats) gives the channels ``channel``
chooses (:class:`~semg_hht.io.recordings.ChannelSelection`); each channel is preprocessed whole
(:mod:`semg_hht.hht.preprocessing`), then, without a window, is one segment, otherwise it is cut
into windows of ``window`` seconds starting every ``hop`` seconds, and a trailing part shorter
than a window is dropped. Each segment becomes one ``.npz`` file in the output folder:

========================  ===============  ==================================================
array                     shape, dtype     meaning
========================  ===============  ==================================================
``hht``                   (256, 256) f4    the Hilbert spectrum (:func:`semg_hht.hht.spectrum.hilbert_spectrum`)
``time``                  (256,) f8        normalised time of each column, 0..1
``frequency``             (256,) f8        frequency of each row in Hz
``sampling_rate``         () f8            of the channel, Hz
``segment_index``         () i8            0-based index of the segment in its recording
``segment_start_s``       () f8            where the segment starts in the recording, s
``duration_s``            () f8            the segment's length, s
``channel``               () text          the channel's name as the file labels it
``recording``             () text          the input's stem: shared by its channels and windows
``unit``                  () text          of the signal transformed (``mV`` for voltages)
``preprocessing``         () text          JSON: what was done before the transform
``td_features``           (4,) f8          the preprocessed segment's Hudgins time-domain
                                           features ``log_mav, log_wl, zc, ssc``
                                           (:func:`semg_hht.hht.time_domain.hudgins_features`)
========================  ===============  ==================================================

named ``<input stem>.npz``, or ``<input stem>_seg<NNN>.npz`` when windowing; with several
channels chosen (``all`` or a list), ``<input stem>_<channel tag>[_seg<NNN>].npz``. The label
in the input's name carries over. Files are written atomically and an existing one is never
replaced without ``overwrite``.

Files are read and transformed by a pool of processes; a long recording's segments, and a
recording's channels, are shared out among the processes too. Each segment's noise (for the
ensemble methods) is seeded from the seed, the output's name and the segment's index, so the
matrices do not depend on the number of processes.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
import time
import zlib
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semg_hht.defaults import (
    DEFAULT_BANDPASS,
    DEFAULT_CHANNEL,
    DEFAULT_ENSEMBLES,
    DEFAULT_F_MAX,
    DEFAULT_F_MIN,
    DEFAULT_HHT_METHOD,
    DEFAULT_NOTCH,
    DEFAULT_REMOVE_MEAN,
    DEFAULT_SEED,
    DEFAULT_SPECTRUM_QUANTITY,
    HHT_METHODS,
    SPECTRUM_QUANTITIES,
)
from semg_hht.errors import EXIT_OK, EXIT_PARTIAL, EXIT_WRITE_FAILED, UsageError, WriteError
from semg_hht.hht.preprocessing import Preprocessing, describe_json, preprocess
from semg_hht.hht.spectrum import (
    DEFAULT_N_FREQ,
    MIN_SAMPLES,
    HHTInputError,
    Method,
    Quantity,
    frequency_axis,
    hilbert_spectrum,
)
from semg_hht.hht.time_domain import hudgins_features
from semg_hht.io.figures import save_spectrum
from semg_hht.io.folder_lock import folder_lock
from semg_hht.io.matrices import MatrixProvenance, display_name, printable_path, write_matrix_file
from semg_hht.io.recordings import (
    SUPPORTED_EXTENSIONS,
    ChannelSelection,
    RecordedChannel,
    RecordingError,
    carries_rate,
    describe_recording,
    extension,
    finite_signal,
    output_tags,
    read_recording,
    select_channels,
)
from semg_hht.logs import TO_STDERR

logger = logging.getLogger(__name__)

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
    channel: str = DEFAULT_CHANNEL
    window: float | None = None
    hop: float | None = None
    method: Method = DEFAULT_HHT_METHOD
    ensembles: int = DEFAULT_ENSEMBLES
    f_min: float = DEFAULT_F_MIN
    f_max: float = DEFAULT_F_MAX
    quantity: Quantity = DEFAULT_SPECTRUM_QUANTITY
    log: bool = False
    seed: int = DEFAULT_SEED
    workers: int | None = None
    overwrite: bool = False
    png: bool = False
    remove_mean: bool = DEFAULT_REMOVE_MEAN
    bandpass: tuple[float, float] | None = DEFAULT_BANDPASS
    notch: float | None = DEFAULT_NOTCH

    @property
    def channels(self) -> ChannelSelection:
        return ChannelSelection.parse(self.channel)

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.remove_mean, self.bandpass, self.notch)


@dataclass(frozen=True)
class _Source:
    """One input file and the stem of its outputs."""

    path: Path
    stem: str


@dataclass(frozen=True)
class _Segments:
    """Consecutive segments of one channel of a recording, each ``length`` samples long.

    ``signal`` holds the preprocessed channel from sample ``offset`` on; segment
    ``first_index + k`` starts at sample ``starts[k]`` of the recording. Its outputs are named
    ``stem`` (``<input stem>`` or ``<input stem>_<channel tag>``) and ``_segNNN`` when windowing.
    ``position`` orders the file's channels in messages; ``label`` names the channel in them
    (empty for a file converted from one channel). ``dead`` gives the segments that were flat
    before filtering (a detached electrode), by index, with the reason: filtering would leave
    only its ringing there, which is not a recording.
    """

    signal: np.ndarray
    fs: float
    length: int
    starts: np.ndarray
    stem: str
    channel: str
    unit: str | None
    position: int = 0
    label: str = ""
    dead: dict[int, str] = field(default_factory=dict)
    offset: int = 0
    first_index: int = 0

    def split(self, n_chunks: int) -> list[_Segments]:
        """Cut into up to ``n_chunks`` runs of segments, each holding only the samples it needs."""
        chunks = []
        for positions in np.array_split(np.arange(self.starts.size), min(n_chunks, self.starts.size)):
            starts = self.starts[positions]
            first, end = int(starts[0]), int(starts[-1]) + self.length
            chunk_signal = self.signal[first - self.offset : end - self.offset]
            chunks.append(
                replace(self, signal=chunk_signal, starts=starts, offset=first, first_index=int(positions[0]))
            )
        return chunks


@dataclass(frozen=True)
class _Loaded:
    """A read recording: the segments of each usable chosen channel, the chosen channels that are not, and notes."""

    channels: list[_Segments]
    channel_errors: list[str]
    notes: list[str]


@dataclass
class _ChunkResult:
    """What transforming some segments of a file did."""

    written: int = 0
    segment_errors: list[tuple[tuple[int, int], str, str]] = field(default_factory=list)  # where, label, reason
    write_error: tuple[tuple[int, int], str, bool] | None = None  # where, message, whether the storage is at fault
    """The segment whose file could not be written, and why; the chunk's later segments were not tried."""


@dataclass
class _FileState:
    """Progress of one file through the pool."""

    source: _Source
    chunks_left: int = 0
    written: int = 0
    segment_errors: list[tuple[tuple[int, int], str, str]] = field(default_factory=list)
    write_errors: list[tuple[tuple[int, int], str, bool]] = field(default_factory=list)
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


def run_listing(input_path: str) -> int:
    """``compute_hht.py --list``: log each recording's channels (stdout); an unreadable file is named on stderr.

    Returns 0, or 1 when some files could not be read.
    """
    paths, _ = _inputs(input_path)
    failed = 0
    for path in paths:
        try:
            logger.info(describe_recording(path, read_recording(path)))
        except RecordingError as error:
            logger.error(str(error))
            failed += 1
    return EXIT_PARTIAL if failed else EXIT_OK


def check_options(options: ConversionOptions) -> None:
    """Refuse invalid flag values with a :class:`UsageError`, before anything is read."""

    def positive(flag: str, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"`{flag}` must be a positive number; got {value}")

    positive("fs", options.fs)
    positive("window", options.window)
    positive("hop", options.hop)
    if options.hop is not None and options.window is None:
        raise UsageError("`hop` needs `window`")
    try:
        options.channels  # noqa: B018 - parsed here to refuse a bad value before anything is read
        options.preprocessing  # noqa: B018
    except ValueError as error:
        raise UsageError(str(error)) from None
    if options.workers is not None and options.workers < 1:
        raise UsageError(f"`workers` must be at least 1; got {options.workers}")
    if options.ensembles < 1:
        raise UsageError(f"`ensembles` must be at least 1; got {options.ensembles}")
    if options.seed < 0:
        raise UsageError(f"`seed` must be 0 or more; got {options.seed}")
    if options.method not in HHT_METHODS:
        raise UsageError(f"`method` must be {_one_of(HHT_METHODS)}; got {options.method}")
    if options.quantity not in SPECTRUM_QUANTITIES:
        raise UsageError(f"`quantity` must be {_one_of(SPECTRUM_QUANTITIES)}; got {options.quantity}")
    try:
        frequency_axis(DEFAULT_N_FREQ, options.f_min, options.f_max)
    except HHTInputError:
        raise UsageError(f"need 0 <= `f_min` < `f_max`; got {options.f_min:g} and {options.f_max:g} Hz") from None
    if options.fs is not None:
        # A rate no file could use is a bad flag, not a bad file.
        problem = _rate_problem(options, options.fs)
        if problem:
            raise UsageError(f"`fs` {options.fs:g}: {problem}")


def _one_of(choices: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` as ``a, b or c``."""
    return ", ".join(choices[:-1]) + " or " + choices[-1]


def _rate_problem(options: ConversionOptions, fs: float) -> str | None:
    """Why a recording sampled at ``fs`` Hz cannot be converted with ``options``; None if it can."""
    if options.f_max >= fs / 2:
        return (
            f"a sampling rate of {fs:g} Hz is too low for `f_max` {options.f_max:g} Hz "
            f"(needs more than {2 * options.f_max:g} Hz)"
        )
    problem = options.preprocessing.rate_problem(fs)
    if problem:
        return problem + "; lower `bandpass` or give `bandpass` none"
    if options.window is not None:
        length, hop = _segment_samples(options.window, options.hop, fs)
        if length < MIN_SAMPLES:
            return f"`window` {options.window:g} s is {length} samples at {fs:g} Hz; at least {MIN_SAMPLES} are needed"
        if hop < 1:
            return f"`hop` {options.hop:g} s is less than one sample at {fs:g} Hz"
    return None


def _segment_samples(window: float, hop: float | None, fs: float) -> tuple[int, int]:
    """Window and hop (s; the hop defaults to the window) in samples at ``fs`` Hz."""
    length = round(window * fs)
    return length, (length if hop is None else round(hop * fs))


def _inputs(path: str) -> tuple[list[Path], Counter[str]]:
    """The recordings ``input`` names, sorted, and the other files of a folder by extension."""
    if os.path.isdir(path):
        recordings: list[Path] = []
        ignored: Counter[str] = Counter()
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
        raise UsageError(f"`input` {printable_path(path)}: not a {', '.join(SUPPORTED_EXTENSIONS)} file")
    return [Path(path)], Counter()


def _ignored_text(ignored: Counter[str]) -> str:
    count = sum(ignored.values())
    return f"ignored {count} file{'s' if count != 1 else ''} with other extensions: {', '.join(sorted(ignored))}"


def _check_output_dir(options: ConversionOptions, inputs: list[Path]) -> None:
    """Refuse an output folder whose outputs could replace inputs."""
    output = os.path.realpath(options.output_dir)
    if os.path.isdir(options.input):
        if output == os.path.realpath(options.input):
            raise UsageError("`output_dir` must not be the input folder: its recordings could be overwritten")
    elif extension(inputs[0]) == ".npz" and output == os.path.realpath(inputs[0].parent):
        raise UsageError("`output_dir` must not be the folder of an .npz input: the input could be overwritten")


def _plan(options: ConversionOptions, inputs: list[Path]) -> tuple[list[_Source], list[tuple[Path, str]]]:
    """The inputs to convert, and those refused without reading them (with the reason)."""
    rateless = {path for path in inputs if options.fs is None and not carries_rate(path)}
    if rateless and (len(rateless) == len(inputs) or not os.path.isdir(options.input)):
        raise UsageError("`fs` is required: .npy files and plain .csv or .txt tables carry no sampling rate")
    sources, refused = [], []
    # Compared ignoring case: on macOS and Windows file systems a.npz and A.npz are one file.
    owners: dict[str, Path] = {}
    for path in inputs:
        stem = path.stem
        if path in rateless:
            refused.append((path, f"needs `fs`: {extension(path)} files carry no sampling rate"))
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
    """The noise seed of one segment: from the run's seed, the output's name and the segment's index."""
    entropy = [seed, zlib.crc32(os.fsencode(name)), index]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _load_segments(source: _Source, options: ConversionOptions) -> _Loaded | str:
    """Read a recording, preprocess its chosen channels and plan their segments; the reason as text if it fails."""
    try:
        recording = read_recording(source.path)
        indices, notes = select_channels(recording, options.channels)
    except RecordingError as error:
        return error.reason
    except ValueError as error:
        return str(error)
    named = options.channels.names_outputs
    tags = output_tags(recording, indices)
    loaded = _Loaded([], [], notes)
    for position, (index, tag) in enumerate(zip(indices, tags, strict=True)):
        channel = recording.channels[index]
        stem = f"{source.stem}_{tag}" if named else source.stem
        label = f"channel {channel.name!r}: " if named else ""
        planned = _plan_channel(channel, options, stem, recording.format)
        if isinstance(planned, str):
            loaded.channel_errors.append(label + planned)
            continue
        signal, fs, length, starts, dead = planned
        loaded.channels.append(
            _Segments(signal, fs, length, starts, stem, channel.name, channel.unit, position, label, dead)
        )
    if not loaded.channels and loaded.channel_errors and not named:
        return loaded.channel_errors[0]
    return loaded


def _plan_channel(
    channel: RecordedChannel, options: ConversionOptions, stem: str, file_format: str
) -> tuple[np.ndarray, float, int, np.ndarray, dict[int, str]] | str:
    """(preprocessed signal, rate, segment length, segment starts, dead segments) of one channel, or why it cannot
    be converted."""
    try:
        emg = finite_signal(channel)
    except ValueError as error:
        return str(error)
    fs = channel.fs if channel.fs is not None else options.fs
    if fs is None:
        keys = " ('fs' or 'sampling_rate')" if file_format == "NumPy .npz" else ""
        return f"the file holds no sampling rate{keys}; give `fs`"
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
            return f"the recording is {n / fs:g} s ({n} samples), shorter than one `window` of {options.window:g} s"
    if np.ptp(emg) == 0:
        what = "all zero" if emg[0] == 0 else f"constant ({emg[0]:g})"
        return f"channel {channel.name!r} is {what}: there is nothing to decompose"
    starts = np.arange(0, n - length + 1, hop)
    if not options.overwrite:
        existing = _existing_outputs(stem, starts.size, options)
        if existing:
            return existing
    flat = {index: _flat_reason(emg[start : start + length]) for index, start in enumerate(starts.tolist())}
    dead = {index: reason for index, reason in flat.items() if reason}
    return preprocess(emg, fs, options.preprocessing), fs, length, starts, dead


def _flat_reason(segment: np.ndarray) -> str | None:
    if np.ptp(segment) != 0:
        return None
    return "the signal is all zero" if segment[0] == 0 else f"the signal is constant ({segment[0]:g})"


def _existing_outputs(stem: str, count: int, options: ConversionOptions) -> str | None:
    windowed = options.window is not None
    names = [_output_name(stem, index, windowed) for index in range(count)]
    if options.png:
        names += [str(Path(name).with_suffix(".png")) for name in names]
    existing = [printable_path(name) for name in names if os.path.lexists(Path(options.output_dir) / name)]
    if len(names) == 1 and existing:
        return f"its output {existing[0]} exists already; use `overwrite` to replace it"
    if existing:
        return (
            f"{len(existing)} of its {len(names)} outputs exist already ({existing[0]}, ...); "
            "use `overwrite` to replace them"
        )
    return None


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
    """Transform the segments of one channel of a recording and write a matrix file for each."""
    result = _ChunkResult()
    windowed = options.window is not None
    frequency = frequency_axis(DEFAULT_N_FREQ, options.f_min, options.f_max)
    # One channel keeps the seeds of earlier releases (the input's name); several are told apart by their stems.
    seed_name = source.path.name if segments.stem == source.stem else segments.stem
    preprocessing = describe_json(options.preprocessing)
    for index, start in enumerate(segments.starts.tolist(), start=segments.first_index):
        begin = start - segments.offset
        segment = segments.signal[begin : begin + segments.length]
        where = (segments.position, index)
        if index in segments.dead:
            result.segment_errors.append((where, segments.label, segments.dead[index]))
            continue
        try:
            matrix = _spectrum(segment, segments.fs, options, _segment_seed(options.seed, seed_name, index))
        except HHTInputError as error:
            result.segment_errors.append((where, segments.label, str(error)))
            continue
        path = Path(options.output_dir) / _output_name(segments.stem, index, windowed)
        try:
            write_matrix_file(
                path,
                matrix,
                segments.fs,
                frequency,
                index,
                start / segments.fs,
                channel=segments.channel,
                # The transform has refused what these features would (non-finite, constant, too short).
                time_domain=hudgins_features(segment),
                duration_s=segments.length / segments.fs,
                provenance=MatrixProvenance(source.stem, segments.unit, preprocessing),
            )
            if options.png:
                quantity = f"log(1 + {options.quantity})" if options.log else options.quantity
                title = f"{path.name} (from {start / segments.fs:g} s)"
                save_spectrum(
                    path.with_suffix(".png"), matrix, frequency, segments.length / segments.fs, title, quantity
                )
        except WriteError as error:
            # The next writes would fail the same way (disk full, read-only, name too long): stop here.
            result.write_error = (where, f"cannot write {display_name(path)}: {error.reason}", error.is_storage_fault)
            break
        result.written += 1
    return result


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the main process alone handles it (and ends the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _InProcessExecutor(Executor):
    """Runs each task when it is submitted, in this process: ``workers=1``."""

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
        or ``fs`` missing where every input needs it.
    """
    check_options(options)
    inputs, ignored = _inputs(options.input)
    _check_output_dir(options, inputs)
    with folder_lock(options.output_dir, "compute_hht.py"):
        return _convert_in_locked_folder(options, inputs, ignored)


def _convert_in_locked_folder(options: ConversionOptions, inputs: list[Path], ignored: Counter[str]) -> int:
    sources, refused = _plan(options, inputs)
    workers = options.workers or os.cpu_count() or 1
    if options.window is None or not sources:
        # Each file is one task: more workers than files would only cost their start-up time.
        workers = max(1, min(workers, len(sources)))
    _announce(options, inputs, ignored, workers)
    summary = _Summary(files=len(inputs), failed_files=len(refused))
    for path, reason in refused:
        logger.error(f"{printable_path(path)}: {reason}")
    started = time.perf_counter()
    if workers == 1:
        _convert_all(sources, options, _InProcessExecutor(), 1, summary)
    else:
        _convert_in_pool(sources, options, workers, summary)
    return _report(summary, time.perf_counter() - started)


def _announce(options: ConversionOptions, inputs: list[Path], ignored: Counter[str], workers: int) -> None:
    """Log what the run reads, where it writes, and how it transforms."""
    logger.info(f"Input: {printable_path(options.input)} ({len(inputs)} recording{'s' if len(inputs) != 1 else ''})")
    if ignored:
        logger.info(_ignored_text(ignored).capitalize())
    logger.info(f"Output directory: {printable_path(options.output_dir)}")
    hop = options.hop or options.window
    segmenting = "whole recordings" if options.window is None else f"`window` {options.window:g} s, `hop` {hop:g} s"
    logger.info(
        f"Transform: {options.method}, {options.f_min:g}-{options.f_max:g} Hz, {options.quantity}"
        f"{', log' if options.log else ''}; {segmenting}; {workers} worker{'s' if workers != 1 else ''}"
    )
    channels = "all EMG channels" if options.channels.every_emg else options.channel
    logger.info(f"Channels: {channels}; preprocessing: {options.preprocessing.summary()}")


def _convert_in_pool(sources: list[_Source], options: ConversionOptions, workers: int, summary: _Summary) -> None:
    """:func:`_convert_all` with a pool of ``workers`` processes; Ctrl-C stops them at once."""
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


def _report(summary: _Summary, elapsed: float) -> int:
    """Log the run's counts; the exit code they make."""
    logger.info(
        f"\nConverted {summary.converted} of {summary.files} file{'s' if summary.files != 1 else ''}: "
        f"{summary.matrices} matri{'ces' if summary.matrices != 1 else 'x'} written in {elapsed:.1f} s"
    )
    if summary.failed_files or summary.failed_segments:
        logger.info(
            f"Failed: {summary.failed_files} file(s), {summary.failed_segments} segment(s) (each reported on stderr)"
        )
    if summary.unwritten_files:
        logger.error(f"the outputs of {summary.unwritten_files} file(s) could not be written (reasons above)")
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
    with tqdm(
        total=len(sources), desc="Converting", unit="file", leave=False, file=sys.stderr, disable=None
    ) as progress:
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
                    state.errors += outcome.channel_errors
                    for note in outcome.notes:
                        logger.info(f"Note: {printable_path(state.source.path)}: {note}", extra=TO_STDERR)
                    # A file's channels share the workers as a long recording's segments do.
                    n_chunks = max(1, -(-workers // max(1, len(outcome.channels))))
                    for segments in outcome.channels:
                        for chunk in segments.split(n_chunks):
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
        state.errors += [label + reason for _, label, reason in segment_errors]
        segment_errors = []
    for (_, index), label, reason in segment_errors:
        logger.error(f"{name}: {label}segment {index}: {reason}")
    for reason in state.errors:
        logger.error(f"{name}: {reason}")
    summary.failed_segments += len(segment_errors)
    if state.errors:
        summary.failed_files += 1
    elif state.written:
        summary.converted += 1
