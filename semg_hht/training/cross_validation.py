"""Cross-validation of the classifier: per fold, fit on the other folds and score the held-out one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import GridSearchCV, cross_validate

from semg_hht import logs
from semg_hht.data.dataset import extract_file_features
from semg_hht.defaults import DEFAULT_AGGREGATION_RULE
from semg_hht.evaluation.scores import recording_scores, scores, summarise_folds
from semg_hht.evaluation.splits import Fold, make_split
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.feature_vectors import FeatureVectorClassifier
from semg_hht.model.normalisation import FileGroups, take_groups
from semg_hht.training.encoder_options import EncoderTrainingOptions, LabelledFiles, TrainingDataError
from semg_hht.training.tuning import routing_params, searching

if TYPE_CHECKING:
    from semg_hht.training.trainer import EncoderTrainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recordings:
    """The recording of each labelled file (parallel to the features) and the rule combining its files."""

    names: list[str]
    rule: str = DEFAULT_AGGREGATION_RULE

    def scores(self, test: np.ndarray, probabilities: np.ndarray, truth: np.ndarray) -> dict[str, Any] | None:
        """Figures of one prediction per held-out recording; None when each has one file or its files disagree."""
        try:
            return recording_scores(probabilities, truth, [self.names[i] for i in test], self.rule)
        except ValueError:
            return None


@dataclass
class FoldResult:
    """What one fold predicted for its held-out files (and recordings), and how long it took."""

    fold: Fold
    probabilities: np.ndarray
    truth: np.ndarray
    seconds: float
    best_epoch: int | None = None
    recordings: Recordings | None = None

    def __post_init__(self) -> None:
        self.predicted = self.probabilities.argmax(axis=1)
        self.figures = scores(self.truth, self.predicted)
        self.recording_figures = (
            None if self.recordings is None else self.recordings.scores(self.fold.test, self.probabilities, self.truth)
        )

    def record(self, names: list[str]) -> dict[str, Any]:
        """The fold as plain data for the report: subjects, files, scores, best epoch, seconds."""
        return {
            "name": self.fold.name,
            "held_out_subjects": self.fold.held_out_subjects,
            "files": [names[i] for i in self.fold.test],
            **self.figures,
            "per_recording": self.recording_figures,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
        }


def cross_validate_features(
    estimator: FeatureVectorClassifier | GridSearchCV,
    features: np.ndarray,
    labels: np.ndarray,
    folds: list[Fold],
    groups: FileGroups | None = None,
    recordings: Recordings | None = None,
) -> list[FoldResult]:
    """Cross-validate ``estimator`` on fixed feature vectors (n, n_features) with class IDs (n,) through
    scikit-learn's ``cross_validate``, and predict each fold's held-out files with the fold's fitted model.

    ``estimator`` is :func:`~semg_hht.training.tuning.routed`'s classifier, or
    :func:`~semg_hht.training.tuning.svm_search`'s grid search (a nested cross-validation: each fold
    chooses its SVM on its own training files). ``groups`` (subjects and muscles) reach the
    normalisation, the gender pooling and the inner folds by metadata routing; with ``recordings``,
    each fold is also scored with one prediction per recording.
    """
    splits = [(fold.train, fold.test) for fold in folds]
    logger.info(f"  fitting {len(folds)} folds, one after another; their figures follow")
    with searching():  # the features were checked finite when they were computed
        outcome = cross_validate(
            estimator,
            features,
            labels,
            cv=splits,
            params=routing_params(groups, splitter=isinstance(estimator, GridSearchCV)),
            return_estimator=True,
            error_score="raise",
        )
    results = []
    for fold, fitted, fit_seconds in zip(folds, outcome["estimator"], outcome["fit_time"], strict=True):
        started = time.perf_counter()
        model = fitted.best_estimator_ if isinstance(fitted, GridSearchCV) else fitted
        probabilities = model.predict_proba(features[fold.test], take_groups(groups, fold.test))
        seconds = fit_seconds + time.perf_counter() - started
        results.append(FoldResult(fold, probabilities, labels[fold.test], seconds, recordings=recordings))
        _log_fold(results[-1], len(results), len(folds))
    return results


def cross_validate_training(
    make_classifier: Callable[[], HHTClassifier],
    options: EncoderTrainingOptions,
    paths: list[Path],
    labels: np.ndarray,
    groups: FileGroups | None,
    folds: list[Fold],
    test_size: float,
    recordings: Recordings | None = None,
) -> list[FoldResult]:
    """Cross-validate encoder training + SVM: in each fold the encoder is trained from the same
    initial weights, with early stopping on a split of the fold's training files (subject-wise
    when ``groups`` is given), and the best epoch's classifier scores the held-out files."""
    from semg_hht.training import trainer as encoder_training  # torch: only a model with the CNN block trains

    results = []
    for fold in folds:
        started = time.perf_counter()
        classifier = make_classifier()
        trainer = _fold_trainer(classifier, options, paths, labels, groups, fold, test_size)
        with logs.quieter(encoder_training.__name__):  # the per-epoch lines of every fold
            trainer.run()
        encoded = extract_file_features(trainer.best_fitted, [paths[i] for i in fold.test], classifier.batch_size)
        if encoded.errors:
            raise TrainingDataError(f"{encoded.errors[0]}: the file changed or vanished while training")
        probabilities = trainer.best_fitted.predict_proba_features(encoded.features, take_groups(groups, fold.test))
        seconds = time.perf_counter() - started
        result = FoldResult(fold, probabilities, labels[fold.test], seconds, trainer.best_epoch, recordings)
        results.append(result)
        _log_fold(result, len(results), len(folds))
    return results


def _fold_trainer(
    classifier: HHTClassifier,
    options: EncoderTrainingOptions,
    paths: list[Path],
    labels: np.ndarray,
    groups: FileGroups | None,
    fold: Fold,
    test_size: float,
) -> EncoderTrainer:
    """The trainer of one fold: its training files split again (subject-wise where known) for early stopping."""
    fold_labels = labels[fold.train]
    fold_groups = take_groups(groups, fold.train)
    fold_subjects = None if fold_groups is None else fold_groups.subjects
    inner_train, inner_val = make_split(fold_labels, fold_subjects, None, test_size, classifier.seed)

    def files(index: np.ndarray) -> LabelledFiles:
        return LabelledFiles([paths[fold.train[i]] for i in index], fold_labels[index], take_groups(fold_groups, index))

    from semg_hht.training.trainer import EncoderTrainer

    return EncoderTrainer(classifier, options, files(inner_train), files(inner_val), progress=False)


def _log_fold(result: FoldResult, number: int, total: int) -> None:
    figures = result.figures
    epoch = "" if result.best_epoch is None else f", best epoch {result.best_epoch}"
    if result.recording_figures is not None:
        epoch += f", per recording {result.recording_figures['balanced_accuracy']:.4f}"
    logger.info(
        f"  {result.fold.name} ({number}/{total}, {figures['n']} files): accuracy {figures['accuracy']:.4f}, "
        f"balanced {figures['balanced_accuracy']:.4f}, macro F1 {figures['macro_f1']:.4f}, "
        f"gender {figures['gender_accuracy']:.4f}, quality {figures['quality_accuracy']:.4f}{epoch} "
        f"({result.seconds:.1f} s)"
    )


def cv_report(results: list[FoldResult], names: list[str], scheme: str) -> dict[str, Any]:
    """Per-fold records, mean and std over folds, and the scores of all folds' predictions pooled."""
    folds = [result.record(names) for result in results]
    truth = np.concatenate([result.truth for result in results])
    predicted = np.concatenate([result.predicted for result in results])
    summary = summarise_folds(folds)
    per_recording = [result.recording_figures for result in results]
    values = [figures["balanced_accuracy"] for figures in per_recording if figures is not None]
    if len(values) == len(per_recording):
        summary["recording_balanced_accuracy"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return {"scheme": scheme, "folds": folds, "summary": summary, "pooled": scores(truth, predicted)}
