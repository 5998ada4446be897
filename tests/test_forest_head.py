"""The forest head: its arrays against scikit-learn, its checkpoint, its place among the tuned candidates, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import read_json, run_script
from semg_hht.model.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.forest_head import ForestHead
from semg_hht.model.normalisation import FileGroups
from semg_hht.model.svm_fitting import fit_forest_head, platt_sigmoid
from semg_hht.training.tuning import C_GRID, GAMMA_FACTORS, best_setting, tune_svm


def threshold_data(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray, FileGroups]:
    """28 columns of which only the first carries the class, through two sharp thresholds (trees' home ground)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 28))
    labels = np.digitize(features[:, 0], [-0.45, 0.45])  # classes 0, 1, 2 (M_full, M_half, M_invalid)
    subjects = np.array([f"S{i % 5}" for i in range(n)])
    return features, labels, FileGroups(subjects, np.full(n, "BICEPS"))


def test_the_forest_arrays_vote_as_scikit_learn_and_calibrate_on_out_of_bag_votes():
    features, labels, _ = threshold_data()
    _, forest, head = fit_forest_head(features, labels, seed=3)
    new = np.random.default_rng(1).normal(size=(200, 28))
    np.testing.assert_array_equal(head.votes(new), forest.predict_proba(new))
    a, b = platt_sigmoid(forest.oob_decision_function_[:, 1], labels == 1)
    assert (head.calibration_a[1], head.calibration_b[1]) == (a, b)
    probabilities = head.predict_proba(new)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(probabilities.argmax(axis=1) == np.digitize(new[:, 0], [-0.45, 0.45])) > 0.9
    reloaded = ForestHead(head.to_arrays())
    np.testing.assert_array_equal(reloaded.predict_proba(new), probabilities)


def test_inconsistent_forest_arrays_are_refused():
    features, labels, _ = threshold_data()
    arrays = fit_forest_head(features, labels, seed=0)[2].to_arrays()
    inner = int(np.flatnonzero(arrays["left"] != -1)[0])
    arrays["left"] = arrays["left"].copy()
    arrays["left"][inner] = inner  # a node that is its own child: a descent that never ends
    with pytest.raises(ValueError, match="inconsistent forest-head arrays"):
        ForestHead(arrays)


@pytest.mark.parametrize("model", ["joint", "factorised"])
def test_a_forest_classifier_keeps_its_head_in_the_checkpoint(tmp_path, model):
    features, labels, groups = threshold_data()
    classifier = HHTClassifier(features="hht", head="forest", model=model, normalisation="subject").fit_features(
        features, labels, groups
    )
    assert classifier.head_kind_ == "forest"
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    loaded, _ = load_checkpoint(tmp_path / "final", safe=True)
    assert loaded.head_kind_ == "forest" and isinstance(loaded.head_, ForestHead)
    np.testing.assert_array_equal(
        loaded.predict_proba_features(features, groups), classifier.predict_proba_features(features, groups)
    )


def test_ties_go_to_the_kernel_head_over_the_forest():
    params = [{"classifier__head": "auto", "classifier__svm_C": 1.0, "classifier__svm_gamma": 0.5}]
    params.append({"classifier__head": "forest"})
    results = {"params": params, "split0_test_score": np.array([0.8, 0.8])}
    assert best_setting(results) == 0
    results["split0_test_score"] = np.array([0.7, 0.8])
    assert best_setting(results) == 1


@pytest.mark.slow
def test_tuning_chooses_the_forest_where_trees_win():
    features, labels, groups = threshold_data()
    tuned = tune_svm(HHTClassifier(features="hht", model="joint"), features, labels, groups, seed=0)
    assert len(tuned["grid"]) == len(C_GRID) * len(GAMMA_FACTORS) + 1
    forest = tuned["grid"][-1]
    assert forest["head"] == "forest" and forest["C"] is None and forest["gamma"] is None
    # One informative column among 28: the RBF kernel's distance is mostly noise, a tree splits on it.
    assert tuned["head"] == "forest" and tuned["C"] is None
    assert forest["mean"] > max(entry["mean"] for entry in tuned["grid"][:-1])
    # Columns of another feature set are named as such, not blamed on the class sizes.
    with pytest.raises(ValueError, match=r"features \(150, 28\): 44 columns of hht\+env expected"):
        tune_svm(HHTClassifier(features="hht+env", model="joint"), features, labels, groups, seed=0)


def test_train_and_infer_with_the_forest_head(sample_dir, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    trained = run_script("train.py", "--data_dir", sample_dir, "--checkpoint_dir", checkpoints, "--head", "forest")
    assert trained.returncode == 0, trained.stderr
    assert read_json(checkpoints / "report.json")["model"]["head"]["used"] == "forest"
    output = tmp_path / "predictions.json"
    inferred = run_script(
        "inference.py", "--checkpoint", checkpoints / "final", "--input", sample_dir, "--output", output
    )
    assert inferred.returncode == 0, inferred.stderr
    predictions = read_json(output)
    assert predictions.pop("errors") == {} and len(predictions) == 33  # every file of the folder
