"""PLUX OpenSignals recordings: the text export (``.txt``) and the HDF5 file (``.h5``).

Text: line 1 ``# OpenSignals Text File Format``, line 2 ``#`` and a JSON object keyed by each
device's MAC address (``sensor``, ``label``, ``column``, ``resolution``, ``sampling rate``,
``device``), then ``# EndOfHeader`` and tab-separated integer rows whose columns are the devices'
``column`` lists one after the other (``nSeq``, ``DI``, then the channels). HDF5: one group per
device with the attributes ``sampling rate`` and ``resolution`` (per channel, in the order of
the ``channels`` attribute) and the data sets ``raw/channel_N``, whose attributes give
``sensor`` and ``label``.

The values are ADC counts. A channel whose sensor is ``EMG`` is converted to millivolts with
PLUX's transfer function when its resolution ``n`` (bits) is known::

    EMG [mV] = (ADC / 2**n - 1/2) * VCC / G_EMG * 1000

with VCC = 3 V and G_EMG = 1000 for biosignalsplux (so the factor is 3 mV), and VCC = 3.3 V,
G_EMG = 1009 for BITalino (PLUX's sensor data sheets). Other sensors stay in ADC counts and are
not EMG.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from semg_hht.io.formats.common import UNIT_MV, RecordedChannel, Recording, check_rate
from semg_hht.io.npyfile import check_regular_file

if TYPE_CHECKING:
    import h5py

TEXT_MAGIC = "# OpenSignals Text File Format"
END_OF_HEADER = "# EndOfHeader"
_NOT_CHANNELS = ("nSeq", "DI")
_SUPPLY_AND_GAIN = {"bitalino": (3.3, 1009.0)}
_DEFAULT_SUPPLY_AND_GAIN = (3.0, 1000.0)  # biosignalsplux, bioplux, channeller


def is_opensignals_text(first_line: str) -> bool:
    return first_line.strip() == TEXT_MAGIC


def emg_millivolts(adc: np.ndarray, resolution: int, device: str) -> np.ndarray:
    """PLUX's EMG transfer function (module docstring): ADC counts of ``resolution`` bits to mV."""
    supply, gain = _SUPPLY_AND_GAIN.get(device.lower(), _DEFAULT_SUPPLY_AND_GAIN)
    return (np.asarray(adc, dtype=np.float64) / 2.0**resolution - 0.5) * supply / gain * 1000.0


def _channel(
    name: str, adc: np.ndarray, fs: float, sensor: str, resolution: int | None, device: str
) -> tuple[RecordedChannel, bool]:
    """One channel, and whether it was converted to mV (an EMG sensor of known resolution)."""
    if sensor.upper().startswith("EMG") and resolution is not None:
        return RecordedChannel(name, emg_millivolts(adc, resolution, device), fs, UNIT_MV, True), True
    return RecordedChannel(name, np.asarray(adc, dtype=np.float64), fs, "ADC counts", sensor.upper() == "EMG"), False


def _note(converted: Sequence[bool]) -> str | None:
    if not any(converted):
        return None
    return "EMG channels converted from ADC counts to mV with PLUX's EMG transfer function"


def read_opensignals_text(path: str | os.PathLike) -> Recording:
    check_regular_file(path)
    with open(path, encoding="utf-8", errors="replace") as stream:
        text = stream.read()
    lines = text.splitlines()
    if len(lines) < 3 or lines[2].strip() != END_OF_HEADER:
        raise ValueError(f"an OpenSignals header has 3 lines, the third {END_OF_HEADER!r}: the header is cut short")
    try:
        devices = json.loads(lines[1].lstrip("#").strip())
    except json.JSONDecodeError as error:
        raise ValueError(f"line 2 is not the OpenSignals JSON header: {error}") from None
    if not isinstance(devices, dict) or not devices or not all(isinstance(d, dict) for d in devices.values()):
        raise ValueError("line 2 is not the OpenSignals JSON header: no device")
    rows = [line.split() for line in lines[3:] if line.strip()]
    width = sum(len(device.get("column", [])) for device in devices.values())
    shortfall = None
    # OpenSignals ends every row with a line break: a file that does not stopped in its last row,
    # whose last value may be cut too. The complete rows are kept, and what is missing is said.
    if rows and not text.endswith(("\n", "\r")):
        cut = rows.pop()
        shortfall = (
            f"the file ends mid-row: its last row ({len(cut)} of {width} values) was left out, "
            f"{len(rows)} complete rows read"
        )
    if not rows:
        raise ValueError("no samples: the file ends after its header")
    ragged = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if ragged is not None:
        raise ValueError(f"line {ragged + 4} has {len(rows[ragged])} values; the header's columns are {width}")
    table = np.array(rows, dtype=np.float64)
    channels, converted, offset = [], [], 0
    for mac, device in devices.items():
        channel_list, more = _text_device(device, table[:, offset:], mac if len(devices) > 1 else None)
        channels += channel_list
        converted += more
        offset += len(device.get("column", []))
    return Recording(tuple(channels), "OpenSignals text", _note(converted), shortfall)


def _text_device(device: dict, table: np.ndarray, prefix: str | None) -> tuple[list[RecordedChannel], list[bool]]:
    try:
        columns = list(device["column"])
        fs = check_rate(device["sampling rate"], "the header's 'sampling rate'")
    except (KeyError, TypeError) as error:
        raise ValueError(f"the OpenSignals header has no {error} entry") from None
    labels = [column for column in columns if column not in _NOT_CHANNELS]
    sensors = list(device.get("sensor", [])) or ["unknown"] * len(labels)
    resolutions = list(device.get("resolution", [])) or [None] * len(labels)
    if not len(labels) == len(sensors) == len(resolutions):
        raise ValueError(
            f"the header lists {len(labels)} channels, {len(sensors)} sensors, {len(resolutions)} resolutions"
        )
    channels, converted = [], []
    for label, sensor, resolution in zip(labels, sensors, resolutions, strict=True):
        name = label if prefix is None else f"{prefix} {label}"
        bits = None if resolution is None else int(resolution)
        channel, done = _channel(name, table[:, columns.index(label)], fs, str(sensor), bits, device.get("device", ""))
        channels.append(channel)
        converted.append(done)
    return channels, converted


def read_opensignals_h5(path: str | os.PathLike) -> Recording:
    import h5py  # imported here: only .h5 files need it

    check_regular_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"not a readable HDF5 file ({error})") from None
    with handle:
        groups = [group for group in handle.values() if isinstance(group, h5py.Group) and "raw" in group]
        if not groups:
            raise ValueError("no OpenSignals device group (a group with a 'raw' data group) in the HDF5 file")
        channels, converted = [], []
        for group in groups:
            more, done = _h5_device(group, len(groups) > 1)
            channels += more
            converted += done
    return Recording(tuple(channels), "OpenSignals HDF5", _note(converted))


def _h5_device(group: h5py.Group, prefixed: bool) -> tuple[list[RecordedChannel], list[bool]]:
    try:
        fs = check_rate(np.ravel(group.attrs["sampling rate"])[0], "the 'sampling rate' attribute")
    except KeyError:
        raise ValueError(f"device group {group.name} has no 'sampling rate' attribute") from None
    numbers = [int(n) for n in np.ravel(group.attrs.get("channels", []))]
    resolutions = [int(r) for r in np.ravel(group.attrs.get("resolution", []))]
    device = str(group.attrs.get("device", ""))
    channels, converted = [], []
    for key in sorted((k for k in group["raw"] if k.startswith("channel_")), key=lambda k: int(k.split("_")[1])):
        dataset = group["raw"][key]
        if dataset.dtype.kind not in "iuf":
            raise ValueError(f"{dataset.name} holds {dataset.dtype}, not numbers")
        number = int(key.split("_")[1])
        bits = resolutions[numbers.index(number)] if number in numbers and len(resolutions) == len(numbers) else None
        label = str(dataset.attrs.get("label", key))
        name = f"{group.name.strip('/')} {label}" if prefixed else label
        sensor = str(dataset.attrs.get("sensor", "unknown"))
        channel, done = _channel(name, np.asarray(dataset[()]).reshape(-1), fs, sensor, bits, device)
        channels.append(channel)
        converted.append(done)
    if not channels:
        raise ValueError(f"device group {group.name} has no raw/channel_N data set")
    return channels, converted
