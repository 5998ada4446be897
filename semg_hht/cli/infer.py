"""Predict HHT matrix files with a trained sEMG-HHT checkpoint.

Exit codes: 0 every input predicted; 1 some inputs could not be read (the rest
are predicted and written); 2 usage error (no such checkpoint, no input files);
3 out of device memory; 4 --output could not be written (the predictions are then
printed on stdout as JSON).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from semg_hht.cli.common import add_encoder_arguments, run_command
from semg_hht.defaults import AGGREGATE_LEVELS, AGGREGATION_RULES, DEFAULT_AGGREGATE, DEFAULT_AGGREGATION_RULE


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command's flags; ``prog`` names it in messages (default: the running script's name)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint prefix such as ./checkpoints/final, or a checkpoint folder (its final_*)",
    )
    parser.add_argument("--input", required=True, help="one .npz file or a folder of them")
    parser.add_argument("--output", help="write predictions to this JSON file")
    parser.add_argument(
        "--explain",
        metavar="DIR",
        help="for every predicted file, write an occlusion map (DIR/<name>.png beside the spectrum, and "
        "DIR/<name>.npz) and the contribution of each HHT descriptor (in the --output JSON under 'explanation')",
    )
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATE_LEVELS,
        default=DEFAULT_AGGREGATE,
        help="'recording': also one prediction per recording from its files (its windows and channels, as "
        "compute_hht.py names and stores them, or the --labels 'recording' column), under 'recordings' in the "
        "JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--vote",
        choices=AGGREGATION_RULES,
        default=DEFAULT_AGGREGATION_RULE,
        help="how a recording's files are combined: the mean of their class probabilities, or a majority vote "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--labels",
        help="CSV with columns file, subject[, muscle, recording]: the subjects (and muscles, recordings) of the "
        "input files, for a model that normalises within subjects",
    )
    parser.add_argument(
        "--group_pattern",
        help="regular expression with a group named 'subject' that finds the subject in a file name, "
        "e.g. '^(?P<subject>S\\d+)_' (as in train.py)",
    )
    parser.add_argument(
        "--resample_axis",
        action="store_true",
        help="predict matrices on another frequency axis than the model's by re-reading their rows on the model's "
        "axis (linear interpolation); without it such files are refused, each naming both axes",
    )
    add_encoder_arguments(parser)
    parser.add_argument(
        "--safe",
        action="store_true",
        help="refuse checkpoints that would need unpickling (older releases'); see docs/failures.md (trust model)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Predict with the flags ``argv`` (default: the command line's); the exit code (module docstring)."""
    args = build_parser(prog).parse_args(argv)

    def infer() -> int:
        from semg_hht.inference.prediction import InferenceOptions, run_inference

        return run_inference(InferenceOptions(**vars(args)))

    return run_command(infer)
