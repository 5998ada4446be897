"""The model steps of train.py before the final fit: the classifier, `tune` and `cv`, logged."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semg_hht.errors import UsageError
from semg_hht.evaluation.splits import cv_folds, parse_cv
from semg_hht.io.atomic import ensure_free_space
from semg_hht.logs import heading
from semg_hht.model.checkpoint import encoder_size
from semg_hht.model.classifier import HHTClassifier, describe_model
from semg_hht.training.cross_validation import Recordings, cross_validate_features, cross_validate_training, cv_report
from semg_hht.training.labelled_data import LabelledData, Split
from semg_hht.training.options import TrainingOptions
from semg_hht.training.resume import Resumed
from semg_hht.training.tuning import apply_tuning, routed, svm_search, tune_svm

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

FIGURE_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "recording_balanced_accuracy": "Balanced accuracy per recording",
    "macro_f1": "Macro F1",
    "gender_accuracy": "Gender accuracy",
    "quality_accuracy": "Movement-quality accuracy",
}


def new_classifier(
    options: TrainingOptions, device: torch.device | str, channels: tuple[str, ...] | None = None
) -> HHTClassifier:
    """An unfitted classifier with the run's features, normalisation, model, head, SVM settings, seed and batch;
    with ``channels``, of window samples of those channels (:mod:`semg_hht.data.windows`)."""
    return HHTClassifier(
        svm_C=options.svm_C,
        svm_kernel=options.svm_kernel,
        svm_gamma=options.svm_gamma,
        seed=options.seed,
        batch_size=options.batch_size,
        device=device,
        bf16=options.bf16,
        features=options.features,
        normalisation=options.normalise,
        model=options.model,
        head=options.head,
        channels=channels,
    )


def prepare_classifier(options: TrainingOptions, device: torch.device | str, resumed: Resumed | None) -> HHTClassifier:
    """The resumed checkpoint's classifier or a new one, once the folder is known to have room for the checkpoints.

    Raises
    ------
    WriteError
        The checkpoint folder has no room for the encoder's weights in each checkpoint the run writes.
    """
    classifier = resumed.classifier if resumed else new_classifier(options, device)
    # The encoder's weights alone, in each checkpoint the run writes: certain to be needed.
    needed = (2 if options.epochs == 0 else 3) * encoder_size()
    ensure_free_space(Path(options.checkpoint_dir), needed, f"checkpoints in {options.checkpoint_dir}")
    classifier.bf16 = options.bf16
    logger.info(describe_model(classifier))
    return classifier


def tune(
    options: TrainingOptions,
    classifier: HHTClassifier,
    data: LabelledData,
    split: Split,
    resumed: Resumed | None,
    device: torch.device | str,
) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """`tune`: choose the head (the SVM at a C and gamma, or the forest) on the training files by an inner
    cross-validation, and set it on ``classifier``.

    Returns the tuning result (the resumed checkpoint's if it has one; None without `tune`) and its timing.
    """
    if not options.tune:
        return None, {}
    heading("Tuning the head (inner cross-validation on the training files)")
    tuning, timings = None if resumed is None else resumed.kept("tuning"), {}
    if tuning is not None:
        logger.info("(result kept from the resumed checkpoint)")
    else:
        started = time.perf_counter()
        train, candidate = split.train, new_classifier(options, device, data.channels)
        try:
            tuning = tune_svm(candidate, data.features[train], data.labels[train], data.groups_of(train), options.seed)
        except ValueError as error:
            raise UsageError(f"Cannot tune: {error}") from None
        timings = {"tuning_s": time.perf_counter() - started}
    apply_tuning(classifier, tuning)
    chosen = "the forest" if tuning.get("C") is None else f"C {tuning['C']:g}, gamma {tuning['gamma']:.4g}"
    logger.info(
        f"Best of {len(tuning['grid'])} settings ({tuning['folds']} {tuning['scheme']} folds): "
        f"{chosen}, inner balanced accuracy {tuning['score']:.4f}"
    )
    return tuning, timings


def cross_validate(
    options: TrainingOptions, data: LabelledData, resumed: Resumed | None, device: torch.device | str
) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """`cv` (unless a resumed checkpoint holds its result), logged per fold and as mean +- std.

    Returns the cross-validation record for the report (None without `cv`) and its timing.
    """
    if options.cv is None:
        return None, {}
    cv = parse_cv(options.cv)
    groups = data.split_groups()
    by = "" if groups is None else " by subject" if data.subjects is not None else " by recording"
    scheme = "leave-one-subject-out" if cv == "loso" else f"{cv}-fold{by}"
    heading(f"Cross-validation: {scheme}")
    record, timings = None if resumed is None else resumed.kept("cv"), {}
    if record is not None:
        logger.info("(result kept from the resumed checkpoint)")
    else:
        started = time.perf_counter()
        folds = cv_folds(data.labels, data.subjects if cv == "loso" else groups, cv, options.seed)
        try:
            results = _cross_validate_folds(options, data, folds, device)
        except ValueError as error:
            raise UsageError(f"Too few files in a cross-validation fold: {error}") from None
        record = cv_report(results, data.names, scheme)
        timings = {"cross_validation_s": time.perf_counter() - started}
    logger.info(f"Mean +- std over {len(record['folds'])} folds:")
    for key, value in record["summary"].items():
        logger.info(f"  {FIGURE_NAMES[key]}: {value['mean']:.4f} +- {value['std']:.4f}")
    logger.info("(the final model below is fitted on all labelled files)")
    return record, timings


def _cross_validate_folds(
    options: TrainingOptions, data: LabelledData, folds: list, device: torch.device | str
) -> list:
    recordings = Recordings(data.recordings, options.vote)
    if options.epochs == 0:
        # With `tune`, each fold chooses its SVM on its own training files: a nested cross-validation.
        groups_known, classifier = data.groups is not None, new_classifier(options, device, data.channels)
        estimator = (
            svm_search(classifier, groups_known, options.seed, refit=True)
            if options.tune
            else routed(classifier, groups_known)
        )
        return cross_validate_features(estimator, data.features, data.labels, folds, data.groups, recordings)
    return cross_validate_training(
        partial(new_classifier, options, device),
        options.encoder_training(),
        data.paths,
        data.labels,
        data.groups,
        folds,
        options.test_size,
        recordings,
    )
