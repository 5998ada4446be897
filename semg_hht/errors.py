"""Exit codes shared by the command-line scripts, and the errors that map to them."""

from __future__ import annotations

import errno
import os
import re
import sys

EXIT_OK = 0
"""Everything asked for was done."""
EXIT_PARTIAL = 1
"""The run finished, but some input files were skipped (each one is reported)."""
EXIT_USAGE = 2
"""Nothing could be done: bad flags, missing paths or checkpoints, no usable data, a folder in use."""
EXIT_OUT_OF_MEMORY = 3
"""The device ran out of memory; retry with a smaller ``--batch_size`` or ``--cpu``."""
EXIT_WRITE_FAILED = 4
"""Results could not be written (disk full, read-only folder, no permission); the message names the path."""
EXIT_SCHEDULER = 5
"""The Dask scheduler given by ``--scheduler`` could not be reached, had no workers, or went away mid-run
(what was written stays; running again skips the finished files)."""
EXIT_CUT_SHORT = 6
"""The run finished, but some recordings were cut short (an export that stops mid-row, fewer samples than its
header announces): their complete part was converted, and each is named with what is missing."""


class SchedulerError(Exception):
    """The Dask scheduler could not be reached, has no workers, or went away (exit code 5)."""


class UsageError(Exception):
    """A problem the user must fix before anything can run (exit code 2).

    Like every message of the library, it names options by their parameter names in backquotes
    (`` `test_size` must be between 0 and 1``); the scripts show them as flags (:func:`as_flags`).
    """


_OPTION = re.compile(r"`([A-Za-z][A-Za-z0-9_]*)`")


def as_flags(message: str) -> str:
    """``message`` with each option named as `name` written as the command-line flag ``--name``.

    Every flag of the scripts is its parameter's name with ``--`` before it, so this one rule is
    the whole mapping from the library's words to the command line's.
    """
    return _OPTION.sub(r"--\1", message)


def is_out_of_device_memory(error: BaseException) -> bool:
    """Whether ``error`` is torch's CUDA out-of-memory error.

    torch is in ``sys.modules`` only where a model with the CNN block loaded it; no other
    error can be torch's, so a model of descriptors never imports it to ask.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(error, torch.cuda.OutOfMemoryError)


def out_of_memory_advice(batch_size: int) -> str:
    """The message for a CUDA out-of-memory error at ``batch_size`` (options named as `name`)."""
    smaller = max(1, batch_size // 2)
    return f"CUDA out of memory at `batch_size` {batch_size}: try `batch_size` {smaller} (or smaller), or `cpu`"


_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit was reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def megabytes(size: int) -> str:
    """``size`` bytes as text in MB with two decimals, e.g. ``1.57 MB``."""
    return f"{size / 1e6:.2f} MB"


class WriteError(Exception):
    """A result that could not be written (exit code 4); ``str()`` is the one-line message.

    Parameters
    ----------
    path : str
        The file or folder that could not be written.
    reason : str
        Why, in words: ``no space left on device``, ``read-only file system``, ...
    advice : str
        What the user can do, and what became of the results.
    errno : int, optional
        The operating system's error number, where the error came from one.
    """

    def __init__(self, path: str, reason: str, advice: str = "", errno: int | None = None):
        super().__init__(path, reason, advice, errno)
        self.path, self.reason, self.advice, self.errno = path, reason, advice, errno

    @property
    def is_storage_fault(self) -> bool:
        """The folder or disk is at fault (full, read-only, not permitted), not this one file's name."""
        return self.errno in _NO_SPACE + _NOT_WRITABLE or self.errno is None

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}" + (f"; {self.advice}" if self.advice else "")

    @classmethod
    def from_os_error(cls, path: str | os.PathLike, error: OSError, needed_bytes: int | None = None) -> WriteError:
        """The error for ``error`` raised while writing ``path``, with the advice for its kind.

        ``needed_bytes``, where known, is said in the advice for a full disk.
        """
        if isinstance(error, WriteError):
            return error
        known = _REASONS.get(error.errno) if error.errno is not None else None
        reason = known or error.strerror or str(error)
        if error.errno in _NO_SPACE:
            needed = f" (about {megabytes(needed_bytes)} needed)" if needed_bytes else ""
            advice = f"free some space there{needed}, or choose another folder"
        elif error.errno in _NOT_WRITABLE:
            advice = "choose a folder you can write to"
        else:
            advice = ""
        return cls(str(path), reason, advice, error.errno)

    def with_advice(self, advice: str) -> WriteError:
        """This error with ``advice`` added: what became of the results."""
        combined = "; ".join(part for part in (self.advice, advice) if part)
        return WriteError(self.path, self.reason, combined, self.errno)
