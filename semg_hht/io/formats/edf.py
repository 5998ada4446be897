"""EDF, EDF+ and BDF files (European Data Format, 16- and 24-bit), read with the ``edfio`` package (Apache-2.0).

Each signal has its own label, sampling rate, physical dimension (unit) and transducer type;
values are the physical values. EDF+ annotation signals are not channels. A signal is EMG
when its label or transducer type says ``EMG``; in a file where none does, when its unit is a
voltage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from semg_hht.io.formats.common import RecordedChannel, Recording, check_rate, in_millivolts, is_voltage
from semg_hht.io.npyfile import check_regular_file

_FIXED_HEADER = 256
_SIGNAL_HEADER = 256  # bytes per signal in the header
_SAMPLES_FIELD = 216  # offset of "nr of samples in each data record" within the signal header block, per signal


def _check_length(path: str | os.PathLike, bytes_per_sample: int) -> None:
    """Refuse a file shorter than its header says: readers would silently drop the missing data records."""
    with open(path, "rb") as stream:
        fixed = stream.read(_FIXED_HEADER)
        if len(fixed) < _FIXED_HEADER:
            raise ValueError(f"the file is cut short inside its {_FIXED_HEADER}-byte header")
        try:
            records, n_signals = int(fixed[236:244]), int(fixed[252:256])
        except ValueError:
            raise ValueError("the header's record count or signal count is not a number") from None
        stream.seek(_FIXED_HEADER + n_signals * _SAMPLES_FIELD)
        field = stream.read(8 * n_signals)
    if len(field) < 8 * n_signals:
        raise ValueError("the file is cut short inside its signal headers")
    try:
        per_record = sum(int(field[8 * i : 8 * i + 8]) for i in range(n_signals))
    except ValueError:
        raise ValueError("the header's samples per data record are not numbers") from None
    expected = _FIXED_HEADER + n_signals * _SIGNAL_HEADER + records * per_record * bytes_per_sample
    size = os.path.getsize(path)
    if records >= 0 and size < expected:
        complete = max(0, (size - _FIXED_HEADER - n_signals * _SIGNAL_HEADER) // max(1, per_record * bytes_per_sample))
        raise ValueError(f"the file is cut short: {complete} of its {records} data records are complete")


def read_edf(path: str | os.PathLike) -> Recording:
    import edfio  # imported here: only EDF/BDF files need it

    check_regular_file(path)
    is_bdf = str(path).lower().endswith(".bdf")
    _check_length(path, 3 if is_bdf else 2)
    try:
        # One element type for both formats, so that zip below keeps the signals' attributes.
        signals: Sequence[edfio.EdfSignal | edfio.BdfSignal] = (
            edfio.read_bdf(Path(path)) if is_bdf else edfio.read_edf(Path(path))
        ).signals
        # edfio reads samples lazily: touch them here so that a cut-short file fails now.
        values = [signal.data for signal in signals]
    except Exception as error:  # edfio raises ValueError, EdfError, IndexError... on damaged headers
        kind = "BDF" if is_bdf else "EDF"
        raise ValueError(f"not a readable {kind} file ({type(error).__name__}: {error})") from None
    if not signals:
        raise ValueError("the file holds no signals")
    says_emg = ["EMG" in f"{s.label} {s.transducer_type}".upper() for s in signals]
    if not any(says_emg):
        says_emg = [is_voltage(s.physical_dimension) for s in signals]
    channels = []
    for signal, data, is_emg in zip(signals, values, says_emg, strict=True):
        fs = check_rate(signal.sampling_frequency, f"the sampling rate of signal {signal.label!r}")
        samples, unit = in_millivolts(data, signal.physical_dimension)
        channels.append(RecordedChannel(signal.label.strip(), samples, fs, unit, is_emg))
    return Recording(tuple(channels), "BDF" if is_bdf else "EDF")
