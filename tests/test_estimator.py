"""HHTClassifier and its steps as scikit-learn estimators: clone, parameters, Pipeline, model selection, checks.

The classifier takes (n, 256, 256) matrices, so scikit-learn's generic checks, which feed 2-D X,
mostly cannot apply to it (``check_estimator`` itself runs only the clone check on a 3-D
estimator): the ones that apply run here by name, the others are listed in
``EXCLUDED_CLASSIFIER_CHECKS`` with the reason. The 2-D step of the SVM pipeline
(``BlockWeightedScaler``) goes through ``check_estimator``.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import check_estimator
from sklearn.utils.validation import check_is_fitted

from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import build_encoder
from semg_hht.model.feature_steps import CNNFeatures, HHTDescriptors, StoredSegmentFeatures, SubjectNormaliser
from semg_hht.model.normalisation import FileGroups
from semg_hht.model.svm_fitting import BlockWeightedScaler

RUN_CLASSIFIER_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_fit1d",
    "check_n_features_in_after_fitting",
    "check_supervised_y_no_nan",
    "check_decision_proba_consistency",
    "check_non_transformer_estimators_n_iter",
    "check_estimators_partial_fit_n_features",
    "check_classifiers_one_label_sample_weights",
)
"""The generic classifier checks that pass on HHTClassifier (the last five have nothing to check
on it: no n_features_in_, decision_function, n_iter_, partial_fit or sample weights)."""

_TWO_D = "feeds 2-D X; the classifier takes (n, 256, 256) matrices (fit/predict on matrices is tested below)"
_NO_SAMPLE_WEIGHT = "fit takes no sample weights (the SVM is fitted unweighted)"
EXCLUDED_CLASSIFIER_CHECKS = {
    **dict.fromkeys(
        (
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_positive_only_tag_during_fit",
            "check_estimators_dtypes",
            "check_complex_data",
            "check_dtype_object",
            "check_estimators_empty_data_messages",
            "check_pipeline_consistency",
            "check_estimators_nan_inf",
            "check_estimator_sparse_tag",
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_classifier_data_not_an_array",
            "check_classifiers_train",
            "check_supervised_y_2d",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
            "check_requires_y_none",
        ),
        _TWO_D,
    ),
    **dict.fromkeys(
        (
            "check_sample_weights_pandas_series",
            "check_sample_weights_not_an_array",
            "check_sample_weights_list",
            "check_all_zero_sample_weights_error",
            "check_sample_weights_shape",
            "check_sample_weights_not_overwritten",
            "check_sample_weight_equivalence_on_dense_data",
            "check_sample_weight_equivalence_on_sparse_data",
        ),
        _NO_SAMPLE_WEIGHT,
    ),
    "check_do_not_raise_errors_in_init_or_set_params": "settings are checked in __init__ as well as in fit, so that "
    "HHTClassifier(svm_C=0) fails where it is written (tests/test_classifier.py asserts it)",
    "check_estimators_unfitted": "an unfitted classifier raises RuntimeError('... not fitted'), which "
    "tests/test_classifier.py asserts; NotFittedError would import scikit-learn on the checkpoint's prediction path",
    "check_classifiers_one_label": "one class cannot be calibrated: a ValueError of its own ('at least two classes')",
    "check_classifiers_classes": "classes_ is always arange(6), probability column j class ID j, not the labels seen",
    "check_classifiers_regression_target": "labels outside 0-5 are refused with a ValueError of its own",
    "check_class_weight_classifiers": "no class_weight parameter",
    "check_array_api_input": "numpy only (and the check needs an array namespace argument)",
}
"""The other generic classifier checks, each with why it does not apply."""


def easy_matrices(per_class=4, classes=(0, 1, 3, 5)):
    rng = np.random.default_rng(0)
    X = rng.random((per_class * len(classes), 256, 256), dtype=np.float32) * 0.1
    y = np.repeat(classes, per_class)
    for matrix, label in zip(X, y, strict=True):
        matrix[: 16 + 40 * label, :64] += 1.0
    return X, y


def quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few files per class in the inner folds
        return estimator.fit(X, y)


@pytest.mark.parametrize("check", RUN_CLASSIFIER_CHECKS)
def test_generic_checks_that_apply(check):
    getattr(estimator_checks, check)("HHTClassifier", HHTClassifier(features="hht"))


@pytest.mark.filterwarnings("ignore:Can't test estimator")
def test_check_estimator_itself_runs_only_the_clone_check():
    # scikit-learn skips every check needing 2-D input for an estimator tagged three_d_array.
    results = check_estimator(HHTClassifier(features="hht"), on_fail=None)
    assert [(r["check_name"], r["status"]) for r in results] == [("check_estimator_cloneable", "passed")]


def test_every_generic_classifier_check_is_run_or_excluded_with_a_reason():
    # The generic checks of a classifier with 2-D input, as scikit-learn yields them for its own SVC.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {result["check_name"] for result in check_estimator(SVC(), on_fail=None)}
    assert names == set(RUN_CLASSIFIER_CHECKS) | set(EXCLUDED_CLASSIFIER_CHECKS)
    assert not set(RUN_CLASSIFIER_CHECKS) & set(EXCLUDED_CLASSIFIER_CHECKS)


def test_parameters_round_trip_and_clone_keeps_the_encoder():
    encoder = build_encoder(3)
    classifier = HHTClassifier(encoder=encoder, svm_C=3, svm_gamma="0.5", features="hht+cnn", device="cpu")
    params = classifier.get_params()
    assert params["svm_gamma"] == "0.5" and params["features"] == "hht+cnn" and params["encoder"] is encoder
    copy = clone(classifier)
    assert copy.get_params().keys() == params.keys() and copy.encoder is not encoder
    state, copied = encoder.state_dict(), copy.encoder.state_dict()
    assert all(np.array_equal(state[key].numpy(), copied[key].numpy()) for key in state)
    assert classifier.set_params(svm_C=7.0) is classifier and classifier.svm_C == 7.0
    assert is_classifier(classifier) and classifier.feature_set == "cnn+hht"
    with pytest.raises(ValueError, match="Invalid parameter"):
        classifier.set_params(C=1.0)


def test_fit_predict_on_matrices_and_learned_state():
    X, y = easy_matrices()
    classifier = quiet_fit(HHTClassifier(features="hht", model="joint"), X, y)
    assert not hasattr(HHTClassifier(), "head_")
    for name in ("head_", "population_", "scaler_", "svm_", "label_map_", "classes_", "encoder_"):
        assert hasattr(classifier, name), name
    assert classifier.gender_head_ is None
    check_is_fitted(classifier)
    assert classifier.score(X, y) == 1.0
    np.testing.assert_array_equal(classifier.classes_, np.arange(6))


def test_cross_val_predict_and_grid_search_over_svm_C():
    X, y = easy_matrices()
    folds = StratifiedKFold(2, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        predicted = cross_val_predict(HHTClassifier(features="hht", seed=1), X, y, cv=folds)
        search = GridSearchCV(HHTClassifier(features="hht"), {"svm_C": [0.3, 10.0]}, cv=folds).fit(X, y)
    assert predicted.shape == y.shape and set(predicted) <= set(range(6))
    assert search.best_params_["svm_C"] in (0.3, 10.0) and search.best_estimator_.is_fitted
    assert search.predict(X).shape == y.shape


def test_in_a_pipeline_after_a_matrix_step():
    X, y = easy_matrices()
    pipeline = Pipeline([("log", _Log1p()), ("classifier", HHTClassifier(features="hht"))])
    quiet_fit(pipeline, X, y)
    assert pipeline.predict(X).shape == y.shape and clone(pipeline).get_params()["classifier__features"] == "hht"


class _Log1p:
    """A stateless matrix step for the pipeline test."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.log1p(X)

    def get_params(self, deep=True):
        return {}


def test_feature_steps_match_the_classifiers_blocks():
    X, _ = easy_matrices(per_class=1)
    classifier = HHTClassifier(features="cnn+hht", seed=2)
    features = classifier.transform(X)
    cnn = CNNFeatures(seed=2).fit(X).transform(X)
    np.testing.assert_array_equal(features, np.concatenate([cnn, HHTDescriptors().fit_transform(X)], axis=1))
    assert HHTDescriptors().get_feature_names_out()[0] == classifier.feature_names[256]
    stored = [np.arange(6.0)] * len(X)  # Hudgins' 4, then the amplitude distribution's 2
    np.testing.assert_array_equal(StoredSegmentFeatures("td").transform(stored), [[0, 1, 2, 3]] * len(X))
    np.testing.assert_array_equal(StoredSegmentFeatures("amp").transform(stored), [[4, 5]] * len(X))
    assert list(StoredSegmentFeatures("amp").get_feature_names_out()) == ["amp_kurtosis", "amp_log_mav_rms_ratio"]
    older = [np.arange(4.0)] * len(X)  # a file of release 0.3: Hudgins' 4 alone
    assert StoredSegmentFeatures("td").transform(older).shape == (len(X), 4)
    with pytest.raises(ValueError, match="amp_kurtosis"):
        StoredSegmentFeatures("amp").transform(older)
    with pytest.raises(ValueError, match="td_log_mav"):
        StoredSegmentFeatures("td").transform([None])


def test_subject_normaliser_needs_groups():
    features = np.random.default_rng(0).normal(size=(6, 3))
    groups = FileGroups(np.array(["a"] * 3 + ["b"] * 3), np.array(["M"] * 6))
    normalised = SubjectNormaliser().fit(features).transform(features, groups)
    np.testing.assert_allclose(normalised[:3].mean(axis=0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="subject of every file"):
        SubjectNormaliser().fit(features).transform(features)


@pytest.mark.filterwarnings("ignore:Skipping check check_array_api_input")
def test_block_weighted_scaler_passes_check_estimator():
    # Unweighted: the generic checks vary the number of columns, and weights fix it.
    results = check_estimator(BlockWeightedScaler(), on_fail=None)
    assert [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"] == []
    assert sum(r["status"] == "passed" for r in results) >= 45


def test_the_estimator_and_train_py_share_one_table_of_defaults():
    from semg_hht.cli.train import build_parser

    flags = vars(build_parser().parse_args(["--data_dir", "data"]))
    params = HHTClassifier().get_params()
    shared = {"svm_C": "svm_C", "svm_kernel": "svm_kernel", "svm_gamma": "svm_gamma", "seed": "seed"}
    shared |= {"batch_size": "batch_size", "features": "features", "normalisation": "normalise"}
    shared |= {"model": "model", "head": "head"}
    assert {name: params[name] for name in shared} == {name: flags[flag] for name, flag in shared.items()}


def _subject_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """72 matrices of six classes from 12 subjects (two per gender and fold), scaled by class."""
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(6), 12)
    subjects = np.array([f"S{(i // 6) % 6}{'MF'[label // 3]}" for i, label in enumerate(y)])
    return rng.random((72, 256, 256), dtype=np.float32) * (1 + y[:, None, None]), y, subjects


@pytest.mark.slow
@pytest.mark.parametrize("model", ["joint", "factorised"])
@pytest.mark.parametrize("normalisation", ["none", "subject", "subject_muscle"])
def test_groups_reach_fit_and_score_through_metadata_routing(normalisation, model, caplog):
    import sklearn
    from sklearn.model_selection import StratifiedGroupKFold, cross_validate

    X, y, subjects = _subject_matrices()
    folds = StratifiedGroupKFold(3)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        classifier = HHTClassifier(normalisation=normalisation, model=model)
        classifier.set_fit_request(groups=True).set_score_request(groups=True)
        search = GridSearchCV(classifier, {"svm_C": [1.0, 10.0]}, cv=folds).fit(X, y, groups=subjects)
        scores = cross_validate(classifier, X, y, cv=folds, params={"groups": subjects})["test_score"]
    assert search.best_params_["svm_C"] in (1.0, 10.0) and 0 <= search.best_score_ <= 1
    assert len(scores) == 3 and np.all((scores >= 0) & (scores <= 1))


def test_routing_requests_are_kept_by_clone_and_groups_may_be_arrays():
    from semg_hht.model.normalisation import as_file_groups

    classifier = HHTClassifier().set_fit_request(groups=True).set_predict_proba_request(groups="subjects")
    routing = clone(classifier).get_metadata_routing()
    assert routing.fit.requests == {"groups": True} and routing.predict_proba.requests == {"groups": "subjects"}
    assert HHTClassifier().get_metadata_routing().fit.requests == {}
    pairs = as_file_groups(np.array([["S1", "BIC"], ["S2", "TRI"]]))
    assert list(pairs.subjects) == ["S1", "S2"] and list(pairs.muscles) == ["BIC", "TRI"]
    assert list(as_file_groups(["S1", "S1"]).keys("subject_muscle")) == ["S1 / ", "S1 / "]
    with pytest.raises(ValueError, match="shape"):
        as_file_groups(np.zeros((2, 3)))
