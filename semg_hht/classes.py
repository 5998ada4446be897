"""The six-class table and the file-name labelling rule.

File names follow ``MUSCLE_movement_GENDER_###.npz``. Tokens are separated by
``_`` and compared case-insensitively:

* movement ``fatiguetest`` or ``full`` -> full, ``half`` -> half,
  ``invalid`` or ``wrong`` -> invalid;
* gender ``M`` or ``F``.

A file is an unlabelled *test* file when any token is ``test`` or the name
begins with ``test`` (``BICEPS_test_001.npz``, ``Test1_1_015.npz``);
``fatiguetest`` is a movement, never a test marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "M_full",
    "M_half",
    "M_invalid",
    "F_full",
    "F_half",
    "F_invalid",
)
N_CLASSES = len(CLASS_NAMES)
GENDERS: tuple[str, ...] = ("M", "F")
MOVEMENTS: tuple[str, ...] = ("full", "half", "invalid")
N_GENDERS, N_QUALITIES = len(GENDERS), len(MOVEMENTS)
"""Class ID = ``N_QUALITIES * gender + quality`` (gender 0 M, 1 F; quality 0 full, 1 half, 2 invalid)."""

NAMING_RULE = (
    "Labelled files are named MUSCLE_movement_GENDER_###.npz, movement one of "
    "fatiguetest/full, half, invalid/wrong and GENDER M or F "
    "(e.g. BICEPS_fatiguetest_M_006.npz); files with a 'test' token or a name "
    "starting with 'test' are unlabelled test files."
)

_MOVEMENT_TOKENS = {
    "fatiguetest": "full",
    "full": "full",
    "half": "half",
    "invalid": "invalid",
    "wrong": "invalid",
}
_GENDER_TOKENS = {"m": "M", "f": "F"}
NAMING_TOKENS = frozenset(_MOVEMENT_TOKENS) | frozenset(_GENDER_TOKENS) | {"test"}
"""The name tokens (lower case) that label a file: a field added to a name must not be one of them."""

FileKind = Literal["labelled", "test", "unlabelled"]


def class_id(gender: str, movement: str) -> int:
    """Return the class ID (0-5) of a gender (``M``/``F``) and movement."""
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    if movement not in MOVEMENTS:
        raise ValueError(f"movement must be one of {MOVEMENTS}, got {movement!r}")
    return GENDERS.index(gender) * N_QUALITIES + MOVEMENTS.index(movement)


def gender_of(class_ids: np.ndarray) -> np.ndarray:
    """The gender of each class ID: 0 for M, 1 for F."""
    import numpy as np  # here: the scripts' --help reads this module and stays free of numpy

    return np.asarray(class_ids) // N_QUALITIES


def quality_of(class_ids: np.ndarray) -> np.ndarray:
    """The movement quality of each class ID: 0 full, 1 half, 2 invalid."""
    import numpy as np

    return np.asarray(class_ids) % N_QUALITIES


@dataclass(frozen=True)
class FileLabel:
    """What a file name says about its recording.

    ``kind`` is ``"labelled"`` (``class_id`` set), ``"test"`` (unlabelled, to be
    predicted) or ``"unlabelled"`` (neither; ``reason`` says why).
    """

    kind: FileKind
    class_id: int | None = None
    reason: str = ""

    @property
    def class_name(self) -> str | None:
        return None if self.class_id is None else CLASS_NAMES[self.class_id]


def is_npz_name(name: str) -> bool:
    """True when a file name has the ``.npz`` extension, in any case."""
    return name.lower().endswith(".npz")


def parse_filename(name: str) -> FileLabel:
    """Label a file from its name (a bare name or a path).

    Parameters
    ----------
    name : str
        File name such as ``TRICEPS_half_F_012.npz``; any directory part is ignored.

    Returns
    -------
    FileLabel
        ``kind="labelled"`` with the class ID, ``kind="test"``, or
        ``kind="unlabelled"`` with the reason the name could not be labelled.
    """
    base = PurePath(name).name
    stem = base[:-4] if is_npz_name(base) else base
    tokens = [token.lower() for token in stem.split("_")]

    if "test" in tokens or stem.lower().startswith("test"):
        return FileLabel("test")

    movements = {_MOVEMENT_TOKENS[t] for t in tokens if t in _MOVEMENT_TOKENS}
    genders = {_GENDER_TOKENS[t] for t in tokens if t in _GENDER_TOKENS}
    problems = []
    if not movements:
        problems.append("no movement token (fatiguetest, full, half, invalid, wrong)")
    elif len(movements) > 1:
        problems.append(f"conflicting movement tokens ({', '.join(sorted(movements))})")
    if not genders:
        problems.append("no gender token (M or F)")
    elif len(genders) > 1:
        problems.append("both M and F tokens")
    if problems:
        return FileLabel("unlabelled", reason="; ".join(problems))
    return FileLabel("labelled", class_id=class_id(genders.pop(), movements.pop()))
