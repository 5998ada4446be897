"""What the command-line scripts share: turning errors into messages and exit codes.

Imports nothing heavy, so ``--help`` answers before torch is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import EXIT_USAGE, UsageError


def run_command(command: Callable[[], int]) -> int:
    """Run a script's work; a user-fixable problem becomes a one-line message and exit code 2."""
    # File names need not be valid UTF-8, nor the terminal's encoding: escape, never crash.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    try:
        return command()
    except (UsageError, FileExistsError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
