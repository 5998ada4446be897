"""Model selection on scikit-learn's own objects: the classifier on feature vectors, the grid search of
C and gamma, its folds, and the cross-validation of train.py, each checked against a fit by hand."""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score as sklearn_balanced_accuracy
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from semg_hht.evaluation.splits import Fold, InnerFolds
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.estimator_base import balanced_accuracy_score
from semg_hht.model.feature_vectors import FeatureVectorClassifier
from semg_hht.model.normalisation import FileGroups
from semg_hht.training.cross_validation import cross_validate_features
from semg_hht.training.tuning import NO_SETTING, best_setting, routed, routing_params, svm_search, tune_svm


def subject_features(n_subjects=6, per_class=3, seed=0):
    """td-sized features (n, 4): a class offset under a large per-subject offset; two muscles per subject."""
    rng = np.random.default_rng(seed)
    rows, labels, subjects, muscles = [], [], [], []
    for subject in range(n_subjects):
        gender, level = subject % 2, rng.normal(0, 3, 4)
        for quality in range(3):
            for copy in range(per_class):
                rows.append(level + [quality, 0.0, 2.0 * gender, quality] + rng.normal(0, 0.4, 4))
                labels.append(3 * gender + quality)
                subjects.append(f"S{subject}")
                muscles.append("AB"[copy % 2])
    return np.array(rows), np.array(labels), FileGroups(np.array(subjects), np.array(muscles))


def test_feature_vector_classifier_is_the_classifier_on_its_feature_vectors():
    features, labels, groups = subject_features()
    settings = HHTClassifier(features="td", normalisation="subject_muscle", model="factorised", svm_C=3.0)
    estimator = FeatureVectorClassifier(settings).fit(features, labels, groups.pairs())
    by_hand = clone(settings).fit_features(features, labels, groups)
    np.testing.assert_array_equal(
        estimator.predict_proba(features, groups), by_hand.predict_proba_features(features, groups)
    )
    assert not settings.is_fitted  # the parameter is copied, never fitted in place
    assert estimator.get_params()["classifier__svm_C"] == 3.0 and list(estimator.classes_) == list(range(6))
    assert clone(estimator.set_params(classifier__svm_C=7.0)).classifier.svm_C == 7.0
    predicted = by_hand.predict_features(features, groups)
    assert estimator.score(features, labels, groups) == pytest.approx(sklearn_balanced_accuracy(labels, predicted))


def test_balanced_accuracy_is_scikit_learns_with_and_without_weights():
    rng = np.random.default_rng(3)
    truth, predicted, weights = rng.integers(0, 6, 50), rng.integers(0, 6, 50), rng.random(50)
    assert balanced_accuracy_score(truth, predicted) == pytest.approx(sklearn_balanced_accuracy(truth, predicted))
    expected = sklearn_balanced_accuracy(truth, predicted, sample_weight=weights)
    assert balanced_accuracy_score(truth, predicted, weights) == pytest.approx(expected)
    # The classifier's score is that figure: 9 right of class 0 and 0 of 1 is 0.5, not accuracy's 0.9.
    assert balanced_accuracy_score(np.array([0] * 9 + [1]), np.zeros(10, int)) == 0.5


def test_inner_folds_are_fewer_where_there_is_less_to_split():
    _, labels, groups = subject_features(n_subjects=4)
    folds = InnerFolds(5, random_state=1)
    assert folds.get_n_splits(None, labels, groups.subjects) == 4
    expected = StratifiedGroupKFold(4, shuffle=True, random_state=1).split(labels, labels, groups.subjects)
    for (train, test), (train_expected, test_expected) in zip(
        folds.split(labels, labels, groups.subjects), expected, strict=True
    ):
        np.testing.assert_array_equal(train, train_expected)
        np.testing.assert_array_equal(test, test_expected)
    rare = np.array([0] * 3 + [1] * 10)
    assert folds.get_n_splits(None, rare) == 3
    expected = [test for _, test in StratifiedKFold(3, shuffle=True, random_state=1).split(rare, rare)]
    assert all(np.array_equal(a, b) for (_, a), b in zip(folds.split(rare, rare), expected, strict=True))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_grid_search_scores_each_candidate_as_a_fit_by_hand():
    features, labels, groups = subject_features()
    settings = HHTClassifier(features="td", normalisation="subject_muscle", model="factorised")
    search = svm_search(settings, groups_known=True, seed=2, refit=False)
    search.param_grid = {"classifier__svm_C": [0.3, 10.0], "classifier__svm_gamma": [0.2]}
    with sklearn.config_context(enable_metadata_routing=True):
        search.fit(features, labels, **routing_params(groups))
    folds = list(InnerFolds(5, random_state=2).split(features, labels, groups.subjects))
    for candidate, C in enumerate((0.3, 10.0)):
        for k, (train, test) in enumerate(folds):
            fitted = HHTClassifier(
                features="td", normalisation="subject_muscle", model="factorised", svm_C=C, svm_gamma=0.2
            )
            fitted.fit_features(features[train], labels[train], groups.take(train))
            expected = sklearn_balanced_accuracy(
                labels[test], fitted.predict_features(features[test], groups.take(test))
            )
            assert search.cv_results_[f"split{k}_test_score"][candidate] == pytest.approx(expected, abs=1e-12)


def test_the_best_setting_means_over_the_folds_it_was_fitted_in_and_ties_go_to_the_smaller_C():
    params = [{"classifier__svm_C": C, "classifier__svm_gamma": 0.5} for C in (1.0, 3.0, 10.0)]
    results = {
        "params": params,
        "split0_test_score": np.array([0.6, np.nan, 0.7]),
        "split1_test_score": np.array([0.8, 0.8, 0.7]),
    }
    assert best_setting(results) == 1  # 0.8 over its one fitted fold beats 0.7 and 0.7
    results["split0_test_score"] = np.array([0.8, np.nan, 0.7])
    assert best_setting(results) == 0  # 0.8 for C 1 and C 3: the smaller C
    results["split0_test_score"][:] = results["split1_test_score"][:] = np.nan
    with pytest.raises(ValueError, match="no head setting"):
        best_setting(results)


def test_tuning_with_too_few_files_per_class_says_so_in_one_line():
    features, labels, _ = subject_features(n_subjects=4, per_class=1)  # two files per class: none calibrates
    with pytest.raises(ValueError) as raised:
        tune_svm(HHTClassifier(features="td", model="joint"), features, labels, None, seed=0)
    assert str(raised.value) == NO_SETTING


@pytest.mark.slow
@pytest.mark.parametrize("normalisation", ["subject", "subject_muscle"])
def test_nested_cross_validation_tunes_each_fold_on_its_own_training_files(normalisation):
    features, labels, groups = subject_features()
    settings = HHTClassifier(features="td", normalisation=normalisation, model="factorised", seed=4)
    outer = StratifiedGroupKFold(3).split(features, labels, groups.subjects)
    folds = [Fold(f"fold {k}", train, test, []) for k, (train, test) in enumerate(outer)]
    nested = cross_validate_features(svm_search(settings, True, seed=4, refit=True), features, labels, folds, groups)
    for fold, result in zip(folds, nested, strict=True):
        train_groups = groups.take(fold.train)
        tuned = tune_svm(settings, features[fold.train], labels[fold.train], train_groups, seed=4)
        by_hand = clone(settings).set_params(svm_C=tuned["C"], svm_gamma=tuned["gamma"])
        by_hand.fit_features(features[fold.train], labels[fold.train], train_groups)
        expected = by_hand.predict_proba_features(features[fold.test], groups.take(fold.test))
        np.testing.assert_allclose(result.probabilities, expected, atol=1e-12)


@pytest.mark.parametrize("normalisation", ["none", "subject_muscle"])
def test_cross_validation_predicts_each_fold_as_a_fit_by_hand(normalisation):
    features, labels, groups = subject_features(per_class=4)
    groups = None if normalisation == "none" else groups
    settings = HHTClassifier(features="td", normalisation=normalisation)
    splits = StratifiedKFold(2).split(labels, labels)
    folds = [Fold(f"fold {k}", train, test, []) for k, (train, test) in enumerate(splits)]
    results = cross_validate_features(routed(settings, groups is not None), features, labels, folds, groups)
    for fold, result in zip(folds, results, strict=True):
        train_groups, test_groups = (
            (None, None) if groups is None else (groups.take(fold.train), groups.take(fold.test))
        )
        by_hand = clone(settings).fit_features(features[fold.train], labels[fold.train], train_groups)
        expected = by_hand.predict_proba_features(features[fold.test], test_groups)
        np.testing.assert_array_equal(result.probabilities, expected)


FEATURE_VECTOR_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_fit1d",
    "check_supervised_y_no_nan",
    "check_decision_proba_consistency",
)
"""The generic checks that apply to FeatureVectorClassifier: the others feed X of any width and labels of
any kind, where the classifier takes the width of its feature set and class IDs 0-5 (its fit and
predictions are checked against the classifier's own above)."""


@pytest.mark.parametrize("check", FEATURE_VECTOR_CHECKS)
def test_generic_checks_that_apply_to_the_feature_vector_classifier(check):
    from sklearn.utils import estimator_checks

    estimator = FeatureVectorClassifier(HHTClassifier(features="td", model="joint"))
    getattr(estimator_checks, check)("FeatureVectorClassifier", estimator)
