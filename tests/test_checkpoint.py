import dataclasses
import os
import pickle

import numpy as np
import pytest
from test_classifier import easy_data

from semg_hht.model.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    load_metadata,
    plain_data,
    resolve_checkpoint_prefix,
    save_checkpoint,
)
from semg_hht.model.classifier import HHTClassifier


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    X, y = easy_data(per_class=4)
    classifier = HHTClassifier(features="cnn", model="joint", svm_C=3.0, svm_gamma="0.01", seed=5).fit(X, y)
    directory = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(directory / "final", classifier, CheckpointMetadata.of(classifier, epoch=np.int64(0)))
    return directory, classifier, X


def test_round_trip_predicts_the_same(saved):
    directory, classifier, X = saved
    loaded, metadata = load_checkpoint(directory / "final")
    np.testing.assert_array_equal(loaded.predict_proba(X), classifier.predict_proba(X))
    assert (loaded.svm_C, loaded.svm_gamma, loaded.seed) == (3.0, 0.01, 5)
    assert metadata.class_names == ["M_full", "M_half", "M_invalid", "F_full", "F_half", "F_invalid"]
    assert type(metadata.epoch) is int
    assert set(metadata.versions) >= {"torch", "scikit-learn", "numpy", "semg_hht"}


def test_files_are_complete_and_readable_by_others(saved):
    directory, _, _ = saved
    names = sorted(os.listdir(directory))
    assert names == [
        "final_encoder.pt",
        "final_head.npz",
        "final_manifest.json",
        "final_metadata.pkl",
        "final_scaler.pkl",
        "final_svm.pkl",
    ]
    assert all(os.stat(directory / n).st_mode & 0o044 for n in names)


def test_prefix_resolution(saved):
    directory, _, _ = saved
    assert resolve_checkpoint_prefix(directory) == directory / "final"
    assert resolve_checkpoint_prefix(directory / "final_svm.pkl") == directory / "final"
    with pytest.raises(CheckpointError, match="missing latest_scaler.pkl"):
        resolve_checkpoint_prefix(directory / "latest")


def test_metadata_cannot_run_code(tmp_path):
    path = tmp_path / "x_metadata.pkl"
    path.write_bytes(pickle.dumps({"label_encoder": os.system}))
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_metadata(path)


def test_truncated_encoder_is_reported(saved, tmp_path):
    directory, _, _ = saved
    for name in os.listdir(directory):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    encoder = tmp_path / "final_encoder.pt"
    encoder.write_bytes(encoder.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="final_encoder.pt"):
        load_checkpoint(tmp_path / "final")


def test_plain_data():
    assert plain_data({"a": (np.int64(1), np.float32(0.5), np.bool_(True))}) == {"a": [1, 0.5, True]}
    with pytest.raises(TypeError):
        plain_data({"a": object()})


def test_encoder_size_is_the_encoders_weights():
    from semg_hht.model.checkpoint import encoder_size
    from semg_hht.model.encoder import build_encoder

    weights = build_encoder(0).state_dict().values()
    assert encoder_size() == sum(value.numel() * value.element_size() for value in weights)


def test_file_sha256_known_answer(tmp_path):
    from semg_hht.io.hashing import BLOCK_BYTES, file_sha256

    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path.write_bytes(b"a" * (BLOCK_BYTES + 1))  # across a block boundary
    assert file_sha256(path) == __import__("hashlib").sha256(b"a" * (BLOCK_BYTES + 1)).hexdigest()


def test_a_checkpoint_whose_feature_names_differ_is_refused_naming_both(tmp_path):
    from semg_hht.model.descriptors import DESCRIPTOR_NAMES

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(6), 4)
    classifier = HHTClassifier(features="hht").fit_features(rng.normal(size=(24, 28)) + labels[:, None], labels)
    renamed = list(DESCRIPTOR_NAMES)
    renamed[3] = "old_descriptor"
    metadata = dataclasses.replace(CheckpointMetadata.of(classifier), feature_names=renamed)
    save_checkpoint(tmp_path / "final", classifier, metadata)
    with pytest.raises(
        CheckpointError, match=f"column 3: checkpoint 'old_descriptor', this release '{DESCRIPTOR_NAMES[3]}'"
    ):
        load_checkpoint(tmp_path / "final")


def test_metadata_round_trips_through_its_plain_form():
    from semg_hht.model.checkpoint import TrainingRun
    from semg_hht.model.checkpoint.metadata import SCHEMA_VERSION

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(6), 4)
    classifier = HHTClassifier(features="hht").fit_features(rng.normal(size=(24, 28)) + labels[:, None], labels)
    run = TrainingRun(["a.npz"], ["b.npz"], test_size=0.2, data_fingerprints={"a.npz": "00"}, n_train=1, n_val=1)
    for metadata in (CheckpointMetadata.of(classifier), CheckpointMetadata.of(classifier, run=run, epoch=3)):
        plain = plain_data(metadata.to_plain())
        assert CheckpointMetadata.from_plain(plain) == metadata
        assert plain["schema_version"] == SCHEMA_VERSION and len(plain["frequency_hz"]) == 256
    assert plain["train_files"] == ["a.npz"]  # the run's fields at the top level, where older releases read them


def test_a_checkpoint_keeps_its_frequency_axis_and_refuses_an_unusable_one(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(6), 4)
    axis = list(np.linspace(10, 240, 256))
    classifier = HHTClassifier(features="hht", frequency_hz=axis)
    classifier.fit_features(rng.normal(size=(24, 28)) + labels[:, None], labels)
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    loaded, metadata = load_checkpoint(tmp_path / "final")
    np.testing.assert_allclose(metadata.frequency_hz, axis)
    np.testing.assert_allclose(loaded.frequency_axis, axis)
    metadata = dataclasses.replace(metadata, frequency_hz=axis[:100])
    save_checkpoint(tmp_path / "short", classifier, metadata)
    with pytest.raises(CheckpointError, match="frequency_hz must be 256 finite, increasing Hz"):
        load_checkpoint(tmp_path / "short")


def test_checkpoints_before_schema_3_read_as_their_schema():
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent / "fixtures"
    _, metadata = load_checkpoint(fixtures / "checkpoint_v2_hht" / "final", safe=True)
    assert (metadata.schema_version, metadata.frequency_hz, metadata.head) == (2, None, "svm")
    assert metadata.run is not None and len(metadata.run.train_files) == metadata.run.n_train
