"""One writer per output folder: an exclusive OS-level lock on a lock file inside it.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``FOLDER/.semg-hht.lock``. The
kernel releases it when the holder's process ends, however it ends, so a
killed run never leaves a stale lock: the next run finds the file and takes
the lock. The file names its holder (process ID, program, start time) for the
message a refused run gives; a run that ends normally removes it.
"""

from __future__ import annotations

import fcntl
import os
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
            # Unlinked before it is unlocked, so no run ever locks a file that is about to vanish.
            (folder / LOCK_NAME).unlink(missing_ok=True)
            os.close(descriptor)
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a run that wrote nothing leaves no empty folder behind


def _acquire(path: Path) -> int:
    """A descriptor of ``path`` holding its lock; retried when the file was replaced meanwhile."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise WriteError.from_os_error(path.parent, error) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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


def _record_holder(descriptor: int, program: str) -> None:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n{program}\n{started}\n".encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same, a refused run just cannot name this one


def _holder(descriptor: int) -> str:
    """The lock holder as the lock file names it: ``process 1234, train.py, since ...``."""
    content = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").split("\n")
    if len(content) < 3 or not content[0].isdigit():
        return "a process that is starting"
    return f"process {content[0]}, {content[1]}, since {content[2]}"
