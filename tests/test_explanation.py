"""Explanations mean something: occlusion maps, descriptor contributions, permutation importance."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, read_json, run_failing, run_script
from semg_hht.classes import CLASS_NAMES
from semg_hht.errors import EXIT_WRITE_FAILED
from semg_hht.evaluation.explanation import (
    OCCLUSION_BLOCK,
    descriptor_contributions,
    explain,
    occluded_copies,
    probabilities_in_context,
)
from semg_hht.evaluation.importance import permutation_importances
from semg_hht.model.checkpoint import load_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.descriptors import DESCRIPTOR_NAMES
from semg_hht.model.feature_sets import NAMED_DESCRIPTORS
from semg_hht.model.normalisation import FileGroups

BAND_BLOCK_ROW = 6  # rows 96-111 of the matrix


def band_matrices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 (M_full) carries energy in one frequency band, class 1 (M_half) does not.

    The background varies from matrix to matrix in gain and in its spectrum's shape, as
    recordings do, so that nothing but the band tells the classes apart.
    """
    rng = np.random.default_rng(seed)
    gain = rng.lognormal(0, 0.5, size=(n, 1, 1)).astype(np.float32)
    spectrum_shape = rng.lognormal(0, 0.5, size=(n, 256, 1)).astype(np.float32)
    matrices = rng.random((n, 256, 256), dtype=np.float32) * 0.05 * gain * spectrum_shape
    labels = np.arange(n) % 2
    band = slice(BAND_BLOCK_ROW * OCCLUSION_BLOCK, (BAND_BLOCK_ROW + 1) * OCCLUSION_BLOCK)
    matrices[labels == 0, band, :] += rng.random((int((labels == 0).sum()), OCCLUSION_BLOCK, 256)) * 2.0
    return matrices, labels


def test_occluded_copies_cover_each_block_once():
    matrix = np.ones((256, 256), dtype=np.float32)
    copies = occluded_copies(matrix, range(256))
    assert copies.shape == (256, 256, 256)
    assert np.array_equal((copies == 0).sum(axis=(1, 2)), np.full(256, OCCLUSION_BLOCK**2))
    assert np.array_equal((copies == 0).sum(axis=0), np.ones((256, 256))), "every cell is occluded in one copy"
    assert (copies[17, 16:32, 16:32] == 0).all(), "block 17 is grid row 1, column 1"


def test_the_occlusion_map_is_largest_in_the_band_that_carries_the_class():
    matrices, labels = band_matrices(40, seed=0)
    classifier = HHTClassifier(features="hht", model="joint", seed=0).fit(matrices, labels)
    probe, _ = band_matrices(2, seed=1)
    features = classifier.transform(probe)
    explanation = explain(classifier, probe[0], None, features, None, row=0)
    assert explanation.class_id == 0
    by_frequency = explanation.occlusion.mean(axis=1)
    assert int(np.argmax(by_frequency)) == BAND_BLOCK_ROW
    elsewhere = np.delete(by_frequency, BAND_BLOCK_ROW)
    assert by_frequency[BAND_BLOCK_ROW] > 10 * np.abs(elsewhere).max(), by_frequency


def test_a_model_without_descriptors_gives_them_zero_contribution():
    matrices, labels = band_matrices(24, seed=2)
    for features, used in (("cnn", False), ("cnn+hht", True)):
        classifier = HHTClassifier(features=features, model="joint", seed=0).fit(matrices, labels)
        vectors = classifier.transform(matrices[:2])
        probability = classifier.predict_proba_features(vectors)[0]
        contributions = descriptor_contributions(
            classifier, vectors, None, 0, probability.max(), int(probability.argmax())
        )
        assert list(contributions) == list(NAMED_DESCRIPTORS)
        values = np.array(list(contributions.values()))
        assert (np.abs(values).max() > 1e-3) == used, (features, values)
        if not used:
            assert (values == 0).all()


def test_an_old_cnn_checkpoint_is_explained_from_its_scaler_mean():
    classifier, _ = load_checkpoint(ROOT / "tests" / "fixtures" / "checkpoint_v1" / "final")
    vectors = classifier.transform(np.random.default_rng(3).random((2, 256, 256), dtype=np.float32))
    probability = classifier.predict_proba_features(vectors)[0]
    contributions = descriptor_contributions(classifier, vectors, None, 0, probability.max(), int(probability.argmax()))
    assert set(contributions.values()) == {0.0}


def test_in_context_the_unchanged_file_gets_its_batch_probability():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(36, 28)) + np.repeat(np.arange(6), 6)[:, None] * 0.5
    labels = np.repeat(np.arange(6), 6)
    subjects = np.array([f"S{i % 4}" for i in range(36)])
    groups = FileGroups(subjects, np.full(36, "BICEPS"))
    classifier = HHTClassifier(features="hht", normalisation="subject", model="factorised", seed=0)
    classifier.fit_features(features, labels, groups)
    batch = classifier.predict_proba_features(features, groups)
    for row in (0, 17, 35):
        alone = probabilities_in_context(classifier, features, groups, row, features[row : row + 1])
        np.testing.assert_allclose(alone[0], batch[row], rtol=0, atol=1e-12)
    # A changed file changes its subject's statistics, and so its own probabilities.
    shifted = probabilities_in_context(classifier, features, groups, 0, features[:1] + 3.0)
    assert not np.allclose(shifted[0], batch[0])


def test_permutation_importance_finds_the_descriptor_that_carries_the_class():
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 40)
    features = rng.normal(size=(80, 28))
    features[:, DESCRIPTOR_NAMES.index("burst_count")] = 2 * labels + rng.normal(scale=0.3, size=80)
    classifier = HHTClassifier(features="hht", model="joint", seed=0).fit_features(features[::2], labels[::2])
    importance = permutation_importances(classifier, features[1::2], labels[1::2], None, seed=0)
    assert importance["baseline"] > 0.9
    means = {name: value["mean"] for name, value in importance["descriptors"].items()}
    assert max(means, key=means.get) == "burst_count" and means["burst_count"] > 0.3
    assert max(abs(value) for name, value in means.items() if name != "burst_count") < 0.1
    assert importance["blocks"]["hht"]["mean"] > 0.3


@pytest.fixture()
def three_files(sample_dir, tmp_path) -> Path:
    folder = tmp_path / "three"
    folder.mkdir()
    for name in ("BICEPS_test_001.npz", "TRICEPS_half_F_022.npz", "FOREARM_invalid_M_015.npz"):
        shutil.copy(sample_dir / name, folder / name)
    return folder


@pytest.mark.slow
def test_inference_explain_writes_maps_pictures_and_contributions(trained, three_files, tmp_path):
    out, output = tmp_path / "explained", tmp_path / "predictions.json"
    result = run_script(
        "inference.py",
        "--checkpoint",
        trained[0],
        "--input",
        three_files,
        "--explain",
        out,
        "--output",
        output,
        "--cpu",
    )
    assert result.returncode == 0, result.stderr
    assert "Explanations of 3 files saved to" in result.stdout and "s per file)" in result.stdout
    document = read_json(output)
    for path in sorted(three_files.iterdir()):
        record = document[path.name]["explanation"]
        assert record["class"] == document[path.name]["prediction"]
        assert list(record["descriptor_contributions"]) == list(NAMED_DESCRIPTORS)
        assert Path(record["picture"]) == out / f"{path.stem}.png"
        with np.load(out / f"{path.stem}.npz", allow_pickle=False) as arrays:
            assert arrays["occlusion"].shape == (16, 16) and CLASS_NAMES[int(arrays["class_id"])] == record["class"]
            assert int(arrays["block"]) == OCCLUSION_BLOCK and float(arrays["occluded_value"]) == 0.0
            assert float(arrays["occlusion"].max()) == pytest.approx(record["strongest_block"]["drop"])
        assert (out / f"{path.stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The map of a batch equals the maps of its files one by one.
    for path in sorted(three_files.iterdir()):
        alone = tmp_path / f"alone_{path.stem}"
        single = run_script("inference.py", "--checkpoint", trained[0], "--input", path, "--explain", alone, "--cpu")
        assert single.returncode == 0, single.stderr
        with np.load(alone / f"{path.stem}.npz") as one, np.load(out / f"{path.stem}.npz") as batch:
            np.testing.assert_array_equal(one["occlusion"], batch["occlusion"])
            np.testing.assert_array_equal(one["descriptor_contributions"], batch["descriptor_contributions"])


@pytest.mark.slow
def test_explain_refuses_the_input_folder(trained, three_files):
    before = {path.name: path.read_bytes() for path in three_files.iterdir()}
    result = run_script(
        "inference.py", "--checkpoint", trained[0], "--input", three_files, "--explain", three_files, "--cpu"
    )
    assert result.returncode == 2 and "is the input folder" in result.stderr
    assert {path.name: path.read_bytes() for path in three_files.iterdir()} == before


@pytest.mark.slow
def test_train_py_reports_importance_and_class_differences(trained):
    checkpoint_dir, result = trained
    report = read_json(checkpoint_dir / "report.json")
    importance = report["importance"]
    assert importance["metric"] == "balanced_accuracy" and importance["n_repeats"] == 10
    assert list(importance["blocks"]) == ["hht", "env"] and list(importance["descriptors"]) == list(NAMED_DESCRIPTORS)
    assert report["pictures"]["class_differences"] == "class_differences.png"
    assert (checkpoint_dir / "class_differences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Permutation importance on the validation set" in result.stdout


@pytest.mark.slow
def test_explanations_that_cannot_be_written_leave_the_predictions_written(trained, three_files, tmp_path):
    output = tmp_path / "predictions.json"
    args = ("--checkpoint", trained[0], "--input", three_files, "--explain", tmp_path / "x", "--output", output)
    result = run_failing("ENOSPC", ".BICEPS_test_001.png", "inference.py", *args, "--cpu")
    assert result.returncode == EXIT_WRITE_FAILED and "Traceback" not in result.stderr, result.stderr
    assert "BICEPS_test_001.png: no space left on device" in result.stderr
    assert f"the predictions were written to {output}, without explanations" in result.stderr
    document = read_json(output)
    assert len(document) == 4 and all("explanation" not in document[path.name] for path in three_files.iterdir())
