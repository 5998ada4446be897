"""End-to-end runs of the four scripts on small data made in the test."""

import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, random_matrix, read_json, run_script
from semg_hht.classes import CLASS_NAMES

RECORD_KEYS = {"prediction", "class_id", "confidence", "probabilities"}


def check_record(record):
    assert set(record) == RECORD_KEYS
    assert list(record["probabilities"]) == list(CLASS_NAMES)
    assert sum(record["probabilities"].values()) == pytest.approx(1.0)
    assert record["prediction"] == CLASS_NAMES[record["class_id"]]
    assert record["confidence"] == max(record["probabilities"].values())


@pytest.mark.slow
def test_train_output_files_and_metadata(trained, sample_dir):
    checkpoint_dir, result = trained
    expected_order = [
        "Using device: cpu",
        f"Data directory: {sample_dir}",
        f"Checkpoint directory: {checkpoint_dir}",
        "Loaded 30 training samples",
        "Found 3 test files (will be used for inference after training)",
        "Class distribution:",
        "Training set: 24 samples",
        "Validation set: 6 samples",
        "Training SVM Classifier",
        "Training Accuracy: ",
        "Validation Accuracy: ",
        "precision",
        "true \\ predicted",
        f"Test predictions saved to: {checkpoint_dir / 'test_predictions.json'}",
    ]
    positions = [result.stdout.index(line) for line in expected_order]
    assert positions == sorted(positions)
    # conftest gives each process of the suite one thread; train.py must not take every core over it.
    assert f"Using device: cpu ({os.environ['OMP_NUM_THREADS']} threads)" in result.stdout
    for name in CLASS_NAMES:
        assert f"  {name}: 5 samples" in result.stdout

    for prefix in ("final", "latest"):
        for part in ("encoder.pt", "scaler.pkl", "svm.pkl", "metadata.pkl"):
            assert (checkpoint_dir / f"{prefix}_{part}").is_file()
    with open(checkpoint_dir / "final_metadata.pkl", "rb") as stream:
        metadata = pickle.load(stream)
    assert metadata["class_names"] == list(CLASS_NAMES)
    assert (metadata["n_train"], metadata["n_val"], metadata["seed"]) == (24, 6, 42)
    assert len(metadata["train_files"]) == 24 and len(metadata["val_files"]) == 6
    assert not set(metadata["train_files"]) & set(metadata["val_files"])
    assert metadata["history"]["val_accuracy"]

    predictions = read_json(checkpoint_dir / "test_predictions.json")
    assert predictions["errors"] == {}
    assert sorted(k for k in predictions if k != "errors") == sorted(p.name for p in sample_dir.glob("*_test_*"))
    for name, record in predictions.items():
        if name != "errors":
            check_record(record)


@pytest.mark.slow
def test_training_is_reproducible(trained, sample_dir, tmp_path):
    checkpoint_dir, first = trained
    second = run_script("train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu")
    assert second.returncode == 0
    assert read_json(tmp_path / "test_predictions.json") == read_json(checkpoint_dir / "test_predictions.json")


@pytest.mark.slow
def test_resume_reuses_the_fitted_classifier(trained, sample_dir, tmp_path):
    checkpoint_dir, first = trained
    shutil.copytree(checkpoint_dir, tmp_path, dirs_exist_ok=True)
    result = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--resume", "--cpu"
    )
    assert result.returncode == 0, result.stderr
    assert "Resuming from checkpoint" in result.stdout and "not refitted" in result.stdout
    accuracy = [line for line in first.stdout.splitlines() if "Accuracy:" in line]
    assert accuracy == [line for line in result.stdout.splitlines() if "Accuracy:" in line]
    assert read_json(tmp_path / "test_predictions.json") == read_json(checkpoint_dir / "test_predictions.json")


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    shutil.copytree(checkpoint_dir, tmp_path, dirs_exist_ok=True)
    result = run_script(
        "train.py",
        "--epochs",
        "0",
        "--data_dir",
        sample_dir,
        "--checkpoint_dir",
        tmp_path,
        "--resume",
        "--svm_C",
        "1",
        "--cpu",
    )
    assert result.returncode == 2
    assert "other settings" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_resume_without_checkpoint_starts_fresh(sample_dir, tmp_path):
    result = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--resume", "--cpu"
    )
    assert result.returncode == 0
    assert "No checkpoint to resume" in result.stdout
    assert (tmp_path / "final_svm.pkl").exists()


@pytest.mark.parametrize(
    "flags, message", [(["--test_size", "1.5"], "--test_size"), (["--batch_size", "0"], "--batch_size")]
)
@pytest.mark.slow
def test_invalid_flags_rejected_before_reading_data(flags, message, tmp_path):
    result = run_script("train.py", "--epochs", "0", "--data_dir", tmp_path / "does_not_exist", *flags)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_no_npz_files(tmp_path):
    result = run_script("train.py", "--epochs", "0", "--data_dir", tmp_path, "--checkpoint_dir", tmp_path / "c")
    assert result.returncode == 2 and f"No .npz files found in {tmp_path}" in result.stderr


@pytest.mark.slow
def test_no_labelled_files(tmp_path):
    np.savez(tmp_path / "BICEPS_test_001.npz", hht=random_matrix())
    np.savez(tmp_path / "notes.npz", hht=random_matrix())
    result = run_script("train.py", "--epochs", "0", "--data_dir", tmp_path, "--checkpoint_dir", tmp_path / "c")
    assert result.returncode == 2
    assert "No valid training files found" in result.stderr and "MUSCLE_movement_GENDER" in result.stderr


@pytest.mark.slow
def test_class_with_one_file_is_a_clear_error(sample_dir, tmp_path):
    for path in sample_dir.glob("*_M_*.npz"):
        shutil.copy(path, tmp_path)
    np.savez(tmp_path / "BICEPS_half_F_900.npz", hht=random_matrix())
    result = run_script("train.py", "--epochs", "0", "--data_dir", tmp_path, "--checkpoint_dir", tmp_path / "c")
    assert result.returncode == 2
    assert "F_half (1) has only one file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_and_unlabelled_files_are_skipped_and_summarised(sample_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    (data / "BICEPS_full_M_901.npz").write_bytes(b"")
    (data / "DELTOID_test_902.npz").write_text("not an archive")
    np.savez(data / "mystery_901.npz", hht=random_matrix())
    result = run_script("train.py", "--epochs", "0", "--data_dir", data, "--checkpoint_dir", tmp_path / "c", "--cpu")
    assert result.returncode == 1, result.stderr
    assert "Loaded 30 training samples" in result.stdout
    assert "Found 4 test files" in result.stdout
    summary = result.stderr[result.stderr.index("Skipped 3 files:") :]
    for name in ("BICEPS_full_M_901.npz", "DELTOID_test_902.npz", "mystery_901.npz"):
        assert name in summary
    predictions = read_json(tmp_path / "c" / "test_predictions.json")
    assert "DELTOID_test_902.npz" in predictions["errors"]
    assert len(predictions) == 4  # three predicted test files plus "errors"


@pytest.mark.slow
def test_inference_on_one_file(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    file = next(sample_dir.glob("*_test_*.npz"))
    output = tmp_path / "one.json"
    result = run_script(
        "inference.py", "--checkpoint", checkpoint_dir / "final", "--input", file, "--output", output, "--cpu"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    prediction = next(line for line in lines if line.startswith("Prediction: "))[len("Prediction: ") :]
    confidence = float(next(line for line in lines if line.startswith("Confidence: ")).split()[1])
    assert "Class probabilities:" in lines
    printed = {
        name: float(line.split(":")[1]) for line in lines for name in CLASS_NAMES if line.startswith(f"  {name}:")
    }
    assert list(printed) == list(CLASS_NAMES)
    assert prediction == max(printed, key=printed.get) and confidence == max(printed.values())
    document = read_json(output)
    check_record(document[file.name])
    assert document["errors"] == {}
    # The same file predicted in a batch of one and in training's batches: equal to float rounding.
    from_training = read_json(checkpoint_dir / "test_predictions.json")[file.name]
    assert document[file.name]["prediction"] == from_training["prediction"]
    for name, probability in from_training["probabilities"].items():
        assert document[file.name]["probabilities"][name] == pytest.approx(probability, abs=1e-6)


@pytest.mark.slow
def test_inference_on_a_folder_with_a_broken_file(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    for path in sorted(sample_dir.glob("*.npz"))[:5]:
        shutil.copy(path, tmp_path)
    (tmp_path / "broken.NPZ").write_bytes(b"PK\x03\x04 truncated")
    output = tmp_path / "out" / "predictions.json"
    output.parent.mkdir()
    result = run_script(
        "inference.py", "--checkpoint", checkpoint_dir, "--input", tmp_path, "--output", output, "--cpu"
    )
    assert result.returncode == 1
    assert "broken.NPZ" in result.stderr and "Traceback" not in result.stderr
    assert "Predicted 5 of 6 files" in result.stdout
    document = read_json(output)
    assert list(document["errors"]) == ["broken.NPZ"]
    assert len(document) == 6
    for name, record in document.items():
        if name != "errors":
            check_record(record)


@pytest.mark.parametrize(
    "checkpoint, input_name, message",
    [
        ("missing/final", "data", "No checkpoint at"),
        (None, "empty", "No .npz files found in"),
        (None, "nothing_here", "Input not found"),
    ],
)
@pytest.mark.slow
def test_inference_usage_errors(trained, sample_dir, tmp_path, checkpoint, input_name, message):
    checkpoint_dir, _ = trained
    (tmp_path / "empty").mkdir()
    inputs = {"data": sample_dir, "empty": tmp_path / "empty", "nothing_here": tmp_path / "nothing_here"}
    result = run_script(
        "inference.py", "--checkpoint", checkpoint or checkpoint_dir / "final", "--input", inputs[input_name], "--cpu"
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_inference_refuses_to_overwrite_its_input(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    target = tmp_path / "x.npz"
    np.savez(target, hht=random_matrix())
    before = target.read_bytes()
    result = run_script("inference.py", "--checkpoint", checkpoint_dir, "--input", target, "--output", target, "--cpu")
    assert result.returncode == 2 and target.read_bytes() == before


@pytest.mark.slow
def test_generate_sample_data(tmp_path):
    result = run_script(
        "generate_sample_data.py", "--output_dir", tmp_path, "--n_samples", "2", "--n_test", "3", "--seed", "3"
    )
    assert result.returncode == 0
    names = sorted(name for name in os.listdir(tmp_path) if name.endswith(".npz"))
    assert len(names) == 15 and (tmp_path / "labels.csv").exists()
    assert sum("_test_" in n for n in names) == 3
    assert {n.split("_")[1] for n in names} == {"fatiguetest", "half", "invalid", "test"}
    with np.load(tmp_path / names[0], allow_pickle=False) as archive:
        assert archive["hht"].shape == (256, 256) and archive["hht"].dtype == np.float32
    again = run_script("generate_sample_data.py", "--output_dir", tmp_path, "--n_samples", "2", "--n_test", "3")
    assert again.returncode == 2 and "already exist" in again.stderr


@pytest.mark.parametrize("script", ["train.py", "inference.py", "generate_sample_data.py", "compute_hht.py"])
@pytest.mark.slow
def test_help_does_not_import_torch(script):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{script}', '--help']\n"
        "try:\n"
        f"    runpy.run_path('{ROOT / script}', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0\n"
        "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "Exit codes" in result.stdout or script == "generate_sample_data.py"
    assert result.stdout.strip().endswith("no torch")


@pytest.mark.slow
def test_example_workflow_runs_from_another_folder(tmp_path):
    # Each step is a real `python` (six starts, a few seconds of imports each).
    # 12 files per class (6 subjects) rather than 30: the same steps on a smaller set.
    flags = "--features cnn+hht --epochs 1"
    env = dict(os.environ, PYTHON=sys.executable, TRAIN_FLAGS=flags, N_SAMPLES="12")
    result = subprocess.run(
        ["bash", str(ROOT / "example_workflow.sh"), str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "checkpoints" / "final_svm.pkl").exists()
    report = read_json(tmp_path / "out" / "checkpoints" / "report.json")
    assert report["data"]["n_labelled"] == 6 * 12
    assert report["split"]["held_out_subjects"] and report["training"]["history"]["epoch"] == [0, 1]
    assert report["model"]["features"] == "cnn+hht" and report["model"]["model"] == "factorised"
    for picture in report["pictures"].values():
        assert (tmp_path / "out" / "checkpoints" / picture).read_bytes()[:4] == b"\x89PNG"
    document = read_json(tmp_path / "out" / "predictions.json")
    assert len(document) == 21 and document["errors"] == {}
    assert "Prediction: " in result.stdout
    with np.load(tmp_path / "out" / "explanations" / "BICEPS_test_001.npz") as explanation:
        assert explanation["occlusion"].shape == (16, 16)
    assert (tmp_path / "out" / "explanations" / "BICEPS_test_001.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_cuda_out_of_memory_becomes_advice(trained, sample_dir, monkeypatch, capsys):
    import torch

    from semg_hht.inference import prediction

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(prediction, "extract_file_features", out_of_memory)
    options = prediction.InferenceOptions(checkpoint=str(trained[0]), input=str(sample_dir), cpu=True)
    assert prediction.run_inference(options) == 3
    assert "try --batch_size 4 (or smaller), or --cpu" in capsys.readouterr().err


@pytest.mark.slow
def test_existing_checkpoints_are_not_replaced_without_a_flag(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    shutil.copytree(checkpoint_dir, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "final_svm.pkl").read_bytes()
    result = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu", "--seed", "3"
    )
    assert result.returncode == 2
    assert "--resume" in result.stderr and "--overwrite" in result.stderr
    assert (tmp_path / "final_svm.pkl").read_bytes() == before
    both = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--resume", "--overwrite"
    )
    assert both.returncode == 2 and "pick one" in both.stderr
    replaced = run_script(
        "train.py",
        "--epochs",
        "0",
        "--data_dir",
        sample_dir,
        "--checkpoint_dir",
        tmp_path,
        "--cpu",
        "--seed",
        "3",
        "--overwrite",
    )
    assert replaced.returncode == 0
    assert (tmp_path / ".previous" / "final_svm.pkl").read_bytes() == before


def test_split_that_leaves_a_class_out_of_validation_is_refused():
    from semg_hht.errors import UsageError
    from semg_hht.evaluation.splits import stratified_split

    labels = np.array([0] * 100 + [1] * 2)  # scikit-learn puts both M_half files in training
    with pytest.raises(UsageError, match="validation set without M_half"):
        stratified_split(labels, 0.2, 42)
    train, val = stratified_split(np.repeat(np.arange(6), 5), 0.2, 42)
    assert len(train) == 24 and len(val) == 6


@pytest.mark.slow
def test_resume_refuses_a_folder_with_only_a_final_checkpoint(trained, sample_dir, tmp_path):
    checkpoint_dir, _ = trained
    for path in checkpoint_dir.glob("final_*"):
        shutil.copy(path, tmp_path)
    result = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--resume", "--cpu"
    )
    assert result.returncode == 2 and "no latest_*" in result.stderr


@pytest.mark.slow
def test_output_in_a_missing_folder_is_a_usage_error(trained, sample_dir, tmp_path):
    output = tmp_path / "missing" / "p.json"
    result = run_script("inference.py", "--checkpoint", trained[0], "--input", sample_dir, "--output", output)
    assert result.returncode == 2 and "folder does not exist" in result.stderr
