"""The array head computes exactly what the calibrated SVC computes, which fits what scikit-learn's
``CalibratedClassifierCV(ensemble=False)`` fits."""

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from semg_hht.model.svm_fitting import PlattCalibratedSVC
from semg_hht.model.svm_head import SVMHead


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid"])
@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_matches_scikit_learn(kernel, n_classes):
    rng = np.random.default_rng(n_classes)
    features = rng.normal(size=(12 * n_classes, 20)) + 0.5 * np.repeat(np.arange(n_classes), 12)[:, None]
    labels = np.repeat(np.arange(n_classes) * 2 + 1, 12)  # labels need not be 0..k-1
    scaler = StandardScaler().fit(features)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    svc = SVC(C=10.0, kernel=kernel, gamma="scale")
    calibrated = PlattCalibratedSVC(svc, cv=folds).fit(scaler.transform(features), labels)
    head = SVMHead.from_sklearn(scaler, calibrated)
    probe = rng.normal(size=(40, 20)) * 2
    np.testing.assert_array_equal(head.classes_, calibrated.classes_)
    np.testing.assert_allclose(head.predict_proba(probe), calibrated.predict_proba(scaler.transform(probe)), atol=1e-12)
    rebuilt = SVMHead(head.to_arrays())
    np.testing.assert_array_equal(rebuilt.predict_proba(probe), head.predict_proba(probe))
    # scikit-learn's own calibration of the same SVC on the same folds: the same sigmoids.
    reference = CalibratedClassifierCV(svc, cv=folds, ensemble=False).fit(scaler.transform(features), labels)
    expected = reference.predict_proba(scaler.transform(probe))
    np.testing.assert_allclose(calibrated.predict_proba(scaler.transform(probe)), expected, atol=1e-12)


def test_inconsistent_arrays_are_refused():
    arrays = {
        "classes": np.array([0, 1]),
        "mean": np.zeros(3),
        "scale": np.ones(3),
        "support_vectors": np.zeros((4, 3)),
        "dual_coef": np.zeros((1, 4)),
        "intercept": np.zeros(1),
        "n_support": np.array([2, 2]),
        "kernel_parameters": np.array([1.0, 0.0, 3.0]),
        "calibration_a": np.zeros(1),
        "calibration_b": np.zeros(1),
        "kernel": np.array("rbf"),
    }
    assert SVMHead(arrays).predict_proba(np.zeros((1, 3))).shape == (1, 2)
    with pytest.raises(ValueError, match="kernel"):
        SVMHead({**arrays, "kernel": np.array("cubic")})
    with pytest.raises(ValueError, match="scale"):
        SVMHead({**arrays, "scale": np.ones(4)})
    with pytest.raises(ValueError, match="missing arrays intercept"):
        SVMHead({key: value for key, value in arrays.items() if key != "intercept"})
