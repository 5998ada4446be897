"""Writing checkpoints: every file staged to a temporary name, the previous complete checkpoint kept in
``.previous/``, then each file renamed into place, the manifest last (all of them or none)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.errors import WriteError
from semg_hht.io.atomic import TEMPORARY_SUFFIX, ensure_free_space, fsync_directory, make_folder, write_temporary
from semg_hht.model.checkpoint.format import (
    FACTOR_SEPARATOR,
    FORMAT_VERSION,
    HEAD_SUFFIX,
    MANIFEST_SUFFIX,
    TRAINER_SUFFIX,
    CheckpointError,
    package_versions,
    part_path,
    plain_data,
    previous_prefix,
    verify_manifest,
)
from semg_hht.model.checkpoint.metadata import CheckpointMetadata
from semg_hht.model.classifier import FITTED_HEADS, ConstantHead, HHTClassifier
from semg_hht.model.feature_sets import ENCODER_CHANNELS


def encoder_size() -> int:
    """Bytes of the encoder's float32 weights (each block's 3x3 kernels and biases): the least any checkpoint takes.

    Computed from the architecture, which the contract fixes, so that a model without the CNN block
    need not build its encoder (and import torch) to know it.
    """
    pairs = zip(ENCODER_CHANNELS[:-1], ENCODER_CHANNELS[1:], strict=True)
    return 4 * sum(out * (inp * 3 * 3 + 1) for inp, out in pairs)


def _keep_previous(prefix: Path) -> dict[str, Path]:
    """Before a save replaces a verified checkpoint, keep it under ``.previous/``.

    Returns where each kept file now is (empty when ``prefix`` was not complete:
    ``.previous/`` then still holds the last good one, untouched). Every file is
    linked to a temporary name before any is renamed into place, so a failure
    leaves ``.previous/`` as it was.
    """
    try:
        manifest = verify_manifest(prefix)
    except CheckpointError:
        return {}
    target = previous_prefix(prefix).parent
    names = [*manifest["files"], part_path(prefix, MANIFEST_SUFFIX).name]
    temporaries: dict[str, Path] = {}
    try:
        target.mkdir(exist_ok=True)
        for name in names:
            temporaries[name] = _link_temporary(prefix.parent / name, target)
        # The manifest goes last, so .previous/ is never a verified mix of two saves.
        for name in names:
            os.replace(temporaries[name], target / name)
            # rename() does nothing when both names are links to one file already (kept by a failed save).
            temporaries.pop(name).unlink(missing_ok=True)
    except OSError as error:
        raise WriteError.from_os_error(target, error) from None
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
    return {name: target / name for name in names}


def _link_temporary(source: Path, folder: Path) -> Path:
    """A hard link to ``source`` (a copy where links are not supported) under a temporary name in ``folder``."""
    temporary = folder / f".{source.name}.{os.getpid()}{TEMPORARY_SUFFIX}"
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        shutil.copy2(source, temporary)
    return temporary


def head_arrays(classifier: HHTClassifier) -> dict[str, np.ndarray]:
    """The arrays of ``P_head.npz``: the joint SVM's, or each factor's under ``quality__``/``gender__``."""
    if classifier.model == "joint":
        return _arrays_of(classifier.head_)
    heads = {"quality": classifier.head_, "gender": classifier.gender_head_}
    return {
        f"{name}{FACTOR_SEPARATOR}{key}": array
        for name, head in heads.items()
        for key, array in _arrays_of(head).items()
    }


def _arrays_of(head: object) -> dict[str, np.ndarray]:
    """The arrays of a fitted head; the stand-in of older checkpoints (and None) has none."""
    if not isinstance(head, (*FITTED_HEADS, ConstantHead)):
        raise TypeError(f"a {type(head).__name__} head has no arrays to save")
    return head.to_arrays()


def _bytes_writer(content: bytes) -> Callable[[IO], object]:
    """A writer of ``content`` as it is."""
    return lambda stream: stream.write(content)


def _serialise(
    classifier: HHTClassifier, metadata: CheckpointMetadata, trainer_state: dict[str, Any] | None
) -> dict[str, bytes]:
    """The content of each file of a checkpoint but the manifest, keyed by suffix."""
    import torch  # the encoder file is written for every model (older releases need it), so saving needs torch

    state = {key: value.detach().cpu() for key, value in classifier.active_encoder().state_dict().items()}
    writers: dict[str, Callable[[IO], object]] = {"_encoder.pt": lambda stream: torch.save(state, stream)}
    pickled = classifier.pickled_sklearn_
    if pickled is not None:
        for part in ("scaler", "svm"):
            writers[f"_{part}.pkl"] = _bytes_writer(pickled[part])
    else:
        import joblib

        writers["_scaler.pkl"] = lambda stream: joblib.dump(classifier.scaler_, stream)
        writers["_svm.pkl"] = lambda stream: joblib.dump(classifier.svm_, stream)
    if isinstance(classifier.head_, FITTED_HEADS):
        writers[HEAD_SUFFIX] = lambda stream: np.savez(
            stream,
            # mypy matches a str-keyed ** against savez's keyword-only `allow_pickle: bool` too;
            # no key of the head's arrays is allow_pickle.
            **head_arrays(classifier),  # type: ignore[arg-type]
        )
    if trainer_state is not None:
        writers[TRAINER_SUFFIX] = lambda stream: torch.save(trainer_state, stream)
    writers["_metadata.pkl"] = lambda stream: pickle.dump(
        plain_data(metadata.to_plain()), stream, protocol=pickle.HIGHEST_PROTOCOL
    )
    contents = {}
    for suffix, write in writers.items():
        buffer = io.BytesIO()
        write(buffer)
        contents[suffix] = buffer.getvalue()
    return contents


@dataclass(frozen=True)
class CheckpointSave:
    """One checkpoint to write: its prefix, the fitted classifier, its metadata, the trainer state (or None)."""

    prefix: Path
    classifier: HHTClassifier
    metadata: CheckpointMetadata
    trainer_state: dict[str, Any] | None = None


def save_checkpoint(
    prefix: str | os.PathLike,
    classifier: HHTClassifier,
    metadata: CheckpointMetadata,
    trainer_state: dict[str, Any] | None = None,
) -> None:
    """Write checkpoint ``prefix``: all or nothing, the manifest last (see :func:`save_checkpoints`).

    ``trainer_state`` (tensors and builtin types only) goes into ``P_trainer.pt``,
    covered by the manifest like the other files.
    """
    save_checkpoints([CheckpointSave(Path(prefix), classifier, metadata, trainer_state)])


def save_checkpoints(saves: Sequence[CheckpointSave]) -> None:
    """Write checkpoints of one folder together: all of them or none, in order, each manifest last.

    Every file is first written in full to a temporary name (after a check that
    the folder has room for all of them); only then are the checkpoints being
    replaced kept in ``.previous/`` and the new files renamed into place. A
    failure to write (a full disk, a read-only folder) raises
    :class:`~semg_hht.errors.WriteError` and leaves the checkpoints, ``.previous/``
    and the folder as they were; a kill at any moment leaves each checkpoint
    or the one it replaced loadable.
    """
    folders = {save.prefix.parent for save in saves}
    if len(folders) != 1:
        raise ValueError(f"checkpoints saved together must share one folder, got {sorted(map(str, folders))}")
    if not all(save.classifier.is_fitted for save in saves):
        raise ValueError("only a fitted classifier can be saved")
    (folder,) = folders
    contents: dict[Path, bytes] = {}
    for save in saves:
        contents.update(_contents(save))
    names = ", ".join(f"{save.prefix}_*" for save in saves)
    staged: dict[Path, Path] = {}
    try:
        make_folder(folder)
        ensure_free_space(folder, sum(map(len, contents.values())), names)
        for target, data in contents.items():
            staged[target] = write_temporary(target, data)
        kept: dict[str, Path] = {}
        for save in saves:
            kept.update(_keep_previous(save.prefix))
        _commit(staged, kept)
    except WriteError as error:
        raise error.with_advice(f"nothing was saved: {names} are as they were") from None
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    for save in saves:
        if save.trainer_state is None:
            # A trainer state left by an earlier save would describe another run; .previous/ keeps it.
            part_path(save.prefix, TRAINER_SUFFIX).unlink(missing_ok=True)


def _contents(save: CheckpointSave) -> dict[Path, bytes]:
    """Each file of a checkpoint by path, the manifest last."""
    contents = {
        part_path(save.prefix, suffix): data
        for suffix, data in _serialise(save.classifier, save.metadata, save.trainer_state).items()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "class_names": list(CLASS_NAMES),
        "versions": package_versions(),
        "created": save.metadata.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {
            path.name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in contents.items()
        },
    }
    contents[part_path(save.prefix, MANIFEST_SUFFIX)] = json.dumps(manifest, indent=2).encode("utf-8")
    return contents


def _commit(staged: dict[Path, Path], kept: dict[str, Path]) -> None:
    """Rename each staged file over its target, in order (the manifest last); undo all if one fails.

    ``kept`` says where the replaced files were kept (``.previous/``): the undo
    puts them back, and removes the files that did not exist before.
    """
    existed = {target for target in staged if target.exists()}
    done: list[Path] = []
    try:
        for target, temporary in staged.items():
            os.replace(temporary, target)
            done.append(target)
    except BaseException as error:
        for target in reversed(done):
            if target.name in kept:
                os.replace(_link_temporary(kept[target.name], target.parent), target)
            elif target not in existed:
                target.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise WriteError.from_os_error(list(staged)[len(done)], error) from None
        raise
    fsync_directory(next(iter(staged)).parent)
