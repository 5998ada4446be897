#!/usr/bin/env python3
"""Convert raw sEMG recordings into the 256x256 HHT matrix files the classifier reads.

Reads one recording file or every .csv, .npy and .npz file of a folder (other files are
ignored and counted), takes one channel, optionally cuts it into windows, and writes the
Hilbert spectrum of each segment to OUTPUT_DIR/<input stem>.npz, or <input stem>_segNNN.npz
when windowing, so the label in the file name carries over.

Formats: .npy holds a 1-D array (one channel) or a 2-D samples x channels array (a 2-D array
whose first axis is the shorter is read as channels x samples); .npz holds such an array as
'signal' (or 'emg') and may hold its sampling rate as 'fs' (or 'sampling_rate'), which then
wins over --fs; .csv has one column per channel and one row per sample, '#' comment lines,
an optional header line and ',', ';' or whitespace between the values. .csv and .npy files
need --fs. A trailing part of a recording shorter than --window is dropped.

Each output holds 'hht' (float32, 256 frequency rows x 256 time columns), 'time' (0..1),
'frequency' (Hz per row), 'sampling_rate' (Hz), 'segment_index', 'segment_start_s',
'duration_s' (the segment's length, s) and 'td_features', the raw segment's Hudgins
time-domain features (log_mav, log_wl, zc, ssc; see semg_hht/time_domain.py). A file whose
outputs exist already is skipped as failed unless --overwrite; of two inputs with the same stem
(a.csv, a.npy) the second is skipped as failed. Inputs are never overwritten.

Exit codes: 0 every file and segment converted; 1 some files or segments failed (each is
reported, the rest are written); 2 usage error (bad flag values, no input or no supported
files, --output_dir the input folder, --fs missing where every input needs it, --output_dir
in use by another run); 4 the outputs of some files could not be written (full disk,
read-only folder; each file is named).
"""

import argparse

from semg_hht.cli import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="a .csv, .npy or .npz recording, or a folder of them")
    parser.add_argument("--output_dir", required=True, help="folder for the matrix files (created if needed)")
    parser.add_argument(
        "--fs", type=float, help="sampling rate in Hz, for files that hold none (.csv, .npy, .npz without 'fs')"
    )
    parser.add_argument("--channel", type=int, default=0, help="channel to convert, from 0 (default: %(default)s)")
    parser.add_argument("--window", type=float, help="cut recordings into segments of this many seconds")
    parser.add_argument("--hop", type=float, help="seconds from one segment's start to the next (default: --window)")
    parser.add_argument(
        "--method",
        default="emd",
        choices=["emd", "eemd", "ceemdan"],
        help="decomposition; the ensemble ones cost --ensembles times more (default: %(default)s)",
    )
    parser.add_argument(
        "--ensembles", type=int, default=30, help="noise realisations of eemd and ceemdan (default: %(default)s)"
    )
    parser.add_argument("--f_min", type=float, default=20.0, help="frequency of row 0 in Hz (default: %(default)s)")
    parser.add_argument(
        "--f_max", type=float, default=450.0, help="frequency of the last row in Hz (default: %(default)s)"
    )
    parser.add_argument(
        "--quantity",
        default="amplitude",
        choices=["amplitude", "power"],
        help="sum instantaneous amplitudes or their squares (default: %(default)s)",
    )
    parser.add_argument("--log", action="store_true", help="write log(1 + spectrum)")
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seeds the noise of eemd and ceemdan, per file and segment (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes to use; each takes about a second to start, so 1 is faster for a few seconds' work "
        "(default: all CPU cores)",
    )
    parser.add_argument(
        "--png",
        action="store_true",
        help="also write an image of each spectrum beside it (NAME.png: time on x, Hz on y, colour bar)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    def convert() -> int:
        from semg_hht.conversion import ConversionOptions, run_conversion

        return run_conversion(ConversionOptions(**vars(args)))

    return run_command(convert)


if __name__ == "__main__":
    raise SystemExit(main())
