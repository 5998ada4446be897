"""Feature sets, subject-wise normalisation, the factorised model and SVM tuning, in the library and end to end."""

import dataclasses
import logging
import shutil

import numpy as np
import pytest

from conftest import random_matrix, read_json, run_script
from semg_hht.classes import CLASS_NAMES
from semg_hht.io.matrices import write_matrix_file
from semg_hht.model.checkpoint import CheckpointError, CheckpointMetadata, load_checkpoint, save_checkpoint
from semg_hht.model.classifier import HHTClassifier, pool_by_subject
from semg_hht.model.descriptors import DESCRIPTOR_NAMES, SUBJECT_DESCRIPTORS
from semg_hht.model.envelope import ENVELOPE_NAMES
from semg_hht.model.feature_sets import block_slices, block_weights, feature_names, parse_feature_set
from semg_hht.model.normalisation import FileGroups, PopulationStatistics, muscle_of, normalise_within_groups
from semg_hht.training.tuning import C_GRID, GAMMA_FACTORS, reference_gamma, tune_svm


def test_feature_sets_parse_in_canonical_order():
    assert parse_feature_set("hht+cnn") == ("cnn", "hht")
    assert parse_feature_set("TD + hht") == ("hht", "td")
    for bad in ("", "cnn+cnn", "mfcc", "cnn+"):
        with pytest.raises(ValueError):
            parse_feature_set(bad)
    names = feature_names(("cnn", "hht", "td"))
    assert len(names) == 256 + len(DESCRIPTOR_NAMES) + 4 and len(set(names)) == len(names)
    slices = block_slices(("cnn", "hht", "td"))
    assert names[slices["hht"]] == list(DESCRIPTOR_NAMES) and names[slices["td"]][0] == "td_log_mav"


def test_block_weights_give_each_block_the_same_share_of_the_distance():
    weights = block_weights(("cnn", "hht"))
    shares = [np.sum(weights[block] ** 2) for block in block_slices(("cnn", "hht")).values()]
    np.testing.assert_allclose(shares, [1.0, 1.0])
    np.testing.assert_array_equal(block_weights(("hht",)), np.ones(len(DESCRIPTOR_NAMES)))
    assert reference_gamma(block_weights(("cnn", "hht"))) == pytest.approx(0.5)
    assert reference_gamma(block_weights(("hht",))) == pytest.approx(1 / len(DESCRIPTOR_NAMES))


def test_normalisation_standardises_each_group_with_its_own_statistics():
    features = np.array([[1.0, 10.0], [3.0, 30.0], [100.0, 5.0], [102.0, 7.0], [104.0, 9.0]])
    keys = np.array(["a", "a", "b", "b", "b"])
    population = PopulationStatistics.of(features)
    normalised = normalise_within_groups(features, keys, population)
    np.testing.assert_allclose(normalised[:2], [[-1, -1], [1, 1]])
    np.testing.assert_allclose(normalised[2:, 0], np.array([-2, 0, 2]) / np.std([100, 102, 104]))
    # Within each group the means are 0 and the spreads 1, whatever the group's level.
    for key in "ab":
        np.testing.assert_allclose(normalised[keys == key].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(normalised[keys == key].std(0), 1)


def test_a_one_file_group_falls_back_to_the_population_with_a_warning(caplog):
    features = np.array([[1.0, 2.0], [3.0, 2.0], [8.0, 5.0]])
    population = PopulationStatistics(np.array([4.0, 3.0]), np.array([2.0, 1.5]))
    with caplog.at_level(logging.WARNING, logger="semg_hht"):
        normalised = normalise_within_groups(features, np.array(["a", "a", "lonely"]), population)
    np.testing.assert_allclose(normalised[2], [(8 - 4) / 2, (5 - 3) / 1.5])
    # Group a's second feature does not vary: it is centred and divided by the population's spread.
    np.testing.assert_allclose(normalised[:2, 1], [0.0, 0.0])
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "group lonely has one file" in messages and "group a: 1 features do not vary" in messages


def test_muscle_is_the_first_token_with_the_stored_channel():
    assert muscle_of("BICEPS_half_M_001.npz", None) == "BICEPS"
    assert muscle_of("FOREARM_half_M_001.npz", "ch3") == "FOREARM/ch3"
    groups = FileGroups(np.array(["S1", "S1"]), np.array(["A", "B"]))
    assert list(groups.keys("subject_muscle")) == ["S1 / A", "S1 / B"]


def _subject_features(rng, n_subjects=6, per_class=4):
    """Features where the class sets a within-subject offset and each subject a large offset of its own."""
    rows, labels, subjects = [], [], []
    for subject in range(n_subjects):
        gender = subject % 2
        level = rng.normal(0, 5, 4)
        for quality in range(3):
            for _ in range(per_class):
                rows.append(level + [quality, 0.0, 3.0 * gender, quality] + rng.normal(0, 0.2, 4))
                labels.append(3 * gender + quality)
                subjects.append(f"S{subject}")
    subjects = np.array(subjects)
    return np.array(rows), np.array(labels), FileGroups(subjects, np.full(len(subjects), "m"))


def test_subject_normalisation_recovers_a_class_hidden_under_subject_offsets():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    test_features, test_labels, test_groups = _subject_features(np.random.default_rng(1))
    plain = HHTClassifier(features="td").fit_features(features, labels, groups)
    accuracy_plain = np.mean((plain.predict_features(test_features) % 3) == test_labels % 3)
    normalised = HHTClassifier(features="td", normalisation="subject")
    normalised.fit_features(features, labels, groups)
    predicted = normalised.predict_features(test_features, test_groups)
    assert np.mean(predicted % 3 == test_labels % 3) > 0.9 > accuracy_plain + 0.2


def test_factorised_probabilities_are_the_product_of_gender_and_quality():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="td", normalisation="subject", model="factorised")
    classifier.fit_features(features, labels, groups)
    probabilities = classifier.predict_proba_features(features, groups)
    np.testing.assert_allclose(probabilities.sum(1), 1.0)
    table = probabilities.reshape(-1, 2, 3)
    gender, quality = table.sum(2), table.sum(1)
    np.testing.assert_allclose(table, gender[:, :, None] * quality[:, None, :], atol=1e-12)
    # Gender is a subject's property: every file of a subject gets the same gender probabilities.
    for subject in np.unique(groups.subjects):
        rows = gender[groups.subjects == subject]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape))
    assert np.mean(probabilities.argmax(1) == labels) > 0.9


def test_factorised_model_of_one_gender_gives_it_probability_one():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    male = labels < 3
    classifier = HHTClassifier(features="td", model="factorised")
    classifier.fit_features(features[male], labels[male])
    probabilities = classifier.predict_proba_features(features)
    np.testing.assert_allclose(probabilities[:, 3:], 0.0)
    np.testing.assert_allclose(probabilities.sum(1), 1.0)


def _gender_and_movement_features(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, FileGroups]:
    """hht+env columns of 12 subjects x 6 classes: gender in the spectrum's level, quality in the envelope,
    and noise everywhere else."""
    labels = np.tile(np.arange(6), 12)
    subjects = np.repeat([f"S{i:02d}" for i in range(12)], 6)
    genders, qualities = labels // 3, labels % 3
    features = rng.normal(size=(len(labels), len(DESCRIPTOR_NAMES) + len(ENVELOPE_NAMES)))
    features[:, DESCRIPTOR_NAMES.index("median_frequency_hz")] += 3.0 * genders
    features[:, len(DESCRIPTOR_NAMES) + ENVELOPE_NAMES.index("active_fraction_30")] += 3.0 * qualities
    return features, labels, FileGroups(subjects, np.full(len(labels), "BICEPS"))


def test_the_gender_head_sees_the_subject_columns_only():
    features, labels, groups = _gender_and_movement_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="hht+env", model="factorised").fit_features(features, labels, groups)
    columns = classifier.gender_columns
    assert [classifier.feature_names[i] for i in columns] == list(SUBJECT_DESCRIPTORS)
    assert classifier.gender_head_.n_features == len(SUBJECT_DESCRIPTORS)
    # Changing every column but the subject's leaves the gender probabilities as they were.
    changed = features.copy()
    movement = np.setdiff1d(np.arange(features.shape[1]), columns)
    changed[:, movement] = np.random.default_rng(1).normal(size=(len(features), len(movement)))
    gender = classifier.predict_proba_features(features).reshape(-1, 2, 3).sum(2)
    np.testing.assert_allclose(classifier.predict_proba_features(changed).reshape(-1, 2, 3).sum(2), gender)
    assert np.mean(gender.argmax(1) == labels // 3) > 0.9
    # "all" gives the gender head every column, as before the option.
    every = HHTClassifier(features="hht+env", model="factorised", gender_features="all").fit_features(features, labels)
    assert every.gender_head_.n_features == features.shape[1]
    with pytest.raises(ValueError, match="gender_features must be one of"):
        HHTClassifier(gender_features="movement")


def test_window_samples_and_feature_sets_without_subject_columns():
    assert HHTClassifier(features="env").gender_columns.tolist() == list(range(len(ENVELOPE_NAMES)))
    window = HHTClassifier(features="hht+env", channels=["a", "b"])
    names = [window.feature_names[i] for i in window.gender_columns]
    assert names == [f"{channel}:{name}" for channel in "ab" for name in SUBJECT_DESCRIPTORS]
    assert len(HHTClassifier(features="cnn+hht+env+td").gender_columns) == 256 + len(SUBJECT_DESCRIPTORS) + 4


def test_the_gender_columns_survive_the_checkpoint(tmp_path):
    features, labels, groups = _gender_and_movement_features(np.random.default_rng(0))
    for setting in ("subject", "all"):
        classifier = HHTClassifier(features="hht+env", model="factorised", gender_features=setting)
        classifier.fit_features(features, labels, groups)
        save_checkpoint(tmp_path / setting, classifier, CheckpointMetadata.of(classifier))
        loaded, metadata = load_checkpoint(tmp_path / setting, safe=True)
        assert loaded.gender_features == metadata.gender_features == setting
        np.testing.assert_allclose(
            loaded.predict_proba_features(features, groups), classifier.predict_proba_features(features, groups)
        )
    # Metadata that claims the subject's columns for a gender head of every column is refused, not misread.
    metadata = dataclasses.replace(CheckpointMetadata.of(classifier), gender_features="subject")
    save_checkpoint(tmp_path / "mislabelled", classifier, metadata)
    with pytest.raises(CheckpointError, match="the gender head has 44 features, its columns"):
        load_checkpoint(tmp_path / "mislabelled")


def test_pool_by_subject_averages_within_subjects():
    pooled = pool_by_subject(np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]]), np.array(["a", "a", "b"]))
    np.testing.assert_allclose(pooled, [[0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])


def test_hht_features_see_amplitude_and_cnn_features_do_not():
    matrices = np.stack([random_matrix(1), 7 * random_matrix(1)])
    cnn = HHTClassifier(features="cnn").transform(matrices)
    hht = HHTClassifier(features="hht").transform(matrices)
    np.testing.assert_allclose(cnn[0], cnn[1], atol=1e-5)
    energy = DESCRIPTOR_NAMES.index("log_total_energy")
    assert hht[1, energy] - hht[0, energy] == pytest.approx(np.log(7), abs=1e-4)


def test_normalised_model_needs_groups():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="td", normalisation="subject")
    with pytest.raises(ValueError, match="needs the subject of every file"):
        classifier.fit_features(features, labels)
    with pytest.raises(ValueError, match="4 features of td expected"):
        classifier.fit_features(features[:, :3], labels, groups)


def test_factorised_normalised_checkpoint_round_trip(tmp_path):
    features, labels, groups = _subject_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="td", normalisation="subject_muscle", model="factorised")
    classifier.fit_features(features, labels, groups)
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    loaded, metadata = load_checkpoint(tmp_path / "final", safe=True)
    assert (loaded.features, loaded.normalisation, loaded.model) == ("td", "subject_muscle", "factorised")
    assert metadata.feature_names == ["td_log_mav", "td_log_wl", "td_zc", "td_ssc"]
    np.testing.assert_allclose(
        loaded.predict_proba_features(features, groups), classifier.predict_proba_features(features, groups), atol=1e-12
    )


@pytest.mark.slow
def test_tuning_scores_the_whole_grid_subject_wise():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="td", normalisation="subject")
    result = tune_svm(classifier, features, labels, groups, seed=0)
    # Every C x gamma of the SVM, and the forest last.
    assert len(result["grid"]) == len(C_GRID) * len(GAMMA_FACTORS) + 1 and result["scheme"] == "subject-wise"
    assert result["grid"][-1]["head"] == "forest"
    best = max(entry["mean"] for entry in result["grid"])
    assert result["score"] == best and (result["C"] in C_GRID) == (result["head"] != "forest")
    assert all(len(entry["folds"]) == result["folds"] == 5 for entry in result["grid"])


def test_tuning_refuses_features_that_are_not_finite():
    features, labels, groups = _subject_features(np.random.default_rng(0))
    features[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        tune_svm(HHTClassifier(features="td"), features, labels, groups, seed=0)


# End to end: train.py and inference.py with the new flags.


@pytest.fixture(scope="session")
def subject_data(tmp_path_factory):
    """8 labelled files per class from 2 simulated subjects per gender, and 6 test files with labels."""
    from semg_hht.data.sample_data import generate_sample_data

    directory = tmp_path_factory.mktemp("feature_subjects")
    generate_sample_data(directory, n_samples=8, n_test=6, seed=3)
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("head", ["auto", "scalable"])
def test_train_and_infer_with_descriptors_normalisation_and_factorised_model(head, subject_data, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    flags = ("--features", "hht", "--normalise", "subject", "--model", "factorised", "--tune", "--head", head)
    result = run_script(
        "train.py",
        *("--data_dir", subject_data, "--labels", subject_data / "labels.csv", "--checkpoint_dir", checkpoints),
        *("--epochs", "0", "--cpu", *flags),
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Features: hht (28 per file); normalisation: within each subject; "
        "model: factorised (gender on the 14 columns of the subject)" in result.stdout
    )
    assert "Best of 31 settings (3 subject-wise folds)" in result.stdout
    report = read_json(checkpoints / "report.json")
    model = report["model"]
    assert (model["features"], model["normalisation"], model["model"]) == ("hht", "subject", "factorised")
    assert model["feature_names"] == list(DESCRIPTOR_NAMES) and len(model["tuning"]["grid"]) == 31
    tuned = model["tuning"]
    assert tuned["head"] == head  # the kernel head won on these files
    assert model["head"]["used"] == ("svm" if head == "auto" else "scalable")
    _, metadata = load_checkpoint(checkpoints / "final")
    assert metadata.svm["C"] == tuned["C"] and metadata.svm["gamma"] == pytest.approx(tuned["gamma"])

    # Without subjects a normalised model refuses, naming the flags.
    refused = run_script("inference.py", "--checkpoint", checkpoints, "--input", subject_data, "--cpu")
    assert refused.returncode == 2 and "--group_pattern or --labels" in refused.stderr

    # The test files alone, subjects from the labels file: the same probabilities as train.py's.
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in read_json(checkpoints / "test_predictions.json"):
        if name != "errors":
            shutil.copy(subject_data / name, tests / name)
    output = tmp_path / "predictions.json"
    predicted = run_script(
        "inference.py",
        *("--checkpoint", checkpoints, "--input", tests, "--labels", subject_data / "labels.csv"),
        *("--output", output, "--cpu"),
    )
    assert predicted.returncode == 0, predicted.stderr
    assert "normalisation: within each subject; model: factorised" in predicted.stdout
    ours, theirs = read_json(output), read_json(checkpoints / "test_predictions.json")
    assert ours.keys() == theirs.keys() and len(ours) == 7
    for name in ours:
        if name != "errors":
            assert ours[name]["probabilities"] == pytest.approx(theirs[name]["probabilities"], abs=1e-9)


@pytest.mark.slow
def test_resume_with_other_features_is_refused(subject_data, tmp_path):
    common = ("--data_dir", subject_data, "--checkpoint_dir", tmp_path, "--epochs", "0", "--cpu")
    assert run_script("train.py", *common, "--features", "hht").returncode == 0
    result = run_script("train.py", *common, "--features", "cnn+hht", "--resume")
    assert result.returncode == 2 and "model_settings" in result.stderr and "cnn+hht" in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--features", "hht", "--epochs", "2"), "has no cnn block"),
        (("--features", "cnn", "--tune", "--epochs", "2"), "--tune chooses the SVM for fixed features"),
        (("--features", "hht+mfcc", "--epochs", "0"), "--features: feature set"),
        (("--normalise", "subject", "--epochs", "0"), "needs the subject of every labelled file"),
    ],
)
@pytest.mark.slow
def test_impossible_feature_flags_are_refused(subject_data, tmp_path, flags, message):
    result = run_script("train.py", "--data_dir", subject_data, "--checkpoint_dir", tmp_path, "--cpu", *flags)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_time_domain_block_uses_stored_features_and_names_files_without(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    frequency = np.linspace(20, 450, 256)
    for number in range(1, 25):
        movement, gender = ("fatiguetest", "half", "invalid")[number % 3], "MF"[number % 6 // 3]
        level = 1.0 + (number % 3)
        stored = np.array([np.log(level), np.log(level) - 1, 0.1 * level, 0.2]) + rng.normal(0, 0.01, 4)
        path = data / f"BICEPS_{movement}_{gender}_{number:03d}.npz"
        write_matrix_file(path, level * random_matrix(number), 1000.0, frequency, time_domain=stored)
    write_matrix_file(data / "BICEPS_half_M_099.npz", random_matrix(99), 1000.0, frequency)
    result = run_script(
        *("train.py", "--data_dir", data, "--checkpoint_dir", tmp_path / "ck"),
        *("--features", "hht+td", "--epochs", "0", "--test_size", "0.5"),
    )
    assert result.returncode == 1, result.stderr
    assert "BICEPS_half_M_099.npz: holds no time-domain features ('td_features')" in result.stderr
    assert "Loaded 24 training samples" in result.stdout
    _, metadata = load_checkpoint(tmp_path / "ck" / "final")
    assert metadata.features == "hht+td" and metadata.feature_names[-4:] == [
        "td_log_mav",
        "td_log_wl",
        "td_zc",
        "td_ssc",
    ]


def test_a_normalised_checkpoint_without_its_statistics_is_refused(tmp_path):
    features, labels, groups = _subject_features(np.random.default_rng(0))
    classifier = HHTClassifier(features="td", normalisation="subject").fit_features(features, labels, groups)
    metadata = dataclasses.replace(CheckpointMetadata.of(classifier), population=None)
    save_checkpoint(tmp_path / "final", classifier, metadata)
    with pytest.raises(CheckpointError, match="without the training files' statistics"):
        load_checkpoint(tmp_path / "final")


@pytest.mark.slow
def test_amplitude_block_reads_the_stored_features_and_names_older_files(tmp_path):
    """Classes told apart only by the stored amplitude distribution (the matrices are noise): a model of the amp
    block alone learns them and inference.py predicts new files by them. A file converted by release 0.3
    (Hudgins' 4 alone) and one without stored features are named with the reason, and the others go on."""
    rng = np.random.default_rng(0)
    frequency = np.linspace(20, 450, 256)
    hudgins = np.array([0.0, 1.0, 0.1, 0.2])

    def write(folder, class_index: int, number: int, stored: np.ndarray | None = None) -> str:
        gender, movement = "MF"[class_index // 3], ("full", "half", "invalid")[class_index % 3]
        if stored is None:
            # The kurtosis tells the movement, the MAV / RMS ratio the gender.
            amplitude = [2.0 * (class_index % 3), -0.1 - 0.1 * (class_index // 3)] + rng.normal(0, 0.01, 2)
            stored = np.concatenate([hudgins + rng.normal(0, 0.01, 4), amplitude])
        name = f"BICEPS_{movement}_{gender}_{number:03d}.npz"
        write_matrix_file(folder / name, random_matrix(number), 1000.0, frequency, time_domain=stored)
        return name

    data, new = tmp_path / "data", tmp_path / "new"
    data.mkdir(), new.mkdir()
    for number in range(36):
        write(data, number % 6, number)
    older = write(data, 0, 98, stored=hudgins)
    write_matrix_file(data / "BICEPS_half_M_099.npz", random_matrix(99), 1000.0, frequency)
    trained = run_script(
        *("train.py", "--data_dir", data, "--checkpoint_dir", tmp_path / "ck", "--cpu"),
        *("--features", "amp", "--test_size", "0.34"),
    )
    assert trained.returncode == 1, trained.stderr
    assert f"{older}: holds no amplitude-distribution features" in trained.stderr
    assert "BICEPS_half_M_099.npz: holds no time-domain features ('td_features')" in trained.stderr
    assert "Loaded 36 training samples" in trained.stdout
    _, metadata = load_checkpoint(tmp_path / "ck" / "final")
    assert metadata.features == "amp" and metadata.feature_names == ["amp_kurtosis", "amp_log_mav_rms_ratio"]

    truth = {write(new, class_index, 200 + class_index): class_index for class_index in range(6)}
    output = tmp_path / "predictions.json"
    inferred = run_script(
        "inference.py", "--checkpoint", tmp_path / "ck", "--input", new, "--output", output, "--cpu"
    )  # fmt: skip
    assert inferred.returncode == 0, inferred.stderr
    document = read_json(output)
    assert {name: document[name]["prediction"] for name in truth} == {
        name: CLASS_NAMES[class_index] for name, class_index in truth.items()
    }
