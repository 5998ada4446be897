"""Crash-safe file writing: a file is either its old self or completely the new one.

Every failure to write (a full disk, a read-only folder, no permission) is
raised as :class:`~semg_hht.errors.WriteError` naming the file, with no
temporary file left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from semg_hht.errors import WriteError, megabytes

TEMPORARY_SUFFIX = ".tmp"
# mkstemp's random part (8 characters) or the process ID of a link being kept (semg_hht.model.checkpoint.writing).
_TEMPORARY_NAME = re.compile(r"^\..+\.([a-z0-9_]{8}|\d+)\.tmp$")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    If the block raises, or the process dies, ``path`` keeps its previous content
    and the temporary file is removed (or, after a kill, left as a ``.tmp`` file,
    see :func:`remove_temporaries`). An ``OSError`` becomes a ``WriteError``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    descriptor, temporary = _create_temporary(target)
    try:
        with os.fdopen(descriptor, mode, encoding="utf-8" if mode == "w" else None) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise WriteError.from_os_error(target, error) from None
        raise
    fsync_directory(target.parent)


def write_temporary(target: Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced temporary file beside ``target`` and return its path.

    The caller renames it over ``target`` (``os.replace``) to commit, or removes it.
    On failure nothing is left behind and ``WriteError`` names ``target``.
    """
    descriptor, temporary = _create_temporary(target)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise WriteError.from_os_error(target, error, len(data)) from None
        raise
    return temporary


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents if needed; ``WriteError`` when that is not possible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError.from_os_error(folder, error) from None


def ensure_writable(folder: Path) -> None:
    """Create and remove a temporary file in ``folder``: ``WriteError`` now rather than after the work."""
    try:
        descriptor, temporary = _create_temporary(folder / "write-test")
    except WriteError as error:
        raise WriteError(str(folder), error.reason, error.advice) from None
    os.close(descriptor)
    temporary.unlink(missing_ok=True)


def ensure_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Refuse, before anything is written, to write ``needed_bytes`` into a folder without room for them.

    Raises ``WriteError`` naming ``what`` with the space needed and free.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # not measurable here; the writes themselves will say if the space runs out
    if free < needed_bytes:
        raise WriteError(
            what,
            "not enough free space",
            f"it needs {megabytes(needed_bytes)} and {folder} has {megabytes(free)} free; "
            "free some space there, or choose another folder",
        )


def remove_temporaries(folder: Path) -> None:
    """Remove the temporary files that killed writers of this package left in ``folder``.

    Only names of the form this package makes are touched: ``.<name>.<8 random
    characters, or a process ID>.tmp``. Only safe while no other process writes
    there (hold the folder's lock).
    """
    for path in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        if _TEMPORARY_NAME.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _create_temporary(target: Path) -> tuple[int, Path]:
    try:
        descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    except OSError as error:
        raise WriteError.from_os_error(target, error) from None
    try:
        os.chmod(name, 0o666 & ~_current_umask())
    except OSError as error:
        os.close(descriptor)
        Path(name).unlink(missing_ok=True)
        raise WriteError.from_os_error(target, error) from None
    return descriptor, Path(name)


def _current_umask() -> int:
    # mkstemp creates files 0600; finished files get the permissions open() would give.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable where the platform can (POSIX); Windows cannot open a directory
    to flush it, so there a rename is as durable as the file system makes it by itself."""
    if os.name == "nt":
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
