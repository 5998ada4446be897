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
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import pickle
import platform
import shutil
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from semg_hht import __version__
from semg_hht.classes import CLASS_NAMES
from semg_hht.defaults import DEFAULT_BATCH_SIZE
from semg_hht.errors import WriteError
from semg_hht.io.atomic import TEMPORARY_SUFFIX, ensure_free_space, fsync_directory, make_folder, write_temporary
from semg_hht.io.hashing import file_sha256
from semg_hht.io.npyfile import npz_members, read_member
from semg_hht.model.classifier import ConstantHead, HHTClassifier, parse_gamma
from semg_hht.model.feature_sets import ENCODER_CHANNELS
from semg_hht.model.normalisation import PopulationStatistics
from semg_hht.model.scalable_head import HEAD_KIND as SCALABLE_HEAD_KIND
from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_head import SVMHead

if TYPE_CHECKING:
    import torch

    from semg_hht.model.encoder import HHTEncoder

FORMAT_VERSION = 2
PART_SUFFIXES = ("_encoder.pt", "_scaler.pkl", "_svm.pkl", "_metadata.pkl")
HEAD_SUFFIX = "_head.npz"
TRAINER_SUFFIX = "_trainer.pt"
MANIFEST_SUFFIX = "_manifest.json"
PREVIOUS_DIR = ".previous"
FACTOR_SEPARATOR = "__"
LEGACY_SETTINGS = {
    "C": 10.0,
    "kernel": "rbf",
    "gamma": "scale",
    "seed": 42,
    "features": "cnn",
    "model": "joint",
    "head": "svm",
}
"""What checkpoints written before a setting was recorded used (not the defaults of today)."""
logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be loaded; the message says which file and why."""


def checkpoint_files(prefix: str | os.PathLike) -> dict[str, Path]:
    """The four file paths of checkpoint ``prefix`` that the contract names, keyed by part name."""
    prefix = str(prefix)
    return {suffix[1:].split(".")[0]: Path(prefix + suffix) for suffix in PART_SUFFIXES}


def _path(prefix: str | os.PathLike, suffix: str) -> Path:
    return Path(str(prefix) + suffix)


def previous_prefix(prefix: str | os.PathLike) -> Path:
    """Where the checkpoint that ``prefix`` replaced is kept."""
    prefix = Path(prefix)
    return prefix.parent / PREVIOUS_DIR / prefix.name


def resolve_checkpoint_prefix(path: str | os.PathLike) -> Path:
    """Turn what a user passes as ``--checkpoint`` into a checkpoint prefix.

    A directory means its ``final`` checkpoint; a path to one of the checkpoint
    files means its prefix. Raises :class:`CheckpointError` naming the missing files.
    """
    text = str(path)
    if os.path.isdir(text):
        text = os.path.join(text, "final")
    for suffix in (*PART_SUFFIXES, HEAD_SUFFIX, TRAINER_SUFFIX, MANIFEST_SUFFIX):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    # The encoder file is needed only by a model with the CNN block: checked once the metadata says which.
    missing = [p.name for part, p in checkpoint_files(text).items() if part != "encoder" and not p.is_file()]
    if missing and not _path(previous_prefix(text), MANIFEST_SUFFIX).is_file():
        raise CheckpointError(f"No checkpoint at {text}: missing {', '.join(missing)}")
    return Path(text)


def package_versions() -> dict[str, str]:
    return {
        "semg_hht": __version__,
        "python": platform.python_version(),
        # The installed version, read without importing torch (a model of descriptors never needs it).
        "torch": _installed_version("torch"),
        "scikit-learn": importlib.metadata.version("scikit-learn"),
        "numpy": np.__version__,
    }


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def build_metadata(classifier: HHTClassifier, **fields: Any) -> dict[str, Any]:
    """Metadata for a checkpoint: the classifier's settings, versions, time, plus ``fields``."""
    population = getattr(classifier, "population_", None)
    metadata: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "epoch": 0,
        "history": {},
        "class_names": list(CLASS_NAMES),
        "is_fitted": classifier.is_fitted,
        "seed": classifier.seed,
        "batch_size": classifier.batch_size,
        "svm": {
            "C": float(classifier.svm_C),
            "kernel": classifier.svm_kernel,
            "gamma": parse_gamma(classifier.svm_gamma),
        },
        "features": classifier.feature_set,
        "feature_names": classifier.feature_names,
        "normalisation": classifier.normalisation,
        "model": classifier.model,
        "head": classifier.head,
        "head_kind": getattr(classifier, "head_kind_", None),
        "head_reason": getattr(classifier, "head_reason_", None),
        "population": None if population is None else {"mean": population.mean, "std": population.std},
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    metadata.update(fields)
    return metadata


def plain_data(value: Any) -> Any:
    """``value`` rebuilt from builtin types only (dict, list, str, int, float, bool, None).

    NumPy scalars and arrays and subclasses of builtins (torch's version string)
    become their plain equivalents; anything else raises ``TypeError``.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, dict):
        return {plain_data(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_data(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"metadata must be plain data, got {type(value).__name__}")


def encoder_size() -> int:
    """Bytes of the encoder's float32 weights (each block's 3x3 kernels and biases): the least any checkpoint takes.

    Computed from the architecture, which the contract fixes, so that a model without the CNN block
    need not build its encoder (and import torch) to know it.
    """
    pairs = zip(ENCODER_CHANNELS[:-1], ENCODER_CHANNELS[1:], strict=True)
    return 4 * sum(out * (inp * 3 * 3 + 1) for inp, out in pairs)


def manifest_hash(prefix: str | os.PathLike) -> str | None:
    """SHA-256 of checkpoint ``prefix``'s manifest, which names the checkpoint's exact files; None if absent."""
    path = _path(prefix, MANIFEST_SUFFIX)
    return file_sha256(path) if path.is_file() else None


def verify_manifest(prefix: str | os.PathLike) -> dict[str, Any]:
    """Check every file of checkpoint ``prefix`` against its manifest and return the manifest.

    Raises
    ------
    CheckpointError
        The manifest is missing or unreadable, or a file is missing, truncated
        or different from the one the manifest recorded (edited, or left from
        another save); the message names the file.
    """
    manifest_path = _path(prefix, MANIFEST_SUFFIX)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({error})") from None
    if manifest.get("class_names") != list(CLASS_NAMES):
        raise CheckpointError(f"{manifest_path}: unknown class table {manifest.get('class_names')}")
    folder = manifest_path.parent
    for name, record in files.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing (the manifest lists it)")
        size = path.stat().st_size
        if size != record["size"]:
            what = "truncated" if size < record["size"] else "larger than recorded"
            raise CheckpointError(f"{path}: {what} ({size} bytes, the manifest records {record['size']})")
        if file_sha256(path) != record["sha256"]:
            raise CheckpointError(f"{path}: content does not match the manifest (edited, or from another save)")
    return manifest


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
    names = [*manifest["files"], _path(prefix, MANIFEST_SUFFIX).name]
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
    if not isinstance(head, (SVMHead, ScalableHead, ConstantHead)):
        raise TypeError(f"a {type(head).__name__} head has no arrays to save")
    return head.to_arrays()


def _bytes_writer(content: bytes) -> Callable[[IO], object]:
    """A writer of ``content`` as it is."""
    return lambda stream: stream.write(content)


def _serialise(
    classifier: HHTClassifier, metadata: dict[str, Any], trainer_state: dict[str, Any] | None
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
    if isinstance(classifier.head_, (SVMHead, ScalableHead)):
        writers[HEAD_SUFFIX] = lambda stream: np.savez(
            stream,
            # mypy matches a str-keyed ** against savez's keyword-only `allow_pickle: bool` too;
            # no key of the head's arrays is allow_pickle.
            **head_arrays(classifier),  # type: ignore[arg-type]
        )
    if trainer_state is not None:
        writers[TRAINER_SUFFIX] = lambda stream: torch.save(trainer_state, stream)
    writers["_metadata.pkl"] = lambda stream: pickle.dump(
        plain_data(metadata), stream, protocol=pickle.HIGHEST_PROTOCOL
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
    metadata: dict[str, Any]
    trainer_state: dict[str, Any] | None = None


def save_checkpoint(
    prefix: str | os.PathLike,
    classifier: HHTClassifier,
    metadata: dict[str, Any],
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
            _path(save.prefix, TRAINER_SUFFIX).unlink(missing_ok=True)


def _contents(save: CheckpointSave) -> dict[Path, bytes]:
    """Each file of a checkpoint by path, the manifest last."""
    contents = {
        _path(save.prefix, suffix): data
        for suffix, data in _serialise(save.classifier, save.metadata, save.trainer_state).items()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "class_names": list(CLASS_NAMES),
        "versions": package_versions(),
        "created": save.metadata.get("created", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        "files": {
            path.name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in contents.items()
        },
    }
    contents[_path(save.prefix, MANIFEST_SUFFIX)] = json.dumps(manifest, indent=2).encode("utf-8")
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


class _LegacyLabelEncoder:
    """Stands in for the scikit-learn LabelEncoder in original-project metadata: data only."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.classes_ = [str(name) for name in state.get("classes_", [])]


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits builtin data, NumPy arrays and scalars, and the legacy LabelEncoder as a stub.

    Nothing it admits runs code: any other class or function is refused.
    """

    _NUMPY = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("sklearn.preprocessing._label", "LabelEncoder"):
            return _LegacyLabelEncoder
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: metadata must be plain data")


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``*_metadata.pkl`` file with the restricted unpickler."""
    try:
        with open(path, "rb") as stream:
            metadata = _PlainDataUnpickler(stream).load()
    except Exception as error:  # a damaged pickle can fail in many ways; none runs code
        raise CheckpointError(f"{path}: unreadable metadata ({type(error).__name__}: {error})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: metadata is a {type(metadata).__name__}, expected a dict")
    return metadata


def _label_map(metadata: dict[str, Any], path: Path) -> np.ndarray:
    """Class ID of each SVM label: identity, or the original project's alphabetical order."""
    if "class_names" in metadata:
        if list(metadata["class_names"]) != list(CLASS_NAMES):
            raise CheckpointError(f"{path}: unknown class table {metadata['class_names']}")
        return np.arange(len(CLASS_NAMES))
    # The original project labelled the SVM with a LabelEncoder fitted on the class names.
    encoder = metadata.get("label_encoder")
    names = encoder.classes_ if isinstance(encoder, _LegacyLabelEncoder) else sorted(CLASS_NAMES)
    if sorted(names) != sorted(CLASS_NAMES):
        raise CheckpointError(f"{path}: unknown class table {names}")
    return np.array([CLASS_NAMES.index(name) for name in names])


class _SklearnHead:
    """Predicts with unpickled scikit-learn objects: checkpoints of older releases only."""

    def __init__(self, scaler: Any, svm: Any):
        self.scaler, self.svm, self.classes_ = scaler, svm, svm.classes_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SVC(probability=True) and version-mismatch warnings
            return self.svm.predict_proba(self.scaler.transform(features))


def _head_of(arrays: dict[str, np.ndarray]) -> SVMHead | ScalableHead:
    """The head stored in ``arrays``: the scalable head's carry ``head``; the SVM's (every older release's) do not."""
    if "head" in arrays and str(arrays["head"]) == SCALABLE_HEAD_KIND:
        return ScalableHead(arrays)
    return SVMHead(arrays)


def _factor_head(arrays: dict[str, np.ndarray]) -> SVMHead | ScalableHead | ConstantHead:
    if len(arrays) == 1 and "classes" in arrays and arrays["classes"].shape == (1,):
        return ConstantHead(int(arrays["classes"][0]))
    return _head_of(arrays)


def _read_head(path: Path, model: str) -> tuple[SVMHead | ScalableHead, SVMHead | ScalableHead | ConstantHead | None]:
    """The head (the quality head of a factorised model) and the gender head (None for a joint model)."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {
                key: read_member(archive, member, f"array {key!r}") for key, member in npz_members(archive).items()
            }
        if model == "joint":
            return _head_of(arrays), None
        factors: dict[str, dict[str, np.ndarray]] = {"quality": {}, "gender": {}}
        for key, array in arrays.items():
            factor, _, name = key.partition(FACTOR_SEPARATOR)
            factors[factor][name] = array
        return _head_of(factors["quality"]), _factor_head(factors["gender"])
    except Exception as error:  # a damaged archive can fail in zipfile, numpy or the shape checks
        raise CheckpointError(f"{path}: not a valid head ({type(error).__name__}: {error})") from None


def _attach_head(classifier: HHTClassifier, prefix: Path, manifest: dict[str, Any] | None, safe: bool) -> None:
    head_path = _path(prefix, HEAD_SUFFIX)
    if manifest is not None and head_path.name in manifest["files"]:
        classifier.head_, classifier.gender_head_ = _read_head(head_path, classifier.model)
        classifier.scaler_ = classifier.svm_ = None
        # Kept as bytes (verified by the manifest) so that a re-save writes them unchanged.
        classifier.pickled_sklearn_ = {part: _path(prefix, f"_{part}.pkl").read_bytes() for part in ("scaler", "svm")}
        return
    if classifier.model != "joint":
        raise CheckpointError(f"{prefix}: a {classifier.model} model without its head file")
    if safe:
        raise CheckpointError(
            f"{prefix}: no pickle-free copy of the scaler and SVM (written by an older release); "
            "loading it means unpickling, which can run code: load it without `safe` only if you trust its source"
        )
    logger.warning(f"{prefix}: loading pickled scaler and SVM; only do this for checkpoints from a source you trust")
    try:
        import joblib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version-mismatch warnings of old pickles
            scaler, svm = joblib.load(_path(prefix, "_scaler.pkl")), joblib.load(_path(prefix, "_svm.pkl"))
    except Exception as error:  # unpickling can raise anything
        raise CheckpointError(f"{prefix}: scaler or SVM cannot be loaded ({type(error).__name__}: {error})") from None
    if not hasattr(scaler, "transform") or not hasattr(svm, "predict_proba"):
        raise CheckpointError(f"{prefix}: scaler or SVM file holds the wrong kind of object")
    classifier.scaler_, classifier.svm_, classifier.pickled_sklearn_ = scaler, svm, None
    classifier.gender_head_ = None
    try:
        classifier.head_ = SVMHead.from_sklearn(scaler, svm)
    except (AttributeError, TypeError, ValueError):  # the original project's SVC(probability=True)
        classifier.head_ = _SklearnHead(scaler, svm)


def _load_exact(prefix: Path, device: torch.device | str, safe: bool) -> tuple[HHTClassifier, dict[str, Any]]:
    files = checkpoint_files(prefix)
    missing = [p.name for part, p in files.items() if part != "encoder" and not p.is_file()]
    if missing:
        raise CheckpointError(f"No checkpoint at {prefix}: missing {', '.join(missing)}")
    manifest = None
    if _path(prefix, MANIFEST_SUFFIX).exists():
        manifest = verify_manifest(prefix)
    elif safe:
        # The literal flag: tests match it on the in-process error.
        raise CheckpointError(f"{prefix}: no manifest (written by an older release), refused by --safe")
    else:
        logger.warning(f"{prefix}: written by an older release without a manifest; its integrity cannot be verified")
    metadata = load_metadata(files["metadata"])
    label_map = _label_map(metadata, files["metadata"])
    classifier = _unfitted_classifier(metadata, device, files["metadata"])
    if "cnn" in classifier.feature_blocks:
        classifier.encoder = classifier.encoder_ = _load_encoder(files["encoder"])
    _attach_head(classifier, prefix, manifest, safe)
    classifier.head_kind_ = "scalable" if isinstance(classifier.head_, ScalableHead) else "svm"
    classifier.head_reason_ = str(metadata.get("head_reason") or "svm (chosen before heads could be chosen)")
    classifier.label_map_ = label_map
    classifier.classes_ = np.arange(len(CLASS_NAMES))
    _check_widths(classifier, prefix)
    _check_feature_names(classifier, metadata, files["metadata"])
    return classifier, metadata


def _load_encoder(path: Path) -> HHTEncoder:
    """The encoder whose ``state_dict`` is in ``path`` (read with ``weights_only=True``)."""
    import torch  # here: only a model with the CNN block reads its encoder

    from semg_hht.model.encoder import HHTEncoder

    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {str(path)[: -len('_encoder.pt')]}: missing {path.name}")
    encoder = HHTEncoder()
    try:
        encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a valid encoder state_dict ({error})") from None
    return encoder


def _unfitted_classifier(metadata: dict[str, Any], device: torch.device | str, path: Path) -> HHTClassifier:
    """The classifier of the settings in ``metadata``, with the training population (and no encoder yet)."""
    svm_settings = metadata.get("svm", {})
    try:
        # Checkpoints before feature sets existed are CNN features, not normalised, one joint SVM.
        classifier = HHTClassifier(
            svm_C=svm_settings.get("C", LEGACY_SETTINGS["C"]),
            svm_kernel=svm_settings.get("kernel", LEGACY_SETTINGS["kernel"]),
            svm_gamma=svm_settings.get("gamma", LEGACY_SETTINGS["gamma"]),
            seed=metadata.get("seed", LEGACY_SETTINGS["seed"]),
            batch_size=metadata.get("batch_size", DEFAULT_BATCH_SIZE),
            device=device,
            features=metadata.get("features", LEGACY_SETTINGS["features"]),
            normalisation=metadata.get("normalisation", "none"),
            model=metadata.get("model", LEGACY_SETTINGS["model"]),
            head=metadata.get("head", LEGACY_SETTINGS["head"]),
        )
        population = metadata.get("population")
        classifier.population_ = None
        if population is not None:
            classifier.population_ = PopulationStatistics(np.asarray(population["mean"]), np.asarray(population["std"]))
        elif classifier.normalisation != "none":
            raise ValueError("a normalised model without the training files' statistics ('population')")
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{path}: unusable model settings ({error})") from None
    classifier.encoder_ = None
    return classifier


def _check_widths(classifier: HHTClassifier, prefix: Path) -> None:
    width = len(classifier.feature_names)
    population = classifier.population_
    heads = [head for head in (classifier.head_, classifier.gender_head_) if isinstance(head, (SVMHead, ScalableHead))]
    widths = {len(head.mean) for head in heads} | ({len(population.mean), len(population.std)} if population else set())
    if widths - {width}:
        raise CheckpointError(
            f"{prefix}: the model's arrays have {sorted(widths)} features, "
            f"its feature set {classifier.feature_set} {width}"
        )


def _check_feature_names(classifier: HHTClassifier, metadata: dict[str, Any], path: Path) -> None:
    """The features the checkpoint was fitted on (recorded since format 2) are the ones this release computes.

    A column of another name (a descriptor renamed, reordered or redefined by another release)
    would give predictions from the wrong inputs without any error.
    """
    recorded = metadata.get("feature_names")
    if recorded is None or list(recorded) == classifier.feature_names:
        return
    differ = [
        f"column {i}: checkpoint {old!r}, this release {new!r}"
        for i, (old, new) in enumerate(zip(recorded, classifier.feature_names, strict=False))
        if old != new
    ]
    lengths = f"{len(recorded)} features recorded, {len(classifier.feature_names)} computed"
    raise CheckpointError(
        f"{path}: the checkpoint's features are not the ones this release computes for {classifier.feature_set} "
        f"({lengths}; {'; '.join(differ[:3]) or 'the extra columns differ'})"
    )


def _load_with_fallback(prefix: str | os.PathLike, load: Callable[[Path], Any]) -> Any:
    """``load(prefix)``, or ``load`` of the checkpoint kept in ``.previous/`` when ``prefix`` fails."""
    prefix = resolve_checkpoint_prefix(prefix)
    try:
        return load(prefix)
    except CheckpointError as error:
        previous = previous_prefix(prefix)
        if not _path(previous, MANIFEST_SUFFIX).is_file():
            raise
        logger.warning(f"{error}; loading the checkpoint it replaced, kept in {previous}")
        return load(previous)


def load_checkpoint(
    prefix: str | os.PathLike, device: torch.device | str = "cpu", safe: bool = False
) -> tuple[HHTClassifier, dict[str, Any]]:
    """Load checkpoint ``prefix`` (see :func:`resolve_checkpoint_prefix`).

    When ``prefix`` fails verification (a save was interrupted) and the
    checkpoint it replaced is kept in ``.previous/``, that one is loaded instead,
    with a warning.

    Parameters
    ----------
    safe : bool
        Refuse anything that would need unpickling (checkpoints without a
        manifest and head file, i.e. from older releases).

    Returns
    -------
    classifier : HHTClassifier
        Fitted, on ``device``, with the settings it was trained with.
    metadata : dict
    """
    return _load_with_fallback(prefix, lambda exact: _load_exact(exact, device, safe))


def load_training_checkpoint(
    prefix: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[HHTClassifier, dict[str, Any], dict[str, Any] | None]:
    """Like :func:`load_checkpoint`, plus the trainer state (None when the checkpoint has none).

    Classifier, metadata and trainer state always come from the same save.
    """

    def load(exact: Path) -> tuple[HHTClassifier, dict[str, Any], dict[str, Any] | None]:
        classifier, metadata = _load_exact(exact, device, safe=False)
        path = _path(exact, TRAINER_SUFFIX)
        manifest_path = _path(exact, MANIFEST_SUFFIX)
        listed = manifest_path.is_file() and path.name in json.loads(manifest_path.read_text("utf-8"))["files"]
        if not listed:
            return classifier, metadata, None
        import torch  # the trainer state is the encoder training's

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a bad file
            raise CheckpointError(f"{path}: not a valid trainer state ({error})") from None
        return classifier, metadata, state

    return _load_with_fallback(prefix, load)
