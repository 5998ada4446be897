"""One writer per output folder: an exclusive OS-level lock on a lock file inside it.

The lock is the platform's own on ``FOLDER/.semg-hht.lock``: ``flock(LOCK_EX | LOCK_NB)`` where
there is ``fcntl`` (Linux, macOS), ``msvcrt.locking(LK_NBLCK)`` of one byte far past the file's
content on Windows (Windows locks are mandatory, so the holder's lines before it stay readable).
The operating system releases either when the holder's process ends, however it ends, so a killed
run never leaves a stale lock: the next run finds the file and takes the lock. The file names its
holder (process ID, program, start time) for the message a refused run gives; a run that ends
normally removes it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from semg_hht.errors import UsageError, WriteError
from semg_hht.io.atomic import make_folder, remove_temporaries

LOCK_NAME = ".semg-hht.lock"


class FolderInUseError(UsageError):
    """Another process holds the lock of the folder (exit code 2)."""


@contextmanager
def folder_lock(folder: str | os.PathLike, program: str) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (created if needed) for the block.

    On entry and on exit, temporary files that killed writers left in ``folder``
    are removed: while the lock is held no one else writes there, and on exit
    the run's own writers (a Dask worker killed mid-write among them) are done.
    A folder the lock created is removed again if nothing was written into it.

    Raises
    ------
    FolderInUseError
        Another process holds the lock; the message names the folder and that process.
    WriteError
        The folder or its lock file cannot be created (read-only, full, no permission).
    """
    folder = Path(folder)
    created = not folder.exists()
    make_folder(folder)
    try:
        descriptor = _acquire(folder / LOCK_NAME)
        try:
            _record_holder(descriptor, program)
            remove_temporaries(folder)
            yield
        finally:
            with suppress(OSError):  # never in place of the error that ends the block
                remove_temporaries(folder)
            _release(folder / LOCK_NAME, descriptor)
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a run that wrote nothing leaves no empty folder behind


def _acquire(path: Path) -> int:
    """A descriptor of ``path`` holding its lock; retried when the file was replaced meanwhile."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)  # no \r\n on Windows
        except OSError as error:
            raise WriteError.from_os_error(path.parent, error) from None
        try:
            _lock(descriptor)
        except (BlockingIOError, PermissionError):  # held: flock's EWOULDBLOCK, msvcrt's EACCES
            holder = _holder(descriptor)
            os.close(descriptor)
            raise FolderInUseError(
                f"{path.parent} is in use by another run ({holder}); wait for it to end, or choose another folder"
            ) from None
        # The previous holder may have removed the file between our open and our lock.
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)


WINDOWS_LOCK_OFFSET = 1 << 30
"""The byte Windows locks: past any holder's lines, so that locking it never hides them from a refused run."""


def _lock(descriptor: int) -> None:
    """Take the exclusive lock of the open file, or raise BlockingIOError / PermissionError if it is held."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(descriptor, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _release(path: Path, descriptor: int) -> None:
    """Remove the lock file and give up its lock.

    Where open files can be removed (POSIX), it is unlinked before it is unlocked, so no run ever
    locks a file that is about to vanish. Windows refuses to remove an open file: there it is
    closed first, and left in place if another run opened it meanwhile (that run now holds it).
    """
    if sys.platform != "win32":
        path.unlink(missing_ok=True)
        os.close(descriptor)
        return
    os.close(descriptor)  # closing releases the lock
    with suppress(PermissionError):
        path.unlink(missing_ok=True)


def _record_holder(descriptor: int, program: str) -> None:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, f"{os.getpid()}\n{program}\n{started}\n".encode())
    except OSError:
        pass  # a full disk: the lock holds all the same, a refused run just cannot name this one


def _holder(descriptor: int) -> str:
    """The lock holder as the lock file names it: ``process 1234, train.py, since ...``."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    content = os.read(descriptor, 4096).decode("utf-8", "replace").split("\n")
    if len(content) < 3 or not content[0].isdigit():
        return "a process that is starting"
    return f"process {content[0]}, {content[1]}, since {content[2]}"
