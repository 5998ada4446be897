"""One prediction per recording: the rules, the recording of a file, and the whole path from multi-channel files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import read_json, run_script
from semg_hht.data.aggregation import aggregate, recording_labels, recording_of


def test_mean_and_majority_rules_known_answers():
    probabilities = np.array([[0.6, 0.4], [0.6, 0.4], [0.0, 1.0], [0.9, 0.1]])
    mean = aggregate(probabilities, ["a", "a", "a", "b"], "mean")
    assert [c.recording for c in mean] == ["a", "b"] and mean[0].members == [0, 1, 2]
    np.testing.assert_allclose(mean[0].probabilities, [0.4, 0.6])  # one sure member outweighs two unsure ones
    majority = aggregate(probabilities, ["a", "a", "a", "b"], "majority")
    np.testing.assert_allclose(majority[0].probabilities, [2 / 3, 1 / 3], atol=1e-6)
    tie = aggregate(np.array([[0.9, 0.1], [0.4, 0.6]]), ["r", "r"], "majority")[0]
    assert tie.probabilities.argmax() == 0  # a tied vote goes to the higher mean probability
    assert recording_labels(mean, np.array([1, 1, 1, 0])).tolist() == [1, 0]
    assert recording_labels(mean, np.array([1, 0, 1, 0])) is None
    with pytest.raises(ValueError, match="one of mean, majority"):
        aggregate(probabilities, ["a"] * 4, "median")


def test_recording_of_a_file():
    assert recording_of("S1_MVC_ch3_seg002.npz", "S1_MVC") == "S1_MVC"  # stored by compute_hht.py
    assert recording_of("BIC_full_M_001_seg012.npz") == "BIC_full_M_001"
    assert recording_of("trial_Left-Rectus-femoris_seg000.npz", None, "Left Rectus femoris") == "trial"
    assert recording_of("BIC_full_M_001.npz", None, "ch0") == "BIC_full_M_001"  # a single channel's name has no tag
    # A channel whose name is a label token gets a prefix, so the file keeps its label.
    assert recording_of("BIC_full_M_001_ch-F_seg000.npz", None, "F") == "BIC_full_M_001"


def write_recording(path, level: float, seed: int, channels: int = 2, seconds: float = 3.0) -> None:
    """A CSV of ``channels`` columns at 1 kHz: white noise of standard deviation ``level`` (the band-pass shapes it)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, level, (round(1000 * seconds), channels))
    np.savetxt(path, samples, delimiter=",")


@pytest.mark.slow
def test_channels_and_windows_give_one_prediction_per_recording(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    levels = {"full": 4.0, "half": 2.0, "invalid": 0.5}
    for number in range(1, 5):
        for gender, scale in (("M", 1.0), ("F", 1.6)):
            for movement, level in levels.items():
                name = f"BIC_{movement}_{gender}_{number:03d}"
                write_recording(raw / f"{name}.csv", level * scale, sum(map(ord, name)) + number)
    write_recording(raw / "BIC_test_001.csv", 4.0, 1)
    data = tmp_path / "data"
    args = ("--input", raw, "--output_dir", data, "--fs", "1000", "--channel", "all", "--window", "1")
    converted = run_script("compute_hht.py", *args)
    assert converted.returncode == 0, converted.stderr
    assert (data / "BIC_full_M_001_ch1_seg002.npz").exists()  # 2 channels x 3 windows per recording
    checkpoints = tmp_path / "checkpoints"
    trained = run_script(
        "train.py", "--data_dir", data, "--checkpoint_dir", checkpoints, "--features", "hht", "--cv", "3"
    )
    assert trained.returncode == 0, trained.stderr
    report = read_json(checkpoints / "report.json")
    # Without subjects, the split and the folds keep a recording's six matrices together.
    assert report["cross_validation"]["scheme"] == "3-fold by recording"
    for fold in report["cross_validation"]["folds"]:
        held_out = {name.split("_ch")[0] for name in fold["files"]}
        assert fold["per_recording"]["n"] == len(held_out) and fold["n"] == 6 * len(held_out)
    assert "recording_balanced_accuracy" in report["cross_validation"]["summary"]
    test_predictions = read_json(checkpoints / "test_predictions.json")
    (test_recording,) = test_predictions["recordings"].values()
    assert len(test_recording["members"]) == 6 and test_recording["rule"] == "mean"

    output = tmp_path / "predictions.json"
    args = ("--checkpoint", checkpoints / "final", "--input", data, "--output", output, "--aggregate", "recording")
    inferred = run_script("inference.py", *args)
    assert inferred.returncode == 0, inferred.stderr
    document = json.loads(output.read_text())
    recordings = document["recordings"]
    assert (
        len(recordings) == 25 and "One prediction per recording (mean of its files' probabilities):" in inferred.stdout
    )
    record = recordings["BIC_half_F_002"]
    members = record["members"]
    assert sorted(members) == sorted(f"BIC_half_F_002_ch{c}_seg{s:03d}.npz" for c in (0, 1) for s in range(3))
    expected = np.mean([[document[m]["probabilities"][k] for k in record["probabilities"]] for m in members], axis=0)
    np.testing.assert_allclose(list(record["probabilities"].values()), expected, rtol=1e-6)
    assert record["prediction"] == max(record["probabilities"], key=record["probabilities"].get)
    # Majority vote: the share of members voting for the predicted class.
    args = (*args[:5], tmp_path / "votes.json", "--aggregate", "recording", "--vote", "majority")
    assert run_script("inference.py", *args).returncode == 0
    voted = read_json(tmp_path / "votes.json")["recordings"]["BIC_half_F_002"]
    votes = [document[m]["prediction"] for m in members]
    assert voted["confidence"] == pytest.approx(votes.count(voted["prediction"]) / 6, abs=1e-6)
