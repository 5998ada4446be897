"""The scalable head computes what scikit-learn's Nystroem + LogisticRegression compute, and ``auto`` picks by size."""

import numpy as np
import pytest
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from semg_hht.defaults import AUTO_SVM_MAX_SAMPLES
from semg_hht.model import classifier as classifier_module
from semg_hht.model.classifier import HHTClassifier, choose_head
from semg_hht.model.scalable_head import ScalableHead
from semg_hht.model.svm_fitting import SCALABLE_COMPONENTS, fit_scalable_head


def blobs(n_classes: int, per_class: int = 30, width: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    return rng.normal(size=(len(labels), width)) + labels[:, None], labels


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid"])
@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_matches_scikit_learn(kernel, n_classes):
    features, labels = blobs(n_classes)
    scaler = StandardScaler().fit(features)
    nystroem = Nystroem(kernel=kernel, gamma=0.2, coef0=0.0, degree=3, n_components=25, random_state=0)
    mapped = nystroem.fit_transform(scaler.transform(features))
    linear = LogisticRegression(C=10.0, max_iter=2000).fit(mapped, labels * 2 + 1)  # labels need not be 0..k-1
    head = ScalableHead.from_sklearn(scaler, nystroem, linear)
    probe = np.random.default_rng(1).normal(size=(40, 6)) * 3
    expected = linear.predict_proba(nystroem.transform(scaler.transform(probe)))
    np.testing.assert_array_equal(head.classes_, linear.classes_)
    np.testing.assert_allclose(head.predict_proba(probe), expected, atol=1e-10)
    rebuilt = ScalableHead(head.to_arrays())
    np.testing.assert_array_equal(rebuilt.predict_proba(probe), head.predict_proba(probe))


def test_fitted_head_and_its_scikit_learn_copy_agree():
    """What the checkpoint's pickles hold (scaler + Pipeline) predicts what the array head predicts."""
    features, labels = blobs(3, per_class=150)
    scaler, model, head = fit_scalable_head(
        features, labels, np.ones(6), {"C": 10.0, "kernel": "rbf", "gamma": "scale"}, 0
    )
    probe = np.random.default_rng(2).normal(size=(50, 6)) * 2
    np.testing.assert_allclose(head.predict_proba(probe), model.predict_proba(scaler.transform(probe)), atol=1e-5)
    assert head.components.shape == (SCALABLE_COMPONENTS, 6)
    assert np.mean(head.classes_[head.predict_proba(features).argmax(1)] == labels) > 0.8


def test_probabilities_sum_to_one_far_from_the_data():
    features, labels = blobs(6)
    _, _, head = fit_scalable_head(features, labels, np.ones(6), {"C": 1e6, "kernel": "linear", "gamma": "scale"}, 0)
    probabilities = head.predict_proba(np.full((3, 6), 1e6))  # logits of about 1e12: no overflow, no NaN
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_inconsistent_arrays_are_refused():
    features, labels = blobs(3)
    _, _, head = fit_scalable_head(features, labels, np.ones(6), {"C": 1.0, "kernel": "rbf", "gamma": "scale"}, 0)
    arrays = head.to_arrays()
    with pytest.raises(ValueError, match="coef"):
        ScalableHead({**arrays, "coef": arrays["coef"][:, :-1]})
    with pytest.raises(ValueError, match="kind, classes or kernel"):
        ScalableHead({**arrays, "head": np.array("svm")})
    with pytest.raises(ValueError, match="missing arrays normalization"):
        ScalableHead({key: value for key, value in arrays.items() if key != "normalization"})


def test_auto_takes_the_svm_up_to_its_limit_and_the_scalable_head_above():
    assert choose_head("auto", AUTO_SVM_MAX_SAMPLES)[0] == "svm"
    kind, reason = choose_head("auto", AUTO_SVM_MAX_SAMPLES + 1)
    assert kind == "scalable" and f"{AUTO_SVM_MAX_SAMPLES + 1:,} training samples" in reason
    assert choose_head("svm", 10**6) == ("svm", "svm, as asked")
    assert choose_head("scalable", 10)[0] == "scalable" and choose_head("forest", 10)[0] == "forest"
    with pytest.raises(ValueError, match="head must be one of"):
        choose_head("boosting", 10)


@pytest.mark.parametrize("model", ["joint", "factorised"])
@pytest.mark.parametrize("normalisation", ["none", "subject"])
def test_every_head_fits_every_model(model, normalisation, monkeypatch):
    from semg_hht.model.normalisation import FileGroups

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(6), 20)
    features = rng.normal(size=(120, 28)) + labels[:, None] * 0.8
    # Two subjects of each gender (a subject's files share one gender, which the factorised model pools).
    subjects = np.array([f"S{label // 3}{index % 2}" for index, label in enumerate(labels)])
    groups = FileGroups(subjects, np.full(120, "BICEPS"))
    monkeypatch.setattr(classifier_module, "AUTO_SVM_MAX_SAMPLES", 100)  # 120 samples: auto goes scalable
    for head, used in (("svm", "svm"), ("scalable", "scalable"), ("auto", "scalable"), ("forest", "forest")):
        fitted = HHTClassifier(features="hht", model=model, normalisation=normalisation, head=head)
        fitted.fit_features(features, labels, groups)
        probabilities = fitted.predict_proba_features(features, groups)
        assert fitted.head_kind_ == used
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert np.mean(probabilities.argmax(axis=1) == labels) > 0.6
