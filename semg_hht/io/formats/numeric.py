"""NumPy recordings: ``.npy`` and ``.npz`` files of one or more channels.

- ``.npy``: a 1-D array (one channel) or a 2-D array of samples x channels. A recording has
  more samples than channels, so a 2-D array whose first axis is the shorter one is read as
  channels x samples. It carries no sampling rate.
- ``.npz``: the recording is the array ``signal`` (or, if there is none, ``emg``), 1-D or 2-D as
  for ``.npy``; its sampling rate in Hz is the scalar ``fs`` (or ``sampling_rate``), optional,
  and its unit the text scalar ``unit``, optional (voltages are given in mV).

Channels are named ``ch0``, ``ch1``, ...; a ``.npy`` file's unit is not known. Arrays are read with
``allow_pickle=False`` and their headers (shape, dtype) are checked before any data is read,
so an object array is refused without being unpickled.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from semg_hht.io.formats.common import Recording, check_rate, in_millivolts, numbered_channels
from semg_hht.io.npyfile import (
    NPY_MAGIC,
    ZIP_MAGICS,
    leading_bytes,
    npz_members,
    read_array,
    read_member,
    read_text_member,
)

SIGNAL_KEYS = ("signal", "emg")
"""Names of the recording in an ``.npz`` archive, in order of preference."""
RATE_KEYS = ("fs", "sampling_rate")
"""Names of the sampling rate (Hz) in an ``.npz`` archive, in order of preference."""
UNIT_KEY = "unit"
_MAX_UNIT = 32  # characters


def check_real(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iuf":
        raise ValueError(f"the array has dtype {dtype}, not a real number type")


def as_samples(array: np.ndarray) -> np.ndarray:
    """A 1-D or 2-D array as (n_samples, n_channels) float64; the longer axis holds the samples."""
    if array.ndim not in (1, 2):
        raise ValueError(f"the signal has shape {array.shape}; expected 1-D (samples) or 2-D (samples x channels)")
    if array.size == 0:
        raise ValueError(f"the signal is empty (shape {array.shape})")
    if array.ndim == 1:
        array = array[:, None]
    elif array.shape[0] < array.shape[1]:
        array = array.T
    return array.astype(np.float64)


def read_npy(path: str | os.PathLike) -> Recording:
    if leading_bytes(path, len(NPY_MAGIC)) != NPY_MAGIC:
        raise ValueError("the file is not a .npy array")
    array = read_array(lambda: open(path, "rb"), os.path.getsize(path), "the array", check_real)
    return Recording(numbered_channels(as_samples(array), None), "NumPy .npy")


def read_npz(path: str | os.PathLike) -> Recording:
    if leading_bytes(path, 4) not in ZIP_MAGICS:
        raise ValueError("the file is not an .npz (zip) archive")
    with zipfile.ZipFile(path) as archive:
        members = npz_members(archive)
        signal_key = next((key for key in SIGNAL_KEYS if key in members), None)
        if signal_key is None:
            raise ValueError(f"no array named {' or '.join(map(repr, SIGNAL_KEYS))} (keys: {', '.join(members)})")
        samples = as_samples(read_member(archive, members[signal_key], f"array {signal_key!r}", check_real))
        rate_key = next((key for key in RATE_KEYS if key in members), None)
        rate = None if rate_key is None else read_member(archive, members[rate_key], f"array {rate_key!r}", check_real)
        unit = read_text_member(archive, members, UNIT_KEY, _MAX_UNIT)
    fs = None
    if rate is not None:
        if rate.size != 1:
            raise ValueError(f"{rate_key!r} must be one number (the sampling rate in Hz); got shape {rate.shape}")
        fs = check_rate(rate.ravel()[0], f"the sampling rate {rate_key!r}")
    samples, unit = in_millivolts(samples, unit)
    return Recording(numbered_channels(samples, fs, unit), "NumPy .npz")
