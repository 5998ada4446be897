import warnings

import numpy as np
import pytest

from semg_hht.model.classifier import HHTClassifier, parse_gamma


def easy_data(per_class=6, classes=(0, 1, 3)):
    """Matrices whose class sets the size of a bright square: easy for the encoder."""
    rng = np.random.default_rng(0)
    X, y = [], []
    for label in classes:
        for _ in range(per_class):
            matrix = rng.random((256, 256), dtype=np.float32) * 0.1
            size = 16 + 40 * label
            matrix[:size, :size] += 1.0
            X.append(matrix)
            y.append(label)
    return np.array(X), np.array(y)


@pytest.fixture(scope="session")
def fitted():
    X, y = easy_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classifier = HHTClassifier(features="cnn", model="joint", batch_size=8).fit(X, y)
    return classifier, X, y


def test_fit_emits_no_warning(fitted):
    # The fixture turned every warning into an error while fitting.
    assert fitted[0].is_fitted


def test_probabilities_cover_all_six_classes(fitted):
    classifier, X, y = fitted
    probabilities = classifier.predict_proba(X)
    assert probabilities.shape == (len(X), 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    absent = [2, 4, 5]
    assert np.all(probabilities[:, absent] == 0)
    np.testing.assert_array_equal(classifier.classes_, np.arange(6))


def test_prediction_is_the_most_probable_class(fitted):
    classifier, X, y = fitted
    np.testing.assert_array_equal(classifier.predict(X), classifier.predict_proba(X).argmax(axis=1))
    assert classifier.score(X, y) == 1.0


def test_feature_and_matrix_paths_agree(fitted):
    classifier, X, _ = fitted
    features = classifier.transform(X)
    assert features.shape == (len(X), 256) and features.dtype == np.float32
    np.testing.assert_array_equal(classifier.predict_proba_features(features), classifier.predict_proba(X))


def test_batch_size_does_not_change_features(fitted):
    classifier, X, _ = fitted
    other = HHTClassifier(features="cnn", model="joint", encoder=classifier.encoder_, batch_size=5)
    np.testing.assert_allclose(other.transform(X), classifier.transform(X), atol=1e-5)


def test_unfitted_classifier_refuses_to_predict():
    with pytest.raises(RuntimeError, match="not fitted"):
        HHTClassifier(features="cnn", model="joint").predict_proba_features(np.zeros((1, 256)))


def test_too_few_samples_per_class():
    with pytest.raises(ValueError, match="at least 2 samples"):
        HHTClassifier(features="cnn", model="joint").fit_features(np.random.rand(3, 256), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="two classes"):
        HHTClassifier(features="cnn", model="joint").fit_features(np.random.rand(3, 256), np.array([0, 0, 0]))


@pytest.mark.parametrize(
    "kwargs", [{"svm_C": 0}, {"svm_kernel": "cubic"}, {"svm_gamma": "fast"}, {"svm_gamma": "-1"}, {"batch_size": 0}]
)
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        HHTClassifier(features="cnn", model="joint", **kwargs)


def test_parse_gamma():
    assert parse_gamma("scale") == "scale" and parse_gamma("auto") == "auto" and parse_gamma("0.5") == 0.5


def test_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(n, 256, 256\)"):
        HHTClassifier(features="cnn", model="joint").transform(np.zeros((2, 128, 128)))
