"""Train the sEMG-HHT classifier (HHT descriptors, optionally CNN features, and a calibrated head) on a folder of
labelled HHT matrices.

Exit codes: 0 trained on every file; 1 trained, but some files were skipped or
labels-file rows were unusable (each listed); 2 nothing trained (bad flags, no
usable data, resume refused, the checkpoint folder in use by another run); 3 out
of device memory; 4 results could not be written (full disk, read-only folder:
the previous checkpoints are unchanged).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from semg_hht.cli.common import add_encoder_arguments, run_command
from semg_hht.defaults import (
    AGGREGATION_RULES,
    AUTO_SVM_MAX_SAMPLES,
    DEFAULT_AGGREGATION_RULE,
    DEFAULT_CHECKPOINT_DIR,
    DEFAULT_EPOCHS,
    DEFAULT_FEATURES,
    DEFAULT_HEAD,
    DEFAULT_LR,
    DEFAULT_MODEL,
    DEFAULT_NORMALISATION,
    DEFAULT_PATIENCE,
    DEFAULT_SAMPLE,
    DEFAULT_SEED,
    DEFAULT_SVM_C,
    DEFAULT_SVM_GAMMA,
    DEFAULT_SVM_KERNEL,
    DEFAULT_TEST_SIZE,
    DEFAULT_WEIGHT_DECAY,
    HEADS,
    MODELS,
    NORMALISATION_MODES,
    SAMPLE_KINDS,
    SVM_KERNELS,
)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command's flags; ``prog`` names it in messages (default: the running script's name)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", required=True, help="folder of MUSCLE_movement_GENDER_###.npz files")
    parser.add_argument(
        "--checkpoint_dir",
        default=DEFAULT_CHECKPOINT_DIR,
        help="where checkpoints and test predictions go (default: %(default)s)",
    )
    parser.add_argument(
        "--test_size",
        type=float,
        default=DEFAULT_TEST_SIZE,
        help="validation fraction, in (0, 1) (default: %(default)s)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR/latest_* if it exists")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace checkpoints already in CHECKPOINT_DIR (the replaced ones are kept in CHECKPOINT_DIR/.previous)",
    )
    _add_evaluation_arguments(parser)
    add_encoder_arguments(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seeds the encoder weights, split and calibration (default: %(default)s)",
    )
    _add_training_arguments(parser)
    _add_model_arguments(parser)
    _add_svm_arguments(parser)
    return parser


def _add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """Labels, subjects and cross-validation."""
    evaluation = parser.add_argument_group("labels, subjects and evaluation (see TRAINING_GUIDE.md)")
    evaluation.add_argument(
        "--labels", help="CSV with columns file, gender, movement[, subject, split]: labels instead of file names"
    )
    evaluation.add_argument(
        "--group_pattern",
        help="regular expression with a group named 'subject' that finds the subject in a file name, "
        "e.g. '^(?P<subject>S\\d+)_'; with subjects, validation holds out whole subjects",
    )
    evaluation.add_argument(
        "--cv",
        help="cross-validate before the final fit: a number of folds (subject-wise when subjects are known) "
        "or 'loso' (leave one subject out); the final model is then fitted on all labelled files",
    )


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Encoder training: epochs, optimiser, early stopping, augmentation."""
    training = parser.add_argument_group("encoder training (see TRAINING_GUIDE.md)")
    training.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="epochs of encoder training before the SVM; 0 keeps the seeded random encoder (default: %(default)s)",
    )
    training.add_argument(
        "--lr", type=float, default=DEFAULT_LR, help="peak learning rate of AdamW (default: %(default)s)"
    )
    training.add_argument(
        "--weight_decay", type=float, default=DEFAULT_WEIGHT_DECAY, help="AdamW weight decay (default: %(default)s)"
    )
    training.add_argument(
        "--patience",
        type=int,
        default=DEFAULT_PATIENCE,
        help="stop after this many epochs without a lower validation loss; 0 never stops early (default: %(default)s)",
    )
    training.add_argument(
        "--augment", action="store_true", help="shift each training matrix in time and scale its amplitude at random"
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Feature blocks, normalisation, model, vote and tuning."""
    model = parser.add_argument_group("features and model (see TRAINING_GUIDE.md, 'What the model sees')")
    model.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        help="feature blocks joined by '+': cnn (the encoder), hht (named descriptors of the matrix: amplitude, "
        "band energies, frequencies, time profile), env (the activation envelope's shape: time above fractions "
        "of the peak, percentiles, bursts, centre of activity), td (the raw segment's time-domain features, "
        "stored by compute_hht.py), amp (the raw segment's amplitude distribution: kurtosis and mean absolute "
        "value over RMS, stored by compute_hht.py since release 0.4) (default: %(default)s)",
    )
    model.add_argument(
        "--normalise",
        default=DEFAULT_NORMALISATION,
        choices=NORMALISATION_MODES,
        help="standardise features within each subject's (and muscle's) files; needs subjects at training "
        "and at inference (default: %(default)s)",
    )
    model.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        choices=MODELS,
        help="one six-class head, or a gender head (features as they are) times a movement-quality head "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--head",
        default=DEFAULT_HEAD,
        choices=HEADS,
        help="svm: the calibrated RBF SVM (its fit grows as n^2); scalable: a Nystroem approximation of the "
        "same kernel + logistic regression (fit about linear in n, for 10^5-10^6 samples); forest: a random "
        "forest of 300 trees with calibrated votes; auto: svm up to "
        f"{AUTO_SVM_MAX_SAMPLES:,} training samples, scalable above (default: %(default)s)",
    )
    model.add_argument(
        "--sample",
        default=DEFAULT_SAMPLE,
        choices=SAMPLE_KINDS,
        help="matrix: one sample per matrix file (one channel of one window); window: one sample per window of a "
        "recording with all its channels' features side by side (files converted with --channel all; a window "
        "lacking a channel is skipped); needs --epochs 0 (default: %(default)s)",
    )
    model.add_argument(
        "--vote",
        default=DEFAULT_AGGREGATION_RULE,
        choices=AGGREGATION_RULES,
        help="one prediction per recording (its windows and channels) for the test files and the validation "
        "figures: the mean of their class probabilities, or a majority vote (default: %(default)s)",
    )
    model.add_argument(
        "--tune",
        action="store_true",
        help="choose the head by an inner subject-wise cross-validation: the SVM (or scalable head) at each "
        "--svm_C x --svm_gamma of a small grid, or the forest",
    )


def _add_svm_arguments(parser: argparse.ArgumentParser) -> None:
    """The head's settings (the scalable head approximates the SVM's kernel)."""
    parser.add_argument(
        "--svm_C",
        type=float,
        default=DEFAULT_SVM_C,
        help="SVM regularisation C; the scalable head's inverse regularisation (default: %(default)s)",
    )
    parser.add_argument(
        "--svm_kernel",
        default=DEFAULT_SVM_KERNEL,
        choices=SVM_KERNELS,
        help="SVM kernel (default: %(default)s)",
    )
    parser.add_argument(
        "--svm_gamma",
        default=DEFAULT_SVM_GAMMA,
        help="SVM gamma: scale, auto or a positive number (default: %(default)s)",
    )


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Train with the flags ``argv`` (default: the command line's); the exit code (module docstring)."""
    args = build_parser(prog).parse_args(argv)

    def train() -> int:
        from semg_hht.training.options import TrainingOptions
        from semg_hht.training.pipeline import run_training

        return run_training(TrainingOptions(**vars(args)))

    return run_command(train)
