"""Every head through checkpoints, train.py and inference.py; a model of descriptors predicts without torch."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, read_json, run_script
from semg_hht.data.dataset import scan_data_folder
from semg_hht.model.checkpoint import CheckpointError, CheckpointMetadata, load_checkpoint, save_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.descriptors import DESCRIPTOR_NAMES
from semg_hht.model.scalable_head import ScalableHead

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def descriptor_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(6), 10)
    return rng.normal(size=(60, 28)) + labels[:, None], labels


@pytest.mark.parametrize("model", ["joint", "factorised"])
def test_scalable_checkpoint_round_trip(model, tmp_path):
    features, labels = descriptor_data()
    classifier = HHTClassifier(features="hht", model=model, head="scalable").fit_features(features, labels)
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    loaded, metadata = load_checkpoint(tmp_path / "final", safe=True)
    np.testing.assert_array_equal(loaded.predict_proba_features(features), classifier.predict_proba_features(features))
    assert isinstance(loaded.head_, ScalableHead)
    assert (loaded.head, loaded.head_kind_, metadata.head_kind) == ("scalable", "scalable", "scalable")
    assert loaded.head_reason_ == "scalable, as asked"
    with zipfile.ZipFile(tmp_path / "final_head.npz") as archive:
        assert ("head.npy" if model == "joint" else "quality__head.npy") in archive.namelist()


def test_checkpoint_of_the_release_before_heads_predicts_the_same():
    """tests/fixtures/checkpoint_v2_hht: written by 0.2.0 (descriptors, factorised, SVM head, no head setting)."""
    expected = read_json(FIXTURES / "checkpoint_v2_hht" / "expected.json")
    classifier, _ = load_checkpoint(FIXTURES / "checkpoint_v2_hht" / "final", safe=True)
    probabilities = classifier.predict_proba_features(np.array(expected["features"]))
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=0, atol=1e-12)
    assert (classifier.head, classifier.head_kind_) == ("svm", "svm")
    # Its gender head saw every column, as every release before the option.
    assert classifier.gender_features == "all" and classifier.gender_head_.n_features == len(DESCRIPTOR_NAMES)


def test_a_cnn_checkpoint_needs_its_encoder_file(tmp_path):
    for path in (FIXTURES / "checkpoint_v1").iterdir():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "final_encoder.pt").unlink()
    with pytest.raises(CheckpointError, match="missing final_encoder.pt"):
        load_checkpoint(tmp_path / "final")


# Loads and predicts in a fresh interpreter (not the suite's warm one, which has torch loaded), then
# prints the torch modules it imported.
TORCH_FREE = """
import sys
import numpy as np
from semg_hht.data.dataset import scan_data_folder
from semg_hht.model.checkpoint import load_checkpoint
from semg_hht.cli.infer import main
classifier, _ = load_checkpoint(sys.argv[1])
matrices = np.random.default_rng(0).random((3, 256, 256), dtype=np.float32)
assert np.allclose(classifier.predict_proba(matrices).sum(axis=1), 1)
assert main(["--checkpoint", sys.argv[1], "--input", sys.argv[2], "--output", sys.argv[3]]) == 0
print(sorted(name for name in sys.modules if name.split(".")[0] == "torch"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("source", ["trained", "fixture"])
def test_a_model_of_descriptors_predicts_without_torch(source, trained, sample_dir, tmp_path):
    checkpoint = trained[0] / "final" if source == "trained" else FIXTURES / "checkpoint_v2_hht" / "final"
    output = tmp_path / "predictions.json"
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(checkpoint), str(sample_dir), str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert len(read_json(output)) == 33 + 1  # every file, and "errors"


@pytest.mark.slow
def test_inference_script_imports_no_torch(trained, sample_dir):
    one_file = sorted(sample_dir.glob("*.npz"))[0]
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "inference.py"),
            "--checkpoint",
            str(trained[0]),
            "--input",
            str(one_file),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    ]
    assert "numpy" in imported and not [name for name in imported if name.split(".")[0] == "torch"]
    assert "Using device: cpu (numpy; a model without the CNN block needs no GPU or torch)" in result.stdout


@pytest.mark.slow
def test_the_default_head_and_why_are_reported(trained):
    checkpoint_dir, result = trained
    why = "auto: svm for 24 training samples (up to 12,000 it fits in about a minute)"
    assert f"Head: {why}" in result.stdout
    assert read_json(checkpoint_dir / "report.json")["model"]["head"] == {"used": "svm", "why": why}
    _, metadata = load_checkpoint(checkpoint_dir / "final")
    assert (metadata.head, metadata.head_kind, metadata.head_reason) == ("auto", "svm", why)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["svm", "scalable"])
def test_train_and_infer_with_each_head(head, sample_dir, tmp_path):
    checkpoints, predictions = tmp_path / "checkpoints", tmp_path / "predictions.json"
    flags = ("--head", head, "--cv", "3")
    result = run_script("train.py", "--data_dir", sample_dir, "--checkpoint_dir", checkpoints, *flags)
    assert result.returncode == 0, result.stderr
    report = read_json(checkpoints / "report.json")
    assert report["model"]["head"] == {"used": head, "why": f"{head}, as asked"}
    assert len(report["cross_validation"]["folds"]) == 3
    result = run_script("inference.py", "--checkpoint", checkpoints, "--input", sample_dir, "--output", predictions)
    assert result.returncode == 0, result.stderr
    assert f"head: {head}, as asked" in result.stdout
    document = read_json(predictions)
    classifier, _ = load_checkpoint(checkpoints / "final")
    test_files = scan_data_folder(sample_dir).test
    expected = classifier.predict_proba(np.stack([np.load(path)["hht"] for path in test_files]))
    for path, row in zip(test_files, expected, strict=True):
        record = document[path.name]
        assert sum(record["probabilities"].values()) == pytest.approx(1.0)
        np.testing.assert_allclose(list(record["probabilities"].values()), row, atol=1e-12)
    stored = json.loads((checkpoints / "test_predictions.json").read_text(encoding="utf-8"))
    assert set(stored) >= {path.name for path in test_files}


# Trains a model of descriptors in a fresh interpreter and prints whether torch was loaded when the
# first checkpoint save began (the save writes P_encoder.pt, which needs torch).
TRAIN_UNTIL_SAVE = """
import sys
from semg_hht.training import run_record
from semg_hht.training.options import TrainingOptions
from semg_hht.training.pipeline import run_training
seen = []
real_save = run_record.save_checkpoints
def save(saves):
    seen.append("torch" in sys.modules)
    real_save(saves)
run_record.save_checkpoints = save
assert run_training(TrainingOptions(sys.argv[1], sys.argv[2])) == 0
print(seen[0], "torch" in sys.modules)
"""


@pytest.mark.slow
def test_training_a_model_of_descriptors_imports_torch_only_to_write_the_encoder_file(sample_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_UNTIL_SAVE, str(sample_dir), str(tmp_path / "checkpoints")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "True"]
