"""A labels file (CSV) as an alternative to labelling by file name.

Columns (header row required, any order, names case-insensitive):

* ``file``: the ``.npz`` file's name in the data folder;
* ``gender``: ``M`` or ``F`` (also ``male`` / ``female``);
* ``movement``: ``full``, ``half`` or ``invalid``;
* ``subject`` (optional): who the recording comes from, for subject-wise splits and normalisation;
* ``muscle`` (optional): the muscle (or channel) recorded, for normalisation by subject and muscle;
* ``recording`` (optional): the recording the file comes from (its windows and channels share
  it), for one prediction per recording; by default the one the file stores or its name gives
  (:func:`semg_hht.data.aggregation.recording_of`);
* ``split`` (optional): ``train`` or ``val`` pins a labelled file to that side of the
  validation split; ``test`` makes it a test file (predicted after training; its
  labels, when given, are used to score those predictions). Empty: no pin.

Comma or semicolon separated, UTF-8 (a byte-order mark is ignored). A row that
cannot be used is reported with its line number and skipped; the rest are used.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from semg_hht.classes import CLASS_NAMES
from semg_hht.errors import UsageError

GENDERS = {"m": "M", "male": "M", "f": "F", "female": "F"}
MOVEMENTS = ("full", "half", "invalid")
SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("file", "gender", "movement")


@dataclass(frozen=True)
class LabelRow:
    """One usable row: class ID (None for an unlabelled test file), subject, split pin and muscle."""

    class_id: int | None
    subject: str | None
    split: str | None
    muscle: str | None = None
    recording: str | None = None


@dataclass
class LabelsFile:
    """The usable rows of a labels file by file name, and one message per row that was not usable."""

    path: Path
    rows: dict[str, LabelRow] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _class_id(gender: str, movement: str) -> int:
    gender_code = GENDERS.get(gender.strip().lower())
    if gender_code is None:
        raise ValueError(f"gender {gender!r} is not M or F")
    if movement.strip().lower() not in MOVEMENTS:
        raise ValueError(f"movement {movement!r} is not one of {', '.join(MOVEMENTS)}")
    return CLASS_NAMES.index(f"{gender_code}_{movement.strip().lower()}")


def _parse_row(row: dict[str, str], require_labels: bool) -> LabelRow:
    split = (row.get("split") or "").strip().lower() or None
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {row['split']!r} is not one of {', '.join(SPLITS)} (or empty)")
    gender, movement = (row.get("gender") or "").strip(), (row.get("movement") or "").strip()
    if (split == "test" or not require_labels) and not gender and not movement:
        class_id = None
    else:
        class_id = _class_id(gender, movement)
    subject = (row.get("subject") or "").strip() or None
    muscle = (row.get("muscle") or "").strip() or None
    recording = (row.get("recording") or "").strip() or None
    return LabelRow(class_id, subject, split, muscle, recording)


def read_labels_file(path: str | os.PathLike, require_labels: bool = True) -> LabelsFile:
    """Read a labels CSV; with ``require_labels=False`` (inference: subjects and muscles only)
    the gender and movement columns may be absent or empty.

    Raises
    ------
    UsageError
        The file cannot be read, or lacks a required column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"Cannot read the labels file {path}: {error}") from None
    lines = text.splitlines()
    if not lines:
        raise UsageError(f"The labels file {path} is empty")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    required = REQUIRED_COLUMNS if require_labels else REQUIRED_COLUMNS[:1]
    missing = [name for name in required if name not in columns]
    if missing:
        raise UsageError(
            f"The labels file {path} lacks the column(s) {', '.join(missing)}; "
            f"its header is {', '.join(reader.fieldnames or [])!r}. Required: file, gender, movement "
            "(optional: subject, split, muscle, recording)"
        )
    reader.fieldnames = columns
    labels = LabelsFile(path)
    for line_number, row in enumerate(reader, start=2):
        name = (row.get("file") or "").strip()
        if not name:
            labels.problems.append(f"{path.name} line {line_number}: no file name")
            continue
        if name in labels.rows:
            labels.problems.append(f"{path.name} line {line_number}: {name} is listed again; the first row is used")
            continue
        try:
            labels.rows[name] = _parse_row(row, require_labels)
        except ValueError as error:
            labels.problems.append(f"{path.name} line {line_number} ({name}): {error}; skipped")
    return labels
