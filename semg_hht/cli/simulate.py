"""Write a sample data set: simulated raw sEMG recordings of the six classes, each turned into
its 256x256 Hilbert spectrum, named by the labelling convention, with labels.csv beside them.

Exit codes: 0 written; 2 bad flags, files that would be overwritten, or the folder in
use by another run; 4 a file could not be written (full disk, read-only folder); 5 the Dask
scheduler given by --scheduler could not be reached, had no workers, or went away.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from semg_hht.classes import CLASS_NAMES
from semg_hht.cli.common import add_cluster_arguments, run_command
from semg_hht.defaults import DEFAULT_SAMPLE_DIR, DEFAULT_SAMPLE_TEST_FILES, DEFAULT_SAMPLES_PER_CLASS, DEFAULT_SEED
from semg_hht.errors import UsageError

logger = logging.getLogger(__name__)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command's flags; ``prog`` names it in messages (default: the running script's name)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default=DEFAULT_SAMPLE_DIR, help="folder to write into (default: %(default)s)")
    parser.add_argument(
        "--n_samples",
        type=int,
        default=DEFAULT_SAMPLES_PER_CLASS,
        help="labelled files per class (default: %(default)s)",
    )
    parser.add_argument(
        "--n_test", type=int, default=DEFAULT_SAMPLE_TEST_FILES, help="unlabelled test files (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace files of the same names")
    parser.add_argument(
        "--save_signals",
        action="store_true",
        help="also write each raw recording (mV) to OUTPUT_DIR/signals/ for compute_hht.py",
    )
    add_cluster_arguments(parser, "one per 100 files, at most all usable CPU cores")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Write the sample data set with the flags ``argv`` (default: the command line's); the exit code."""
    args = build_parser(prog).parse_args(argv)

    def generate() -> int:
        from semg_hht.data.sample_data import generate_sample_data

        if args.n_samples < 0 or args.n_test < 0:
            raise UsageError("`n_samples` and `n_test` must not be negative")
        if args.workers is not None and args.workers < 1:
            raise UsageError("`workers` must be at least 1")
        paths = generate_sample_data(
            args.output_dir,
            args.n_samples,
            args.n_test,
            args.seed,
            overwrite=args.overwrite,
            save_signals=args.save_signals,
            workers=args.workers,
            scheduler=args.scheduler,
        )
        n_labelled = len(CLASS_NAMES) * args.n_samples
        logger.info(f"Wrote {len(paths)} files ({n_labelled} labelled, {args.n_test} test) to {args.output_dir}")
        return 0

    return run_command(generate)
