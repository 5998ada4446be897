"""Any sampling rate: the conversion's band fits the recording, the model describes matrices on the axis
it was trained on, and a matrix on another axis is refused, naming both, unless resampled onto it."""

import numpy as np
import pytest

from conftest import read_json, run_script
from semg_hht.classes import CLASS_NAMES
from semg_hht.hht.axes import axis_text, frequency_axis, resample_rows, same_axis
from semg_hht.io.matrices import load_matrix_file, write_matrix_file
from semg_hht.model.checkpoint import load_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.descriptors import hht_descriptors

NARROW = frequency_axis(f_max=225.0)  # the band of a 500 Hz recording


def test_resampling_reads_each_column_on_the_new_rows():
    source = frequency_axis()
    # Each row holds its own frequency, which linear interpolation reproduces exactly.
    matrices = np.repeat(source[None, :, None], 3, axis=2).repeat(2, axis=0)
    target = np.linspace(10.0, 300.0, 256)
    resampled = resample_rows(matrices, source, target)
    inside = target >= source[0]
    np.testing.assert_allclose(resampled[0, inside, 1], target[inside], rtol=1e-12)
    assert (resampled[:, ~inside] == 0).all(), "below 20 Hz nothing was measured"
    np.testing.assert_array_equal(resample_rows(matrices, source, source), matrices)
    assert same_axis(source, source.astype(np.float32)) and not same_axis(source, NARROW)
    assert axis_text(NARROW) == "20-225 Hz (256 rows)"


def test_the_classifier_describes_matrices_on_its_own_axis():
    matrices = np.random.default_rng(0).random((3, 256, 256), dtype=np.float32)
    narrow = HHTClassifier(features="hht", frequency_hz=list(NARROW))
    np.testing.assert_allclose(narrow.transform(matrices), hht_descriptors(matrices, NARROW), rtol=1e-6)
    assert not np.allclose(narrow.transform(matrices), HHTClassifier(features="hht").transform(matrices))
    with pytest.raises(ValueError, match="256 finite, increasing"):
        HHTClassifier(frequency_hz=[1.0, 2.0])


@pytest.mark.slow
def test_a_500_hz_recording_gets_a_band_that_fits_and_says_so(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "slow.npz", signal=rng.standard_normal(1500), fs=np.float64(500))
    result = run_script("compute_hht.py", "--input", tmp_path / "slow.npz", "--output_dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "band 20-225 Hz for its 500 Hz sampling rate" in result.stderr
    record = load_matrix_file(tmp_path / "out" / "slow.npz")
    np.testing.assert_allclose(record.frequency, NARROW)
    # A band given on the command line is used as given: too wide for the rate, it is refused.
    wide = run_script(
        "compute_hht.py", "--input", tmp_path / "slow.npz", "--output_dir", tmp_path / "wide", "--f_max", "300"
    )
    assert wide.returncode == 1 and "too low for `f_max` 300 Hz" in wide.stderr.replace("--f_max", "`f_max`")


def _write_folder(folder, axis, per_class=6, seed=0):
    """Labelled matrices of the six classes on ``axis``, the class in the amplitude of a band of rows."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    number = 0
    for class_id, name in enumerate(CLASS_NAMES):
        gender, movement = name.split("_")
        for _ in range(per_class):
            number += 1
            matrix = rng.random((256, 256), dtype=np.float32) * 0.1
            matrix[20 + 30 * class_id : 50 + 30 * class_id] += 1.0
            path = folder / f"BICEPS_{movement}_{gender}_{number:03d}.npz"
            write_matrix_file(path, matrix, 500.0, axis)


@pytest.mark.slow
def test_a_model_keeps_its_training_axis_and_refuses_matrices_on_another(tmp_path):
    _write_folder(tmp_path / "narrow", NARROW)
    _write_folder(tmp_path / "default", frequency_axis(), per_class=1, seed=1)
    checkpoints = tmp_path / "checkpoints"
    trained = run_script(
        "train.py", "--data_dir", tmp_path / "narrow", "--checkpoint_dir", checkpoints, "--model", "joint", "--cpu"
    )
    assert trained.returncode == 0, trained.stderr
    assert "Frequency axis: 20-225 Hz (256 rows)" in trained.stdout
    _, metadata = load_checkpoint(checkpoints / "final")
    np.testing.assert_allclose(metadata.frequency_hz, NARROW)

    args = ("--checkpoint", checkpoints / "final", "--input", tmp_path / "default", "--cpu")
    refused = run_script("inference.py", *args, "--output", tmp_path / "refused.json")
    assert refused.returncode == 1
    assert "its frequency axis (20-450 Hz (256 rows)) is not the model's (20-225 Hz (256 rows))" in refused.stderr
    resampled = run_script("inference.py", *args, "--output", tmp_path / "resampled.json", "--resample_axis")
    assert resampled.returncode == 0, resampled.stderr
    document = read_json(tmp_path / "resampled.json")
    assert document["errors"] == {} and len(document) - 1 == len(CLASS_NAMES)

    # A training folder mixing axes: the files on another axis than the first are skipped, saying why.
    moved = [f"BICEPS_full_M_9{path.name[-7:]}" for path in sorted((tmp_path / "default").iterdir())]
    for path, name in zip(sorted((tmp_path / "default").iterdir()), moved, strict=True):
        path.rename(tmp_path / "narrow" / name)
    mixed = run_script(
        "train.py", "--data_dir", tmp_path / "narrow", "--checkpoint_dir", tmp_path / "mixed", "--model", "joint"
    )
    assert mixed.returncode == 1, mixed.stderr
    for name in moved:
        assert f"{name}: its frequency axis (20-450 Hz (256 rows)) is not the model's (20-225" in mixed.stderr


@pytest.mark.slow
def test_a_100_hz_tone_has_a_mean_frequency_of_100_hz_at_500_hz_and_at_2_khz(tmp_path):
    # Known answer: the descriptors read each matrix on its own axis (20-225 Hz at 500 Hz, 20-450 Hz at 2 kHz).
    for fs in (500.0, 2000.0):
        t = np.arange(int(4 * fs)) / fs
        np.savez(tmp_path / f"tone_{fs:g}.npz", signal=np.sin(2 * np.pi * 100.0 * t), fs=np.float64(fs))
    result = run_script("compute_hht.py", "--input", tmp_path, "--output_dir", tmp_path / "out", "--workers", "1")
    assert result.returncode == 0, result.stderr
    for fs, top in ((500.0, 225.0), (2000.0, 450.0)):
        record = load_matrix_file(tmp_path / "out" / f"tone_{fs:g}.npz")
        assert record.frequency[-1] == top
        classifier = HHTClassifier(features="hht", frequency_hz=list(record.frequency))
        described = dict(zip(classifier.feature_names, classifier.transform(record.matrix[None])[0], strict=True))
        assert described["mean_frequency_hz"] == pytest.approx(100.0, abs=2.0), fs
        assert described["median_frequency_hz"] == pytest.approx(100.0, abs=2.0), fs
