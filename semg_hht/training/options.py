"""What a train.py run is asked to do (:class:`TrainingOptions`), checked before any data is read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semg_hht.data.dataset import compile_group_pattern
from semg_hht.defaults import (
    DEFAULT_AGGREGATION_RULE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_FEATURES,
    DEFAULT_HEAD,
    DEFAULT_LR,
    DEFAULT_MODEL,
    DEFAULT_NORMALISATION,
    DEFAULT_PATIENCE,
    DEFAULT_SAMPLE,
    DEFAULT_SEED,
    DEFAULT_SVM_C,
    DEFAULT_SVM_GAMMA,
    DEFAULT_SVM_KERNEL,
    DEFAULT_TEST_SIZE,
    DEFAULT_WEIGHT_DECAY,
    HEADS,
    MODELS,
    NORMALISATION_MODES,
    SAMPLE_KINDS,
)
from semg_hht.errors import UsageError
from semg_hht.evaluation.splits import parse_cv
from semg_hht.io.hashing import file_sha256
from semg_hht.model.checkpoint import checkpoint_files
from semg_hht.model.classifier import parse_gamma
from semg_hht.model.feature_sets import feature_set_name, parse_feature_set
from semg_hht.training.encoder_options import EncoderTrainingOptions

CHECKPOINTS = ("final", "latest", "best")
"""The checkpoints a run writes in its folder (``final`` and ``latest`` always, ``best`` when training the encoder)."""


@dataclass
class TrainingOptions:
    """train.py's options, one field per flag (same name); see train.py's ``--help``."""

    data_dir: str
    checkpoint_dir: str = "./checkpoints"
    batch_size: int = DEFAULT_BATCH_SIZE
    test_size: float = DEFAULT_TEST_SIZE
    resume: bool = False
    overwrite: bool = False
    cpu: bool = False
    bf16: bool = False
    seed: int = DEFAULT_SEED
    svm_C: float = DEFAULT_SVM_C
    svm_kernel: str = DEFAULT_SVM_KERNEL
    svm_gamma: str = DEFAULT_SVM_GAMMA
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    patience: int = DEFAULT_PATIENCE
    augment: bool = False
    labels: str | None = None
    group_pattern: str | None = None
    cv: str | None = None
    features: str = DEFAULT_FEATURES
    normalise: str = DEFAULT_NORMALISATION
    model: str = DEFAULT_MODEL
    head: str = DEFAULT_HEAD
    tune: bool = False
    vote: str = DEFAULT_AGGREGATION_RULE
    sample: str = DEFAULT_SAMPLE

    def encoder_training(self) -> EncoderTrainingOptions:
        return EncoderTrainingOptions(self.epochs, self.lr, self.weight_decay, self.patience, self.augment)

    def validate(self) -> None:
        """Reject impossible values before any data is read."""
        if not 0 < self.test_size < 1:
            raise UsageError(f"`test_size` must be between 0 and 1 (exclusive), got {self.test_size}")
        if self.batch_size < 1:
            raise UsageError(f"`batch_size` must be at least 1, got {self.batch_size}")
        if not self.svm_C > 0:
            raise UsageError(f"`svm_C` must be positive, got {self.svm_C}")
        try:
            parse_gamma(self.svm_gamma)
        except ValueError as error:
            raise UsageError(f"`svm_gamma`: {error}") from None
        try:
            self.encoder_training().validate()
        except ValueError as error:
            raise UsageError(str(error)) from None
        self._validate_model()
        self._validate_paths()

    def _validate_model(self) -> None:
        try:
            blocks = parse_feature_set(self.features)
        except ValueError as error:
            raise UsageError(f"`features`: {error}") from None
        if self.normalise not in NORMALISATION_MODES:
            raise UsageError(f"`normalise` must be one of {', '.join(NORMALISATION_MODES)}, got {self.normalise!r}")
        if self.model not in MODELS:
            raise UsageError(f"`model` must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.head not in HEADS:
            raise UsageError(f"`head` must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.epochs and "cnn" not in blocks:
            raise UsageError(
                f"`epochs` {self.epochs} trains the CNN encoder, but `features` {self.features} has no cnn block: "
                "pass `epochs` 0, or a feature set with cnn"
            )
        if self.tune and self.epochs:
            raise UsageError("`tune` chooses the SVM for fixed features: it needs `epochs` 0")
        if self.sample not in SAMPLE_KINDS:
            raise UsageError(f"`sample` must be one of {', '.join(SAMPLE_KINDS)}, got {self.sample!r}")
        if self.sample == "window" and self.epochs:
            raise UsageError(
                "`sample` window takes the features of each matrix as they are, and encoder training sees one "
                "matrix a sample: it needs `epochs` 0"
            )

    def _validate_paths(self) -> None:
        if self.group_pattern is not None:
            compile_group_pattern(self.group_pattern)
        if self.cv is not None:
            parse_cv(self.cv)
        if not os.path.isdir(self.data_dir):
            raise UsageError(f"Data directory not found: {self.data_dir}")
        if self.labels is not None and not os.path.isfile(self.labels):
            raise UsageError(f"Labels file not found: {self.labels}")
        if self.resume and self.overwrite:
            raise UsageError(
                "`resume` continues the checkpoints in `checkpoint_dir`, `overwrite` replaces them: pick one"
            )

    def refuse_existing_checkpoints(self) -> None:
        """Refuse to replace checkpoints without `resume` or `overwrite` (checked under the folder's lock)."""
        existing = existing_checkpoints(self.checkpoint_dir)
        if existing and not (self.resume or self.overwrite):
            raise UsageError(
                f"Checkpoints already exist in {self.checkpoint_dir} ({', '.join(existing)}): pass `resume` to "
                "continue that run, `overwrite` to replace them, or choose another `checkpoint_dir`"
            )

    def model_settings(self) -> dict[str, Any]:
        """What the features and the model are: recorded in the checkpoint, compared on resume."""
        return {
            "features": feature_set_name(parse_feature_set(self.features)),
            "normalisation": self.normalise,
            "model": self.model,
            "head": self.head,
            # Only where asked: the settings of checkpoints from before window samples compare equal.
            **({"sample": self.sample} if self.sample != DEFAULT_SAMPLE else {}),
        }

    def svm_request(self) -> dict[str, Any]:
        """The SVM settings asked for (``tune`` instead of C and gamma with `tune`)."""
        if self.tune:
            return {"tune": True, "kernel": self.svm_kernel}
        return {"C": float(self.svm_C), "kernel": self.svm_kernel, "gamma": parse_gamma(self.svm_gamma)}

    def settings(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint."""
        training: dict[str, Any] = {"epochs": 0}
        if self.epochs:
            # Batches and bf16 change the training trajectory; with a random encoder they do not matter.
            training = {**self.encoder_training().settings(), "batch_size": self.batch_size, "bf16": self.bf16}
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "svm": self.svm_request(),
            "model_settings": self.model_settings(),
            "training": training,
            "split": {
                "labels_file": file_fingerprints([Path(self.labels)])[Path(self.labels).name] if self.labels else None,
                "group_pattern": self.group_pattern,
                "cv": None if self.cv is None else parse_cv(self.cv),
            },
        }


def existing_checkpoints(checkpoint_dir: str | os.PathLike) -> list[str]:
    """Names (``final``, ``latest``, ``best``) of the checkpoints a run in ``checkpoint_dir`` would replace."""
    return [
        name
        for name in CHECKPOINTS
        if any(path.exists() for path in checkpoint_files(Path(checkpoint_dir) / name).values())
    ]


def file_fingerprints(paths: Sequence[Path]) -> dict[str, str]:
    """SHA-256 of each file's content, keyed by file name: what a resume must find unchanged."""
    return {path.name: file_sha256(path) for path in paths}
