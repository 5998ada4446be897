"""How the package reports: module loggers, and the scripts' configuration of them.

The library logs with ``logging.getLogger(__name__)`` and never prints. What the scripts
show on stdout (progress lines and results) is logged at INFO; warnings at WARNING (shown
as ``Warning: ...``), problems with one file or one run at ERROR (``Error: ...``), both on
stderr; options named as `name` are shown as the flags ``--name``
(:func:`~semg_hht.errors.as_flags`). An INFO record with ``extra=TO_STDERR`` goes to stderr as its bare message (the
skipped-files summary, per-epoch lines). A quiet run raises a logger's level
(:func:`quieter`) instead of redirecting streams.

Imports nothing heavy, so ``--help`` answers before torch is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from tqdm import tqdm

from semg_hht.errors import as_flags

PACKAGE = "semg_hht"
TO_STDERR = {"to_stderr": True}
"""``extra=`` of an INFO record that belongs on stderr (a log line, not a result)."""

_PREFIXES = {logging.WARNING: "Warning: ", logging.ERROR: "Error: ", logging.CRITICAL: "Error: "}


class _MessageFormatter(logging.Formatter):
    """A record as the scripts write it: its message, prefixed by its level above INFO, options as flags."""

    def format(self, record: logging.LogRecord) -> str:
        return as_flags(_PREFIXES.get(record.levelno, "") + record.getMessage())


def _on_stderr(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or getattr(record, "to_stderr", False)


class _StreamHandler(logging.Handler):
    """Writes to the current ``sys.stdout`` or ``sys.stderr`` (looked up per record, so pytest's
    capture and ``contextlib.redirect_stdout`` see it) through ``tqdm.write``, which keeps a
    progress bar on the terminal intact."""

    def __init__(self, to_stderr: bool):
        super().__init__()
        self.to_stderr = to_stderr
        self.addFilter(lambda record: _on_stderr(record) == to_stderr)
        self.setFormatter(_MessageFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr if self.to_stderr else sys.stdout)
        except Exception:  # a closed stream must not end the run; logging's own policy
            self.handleError(record)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the package's records to stdout and stderr as described above (once per process)."""
    package = logging.getLogger(PACKAGE)
    package.setLevel(level)
    if not any(isinstance(handler, _StreamHandler) for handler in package.handlers):
        package.addHandler(_StreamHandler(to_stderr=False))
        package.addHandler(_StreamHandler(to_stderr=True))


RULE = "=" * 60


def heading(title: str) -> None:
    """Log a step's title between two rules (a section of train.py's log)."""
    logging.getLogger(PACKAGE).info(f"\n{RULE}\n{title}\n{RULE}")


@contextlib.contextmanager
def quieter(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Within the block, drop the records of logger ``name`` (and its children) below ``level``."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
