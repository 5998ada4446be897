"""One prediction per recording from the predictions of its matrices (its windows and channels).

compute_hht.py stores each matrix's recording (the input's stem) as ``recording``; for files
without it the recording is the file name without ``.npz``, without ``_segNNN`` and, where the
file stores its channel, without ``_<channel>``; a labels file's ``recording`` column wins over
both.

Rules:

- ``mean`` (the default): the recording's class probabilities are the mean of its matrices'.
  Averaging posteriors is the sum rule of classifier combination (Kittler et al. 1998, IEEE
  TPAMI 20:226), the most robust of the fixed rules to errors in each member's estimate;
  a confident channel counts for more than an unsure one, and the result is still a
  probability vector with a confidence.
- ``majority``: each matrix votes for its most probable class; the recording's "probabilities"
  are the shares of the votes, ties going to the class of higher mean probability. It ignores
  how sure each member was, which helps when a few channels are badly calibrated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.defaults import AGGREGATION_RULES, DEFAULT_AGGREGATION_RULE
from semg_hht.io.recordings import channel_tag

_SEGMENT_SUFFIX = re.compile(r"_seg\d{3,}$")


def recording_of(name: str, stored: str | None = None, channel: str | None = None) -> str:
    """The recording a matrix file belongs to (module docstring): ``stored`` if given, else from its name."""
    if stored:
        return stored
    stem = _SEGMENT_SUFFIX.sub("", Path(name).stem if name.lower().endswith(".npz") else name)
    suffix = f"_{channel_tag(channel)}" if channel else None
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) and len(stem) > len(suffix) else stem


@dataclass(frozen=True)
class RecordingPrediction:
    """The combined prediction of one recording: its name, the rows of its members, its (6,) probabilities."""

    recording: str
    members: list[int]
    probabilities: np.ndarray


def aggregate(
    probabilities: np.ndarray, recordings: Sequence[str], rule: str = DEFAULT_AGGREGATION_RULE
) -> list[RecordingPrediction]:
    """Combine the rows of ``probabilities`` (n, n_classes) by recording, in order of first appearance.

    Raises
    ------
    ValueError
        An unknown rule, or ``recordings`` not of length n.
    """
    if rule not in AGGREGATION_RULES:
        raise ValueError(f"the aggregation rule must be one of {', '.join(AGGREGATION_RULES)}; got {rule!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(recordings) != len(probabilities):
        raise ValueError(f"{len(recordings)} recordings for {len(probabilities)} rows")
    members: dict[str, list[int]] = {}
    for row, recording in enumerate(recordings):
        members.setdefault(recording, []).append(row)
    return [RecordingPrediction(name, rows, _combine(probabilities[rows], rule)) for name, rows in members.items()]


def _combine(rows: np.ndarray, rule: str) -> np.ndarray:
    mean = rows.mean(axis=0)
    if rule == "mean":
        return mean
    votes = np.bincount(rows.argmax(axis=1), minlength=rows.shape[1]).astype(np.float64) / len(rows)
    # Ties: the tied class with the higher mean probability gets a hair more, so argmax picks it.
    tied = votes == votes.max()
    return votes + tied * mean * 1e-9


def recording_labels(predictions: list[RecordingPrediction], labels: np.ndarray) -> np.ndarray | None:
    """The class of each recording from its members' ``labels`` (n,); None when a recording's members disagree."""
    classes = []
    for prediction in predictions:
        member_labels = np.unique(labels[prediction.members])
        if len(member_labels) != 1:
            return None
        classes.append(int(member_labels[0]))
    return np.array(classes, dtype=int)
