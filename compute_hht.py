#!/usr/bin/env python3
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
Hudgins time-domain features (log_mav, log_wl, zc, ssc; see semg_hht/hht/time_domain.py). A file
whose outputs exist already is skipped as failed unless --overwrite; of two inputs with the
same stem (a.csv, a.npy) the second is skipped as failed. Inputs are never overwritten.

Exit codes: 0 every file and segment converted; 1 some files or segments failed (each is
reported, the rest are written); 2 usage error (bad flag values, no input or no supported
files, --output_dir the input folder, --fs missing where every input needs it, --output_dir
in use by another run); 4 the outputs of some files could not be written (full disk,
read-only folder; each file is named). With --list: 0, or 1 when some files could not be read.
"""

from semg_hht.cli.hht import main

if __name__ == "__main__":
    raise SystemExit(main())
