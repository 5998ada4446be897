"""What a run's checkpoints record once its data, split, tuning and cross-validation are settled, and their one save."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semg_hht.errors import WriteError
from semg_hht.evaluation.report import retire_run_outputs
from semg_hht.model.checkpoint import CheckpointMetadata, CheckpointSave, TrainingRun, save_checkpoints
from semg_hht.model.classifier import HHTClassifier
from semg_hht.training.labelled_data import LabelledData, Split
from semg_hht.training.options import TrainingOptions
from semg_hht.training.resume import Resumed, in_save_order


@dataclass(frozen=True)
class RunRecord:
    """A run once its data, split, tuning and cross-validation are settled: what its checkpoints record."""

    options: TrainingOptions
    data: LabelledData
    split: Split
    resumed: Resumed | None
    tuning: dict[str, Any] | None
    cv: dict[str, Any] | None

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.options.checkpoint_dir)

    def metadata(self, classifier: HHTClassifier, **progress: Any) -> CheckpointMetadata:
        """A checkpoint's metadata for ``classifier``: this run's record and ``progress`` (epoch, history, best)."""
        settings, names = self.options.settings(), self.data.names
        run = TrainingRun(
            test_size=self.options.test_size,
            training=settings["training"],
            split=settings["split"],
            svm_request=settings["svm"],
            model_settings=settings["model_settings"],
            tuning=self.tuning,
            n_train=len(self.split.train),
            n_val=len(self.split.val),
            train_files=[names[i] for i in self.split.train],
            val_files=[names[i] for i in self.split.val],
            data_fingerprints=self.data.fingerprints,
            cv=self.cv,
            resumed=self.resumed is not None,
        )
        return CheckpointMetadata.of(classifier, run=run, **progress)


Checkpoint = tuple[HHTClassifier, CheckpointMetadata, dict[str, Any] | None]
"""What one checkpoint holds: the fitted classifier, its metadata, the trainer state (or None)."""


def save_run_checkpoints(checkpoint_dir: Path, checkpoints: Mapping[str, Checkpoint], advice: str = "") -> None:
    """Save a run's checkpoints (by name: ``best``, ``latest``, ``final``) together, in :func:`in_save_order`.

    All of them or none are written; then an earlier run's report and test predictions are moved
    into ``.previous/`` (:func:`~semg_hht.evaluation.report.retire_run_outputs`).

    Raises
    ------
    WriteError
        Nothing could be saved; ``advice`` (what became of the run's results) is added to its message.
    """
    saves = [CheckpointSave(checkpoint_dir / name, *checkpoints[name]) for name in in_save_order(checkpoints)]
    try:
        save_checkpoints(saves)
    except WriteError as error:
        if not advice:
            raise
        raise error.with_advice(advice) from None
    retire_run_outputs(checkpoint_dir)
