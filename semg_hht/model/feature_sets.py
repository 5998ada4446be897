"""Which features the classifier sees: blocks of CNN, HHT-descriptor and time-domain features.

A feature set is a ``+``-joined choice of blocks, always laid out in this order:

* ``cnn``: the encoder's 256 features (:mod:`semg_hht.model.encoder`); blind to the matrix's scale;
* ``hht``: the named descriptors of the matrix (:mod:`semg_hht.model.descriptors`): amplitude,
  band energies, frequencies, time profile, trend;
* ``env``: the activation envelope's shape (:mod:`semg_hht.model.envelope`): time above several
  fractions of the peak, the envelope's percentiles, bursts, centre of activity, fluctuation, where
  the main burst's activity lies;
* ``td``: the preprocessed segment's time-domain features (:mod:`semg_hht.hht.time_domain`), stored in the
  matrix file by compute_hht.py; files without them cannot be used with this block;
* ``amp``: the shape of the preprocessed segment's amplitude distribution (its kurtosis and the log
  of its mean absolute value over its RMS, :func:`~semg_hht.hht.time_domain.amplitude_distribution_features`):
  how Gaussian the signal is, which grows with the number of motor units firing. Stored in the
  matrix file after the ``td`` features by compute_hht.py; files converted by release 0.3 or
  earlier hold only the ``td`` features and cannot be used with this block.

Combining blocks: after standardisation every column of a block of width ``d`` is weighted
by ``1 / sqrt(d)``, so that each block contributes the same expected squared distance to the
RBF kernel whatever its width; without it the 256 CNN columns drown the few descriptors.

Window samples (:mod:`semg_hht.data.windows`): a sample may be one window of several channels,
each channel's features side by side in the model's channel order (channel-major), each column
named ``<channel>:<name>``; a block then spans its columns in every channel.

The factorised model's gender head sees the columns that describe the subject
(:func:`subject_columns`): every CNN and time-domain column, the HHT descriptors of
:data:`~semg_hht.model.descriptors.SUBJECT_DESCRIPTORS`, and none of the envelope's or the
amplitude distribution's (which follow the contraction, not the subject).
"""

from __future__ import annotations

import numpy as np

from semg_hht.hht.time_domain import AMPLITUDE_NAMES, SEGMENT_FEATURE_NAMES, TIME_DOMAIN_NAMES
from semg_hht.model.descriptors import DESCRIPTOR_NAMES, SUBJECT_DESCRIPTORS
from semg_hht.model.envelope import ENVELOPE_NAMES

ENCODER_CHANNELS = (1, 64, 128, 256)
"""The encoder's channels, block by block (:mod:`semg_hht.model.encoder`): defined here, where
torch is not imported, so that a model without the CNN block never imports it."""
FEATURE_DIM = ENCODER_CHANNELS[-1]

FEATURE_BLOCKS = ("cnn", "hht", "env", "td", "amp")
BLOCK_NAMES = {
    "cnn": tuple(f"cnn_{index:03d}" for index in range(FEATURE_DIM)),
    "hht": tuple(DESCRIPTOR_NAMES),
    "env": tuple(ENVELOPE_NAMES),
    "td": tuple(f"td_{name}" for name in TIME_DOMAIN_NAMES),
    "amp": tuple(f"amp_{name}" for name in AMPLITUDE_NAMES),
}
STORED_COLUMNS = {
    "td": slice(0, len(TIME_DOMAIN_NAMES)),
    "amp": slice(len(TIME_DOMAIN_NAMES), len(SEGMENT_FEATURE_NAMES)),
}
"""The blocks read from the features stored in each file (``td_features``, laid out as
:data:`~semg_hht.hht.time_domain.SEGMENT_FEATURE_NAMES`) rather than from its matrix, and their positions there."""
NAMED_DESCRIPTORS = (*BLOCK_NAMES["hht"], *BLOCK_NAMES["env"])
"""The descriptors with a physiological name (the hht and env blocks), as explanations and importance list them."""
SUBJECT_NAMES = frozenset((*BLOCK_NAMES["cnn"], *SUBJECT_DESCRIPTORS, *BLOCK_NAMES["td"]))
"""The columns that describe the subject rather than the movement (the module docstring)."""


def parse_feature_set(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Blocks of a feature set such as ``"cnn+hht"``, in canonical order.

    Raises
    ------
    ValueError
        An unknown or repeated block, or none.
    """
    parts = [part.strip().lower() for part in (text.split("+") if isinstance(text, str) else text)]
    unknown = [part for part in parts if part not in FEATURE_BLOCKS]
    if unknown or not parts:
        raise ValueError(f"feature set {text!r}: blocks must be {', '.join(FEATURE_BLOCKS)} joined by '+'")
    if len(set(parts)) != len(parts):
        raise ValueError(f"feature set {text!r} names a block twice")
    return tuple(block for block in FEATURE_BLOCKS if block in parts)


def feature_set_name(blocks: tuple[str, ...]) -> str:
    return "+".join(blocks)


def feature_names(blocks: tuple[str, ...]) -> list[str]:
    """The name of every column of a feature set, in order."""
    return [name for block in blocks for name in BLOCK_NAMES[block]]


def channel_feature_names(blocks: tuple[str, ...], channels: tuple[str, ...] | None) -> list[str]:
    """The name of every column of a sample: :func:`feature_names`, or per channel ``<channel>:<name>``."""
    names = feature_names(blocks)
    return names if channels is None else [f"{channel}:{name}" for channel in channels for name in names]


def block_columns(blocks: tuple[str, ...], channels: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """The column indices of each block in a sample: one matrix's, or each channel's of a window sample."""
    width = len(feature_names(blocks))
    offsets = np.arange(1 if channels is None else len(channels)) * width
    slices = block_slices(blocks)
    return {block: (offsets[:, None] + np.arange(width)[span][None, :]).ravel() for block, span in slices.items()}


def subject_columns(blocks: tuple[str, ...], channels: tuple[str, ...] | None) -> np.ndarray:
    """The indices of a sample's columns of :data:`SUBJECT_NAMES`, in order; every column where none is."""
    names = feature_names(blocks)
    kept = np.array([index for index, name in enumerate(names) if name in SUBJECT_NAMES], dtype=np.int64)
    if kept.size == 0:
        kept = np.arange(len(names))
    offsets = np.arange(1 if channels is None else len(channels)) * len(names)
    return (offsets[:, None] + kept[None, :]).ravel()


def block_slices(blocks: tuple[str, ...]) -> dict[str, slice]:
    """The columns of each block."""
    slices, start = {}, 0
    for block in blocks:
        slices[block] = slice(start, start + len(BLOCK_NAMES[block]))
        start += len(BLOCK_NAMES[block])
    return slices


def block_weights(blocks: tuple[str, ...], n_channels: int = 1) -> np.ndarray:
    """Per-column weight after standardisation: ``1 / sqrt(width)`` of its block (over all ``n_channels``
    of a window sample, laid out channel-major); all 1 for one block.

    One block is left unweighted: a common factor only rescales ``gamma="scale"``, and a
    single-block model stays exactly as it was before blocks existed.
    """
    if len(blocks) == 1:
        return np.ones(n_channels * len(BLOCK_NAMES[blocks[0]]))
    one_channel = [np.full(len(BLOCK_NAMES[b]), 1.0 / np.sqrt(n_channels * len(BLOCK_NAMES[b]))) for b in blocks]
    return np.tile(np.concatenate(one_channel), n_channels)
