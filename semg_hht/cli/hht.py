"""Convert raw sEMG recordings into the 256x256 HHT matrix files the classifier reads.

Reads one recording file or every recording of a folder (other files are ignored and
counted), takes one or more channels, removes the mean, band-pass filters (and notches) each,
optionally cuts it into windows, and writes the Hilbert spectrum of each segment to
OUTPUT_DIR/<input stem>.npz (<input stem>_segNNN.npz when windowing); with --channel all or a
list, to <input stem>_<channel>[_segNNN].npz. The label and subject in the input's name carry
over. --list prints each file's channels (number, name, EMG or not, rate, length, unit) and
converts nothing.

Formats, by extension: .c3d (analog channels), .edf/.bdf (EDF, EDF+, BDF), .h5 (PLUX
OpenSignals), .txt/.csv (PLUX OpenSignals text, Delsys Trigno/EMGworks export, named columns
with a time column such as Noraxon MR3 exports, or plain columns with an optional header),
.npy (1-D, or 2-D samples x channels), .npz ('signal' or 'emg', with 'fs' or 'sampling_rate').
Voltages are converted to mV; PLUX EMG channels from ADC counts to mV. A rate stored in the
file wins over --fs; .npy files and plain tables need --fs. A trailing part of a recording
shorter than --window is dropped.

Each output holds 'hht' (float32, 256 frequency rows x 256 time columns), 'time' (0..1),
'frequency' (Hz per row), 'sampling_rate' (Hz), 'segment_index', 'segment_start_s',
'duration_s' (the segment's length, s), 'channel' (its name), 'recording' (the input's stem),
'unit', 'preprocessing' (JSON: what was done) and 'td_features', the preprocessed segment's
Hudgins time-domain features (log_mav, log_wl, zc, ssc) and its amplitude distribution's
(kurtosis, log_mav_rms_ratio; see semg_hht/hht/time_domain.py). A file
whose outputs all exist already is skipped as converted before, one with only some of them as
failed, unless --overwrite; of two inputs with the same stem (a.csv, a.npy) the second is
skipped as failed. Inputs are never overwritten.

The work runs on Dask: a local cluster of --workers processes (one per usable core, at most one
per file; 1 or a single input file runs in this process), or the running cluster at
--scheduler, whose workers must see the same paths. The unit of work is one input file; the
outputs do not depend on the cluster. Ctrl-C stops the run and its local workers.

Exit codes: 0 every file and segment converted; 1 some files or segments failed (each is
reported, the rest are written); 2 usage error (bad flag values, no input or no supported
files, --output_dir the input folder, --fs missing where every input needs it, --output_dir
in use by another run); 4 the outputs of some files could not be written (full disk,
read-only folder; each file is named); 5 the Dask scheduler given by --scheduler could not be
reached, had no workers or went away, or a worker cannot read the input or write the output
folder (what was written stays; running again skips the files converted); 6 every file
converted, but some recordings were cut short (an export that ends mid-row, fewer samples than
its header announces): their complete part was converted and each is named with what is missing.
With --list: 0, or 1 when some files could not be read.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from semg_hht.cli.common import add_cluster_arguments, run_command
from semg_hht.defaults import (
    DEFAULT_BANDPASS,
    DEFAULT_CHANNEL,
    DEFAULT_ENSEMBLES,
    DEFAULT_F_MAX,
    DEFAULT_F_MIN,
    DEFAULT_HHT_METHOD,
    DEFAULT_REMOVE_MEAN,
    DEFAULT_SEED,
    DEFAULT_SPECTRUM_QUANTITY,
    FITTED_BAND_FRACTION,
    HHT_METHODS,
    MAINS_FREQUENCIES,
    MAT_LAYOUTS,
    SPECTRUM_QUANTITIES,
)

NOTCH_CHOICES = ("none", *(f"{frequency:g}" for frequency in MAINS_FREQUENCIES))
"""``--notch``: none, or a mains frequency in Hz as typed (``50``, ``60``)."""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command's flags; ``prog`` names it in messages (default: the running script's name)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True, help="a recording file, or a folder of them")
    parser.add_argument("--output_dir", help="folder for the matrix files (created if needed; not with --list)")
    parser.add_argument("--list", action="store_true", help="print each file's channels, rates, lengths and units")
    parser.add_argument(
        "--fs", type=float, help="sampling rate in Hz, for files that hold none (.npy, plain tables, .npz without 'fs')"
    )
    _add_preprocessing_arguments(parser)
    _add_transform_arguments(parser)
    _add_run_arguments(parser)
    return parser


def _add_preprocessing_arguments(parser: argparse.ArgumentParser) -> None:
    """Channels and what is done to each before the transform."""
    parser.add_argument(
        "--channel",
        default=DEFAULT_CHANNEL,
        help="a channel number (from 0) or name, a comma-separated list of them, or 'all' (every EMG channel "
        "that is not flat; each gives its own matrices) (default: %(default)s)",
    )
    parser.add_argument(
        "--mat_variables",
        metavar="NAMES",
        help="for .mat recordings: the comma-separated variables that hold the signal (default: every numeric "
        "variable; NinaPro: emg); --list shows them",
    )
    parser.add_argument(
        "--mat_layout",
        choices=MAT_LAYOUTS,
        default="auto",
        help="for .mat recordings: channels (each variable a channel, or samples x channels), trials (each "
        "variable <group>_<channel>, trials x samples: one recording per group and trial), ninapro (emg cut into "
        "one recording per movement repetition by restimulus/rerepetition), or auto: ninapro where the file has "
        "emg, else channels (default: %(default)s)",
    )
    parser.add_argument(
        "--bandpass",
        nargs="+",
        default=None,
        metavar="HZ",
        help="zero-phase 4th-order Butterworth band-pass LOW HIGH in Hz before the transform, or 'none' "
        f"(default: {' '.join(f'{frequency:g}' for frequency in DEFAULT_BANDPASS)}, its upper edge lowered to the "
        "recording's band where the sampling rate needs it; a band given here is used as given)",
    )
    parser.add_argument(
        "--notch",
        default="none",
        choices=NOTCH_CHOICES,
        help="zero-phase notch at the mains frequency and its harmonics (default: %(default)s)",
    )
    parser.add_argument(
        "--remove_mean",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_REMOVE_MEAN,
        help="subtract each channel's mean before filtering (default: on)",
    )


def _add_transform_arguments(parser: argparse.ArgumentParser) -> None:
    """Segmenting and the Hilbert-Huang transform."""
    parser.add_argument("--window", type=float, help="cut recordings into segments of this many seconds")
    parser.add_argument("--hop", type=float, help="seconds from one segment's start to the next (default: --window)")
    parser.add_argument(
        "--method",
        default=DEFAULT_HHT_METHOD,
        choices=HHT_METHODS,
        help="decomposition; eemd costs about 20-25 times as much as emd and ceemdan 40-50 times at 30 ensembles, "
        "in proportion to --ensembles (default: %(default)s)",
    )
    parser.add_argument(
        "--ensembles",
        type=int,
        default=DEFAULT_ENSEMBLES,
        help="noise realisations of eemd and ceemdan (default: %(default)s)",
    )
    parser.add_argument(
        "--f_min", type=float, default=DEFAULT_F_MIN, help="frequency of row 0 in Hz (default: %(default)s)"
    )
    parser.add_argument(
        "--f_max",
        type=float,
        default=None,
        help=f"frequency of the last row in Hz (default: {DEFAULT_F_MAX:g}, or {FITTED_BAND_FRACTION:g} x the "
        "recording's sampling rate where that is lower; the default --bandpass then ends there too)",
    )
    parser.add_argument(
        "--quantity",
        default=DEFAULT_SPECTRUM_QUANTITY,
        choices=SPECTRUM_QUANTITIES,
        help="sum instantaneous amplitudes or their squares (default: %(default)s)",
    )
    parser.add_argument("--log", action="store_true", help="write log(1 + spectrum)")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seeds the noise of eemd and ceemdan, per file and segment (default: %(default)s)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Processes and outputs."""
    add_cluster_arguments(parser, "all usable CPU cores, at most one per input file")
    parser.add_argument(
        "--png",
        action="store_true",
        help="also write an image of each spectrum beside it (NAME.png: time on x, Hz on y, colour bar)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")


def _bandpass(parser: argparse.ArgumentParser, values: list[str]) -> tuple[float, float] | None:
    """``--bandpass LOW HIGH`` in Hz, or None for ``none``; anything else ends the run with a usage message."""
    if values == ["none"]:
        return None
    if len(values) == 2:
        try:
            return float(values[0]), float(values[1])
        except ValueError:
            pass
    parser.error(f"--bandpass takes two frequencies in Hz or 'none'; got {' '.join(values)}")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Convert (or list) with the flags ``argv`` (default: the command line's); the exit code (module docstring)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.fit_bandpass = args.bandpass is None
    args.bandpass = DEFAULT_BANDPASS if args.bandpass is None else _bandpass(parser, args.bandpass)
    args.notch = None if args.notch == "none" else float(args.notch)
    listing = args.list
    del args.list
    if not listing and args.output_dir is None:
        parser.error("the following arguments are required: --output_dir (unless --list)")

    def convert() -> int:
        from semg_hht.conversion.workflow import ConversionOptions, run_conversion, run_listing

        options = ConversionOptions(**vars(args))
        return run_listing(args.input, options.mat_selection) if listing else run_conversion(options)

    return run_command(convert)
