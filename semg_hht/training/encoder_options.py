"""What encoder training is asked to do and on which files: plain data, importable without torch.

:mod:`semg_hht.training.trainer` does the training; a model without the CNN block is fitted
without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semg_hht.defaults import DEFAULT_LR, DEFAULT_PATIENCE, DEFAULT_WEIGHT_DECAY
from semg_hht.model.normalisation import FileGroups


class TrainingDataError(Exception):
    """A labelled file that loaded when training began can no longer be used."""


@dataclass
class EncoderTrainingOptions:
    """How the encoder is trained; ``epochs=0`` leaves it at its seeded random weights.

    ``patience`` is the number of epochs without a lower validation loss after
    which training stops (0: never stop early).
    """

    epochs: int = 0
    lr: float = DEFAULT_LR
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    patience: int = DEFAULT_PATIENCE
    augment: bool = False

    def validate(self) -> None:
        """Raise ValueError (naming the option as `name`) for a value training cannot use."""
        if self.epochs < 0:
            raise ValueError(f"`epochs` must be 0 or more, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"`lr` must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be 0 or more, got {self.weight_decay}")
        if self.patience < 0:
            raise ValueError(f"`patience` must be 0 or more, got {self.patience}")

    def settings(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "lr": float(self.lr),
            "weight_decay": float(self.weight_decay),
            "patience": self.patience,
            "augment": self.augment,
        }


@dataclass
class LabelledFiles:
    """Files and their class IDs, parallel; their subjects and muscles where the normalisation needs them."""

    paths: list[Path]
    labels: np.ndarray
    groups: FileGroups | None = None
