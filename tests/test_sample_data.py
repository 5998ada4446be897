import csv

import numpy as np
import pytest

from conftest import run_script
from semg_hht import engine
from semg_hht.classes import parse_filename
from semg_hht.data import sample_data
from semg_hht.data.sample_data import default_workers, generate_sample_data
from semg_hht.hht.preprocessing import Preprocessing, preprocess
from semg_hht.hht.spectrum import frequency_axis, hilbert_spectrum
from semg_hht.io.matrices import load_matrix


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("generated")
    paths = generate_sample_data(directory, n_samples=5, n_test=3, seed=4, save_signals=True, workers=1)
    return directory, paths


def read_labels(directory):
    with open(directory / "labels.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def test_files_labels_and_subjects(generated):
    directory, paths = generated
    assert len(paths) == 33
    rows = read_labels(directory)
    assert [row["file"] for row in rows] == [path.name for path in paths]
    for row in rows:
        label = parse_filename(row["file"])
        if row["split"] == "test":
            assert label.kind == "test"
        else:
            assert label.class_name == f"{row['gender']}_{row['movement']}"
    train_subjects = {row["subject"] for row in rows if row["split"] != "test"}
    test_subjects = {row["subject"] for row in rows if row["split"] == "test"}
    assert not train_subjects & test_subjects
    files_per_subject = [sum(row["subject"] == s for row in rows) for s in train_subjects]
    assert min(files_per_subject) > 1


def test_matrices_are_the_real_transform_of_the_saved_signals(generated):
    directory, paths = generated
    for path in paths[:: len(paths) // 4]:
        with np.load(path, allow_pickle=False) as archive:
            matrix = archive["hht"]
            np.testing.assert_array_equal(archive["frequency"], frequency_axis(256))
            assert archive["sampling_rate"] == 2000.0
        with np.load(directory / "signals" / path.name, allow_pickle=False) as archive:
            signal, fs = archive["signal"], float(archive["fs"])
        # The transform of the saved signal after compute_hht.py's default preprocessing.
        np.testing.assert_array_equal(hilbert_spectrum(preprocess(signal, fs, Preprocessing()), fs), matrix)
        assert load_matrix(path).dtype == np.float32


def test_worker_count_does_not_change_the_data(generated, tmp_path):
    directory, paths = generated
    again = generate_sample_data(tmp_path, n_samples=5, n_test=3, seed=4, workers=2)
    for first, second in zip(paths, again, strict=True):
        np.testing.assert_array_equal(load_matrix(first), load_matrix(second))


def test_default_workers_start_a_process_only_for_enough_files(monkeypatch, tmp_path):
    monkeypatch.setattr(sample_data, "available_cpus", lambda: 4)
    assert [default_workers(n) for n in (0, 1, 100, 101, 250, 10_000)] == [1, 1, 1, 2, 3, 4]

    def no_cluster(*args, **kwargs):
        raise AssertionError("a local Dask cluster was started")

    monkeypatch.setattr(engine, "_local_client", no_cluster)
    assert len(generate_sample_data(tmp_path / "few", n_samples=2, n_test=1, seed=4)) == 13
    # Asked for, two workers start for two tasks' worth of files (one task makes FILES_PER_TASK files).
    assert 13 > sample_data.FILES_PER_TASK
    with pytest.raises(AssertionError, match="Dask cluster"):
        generate_sample_data(tmp_path / "asked", n_samples=2, n_test=1, seed=4, workers=2)


def test_refuses_to_overwrite(generated):
    directory, _ = generated
    with pytest.raises(FileExistsError, match="already exist"):
        generate_sample_data(directory, n_samples=5, n_test=3, seed=4, workers=1)


@pytest.mark.slow
def test_compute_hht_on_the_saved_signals_reproduces_the_files(generated, tmp_path):
    directory, paths = generated
    result = run_script("compute_hht.py", "--input", directory / "signals", "--output_dir", tmp_path, "--workers", "1")
    # With compute_hht.py's defaults: the generator preprocesses as it does.
    assert result.returncode == 0, result.stderr
    for path in paths:
        with np.load(path, allow_pickle=False) as original, np.load(tmp_path / path.name) as converted:
            assert original.files == converted.files
            for key in original.files:
                np.testing.assert_array_equal(original[key], converted[key])
