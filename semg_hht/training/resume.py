"""Every rule of a resumed train.py run (`resume`), and the order of the saves those rules rely on.

A resumed run continues ``latest_*`` of the checkpoint folder: it must have been trained with
the same settings (:func:`load_resume_checkpoint`) on the same labelled files, whose split it
keeps (:func:`resumed_split`); a run that trains the encoder also needs the trainer state in
``latest_*`` and the best epoch's classifier from ``best_*`` (:func:`restore_trainer`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semg_hht.errors import UsageError
from semg_hht.model.checkpoint import (
    LEGACY_SETTINGS,
    CheckpointError,
    CheckpointMetadata,
    TrainingRun,
    checkpoint_files,
    load_checkpoint,
    load_training_checkpoint,
    previous_prefix,
)
from semg_hht.model.classifier import HHTClassifier
from semg_hht.training.options import TrainingOptions, existing_checkpoints

if TYPE_CHECKING:
    import torch

    from semg_hht.training.trainer import EncoderTrainer

logger = logging.getLogger(__name__)

SAVE_ORDER = ("best", "latest", "final")
"""The order in which checkpoints saved together are written (see :func:`in_save_order`)."""

# What checkpoints written before a key existed stand for.
_OLD_MODEL_SETTINGS = {  # before feature sets
    "features": LEGACY_SETTINGS["features"],
    "normalisation": "none",
    "model": LEGACY_SETTINGS["model"],
    "head": LEGACY_SETTINGS["head"],
}
_OLD_TRAINING = {"epochs": 0}  # release 0.1: a random encoder
_OLD_SPLIT = {"labels_file": None, "group_pattern": None, "cv": None}  # release 0.1: labels from file names


def in_save_order(names: Iterable[str]) -> list[str]:
    """``names`` of checkpoints saved together, in the order they must be written: :data:`SAVE_ORDER`.

    ``best_*`` before ``latest_*``: ``latest_*``, with the trainer state, is the commit point of
    an epoch, so a run killed between the two leaves a ``best_*`` newer than the trainer state
    names, never an older one, and the one it replaced is kept in ``.previous/``
    (:func:`load_best` looks there). ``final_*`` last: a folder with a ``final_*`` holds the
    ``latest_*`` of the same run.
    """
    return sorted(names, key=SAVE_ORDER.index)


@dataclass(frozen=True)
class Resumed:
    """What ``latest_*`` holds for a resumed run."""

    classifier: HHTClassifier
    metadata: CheckpointMetadata
    trainer_state: dict[str, Any] | None

    def kept(self, key: str) -> Any:
        """A result of the earlier run that a resumed one keeps (``cv``, ``tuning``): None if it has none."""
        return getattr(self.metadata.run, key, None)


def load_resume_checkpoint(options: TrainingOptions, device: torch.device | str) -> Resumed | None:
    """``latest_*`` of ``options.checkpoint_dir``, checked against ``options``; None when there is none.

    Raises
    ------
    UsageError
        The folder holds other checkpoints but no ``latest_*``, ``latest_*`` cannot be loaded,
        was trained with other settings, or lacks the trainer state that encoder training needs.
    """
    latest = Path(options.checkpoint_dir) / "latest"
    if not checkpoint_files(latest)["encoder"].exists():
        if existing_checkpoints(options.checkpoint_dir):
            raise UsageError(
                f"Cannot resume: {options.checkpoint_dir} holds a final or best checkpoint but no latest_*; "
                "use `overwrite` to replace it, or another `checkpoint_dir`"
            )
        logger.info(f"No checkpoint to resume in {options.checkpoint_dir}; starting fresh training")
        return None
    try:
        classifier, metadata, trainer_state = load_training_checkpoint(latest, device)
    except CheckpointError as error:
        raise UsageError(f"Cannot resume: {error}") from None
    _refuse_other_settings(_stored_settings(metadata), options.settings())
    if options.epochs and trainer_state is None:
        raise UsageError(f"Cannot resume: {latest} has no trainer state; use `overwrite` to train afresh")
    if trainer_state is None:
        logger.info(f"Resuming from checkpoint: {latest} (fitted classifier found; it is not refitted)")
    else:
        logger.info(
            f"Resuming from checkpoint: {latest} (epoch {trainer_state['epoch']} of {options.epochs} completed)"
        )
    return Resumed(classifier, metadata, trainer_state)


def _stored_settings(metadata: CheckpointMetadata) -> dict[str, Any]:
    """The settings of :meth:`TrainingOptions.settings` that a checkpoint was trained with."""
    run = metadata.run or TrainingRun([], [])
    return {
        "seed": metadata.seed,
        "test_size": run.test_size,
        "svm": run.svm_request or metadata.svm,
        # Checkpoints written before the head could be chosen have the SVM.
        "model_settings": {"head": LEGACY_SETTINGS["head"], **(run.model_settings or _OLD_MODEL_SETTINGS)},
        "training": run.training or _OLD_TRAINING,
        "split": run.split or _OLD_SPLIT,
    }


def _refuse_other_settings(stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    differences = [
        f"{key}: checkpoint {stored[key]}, this run {wanted[key]}" for key in wanted if stored[key] != wanted[key]
    ]
    if differences:
        raise UsageError(
            "Cannot resume: the checkpoint was trained with other settings ("
            + "; ".join(differences)
            + "). Pass the same flags, or use `overwrite` (or another `checkpoint_dir`) to train afresh."
        )


def resumed_split(
    metadata: CheckpointMetadata, names: Sequence[str], fingerprints: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's training and validation split, as indices (sorted) into ``names``.

    Raises
    ------
    UsageError
        The labelled files (``names``, their content ``fingerprints``) are not the checkpoint's.
    """
    run = metadata.run or TrainingRun([], [])
    stored_train, stored_val = list(run.train_files), list(run.val_files)
    stored = set(stored_train) | set(stored_val)
    missing, added = sorted(stored - set(names)), sorted(set(names) - stored)
    # Checkpoints of release 0.1 kept no fingerprints: only the names can be compared.
    stored_fingerprints = run.data_fingerprints
    changed = sorted(
        name for name in stored_fingerprints if name in fingerprints and fingerprints[name] != stored_fingerprints[name]
    )
    if missing or added or changed:
        detail = []
        if missing:
            detail.append(f"{len(missing)} files missing (e.g. {missing[0]})")
        if added:
            detail.append(f"{len(added)} new files (e.g. {added[0]})")
        if changed:
            detail.append(f"{len(changed)} files with different content (e.g. {changed[0]})")
        raise UsageError(
            "Cannot resume: the labelled files differ from the checkpoint's ("
            + ", ".join(detail)
            + "). Use `overwrite` (or another `checkpoint_dir`) to fit a new model on this data."
        )
    position = {name: i for i, name in enumerate(names)}
    return (
        np.array(sorted(position[n] for n in stored_train), dtype=int),
        np.array(sorted(position[n] for n in stored_val), dtype=int),
    )


def load_best(
    checkpoint_dir: Path, best_epoch: int, options: TrainingOptions, device: torch.device | str
) -> HHTClassifier:
    """The best epoch's classifier for a resumed run: ``best_*``, or the one it replaced.

    Saved in :func:`in_save_order`, ``best_*`` may be newer than the trainer state (a run
    killed between the two saves); the one it replaced, kept in ``.previous/``, is then the
    right one (the re-run epoch saves the newer again).
    """
    prefix = checkpoint_dir / "best"
    found = []
    for candidate in (prefix, previous_prefix(prefix)):
        try:
            best, metadata = load_checkpoint(candidate, device)
        except CheckpointError as error:
            found.append(str(error))
            continue
        training = metadata.run.training if metadata.run else None
        same_run = metadata.seed == options.seed and training == options.settings()["training"]
        if metadata.epoch == best_epoch and same_run:
            return best
        found.append(f"{candidate}_* holds epoch {metadata.epoch}" + ("" if same_run else " of another run"))
    raise UsageError(
        f"Cannot resume: no checkpoint of the best epoch ({best_epoch}) that the trainer state names ("
        + "; ".join(found)
        + "); use `overwrite` to train afresh"
    )


def restore_trainer(trainer: EncoderTrainer, resumed: Resumed | None, options: TrainingOptions) -> bool:
    """Continue ``trainer`` from a resumed run's trainer state and best epoch; False when there is none."""
    if resumed is None or resumed.trainer_state is None:
        return False
    state = resumed.trainer_state
    best_epoch = int(state["early_stopping"]["best_epoch"])
    trainer.load_state_dict(state, load_best(Path(options.checkpoint_dir), best_epoch, options, trainer.device))
    return True
