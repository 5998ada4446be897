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
``td_features``           (6,) f8          the preprocessed segment's Hudgins time-domain
                                           features ``log_mav, log_wl, zc, ssc``, then its
                                           amplitude distribution's ``kurtosis,
                                           log_mav_rms_ratio``
                                           (:func:`semg_hht.hht.time_domain.segment_features`;
                                           release 0.3 and earlier stored the first 4)
========================  ===============  ==================================================

named ``<input stem>.npz``, or ``<input stem>_seg<NNN>.npz`` when windowing; with several
channels chosen (``all`` or a list), ``<input stem>_<channel tag>[_seg<NNN>].npz``. The label
in the input's name carries over. Files are written atomically and an existing one is never
replaced without ``overwrite``.

Files are read and transformed on a Dask cluster (:mod:`semg_hht.engine`): a local one of
``workers`` processes, a running one at ``scheduler``, or this process alone for one worker or
one input file. The unit of work is one input file: its worker reads it and writes its outputs,
and sends back only counts and reasons. Each segment's noise (for the ensemble methods) is
seeded from the seed, the output's name and the segment's index, so the matrices do not depend
on the cluster, the number of workers or the order in which files finish.

Without ``overwrite``, a file whose outputs all exist already is skipped (a rerun after an
interrupted run converts only what is missing); one with only some of them is refused and
named. Outputs that this run wrote itself, before a worker died and its file was run again, are
replaced by the identical new ones.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import sys
import time
import zlib
from collections import Counter
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
    FITTED_BAND_FRACTION,
    HHT_METHODS,
    SPECTRUM_QUANTITIES,
)
from semg_hht.engine import IN_PROCESS, Engine, open_engine
from semg_hht.errors import EXIT_CUT_SHORT, EXIT_OK, EXIT_PARTIAL, EXIT_WRITE_FAILED, UsageError, WriteError
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
from semg_hht.hht.time_domain import segment_features
from semg_hht.io.figures import save_spectrum
from semg_hht.io.folder_lock import folder_lock
from semg_hht.io.formats.matlab import MatSelection, describe_variables
from semg_hht.io.matrices import MatrixProvenance, display_name, printable_path, write_matrix_file
from semg_hht.io.recordings import (
    SUPPORTED_EXTENSIONS,
    ChannelSelection,
    RecordedChannel,
    Recording,
    RecordingError,
    carries_rate,
    describe_recording,
    extension,
    finite_signal,
    output_tags,
    read_recording,
    recording_parts,
    select_channels,
)
from semg_hht.logs import TO_STDERR
from semg_hht.memory import keep_freed_memory

logger = logging.getLogger(__name__)

MAX_FILES_PER_TASK = 32
"""Files one task converts in a row, at most. A Dask task costs the client's process (where a local
cluster's scheduler and nannies run too) several milliseconds of a core, about what EMD needs for a
two-second recording, so short files go in batches: on 2 cores, batches of 32 took 0.6 s less of
that process's time than batches of 16 on 2,000 files, and the run 2-6 % less wall time; 64 gained
no more wall time (docs/running_at_scale.md)."""
TASKS_PER_WORKER = 4
"""Tasks per worker at least, where there are enough files: batches shrink for small runs."""


@dataclass(frozen=True)
class ConversionOptions:
    """The settings of one conversion run, named as ``compute_hht.py``'s flags.

    Times are in seconds, frequencies and ``fs`` in Hz; ``workers=None`` means one per usable
    CPU core; ``scheduler`` is the address of a running Dask scheduler (``workers`` is then unused).
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
    f_max: float | None = None
    quantity: Quantity = DEFAULT_SPECTRUM_QUANTITY
    log: bool = False
    seed: int = DEFAULT_SEED
    workers: int | None = None
    scheduler: str | None = None
    overwrite: bool = False
    png: bool = False
    remove_mean: bool = DEFAULT_REMOVE_MEAN
    bandpass: tuple[float, float] | None = DEFAULT_BANDPASS
    notch: float | None = DEFAULT_NOTCH
    mat_variables: str | None = None
    mat_layout: str = "auto"
    fit_bandpass: bool = True
    """Lower the band-pass's upper edge to the recording's band where its rate needs it (the default band-pass;
    one given with ``--bandpass`` is used as given)."""

    @property
    def channels(self) -> ChannelSelection:
        return ChannelSelection.parse(self.channel)

    @property
    def mat_selection(self) -> MatSelection:
        """Which variables of a ``.mat`` recording hold the signal, and how (:mod:`semg_hht.io.formats.matlab`)."""
        return MatSelection.parse(self.mat_variables, self.mat_layout)

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing as asked for, before it is fitted to a recording's rate (:meth:`preprocessing_for`)."""
        return Preprocessing(self.remove_mean, self.bandpass, self.notch)

    def f_max_for(self, fs: float) -> float:
        """The band's upper edge for a recording sampled at ``fs`` Hz: ``f_max`` as given, else the default
        450 Hz or :data:`FITTED_BAND_FRACTION` x ``fs``, whichever is lower."""
        return self.f_max if self.f_max is not None else min(DEFAULT_F_MAX, FITTED_BAND_FRACTION * fs)

    def preprocessing_for(self, fs: float) -> Preprocessing:
        """The preprocessing of a recording sampled at ``fs`` Hz: a default band-pass too wide for the rate ends
        at the recording's band (:meth:`f_max_for`)."""
        bandpass = self.bandpass
        if self.fit_bandpass and bandpass is not None and bandpass[1] >= fs / 2:
            bandpass = (bandpass[0], self.f_max_for(fs))
        return Preprocessing(self.remove_mean, bandpass, self.notch)


@dataclass(frozen=True)
class _Source:
    """One input file and the stem of its outputs."""

    path: Path
    stem: str


@dataclass(frozen=True)
class _Segments:
    """The segments of one channel of a recording, each ``length`` samples long.

    ``signal`` holds the preprocessed channel; segment ``k`` starts at sample ``starts[k]``. Its
    outputs are named ``stem`` (``<input stem>`` or ``<input stem>_<channel tag>``) and
    ``_segNNN`` when windowing. ``position`` orders the file's channels in messages; ``label``
    names the channel in them (empty for a file converted from one channel). ``dead`` gives the
    segments that were flat before filtering (a detached electrode), by index, with the reason:
    filtering would leave only its ringing there, which is not a recording.
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
    recording: str = ""
    """The stem of the recording the channel belongs to (the input's, or its part's), stored with each matrix."""


@dataclass
class _Loaded:
    """A read recording: the segments of each usable chosen channel, the chosen channels that are not,
    notes, and how many chosen channels were converted before (all their outputs exist)."""

    channels: list[_Segments]
    channel_errors: list[str]
    notes: list[str]
    already_converted: int = 0
    shortfall: str | None = None


class _AlreadyConverted:
    """A channel whose outputs all exist already: skipped, not converted again."""


@dataclass(frozen=True)
class _Task:
    """Files one worker converts in a row, each with the (case-folded) names of files in the output
    folder that its outputs could take and that existed before the run; paths are absolute, as a
    worker on another machine or in another folder needs them."""

    options: ConversionOptions
    files: tuple[tuple[_Source, frozenset[str]], ...]


@dataclass
class _FileResult:
    """What converting one file did; small, so that it travels back from a worker cheaply."""

    written: int = 0
    already_converted: bool = False
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shortfall: str | None = None
    """What the recording is missing when it was cut short (its complete part was converted)."""
    segment_errors: list[tuple[tuple[int, int], str, str]] = field(default_factory=list)  # where, label, reason
    write_errors: list[tuple[tuple[int, int], str, bool]] = field(default_factory=list)
    """Each channel's segment whose file could not be written, why, and whether the storage is at fault;
    the channel's later segments were not tried."""


@dataclass
class _Summary:
    files: int = 0
    converted: int = 0
    already_converted: int = 0
    matrices: int = 0
    failed_files: int = 0
    failed_segments: int = 0
    unwritten_files: int = 0
    cut_short: int = 0
    files_per_worker: Counter[str] = field(default_factory=Counter)
    task_seconds: float = 0.0
    """Time the tasks ran on their workers, added up: the conversion's own cost, without the engine's."""


# --- checks before any data is read ---------------------------------------------------------


def run_listing(input_path: str, mat: MatSelection | None = None) -> int:
    """``compute_hht.py --list``: log each recording's channels (stdout); an unreadable file is named on stderr.

    Returns 0, or 1 when some files could not be read.
    """
    paths, _ = _inputs(input_path)
    failed = 0
    for path in paths:
        try:
            recording = read_recording(path, mat)
            if extension(path) == ".mat":  # read above: its variables can be listed
                logger.info(f"{printable_path(path)}: {describe_variables(path)}")
            logger.info(describe_recording(path, recording))
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
        options.mat_selection  # noqa: B018
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
    f_max = DEFAULT_F_MAX if options.f_max is None else options.f_max
    try:
        frequency_axis(DEFAULT_N_FREQ, options.f_min, f_max)
    except HHTInputError:
        raise UsageError(f"need 0 <= `f_min` < `f_max`; got {options.f_min:g} and {f_max:g} Hz") from None
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
    f_max = options.f_max_for(fs)
    if f_max >= fs / 2:
        return f"a sampling rate of {fs:g} Hz is too low for `f_max` {f_max:g} Hz (needs more than {2 * f_max:g} Hz)"
    if f_max <= options.f_min:
        return f"a sampling rate of {fs:g} Hz leaves no band above `f_min` {options.f_min:g} Hz (it ends at {f_max:g})"
    problem = options.preprocessing_for(fs).rate_problem(fs)
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


def _convert_task(task: _Task) -> list[_FileResult]:
    """Convert the files of one task (this runs on a worker); one result per file, in order."""
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: glibc would hand freed memory
    # back to the OS after every array and fault it in again for the next one.
    keep_freed_memory()
    return [_convert_file(source, task.options, existing) for source, existing in task.files]


def _convert_file(source: _Source, options: ConversionOptions, existing: frozenset[str]) -> _FileResult:
    """Read one recording and write a matrix file for each segment of each chosen channel."""
    loaded = _load_segments(source, options, existing)
    if isinstance(loaded, str):
        return _FileResult(errors=[loaded])
    result = _FileResult(notes=loaded.notes, errors=list(loaded.channel_errors), shortfall=loaded.shortfall)
    result.already_converted = bool(loaded.already_converted) and not loaded.channels and not result.errors
    for segments in loaded.channels:
        _convert_segments(source, options, segments, result)
    return result


def _load_segments(source: _Source, options: ConversionOptions, existing: frozenset[str]) -> _Loaded | str:
    """Read a recording, preprocess its chosen channels and plan their segments; the reason as text if it fails.

    ``existing`` holds the case-folded names of output files that existed before the run.
    """
    try:
        recording = read_recording(source.path, options.mat_selection)
        chosen, notes = _chosen_channels(recording, options.channels, source.stem)
    except RecordingError as error:
        return error.reason
    except ValueError as error:
        return str(error)
    named = options.channels.names_outputs
    loaded = _Loaded([], [], notes, shortfall=recording.shortfall)
    for position, (base, channel, tag) in enumerate(chosen):
        stem = f"{base}_{tag}" if named else base
        # Messages name the recording of a file of several (a trial, a repetition) and the channel where named.
        where = " ".join(filter(None, [channel.part, f"channel {channel.name!r}" if named else None]))
        label = f"{where}: " if where else ""
        planned = _plan_channel(channel, options, stem, recording.format, existing)
        if isinstance(planned, _AlreadyConverted):
            loaded.already_converted += 1
        elif isinstance(planned, str):
            loaded.channel_errors.append(label + planned)
        else:
            signal, fs, length, starts, dead = planned
            loaded.channels.append(
                _Segments(signal, fs, length, starts, stem, channel.name, channel.unit, position, label, dead, base)
            )
    if not loaded.channels and loaded.channel_errors and not named and len(chosen) == 1:
        return loaded.channel_errors[0]
    loaded.notes.extend(_fitted_band_notes(options, {segments.fs for segments in loaded.channels}))
    return loaded


def _chosen_channels(
    recording: Recording, selection: ChannelSelection, stem: str
) -> tuple[list[tuple[str, RecordedChannel, str]], list[str]]:
    """Each chosen channel of each recording the file holds, with its recording's stem (the input's, or
    ``<input>_<part>``) and its output tag; and the notes of the choice."""
    chosen, notes = [], []
    for part, channels in recording_parts(recording):
        try:
            indices, part_notes = select_channels(channels, selection)
        except ValueError as error:
            raise ValueError(f"{part}: {error}" if part else str(error)) from None
        base = f"{stem}_{part}" if part else stem
        tags = output_tags(channels, indices)
        chosen += [(base, channels.channels[index], tag) for index, tag in zip(indices, tags, strict=True)]
        notes += [f"{part}: {note}" if part else note for note in part_notes]
    return chosen, notes


def _fitted_band_notes(options: ConversionOptions, rates: set[float]) -> list[str]:
    """What a recording's rate did to its band, where it was fitted below the default (no `f_max` given)."""
    if options.f_max is not None:
        return []
    return [
        f"band {options.f_min:g}-{options.f_max_for(fs):g} Hz for its {fs:g} Hz sampling rate "
        f"({FITTED_BAND_FRACTION:g} x the rate; `f_max` sets another)"
        for fs in sorted(rates)
        if options.f_max_for(fs) < DEFAULT_F_MAX
    ]


def _plan_channel(
    channel: RecordedChannel, options: ConversionOptions, stem: str, file_format: str, existing: frozenset[str]
) -> tuple[np.ndarray, float, int, np.ndarray, dict[int, str]] | str | _AlreadyConverted:
    """(preprocessed signal, rate, segment length, segment starts, dead segments) of one channel, why it cannot
    be converted, or that it was converted before."""
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
        found = _existing_outputs(stem, starts.size, options, existing)
        if found is not None:
            return found
    flat = {index: _flat_reason(emg[start : start + length]) for index, start in enumerate(starts.tolist())}
    dead = {index: reason for index, reason in flat.items() if reason}
    return preprocess(emg, fs, options.preprocessing_for(fs)), fs, length, starts, dead


def _flat_reason(segment: np.ndarray) -> str | None:
    if np.ptp(segment) != 0:
        return None
    return "the signal is all zero" if segment[0] == 0 else f"the signal is constant ({segment[0]:g})"


def _existing_outputs(
    stem: str, count: int, options: ConversionOptions, existing: frozenset[str]
) -> str | _AlreadyConverted | None:
    """None if none of a channel's ``count`` outputs existed before the run; :class:`_AlreadyConverted` if all
    did; else why the channel is refused (some did: they are never replaced without `overwrite`)."""
    windowed = options.window is not None
    names = [_output_name(stem, index, windowed) for index in range(count)]
    if options.png:
        names += [str(Path(name).with_suffix(".png")) for name in names]
    found = [printable_path(name) for name in names if name.casefold() in existing]
    if not found:
        return None
    if len(found) == len(names):
        return _AlreadyConverted()
    return f"{len(found)} of its {len(names)} outputs exist already ({found[0]}, ...); use `overwrite` to replace them"


def _spectrum(segment: np.ndarray, fs: float, options: ConversionOptions, seed: int) -> np.ndarray:
    """The (256, 256) float32 Hilbert spectrum of one segment, checked to be finite."""
    # Samples near the float64 limits overflow inside the transform; that is reported as such.
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = hilbert_spectrum(
            segment,
            fs,
            f_min=options.f_min,
            f_max=options.f_max_for(fs),
            quantity=options.quantity,
            log=options.log,
            method=options.method,
            ensembles=options.ensembles,
            seed=seed,
        )
    if not np.isfinite(matrix).all():
        raise HHTInputError("the values are too large: the spectrum overflows float32")
    return matrix


def _convert_segments(source: _Source, options: ConversionOptions, segments: _Segments, result: _FileResult) -> None:
    """Transform the segments of one channel of a recording, write a matrix file for each, count into ``result``."""
    windowed = options.window is not None
    frequency = frequency_axis(DEFAULT_N_FREQ, options.f_min, options.f_max_for(segments.fs))
    # One channel keeps the seeds of earlier releases (the input's name); several are told apart by their stems.
    seed_name = source.path.name if segments.stem == source.stem else segments.stem
    preprocessing = describe_json(options.preprocessing_for(segments.fs))
    for index, start in enumerate(segments.starts.tolist()):
        segment = segments.signal[start : start + segments.length]
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
                time_domain=segment_features(segment),
                duration_s=segments.length / segments.fs,
                provenance=MatrixProvenance(segments.recording, segments.unit, preprocessing),
            )
            if options.png:
                quantity = f"log(1 + {options.quantity})" if options.log else options.quantity
                title = f"{path.name} (from {start / segments.fs:g} s)"
                save_spectrum(
                    path.with_suffix(".png"), matrix, frequency, segments.length / segments.fs, title, quantity
                )
        except WriteError as error:
            # The next writes would fail the same way (disk full, read-only, name too long): stop here.
            fault = (where, f"cannot write {display_name(path)}: {error.reason}", error.is_storage_fault)
            result.write_errors.append(fault)
            return
        result.written += 1


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
    summary = _Summary(files=len(inputs), failed_files=len(refused))
    for path, reason in refused:
        logger.error(f"{printable_path(path)}: {reason}")
    existing = [] if options.overwrite else _casefolded_names(Path(options.output_dir))
    elapsed = 0.0  # the conversion's own time, without the cluster's start
    # Each file is one unit of work: more workers than files would only cost their start-up time.
    with open_engine(options.workers, options.scheduler, len(sources)) as engine:
        _announce(options, inputs, ignored, engine.description)
        if sources:
            engine.check_access(options.input, options.output_dir)
            started = time.perf_counter()
            _convert_all(engine, _tasks(sources, options, existing, engine.workers), sources, options, summary)
            elapsed = time.perf_counter() - started
    return _report(summary, elapsed)


def _casefolded_names(folder: Path) -> list[str]:
    """The names in ``folder``, case-folded (macOS and Windows file systems ignore case) and sorted."""
    with os.scandir(folder) as entries:
        return sorted(entry.name.casefold() for entry in entries)


def _names_starting_with(names: list[str], prefix: str) -> frozenset[str]:
    """Those of the sorted ``names`` that start with ``prefix``."""
    first = bisect.bisect_left(names, prefix)
    last = bisect.bisect_left(names, prefix + "\U0010ffff", lo=first)
    return frozenset(names[first:last])


def _tasks(sources: list[_Source], options: ConversionOptions, existing: list[str], workers: int) -> list[_Task]:
    """The sources in batches of consecutive files, each with the output names it could take that exist already."""
    per_task = max(1, min(MAX_FILES_PER_TASK, len(sources) // (TASKS_PER_WORKER * workers)))
    # Workers may run in another folder, or on another machine that mounts the same file system.
    absolute = replace(options, input=os.path.abspath(options.input), output_dir=os.path.abspath(options.output_dir))
    files = [
        (
            _Source(Path(os.path.abspath(source.path)), source.stem),
            _names_starting_with(existing, source.stem.casefold()),
        )
        for source in sources
    ]
    return [_Task(absolute, tuple(files[start : start + per_task])) for start in range(0, len(files), per_task)]


def _announce(options: ConversionOptions, inputs: list[Path], ignored: Counter[str], engine: str) -> None:
    """Log what the run reads, where it writes, how it transforms, and on what."""
    logger.info(f"Input: {printable_path(options.input)} ({len(inputs)} recording{'s' if len(inputs) != 1 else ''})")
    if ignored:
        logger.info(_ignored_text(ignored).capitalize())
    logger.info(f"Output directory: {printable_path(options.output_dir)}")
    hop = options.hop or options.window
    segmenting = "whole recordings" if options.window is None else f"`window` {options.window:g} s, `hop` {hop:g} s"
    fitted = f"{DEFAULT_F_MAX:g} Hz or {FITTED_BAND_FRACTION:g} x the rate, if lower"
    band = f"{options.f_max:g} Hz" if options.f_max is not None else fitted
    logger.info(
        f"Transform: {options.method}, {options.f_min:g} Hz to {band}, {options.quantity}"
        f"{', log' if options.log else ''}; {segmenting}; workers: {engine}"
    )
    channels = "all EMG channels" if options.channels.every_emg else options.channel
    logger.info(f"Channels: {channels}; preprocessing: {options.preprocessing.summary()}")


def _convert_all(
    engine: Engine, tasks: list[_Task], sources: list[_Source], options: ConversionOptions, summary: _Summary
) -> None:
    """Run the tasks on ``engine``; report and count each file as its task finishes."""
    owners = []  # each task's files as the client names them, for messages in the user's words
    first = 0
    for task in tasks:
        owners.append(sources[first : first + len(task.files)])
        first += len(task.files)
    with tqdm(
        total=len(sources), desc="Converting", unit="file", leave=False, file=sys.stderr, disable=None
    ) as progress:
        for outcome in engine.run(_convert_task, tasks, "compute_hht"):
            files = owners[outcome.index]
            # A task that could not run (its workers died each time) fails each of its files with the reason.
            results = outcome.value if outcome.error is None else [_FileResult(errors=[outcome.error]) for _ in files]
            for source, result in zip(files, results, strict=True):
                _finish(source, result, options, summary)
            summary.files_per_worker[outcome.worker] += len(files)
            summary.task_seconds += outcome.seconds
            progress.update(len(files))


def _report(summary: _Summary, elapsed: float) -> int:
    """Log the run's counts and speed; the exit code they make."""
    rate = f" ({summary.files / elapsed:.1f} files/s)" if elapsed > 0 and summary.files_per_worker else ""
    logger.info(
        f"\nConverted {summary.converted} of {summary.files} file{'s' if summary.files != 1 else ''}: "
        f"{summary.matrices} matri{'ces' if summary.matrices != 1 else 'x'} written in {elapsed:.1f} s{rate}"
    )
    if summary.already_converted:
        logger.info(
            f"Skipped {summary.already_converted} file(s) converted before: all their outputs exist "
            "(`overwrite` replaces them)"
        )
    if set(summary.files_per_worker) - {IN_PROCESS}:
        counts = ", ".join(f"{worker} {files}" for worker, files in sorted(summary.files_per_worker.items()))
        logger.info(f"Files per worker: {counts}")
        per_file = 1e3 * summary.task_seconds / max(1, summary.files_per_worker.total())
        logger.info(f"Time in tasks on the workers: {summary.task_seconds:.1f} s ({per_file:.1f} ms a file)")
    if summary.failed_files or summary.failed_segments:
        logger.info(
            f"Failed: {summary.failed_files} file(s), {summary.failed_segments} segment(s) (each reported on stderr)"
        )
    if summary.cut_short:
        logger.info(f"Cut short: {summary.cut_short} file(s), converted from what they hold (each named on stderr)")
    if summary.unwritten_files:
        logger.error(f"the outputs of {summary.unwritten_files} file(s) could not be written (reasons above)")
        return EXIT_WRITE_FAILED
    if summary.failed_files or summary.failed_segments:
        return EXIT_PARTIAL
    return EXIT_CUT_SHORT if summary.cut_short else EXIT_OK


def _finish(source: _Source, result: _FileResult, options: ConversionOptions, summary: _Summary) -> None:
    """Report a file's notes and errors and count it."""
    name = printable_path(source.path)
    for note in result.notes:
        logger.info(f"Note: {name}: {note}", extra=TO_STDERR)
    if result.shortfall is not None:
        logger.warning(f"{name}: cut short: {result.shortfall}; converted what it holds")
        summary.cut_short += 1
    summary.matrices += result.written
    errors = list(result.errors)
    if result.write_errors:
        # Every channel of the file may have failed the same way (disk full, read-only): report the first.
        _, reason, is_storage_fault = min(result.write_errors)
        errors.append(reason)
        summary.unwritten_files += is_storage_fault
    segment_errors = sorted(result.segment_errors)
    if options.window is None:
        # The whole recording is the one segment: its failure is the file's.
        errors += [label + reason for _, label, reason in segment_errors]
        segment_errors = []
    for (_, index), label, reason in segment_errors:
        logger.error(f"{name}: {label}segment {index}: {reason}")
    for reason in errors:
        logger.error(f"{name}: {reason}")
    summary.failed_segments += len(segment_errors)
    if errors:
        summary.failed_files += 1
    elif result.already_converted:
        summary.already_converted += 1
    elif result.written:
        summary.converted += 1
