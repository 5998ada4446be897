"""C3D files (motion capture with analog data): the analog channels, read with the ``c3d`` package (MIT).

A C3D file stores its analog channels (EMG, force plates, triggers) at one rate
(``ANALOG:RATE``) beside the marker frames, already scaled to physical units by the reader
(``ANALOG:GEN_SCALE``, ``SCALE``, ``OFFSET``). Names are ``ANALOG:LABELS``, units
``ANALOG:UNITS``. A channel is EMG when its label says ``EMG``; in a file where no label does,
when its description (``ANALOG:DESCRIPTIONS``) does; in a file where neither does, when its unit
is a voltage (BTS systems label EMG channels by muscle, in mV, beside force channels in N).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from semg_hht.io.formats.common import RecordedChannel, Recording, in_millivolts, is_voltage
from semg_hht.io.npyfile import check_regular_file


def _strings(group, name: str, count: int) -> list[str]:
    parameter = group.get(name) if group is not None else None
    values = [] if parameter is None else [str(s).strip() for s in parameter.string_array]
    return (values + [""] * count)[:count]


def _emg_flags(labels: list[str], descriptions: list[str], units: list[str]) -> list[bool]:
    for texts in (labels, descriptions):
        flags = ["EMG" in text.upper() for text in texts]
        if any(flags):
            return flags
    return [is_voltage(unit) for unit in units]


def read_c3d(path: str | os.PathLike) -> Recording:
    import c3d  # imported here: only C3D files need it

    check_regular_file(path)
    with open(path, "rb") as stream, warnings.catch_warnings():
        # The reader warns about parameters it does not know (vendor groups); they do not concern analog data.
        warnings.simplefilter("ignore")
        try:
            reader = c3d.Reader(stream)
            blocks = [analog for _, _, analog in reader.read_frames(copy=True)]
        except Exception as error:  # the package raises bare errors (struct.error, ValueError...) on damaged files
            raise ValueError(f"not a readable C3D file ({type(error).__name__}: {error})") from None
        expected = reader.header.last_frame - reader.header.first_frame + 1
        group = reader.get("ANALOG")
        count = reader.analog_used
        labels = _strings(group, "LABELS", count)
        descriptions = _strings(group, "DESCRIPTIONS", count)
        units = _strings(group, "UNITS", count)
        fs = float(reader.analog_rate)
    if count == 0:
        raise ValueError("the C3D file has no analog channels (no EMG)")
    if len(blocks) < expected:
        raise ValueError(f"the file is cut short: {len(blocks)} of its {expected} frames could be read")
    analog = np.concatenate(blocks, axis=1)
    names = [label or f"analog {i}" for i, label in enumerate(labels)]
    channels = []
    for index, (name, unit, is_emg) in enumerate(
        zip(names, units, _emg_flags(labels, descriptions, units), strict=True)
    ):
        values, unit_out = in_millivolts(analog[index], unit)
        channels.append(RecordedChannel(name, values, fs, unit_out, is_emg))
    return Recording(tuple(channels), "C3D")
