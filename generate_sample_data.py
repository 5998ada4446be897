#!/usr/bin/env python3
"""Write a sample data set: simulated raw sEMG recordings of the six classes, each turned into
its 256x256 Hilbert spectrum, named by the labelling convention, with labels.csv beside them.

Exit codes: 0 written; 2 bad flags, files that would be overwritten, or the folder in
use by another run; 4 a file could not be written (full disk, read-only folder).
"""

import argparse

from semg_hht.cli import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="./data", help="folder to write into (default: %(default)s)")
    parser.add_argument("--n_samples", type=int, default=20, help="labelled files per class (default: %(default)s)")
    parser.add_argument("--n_test", type=int, default=10, help="unlabelled test files (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace files of the same names")
    parser.add_argument(
        "--save_signals",
        action="store_true",
        help="also write each raw recording (mV) to OUTPUT_DIR/signals/ for compute_hht.py",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes to use (default: all CPU cores)")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    def generate() -> int:
        from semg_hht.errors import UsageError
        from semg_hht.sample_data import generate_sample_data

        if args.n_samples < 0 or args.n_test < 0:
            raise UsageError("--n_samples and --n_test must not be negative")
        if args.workers is not None and args.workers < 1:
            raise UsageError("--workers must be at least 1")
        paths = generate_sample_data(
            args.output_dir,
            args.n_samples,
            args.n_test,
            args.seed,
            overwrite=args.overwrite,
            save_signals=args.save_signals,
            workers=args.workers,
        )
        print(f"Wrote {len(paths)} files ({6 * args.n_samples} labelled, {args.n_test} test) to {args.output_dir}")
        return 0

    return run_command(generate)


if __name__ == "__main__":
    raise SystemExit(main())
