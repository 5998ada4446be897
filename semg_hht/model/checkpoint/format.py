"""What a checkpoint is on disk: its files and their names, the manifest that commits a save, the
metadata's plain-data form, and :class:`CheckpointError` (the layout: :mod:`semg_hht.model.checkpoint`)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from semg_hht import __version__
from semg_hht.classes import CLASS_NAMES
from semg_hht.io.hashing import file_sha256

FORMAT_VERSION = 2


PART_SUFFIXES = ("_encoder.pt", "_scaler.pkl", "_svm.pkl", "_metadata.pkl")


HEAD_SUFFIX = "_head.npz"


TRAINER_SUFFIX = "_trainer.pt"


MANIFEST_SUFFIX = "_manifest.json"


PREVIOUS_DIR = ".previous"


FACTOR_SEPARATOR = "__"


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be loaded; the message says which file and why."""


def checkpoint_files(prefix: str | os.PathLike) -> dict[str, Path]:
    """The four file paths of checkpoint ``prefix`` that the contract names, keyed by part name."""
    prefix = str(prefix)
    return {suffix[1:].split(".")[0]: Path(prefix + suffix) for suffix in PART_SUFFIXES}


def part_path(prefix: str | os.PathLike, suffix: str) -> Path:
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
    if missing and not part_path(previous_prefix(text), MANIFEST_SUFFIX).is_file():
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


def manifest_hash(prefix: str | os.PathLike) -> str | None:
    """SHA-256 of checkpoint ``prefix``'s manifest, which names the checkpoint's exact files; None if absent."""
    path = part_path(prefix, MANIFEST_SUFFIX)
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
    manifest_path = part_path(prefix, MANIFEST_SUFFIX)
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
