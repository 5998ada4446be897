"""What the command-line scripts share: turning errors into messages and exit codes.

Imports nothing heavy, so ``--help`` answers before torch is loaded.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable

from semg_hht.defaults import DEFAULT_BATCH_SIZE
from semg_hht.errors import (
    EXIT_SCHEDULER,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
    SchedulerError,
    UsageError,
    WriteError,
    as_flags,
)
from semg_hht.logs import configure_logging


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of train.py and inference.py that say how and where the encoder runs."""
    parser.add_argument(
        "--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="matrices per encoder batch (default: %(default)s)"
    )
    parser.add_argument("--cpu", action="store_true", help="use the CPU even when CUDA is available")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="encode under bfloat16 autocast: faster on bf16 hardware (recent Intel CPUs, GPUs), "
        "features differ from float32 in the third digit",
    )


def add_cluster_arguments(parser: argparse.ArgumentParser, default_workers: str) -> None:
    """``--workers`` and ``--scheduler``: where the work fans out (see semg_hht/engine.py)."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the local Dask cluster started for the run; 1 runs in this process, with no "
        f"cluster (default: {default_workers})",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786) whose workers share this file system; "
        "the run uses its workers instead of starting local ones",
    )


def run_command(command: Callable[[], int]) -> int:
    """Run a script's work; a user-fixable problem becomes a one-line message and its exit code.

    2 for a usage problem, 4 for results that could not be written, 5 for a Dask scheduler that could
    not be reached or went away.
    """
    # File names need not be valid UTF-8, nor the terminal's encoding: escape, never crash.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    configure_logging()
    try:
        return command()
    except (UsageError, FileExistsError) as error:
        print(as_flags(f"Error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except WriteError as error:
        print(as_flags(f"Error: {error}"), file=sys.stderr)
        return EXIT_WRITE_FAILED
    except SchedulerError as error:
        print(as_flags(f"Error: {error}"), file=sys.stderr)
        return EXIT_SCHEDULER
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
