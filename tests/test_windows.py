"""Window samples: one window of a recording with all its channels as one sample, from the files to the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import random_matrix, read_json, run_script
from semg_hht.data.dataset import FileFeatures
from semg_hht.data.windows import NO_CHANNEL, channels_of, stack_windows, window_name
from semg_hht.evaluation.importance import permutation_importances
from semg_hht.hht.axes import frequency_axis
from semg_hht.io.matrices import write_matrix_file
from semg_hht.model.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.descriptors import DESCRIPTOR_NAMES
from semg_hht.model.feature_sets import block_columns, block_weights


def test_window_name_is_the_recording_and_the_segment():
    assert window_name(Path("BIC_full_M_001_ch1_seg003.npz"), "BIC_full_M_001") == "BIC_full_M_001_seg003"
    assert window_name(Path("BIC_full_M_001_ch1.npz"), "BIC_full_M_001") == "BIC_full_M_001"
    assert channels_of(["b", None, "a", "b"]) == ("a", "b")


def test_stack_windows_lays_channels_side_by_side_and_names_every_file_left_out():
    names = ["A_y_seg000", "A_x_seg000", "B_x_seg000", "C_x_seg000", "C_x2_seg000", "D_seg000", "E_z_seg000"]
    paths = [Path(f"{name}.npz") for name in names]
    channels = ["y", "x", "x", "x", "x", None, "z"]  # C_x2 is the same window and channel as C_x
    # Row i holds (10 i, 10 i + 1): the stacked vector shows which file went where.
    features = np.array([[10 * i, 10 * i + 1] for i in range(len(paths))], dtype=np.float32)
    encoded = FileFeatures(paths, features, [], channels, [None] * len(paths))
    recordings = ["A", "A", "B", "C", "C", "D", "E"]
    windows = stack_windows(encoded, recordings, ("x", "y"))
    assert windows.names == ["A_seg000"] and windows.recordings == ["A"]
    assert windows.members == [[paths[1], paths[0]]]  # the model's channel order, not the files'
    np.testing.assert_array_equal(windows.features, [[10, 11, 0, 1]])
    reasons = {Path(error.path).name: error.reason for error in windows.errors}
    assert set(reasons) == {"B_x_seg000.npz", "C_x_seg000.npz", "C_x2_seg000.npz", "D_seg000.npz", "E_z_seg000.npz"}
    assert "lacks channel y" in reasons["B_x_seg000.npz"]
    assert "holds channel 'x' twice" in reasons["C_x_seg000.npz"] == reasons["C_x2_seg000.npz"]
    assert reasons["D_seg000.npz"] == NO_CHANNEL
    assert "channel 'z' is not one of the model's (x, y)" in reasons["E_z_seg000.npz"]
    samples = windows.as_file_features()
    assert samples.paths == [Path("A_seg000")] and samples.source_file(0) == paths[1]


def test_block_columns_and_weights_span_every_channel():
    columns = block_columns(("hht", "td"), ("a", "b"))
    width = len(DESCRIPTOR_NAMES) + 4
    np.testing.assert_array_equal(
        columns["td"], [width - 4, width - 3, width - 2, width - 1, *range(2 * width - 4, 2 * width)]
    )
    weights = block_weights(("hht", "td"), 2)
    assert weights.shape == (2 * width,)
    # Each block, over both channels, adds the same squared weight: the kernel weighs the blocks alike.
    assert np.sum(weights[columns["hht"]] ** 2) == pytest.approx(1.0) == np.sum(weights[columns["td"]] ** 2)


def two_channel_windows(n_per_class: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose class is which channel is louder: each matrix alone (4 or 1) says nothing."""
    windows, labels = [], []
    for k in range(n_per_class):
        for label, (loud, quiet) in ((0, (0, 1)), (1, (1, 0))):
            matrices = np.empty((2, 256, 256), np.float32)
            matrices[loud] = 4.0 * random_matrix(100 * k + label)
            matrices[quiet] = 1.0 * random_matrix(100 * k + label + 50)
            windows.append(matrices)
            labels.append(label)
    return np.stack(windows), np.array(labels)


def test_a_window_classifier_sees_how_the_channels_relate_and_keeps_its_channels(tmp_path):
    windows, labels = two_channel_windows()
    classifier = HHTClassifier(features="hht", channels=["left", "right"]).fit(windows, labels)
    per_matrix = HHTClassifier(features="hht").transform(windows.reshape(-1, 256, 256))
    features = classifier.transform(windows)
    np.testing.assert_array_equal(features, per_matrix.reshape(len(windows), -1))
    assert classifier.feature_names[0] == f"left:{DESCRIPTOR_NAMES[0]}"
    assert len(classifier.feature_names) == 2 * len(DESCRIPTOR_NAMES)
    assert classifier.score(windows, labels) == 1.0
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    loaded, metadata = load_checkpoint(tmp_path / "final")
    assert loaded.channel_names == ("left", "right") and metadata.channels == ["left", "right"]
    np.testing.assert_allclose(loaded.predict_proba(windows), classifier.predict_proba(windows))
    with pytest.raises(ValueError, match="shape"):
        classifier.transform(windows[:, 0])
    with pytest.raises(ValueError, match="distinct"):
        HHTClassifier(channels=["a", "a"])


def test_importance_of_a_window_model_shuffles_a_descriptor_in_every_channel():
    windows, labels = two_channel_windows()
    classifier = HHTClassifier(features="hht", channels=["left", "right"]).fit(windows, labels)
    importance = permutation_importances(classifier, classifier.transform(windows), labels, None, seed=0)
    assert list(importance["blocks"]) == ["hht"] and list(importance["descriptors"]) == list(DESCRIPTOR_NAMES)
    assert importance["blocks"]["hht"]["mean"] > 0.3  # shuffling everything loses the class


def write_window_folder(folder: Path, recordings: dict[str, tuple[float, float]], windows: int = 2) -> None:
    """Matrix files as compute_hht.py names them: two channels of each recording, ``windows`` windows each.
    ``recordings`` maps a recording to the amplitude of channel ch0 and ch1."""
    folder.mkdir(exist_ok=True)
    for number, (recording, amplitudes) in enumerate(recordings.items()):
        for segment in range(windows):
            for channel, amplitude in zip(("ch0", "ch1"), amplitudes, strict=True):
                matrix = amplitude * random_matrix(1000 * number + 10 * segment + int(channel[-1]))
                path = folder / f"{recording}_{channel}_seg{segment:03d}.npz"
                write_matrix_file(path, matrix, 1000.0, frequency_axis(), segment, 1.0 * segment, channel)


def louder_channel_recordings(subjects: int = 4) -> dict[str, tuple[float, float]]:
    """Full when ch0 is the louder channel, half when ch1 is: a class that no single matrix shows."""
    recordings = {}
    for subject in range(1, subjects + 1):
        for take in (1, 2):
            recordings[f"BIC_full_M_{subject:02d}{take}"] = (4.0, 1.0)
            recordings[f"BIC_half_M_{subject:02d}{take}"] = (1.0, 4.0)
    return recordings


@pytest.mark.slow
def test_train_and_infer_on_window_samples(tmp_path):
    data = tmp_path / "data"
    write_window_folder(data, louder_channel_recordings() | {"BIC_test_001": (4.0, 1.0)})
    pattern = r"^BIC_\w+?_M_(?P<subject>\d\d)"
    common = ("--data_dir", data, "--features", "hht", "--cv", "loso", "--group_pattern", pattern)
    figures = {}
    for sample in ("matrix", "window"):
        checkpoints = tmp_path / sample
        trained = run_script("train.py", *common, "--checkpoint_dir", checkpoints, "--sample", sample)
        assert trained.returncode == 0, trained.stderr
        figures[sample] = read_json(checkpoints / "report.json")["cross_validation"]["summary"]
    # One matrix cannot tell the classes apart; a window of both channels can.
    assert figures["window"]["balanced_accuracy"]["mean"] == 1.0
    assert figures["matrix"]["balanced_accuracy"]["mean"] < 0.75
    report = read_json(tmp_path / "window" / "report.json")
    assert report["model"]["feature_names"][0] == f"ch0:{DESCRIPTOR_NAMES[0]}"
    assert report["data"]["n_labelled"] == 32 and report["model"]["sample"] == "window"
    assert "BIC_full_M_011_seg001" in report["cross_validation"]["folds"][0]["files"] + report["split"]["train_files"]
    tests = read_json(tmp_path / "window" / "test_predictions.json")
    assert tests["BIC_test_001_seg000"]["files"] == ["BIC_test_001_ch0_seg000.npz", "BIC_test_001_ch1_seg000.npz"]
    assert tests["BIC_test_001_seg000"]["prediction"] == "M_full"
    assert tests["recordings"]["BIC_test_001"]["members"] == ["BIC_test_001_seg000", "BIC_test_001_seg001"]

    # The validation split, subject-wise normalisation, tuning and the importance take windows too.
    args = ("--data_dir", data, "--features", "hht", "--group_pattern", pattern, "--sample", "window")
    validated = run_script("train.py", *args, "--normalise", "subject", "--tune", "--checkpoint_dir", tmp_path / "val")
    assert validated.returncode == 1, validated.stderr  # the test recording has no subject to normalise within
    assert "BIC_test_001_seg000: no subject" in validated.stderr
    report = read_json(tmp_path / "val" / "report.json")
    assert report["validation"]["n"] == 8 and report["validation"]["balanced_accuracy"] == 1.0
    assert list(report["importance"]["descriptors"]) == list(DESCRIPTOR_NAMES)
    assert report["model"]["tuning"]["C"] > 0

    resumed = run_script("train.py", *common, "--checkpoint_dir", tmp_path / "window", "--sample", "window", "--resume")
    assert resumed.returncode == 0, resumed.stderr

    new = tmp_path / "new"
    write_window_folder(new, {"BIC_trial_M_091": (1.0, 4.0), "BIC_trial_M_092": (4.0, 1.0)})
    (new / "BIC_trial_M_092_ch1_seg001.npz").unlink()  # its window 1 lacks a channel
    output = tmp_path / "predictions.json"
    args = ("--checkpoint", tmp_path / "window" / "final", "--input", new, "--output", output)
    inferred = run_script("inference.py", *args, "--aggregate", "recording", "--group_pattern", pattern)
    assert inferred.returncode == 1, inferred.stderr  # one file could not make a window
    predictions = read_json(output)
    assert predictions["errors"] == {
        "BIC_trial_M_092_ch0_seg001.npz": "window BIC_trial_M_092_seg001 lacks channel ch1: "
        "a window sample needs every one of the model's channels"
    }
    assert predictions["recordings"]["BIC_trial_M_091"]["prediction"] == "M_half"
    assert predictions["recordings"]["BIC_trial_M_092"]["prediction"] == "M_full"
    assert predictions["recordings"]["BIC_trial_M_092"]["members"] == ["BIC_trial_M_092_seg000"]
    assert "Predicted 6 of 7 files in 3 windows" in inferred.stdout + inferred.stderr


def test_window_samples_need_a_fixed_encoder(tmp_path):
    write_window_folder(tmp_path / "data", louder_channel_recordings(1))
    args = ("--data_dir", tmp_path / "data", "--features", "cnn", "--epochs", "2", "--sample", "window")
    refused = run_script("train.py", *args, "--checkpoint_dir", tmp_path / "checkpoints")
    assert refused.returncode == 2 and "it needs --epochs 0" in refused.stderr


def test_a_window_whose_files_disagree_is_skipped_with_its_reason(tmp_path):
    data = tmp_path / "data"
    write_window_folder(data, louder_channel_recordings(3), windows=1)
    rows = ["file,gender,movement,subject"]
    for path in sorted(data.glob("*.npz")):
        movement = path.name.split("_")[1]
        if path.name == "BIC_full_M_011_ch1_seg000.npz":
            movement = "half"  # its window's other file says full
        rows.append(f"{path.name},M,{movement},{path.name.split('_')[3][:2]}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ("--data_dir", data, "--labels", labels, "--sample", "window", "--cv", "3")
    trained = run_script("train.py", *args, "--checkpoint_dir", tmp_path / "checkpoints")
    assert trained.returncode == 1, trained.stderr
    reason = "the files of window BIC_full_M_011_seg000 differ in class, subject or split"
    assert f"BIC_full_M_011_ch0_seg000.npz: {reason}" in trained.stderr
    assert f"BIC_full_M_011_ch1_seg000.npz: {reason}" in trained.stderr
    assert read_json(tmp_path / "checkpoints" / "report.json")["data"]["n_labelled"] == 11
