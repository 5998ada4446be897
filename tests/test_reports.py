"""train.py with a labels file, subjects and cross-validation; report.json and its pictures; compute_hht --png."""

import csv
import re
import shutil

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import REALDATA, read_json, run_script
from semg_hht.classes import CLASS_NAMES

CONTRACTION = REALDATA / "contraction-intensity"
needs_contraction = pytest.mark.skipif(
    not CONTRACTION.is_dir(), reason=f"the real contraction-intensity recordings are not present ({CONTRACTION})"
)


def assert_png(path, width, height):
    """A PNG that decodes, of the given size in pixels."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape[:2] == (height, width)


@pytest.fixture(scope="session")
def subjects_dir(tmp_path_factory):
    """8 labelled files per class from 2 simulated subjects per gender (4 each), and 3 test files."""
    from semg_hht.data.sample_data import generate_sample_data

    directory = tmp_path_factory.mktemp("subjects")
    generate_sample_data(directory, n_samples=8, n_test=3, seed=2)
    return directory


@pytest.mark.slow
def test_leave_one_subject_out_on_simulated_subjects(subjects_dir, tmp_path):
    sample_dir = subjects_dir
    result = run_script(
        "train.py",
        *("--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu", "--epochs", "0"),
        *("--labels", sample_dir / "labels.csv", "--cv", "loso"),
    )
    assert result.returncode == 0, result.stderr
    subjects = sorted({row["subject"] for row in csv.DictReader(open(sample_dir / "labels.csv")) if not row["split"]})
    assert len(subjects) == 4
    for subject in subjects:
        assert re.search(rf"^  {subject} \(\d/4, \d+ files\): accuracy ", result.stdout, re.MULTILINE)
    assert "Mean +- std over 4 folds:" in result.stdout and "  Movement-quality accuracy: " in result.stdout

    report = read_json(tmp_path / "report.json")
    cv = report["cross_validation"]
    assert cv["scheme"] == "leave-one-subject-out"
    assert [fold["name"] for fold in cv["folds"]] == subjects
    assert sum(fold["n"] for fold in cv["folds"]) == 48 == cv["pooled"]["n"]
    for fold in cv["folds"]:
        assert fold["held_out_subjects"] == [fold["name"]]
        assert set(fold) >= {"accuracy", "balanced_accuracy", "macro_f1", "gender_accuracy", "quality_accuracy"}
    mean = np.mean([fold["balanced_accuracy"] for fold in cv["folds"]])
    assert cv["summary"]["balanced_accuracy"]["mean"] == pytest.approx(mean)
    # The final model is fitted on every labelled file; the test files' labels from labels.csv score it.
    assert report["split"]["val_files"] == [] and len(report["split"]["train_files"]) == 48
    assert report["validation"] is None and report["test"]["n"] == 3
    assert report["data"]["subjects"] == subjects and len(report["data"]["fingerprint"]) == 64
    assert set(report["timings"]) >= {"loading_s", "cross_validation_s", "training_s", "total_s"}
    assert report["pictures"] == {
        "confusion_matrix": "confusion_matrix.png",
        "class_examples": "class_examples.png",
        "class_differences": "class_differences.png",
    }
    # Without a validation set there is nothing to measure the permutation importance on.
    assert report["importance"] is None
    assert_png(tmp_path / "confusion_matrix.png", 640, 560)
    # 6 classes x at most 4 examples of 160 pixels, plus the row labels.
    assert_png(tmp_path / "class_examples.png", 4 * 160 + 60, 6 * 160)
    assert (tmp_path / "final_encoder.pt").exists()


@pytest.mark.slow
def test_subject_wise_validation_split_is_reported(subjects_dir, tmp_path):
    sample_dir = subjects_dir
    result = run_script(
        "train.py",
        *("--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu", "--epochs", "0"),
        *("--labels", sample_dir / "labels.csv", "--test_size", "0.25"),
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report.json")
    held_out = report["split"]["held_out_subjects"]
    assert held_out and f"Validation subjects (held out): {', '.join(held_out)}" in result.stdout
    subject_of = {row["file"]: row["subject"] for row in csv.DictReader(open(sample_dir / "labels.csv"))}
    train_subjects = {subject_of[name] for name in report["split"]["train_files"]}
    val_subjects = {subject_of[name] for name in report["split"]["val_files"]}
    assert val_subjects == set(held_out) and not train_subjects & val_subjects
    validation = report["validation"]
    assert validation["n"] == len(report["split"]["val_files"])
    assert list(validation["per_class"]) == list(CLASS_NAMES) and len(validation["confusion_matrix"]) == 6
    for line in ("Validation gender accuracy: ", "movement-quality accuracy: ", "Validation balanced accuracy: "):
        assert line in result.stdout


@pytest.mark.slow
def test_labels_file_problems_are_reported_and_the_rest_is_used(subjects_dir, tmp_path):
    sample_dir = subjects_dir
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    rows = list(csv.DictReader(open(sample_dir / "labels.csv")))
    rows[0]["gender"] = "X"
    rows.append({"file": "missing_001.npz", "gender": "M", "movement": "full", "subject": "M01", "split": ""})
    with open(data / "labels.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run_script(
        "train.py",
        "--data_dir",
        data,
        "--checkpoint_dir",
        tmp_path / "c",
        "--cpu",
        "--epochs",
        "0",
        "--labels",
        data / "labels.csv",
    )
    assert result.returncode == 1, result.stderr
    assert f"line 2 ({rows[0]['file']}): gender 'X' is not M or F" in result.stderr
    assert "lists missing_001.npz, which is not in" in result.stderr
    assert f"skipping {data / rows[0]['file']}: not listed in labels.csv" in result.stderr
    assert "Loaded 47 training samples" in result.stdout
    assert len(read_json(tmp_path / "c" / "report.json")["data"]["skipped"]) == 3


@pytest.mark.slow
def test_cross_validation_with_encoder_training(subjects_dir, tmp_path):
    sample_dir = subjects_dir
    result = run_script(
        "train.py",
        *("--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu", "--epochs", "2", "--cv", "2"),
        *("--features", "cnn"),
        *("--labels", sample_dir / "labels.csv"),
    )
    assert result.returncode == 0, result.stderr
    assert "Cross-validation: 2-fold by subject" in result.stdout
    report = read_json(tmp_path / "report.json")
    best_epochs = [fold["best_epoch"] for fold in report["cross_validation"]["folds"]]
    assert all(0 <= epoch <= 2 for epoch in best_epochs)
    final_epochs = max(1, int(np.median(best_epochs)))
    assert f"on all labelled files for {final_epochs} epochs" in result.stdout
    history = report["training"]["history"]
    assert history["epoch"] == list(range(final_epochs + 1)) and history["val_loss"] == [None] * (final_epochs + 1)
    assert report["pictures"]["training_curves"] == "training_curves.png"
    assert_png(tmp_path / "training_curves.png", 960, 400)


def _contraction_subset(tmp_path, subjects=("S1", "S2", "S3")):
    """HHT matrices of the real recordings of three subjects (channel 0, 1 s windows) and their labels file."""
    data = tmp_path / "contraction"
    for subject in subjects:
        result = run_script(
            "compute_hht.py",
            *("--input", CONTRACTION / subject, "--output_dir", data, "--fs", "1000"),
            *("--window", "1", "--hop", "1", "--workers", "1"),
        )
        assert result.returncode == 0, result.stderr
    with open(tmp_path / "labels.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "gender", "movement"])
        for path in sorted(data.glob("*.npz")):
            level, motion = re.match(r"S\d+_(MVC|50P|20P)_C(\d)_", path.name).groups()
            movement = "invalid" if motion == "1" or level == "20P" else {"MVC": "full", "50P": "half"}[level]
            writer.writerow([path.name, "M", movement])
    return data, tmp_path / "labels.csv"


@needs_contraction
@pytest.mark.slow
def test_leave_one_subject_out_on_real_recordings(tmp_path):
    data, labels = _contraction_subset(tmp_path)
    result = run_script(
        "train.py",
        *("--data_dir", data, "--checkpoint_dir", tmp_path / "c", "--cpu", "--epochs", "0"),
        *("--labels", labels, "--group_pattern", r"^(?P<subject>S\d+)_", "--cv", "loso"),
    )
    assert result.returncode == 0, result.stderr
    for subject in ("S1", "S2", "S3"):
        assert re.search(rf"^  {subject} \(\d/3, \d+ files\): accuracy ", result.stdout, re.MULTILINE)
    report = read_json(tmp_path / "c" / "report.json")
    folds = report["cross_validation"]["folds"]
    assert [fold["name"] for fold in folds] == ["S1", "S2", "S3"]
    # One gender only: every prediction keeps it, and the quality axis is the whole task.
    for fold in folds:
        assert fold["gender_accuracy"] == 1.0 and fold["quality_accuracy"] == fold["accuracy"]
    assert all(name.startswith(fold["name"] + "_") for fold in folds for name in fold["files"])


@needs_contraction
@pytest.mark.slow
def test_compute_hht_png_beside_each_matrix(tmp_path):
    source = CONTRACTION / "S1" / "S1_MVC_C2_R1.csv"
    flags = ["--input", source, "--output_dir", tmp_path, "--fs", "1000", "--window", "1", "--workers", "1", "--png"]
    result = run_script("compute_hht.py", *flags)
    assert result.returncode == 0, result.stderr
    matrices = sorted(tmp_path.glob("*.npz"))
    assert len(matrices) == 3
    for matrix in matrices:
        assert_png(matrix.with_suffix(".png"), 640, 480)
    # An image is an output like the matrix: not replaced without --overwrite.
    for matrix in matrices:
        matrix.unlink()
    again = run_script("compute_hht.py", *flags)
    assert again.returncode == 1 and "exist already" in again.stderr
