"""semg-hht: classify surface-EMG recordings from their Hilbert-Huang spectra.

The commands are those of the repository's scripts, with the same flags and exit codes:

  semg-hht simulate   write a sample data set (generate_sample_data.py)
  semg-hht hht        convert raw recordings into HHT matrix files (compute_hht.py)
  semg-hht train      train the classifier on labelled matrix files (train.py)
  semg-hht infer      predict matrix files with a trained checkpoint (inference.py)

`semg-hht COMMAND --help` lists a command's flags.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from semg_hht import __version__

COMMANDS = {
    "simulate": "semg_hht.cli.simulate",
    "hht": "semg_hht.cli.hht",
    "train": "semg_hht.cli.train",
    "infer": "semg_hht.cli.infer",
}
"""Each command's module, whose ``main(argv, prog)`` runs it; imported only when chosen."""


def build_parser() -> argparse.ArgumentParser:
    """The command, then everything after it for the command's own parser."""
    parser = argparse.ArgumentParser(
        prog="semg-hht", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("arguments", nargs=argparse.REMAINDER, metavar="...", help="the command's flags")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``semg-hht COMMAND ...`` (default: the command line's); the command's exit code."""
    args = build_parser().parse_args(argv)
    command = importlib.import_module(COMMANDS[args.command])
    return command.main(args.arguments, prog=f"semg-hht {args.command}")
