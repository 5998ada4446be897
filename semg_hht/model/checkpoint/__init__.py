"""Saving and loading classifier checkpoints, safe against crashes and corruption.

A checkpoint with prefix ``P`` (e.g. ``checkpoints/final``) is these files:

* ``P_encoder.pt``: the encoder's ``state_dict`` (``torch.save``; loaded with
  ``weights_only=True``, and only for a model with the CNN block: a model of descriptors loads and
  predicts without importing torch, and loads without this file);
* ``P_scaler.pkl`` and ``P_svm.pkl``: the fitted StandardScaler and calibrated
  SVM as joblib pickles, for releases that read only these; this release never
  unpickles them, it only copies their bytes when it re-saves a checkpoint;
* ``P_head.npz``: the same scaler and head as plain arrays
  (:class:`~semg_hht.model.svm_head.SVMHead`, or :class:`~semg_hht.model.scalable_head.ScalableHead`
  marked by its ``head`` array), read with ``allow_pickle=False``: what this release predicts with;
* ``P_metadata.pkl``: a plain-data dict (only builtin types, see
  :func:`plain_data`; read with an unpickler that refuses anything else);
* ``P_trainer.pt`` (only ``latest`` of a run that trains the encoder): the
  trainer's state for an exact resume (optimizer, scheduler, linear head, RNG
  states, early stopping, history), loaded with ``weights_only=True``;
* ``P_manifest.json``: each file's size and SHA-256, the class table, the
  format version and package versions. It is written last: it is the commit
  point of a save.

Every file is written to a temporary name, fsynced and renamed. Before a save
replaces a complete, verified checkpoint, that checkpoint is kept (as hard
links) in ``.previous/`` beside it; if a crash leaves ``P`` half-replaced, its
manifest no longer matches and loading falls back to that previous one.

Checkpoints of format 1 (no manifest, no head file) and of the original
project (metadata with a scikit-learn ``LabelEncoder``, alphabetical class
order) still load; their pickles are only read after a warning.

The package splits the job: :mod:`.format` (files, manifest, errors), :mod:`.metadata` (typed,
versioned), :mod:`.writing`, :mod:`.reading` and :mod:`.migration` (older releases); this module is
its public interface.
"""

from semg_hht.model.checkpoint.format import (
    PREVIOUS_DIR,
    CheckpointError,
    checkpoint_files,
    manifest_hash,
    package_versions,
    plain_data,
    previous_prefix,
    resolve_checkpoint_prefix,
    verify_manifest,
)
from semg_hht.model.checkpoint.metadata import CheckpointMetadata, TrainingRun
from semg_hht.model.checkpoint.migration import LEGACY_SETTINGS
from semg_hht.model.checkpoint.reading import load_checkpoint, load_metadata, load_training_checkpoint
from semg_hht.model.checkpoint.writing import (
    CheckpointSave,
    encoder_size,
    head_arrays,
    save_checkpoint,
    save_checkpoints,
)

__all__ = [
    "CheckpointError",
    "CheckpointSave",
    "LEGACY_SETTINGS",
    "PREVIOUS_DIR",
    "CheckpointMetadata",
    "TrainingRun",
    "checkpoint_files",
    "encoder_size",
    "head_arrays",
    "load_checkpoint",
    "load_metadata",
    "load_training_checkpoint",
    "manifest_hash",
    "package_versions",
    "plain_data",
    "previous_prefix",
    "resolve_checkpoint_prefix",
    "save_checkpoint",
    "save_checkpoints",
    "verify_manifest",
]
