"""Encoder training: the trainer's parts, train.py with epochs, per-epoch checkpoints, exact kill-and-resume."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, read_json, run_python, run_script
from semg_hht.cpus import available_cpus, cpu_threads
from semg_hht.data.dataset import scan_data_folder
from semg_hht.evaluation.splits import stratified_split
from semg_hht.model.checkpoint import load_checkpoint, load_metadata, load_training_checkpoint
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import build_encoder
from semg_hht.training.trainer import (
    HISTORY_KEYS,
    EncoderTrainer,
    EncoderTrainingOptions,
    LabelledFiles,
    augment_batch,
    class_weights,
)

EPOCHS = 3
CNN_MODEL = ("--features", "cnn", "--model", "joint")  # the model these tests are about, not the default


def test_augmentation_rolls_in_time_and_scales():
    matrices = np.random.default_rng(0).random((5, 256, 256), dtype=np.float32)
    augmented = augment_batch(matrices, np.random.default_rng(1))
    assert augmented.shape == matrices.shape and augmented.dtype == np.float32
    for original, result in zip(matrices, augmented, strict=True):
        # Rows (frequencies) never move: some roll along the time axis times a factor reproduces the result.
        matches = [
            shift
            for shift in range(-32, 33)
            if np.allclose(result, np.roll(original, shift, axis=1) * (result.sum() / original.sum()), rtol=1e-5)
        ]
        assert len(matches) == 1
        assert 0.8 <= result.sum() / original.sum() <= 1.25
    again = augment_batch(matrices, np.random.default_rng(1))
    assert np.array_equal(augmented, again)


def test_class_weights_balance_the_classes():
    weights = class_weights(np.array([0, 0, 0, 1, 3, 3]))
    # n / (k * count) with n = 6 files, k = 3 classes present.
    assert weights.tolist() == pytest.approx([6 / 9, 2.0, 0.0, 1.0, 0.0, 0.0])


def test_options_are_validated():
    for bad in (
        EncoderTrainingOptions(epochs=-1),
        EncoderTrainingOptions(lr=0),
        EncoderTrainingOptions(weight_decay=-1),
        EncoderTrainingOptions(patience=-1),
    ):
        with pytest.raises(ValueError):
            bad.validate()


def test_cpu_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    for not_a_count in ("", "0", "two", "4,2"):
        monkeypatch.setenv("OMP_NUM_THREADS", not_a_count)
        assert cpu_threads() == available_cpus()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads() == available_cpus()


def _trainer(sample_dir, epochs=EPOCHS, patience=5, seed=42, batch_size=8):
    folder = scan_data_folder(sample_dir)
    labels = np.array(folder.labels)
    train, val = stratified_split(labels, 0.2, seed)
    classifier = HHTClassifier(features="cnn", model="joint", seed=seed, batch_size=batch_size)
    return EncoderTrainer(
        classifier,
        EncoderTrainingOptions(epochs=epochs, patience=patience),
        LabelledFiles([folder.labelled[i] for i in train], labels[train]),
        LabelledFiles([folder.labelled[i] for i in val], labels[val]),
        progress=False,
    )


@pytest.mark.slow
def test_trainer_learns_and_keeps_the_best_epoch(sample_dir):
    trainer = _trainer(sample_dir)
    before = {key: value.clone() for key, value in trainer.classifier.encoder.state_dict().items()}
    saved = []
    trainer.run(lambda improved: saved.append((trainer.epoch, improved)))
    assert [epoch for epoch, _ in saved] == [0, 1, 2, 3] and trainer.finished
    assert set(trainer.history) == set(HISTORY_KEYS)
    assert trainer.history["epoch"] == [0, 1, 2, 3]
    assert all(len(values) == EPOCHS + 1 for values in trainer.history.values())
    # Training lowers the training loss and moves the weights.
    assert trainer.history["train_loss"][-1] < trainer.history["train_loss"][0]
    after = trainer.classifier.encoder.state_dict()
    assert any(not torch.equal(before[key], after[key]) for key in before)
    # The best epoch is the one of lowest validation loss, and best holds its classifier.
    losses = trainer.history["val_loss"]
    assert trainer.best_epoch == int(np.argmin(losses))
    assert [improved for _, improved in saved] == [loss == min(losses[: i + 1]) for i, loss in enumerate(losses)]
    assert trainer.best is not trainer.classifier and trainer.best.is_fitted
    head_probabilities = trainer.head_predict_proba(np.zeros((2, 256), np.float32))
    assert head_probabilities.shape == (2, 6) and np.allclose(head_probabilities.sum(1), 1)


@pytest.mark.slow
def test_early_stopping_waits_patience_epochs(sample_dir, monkeypatch):
    trainer = _trainer(sample_dir, epochs=10, patience=2)
    losses = iter([1.0, 0.9, 0.8, 0.95, 0.85, 0.7, 0.6])
    original = EncoderTrainer._head_scores
    calls = []

    def scores(self, features, labels):
        loss, accuracy = original(self, features, labels)
        calls.append(1)
        # Every second call scores the validation split: its loss follows the script above.
        return (next(losses), accuracy) if len(calls) % 2 == 0 else (loss, accuracy)

    monkeypatch.setattr(EncoderTrainer, "_head_scores", scores)
    trainer.run()
    # Epoch 3 and 4 are worse than epoch 2: with patience 2, training stops after epoch 4.
    assert trainer.epoch == 4 and trainer.best_epoch == 2 and trainer.finished


@pytest.mark.slow
def test_trainer_state_round_trips_through_weights_only_loading(sample_dir, tmp_path):
    trainer = _trainer(sample_dir, epochs=1)
    trainer.run()
    torch.save(trainer.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    other = _trainer(sample_dir, epochs=1)
    other.load_state_dict(state, trainer.best)
    assert (other.epoch, other.best_epoch, other.finished) == (1, trainer.best_epoch, True)
    assert other.history == trainer.history
    for key, value in trainer.head.state_dict().items():
        assert torch.equal(other.head.state_dict()[key], value)


def _train(sample_dir, checkpoint_dir, *flags):
    result = run_script(
        "train.py",
        "--data_dir",
        sample_dir,
        "--checkpoint_dir",
        checkpoint_dir,
        "--cpu",
        "--epochs",
        str(EPOCHS),
        *CNN_MODEL,
        *flags,
    )
    return result


@pytest.fixture(scope="session")
def trained_encoder(sample_dir, tmp_path_factory):
    """An uninterrupted train.py run with encoder training: the reference for the resume tests."""
    checkpoint_dir = tmp_path_factory.mktemp("trained_encoder")
    result = _train(sample_dir, checkpoint_dir)
    assert result.returncode == 0, result.stderr
    return checkpoint_dir, result


@pytest.mark.slow
def test_train_py_with_epochs_writes_every_checkpoint(trained_encoder, sample_dir):
    checkpoint_dir, result = trained_encoder
    for line in ("Training the encoder (at most 3 epochs)", "Best epoch: ", "Validation Accuracy: "):
        assert line in result.stdout
    for epoch in range(EPOCHS + 1):
        assert f"Epoch {epoch}/{EPOCHS}: loss " in result.stderr
    for prefix in ("final", "latest", "best"):
        for part in ("encoder.pt", "scaler.pkl", "svm.pkl", "metadata.pkl", "head.npz", "manifest.json"):
            assert (checkpoint_dir / f"{prefix}_{part}").is_file()
    manifest = read_json(checkpoint_dir / "latest_manifest.json")
    assert "latest_trainer.pt" in manifest["files"]
    assert not (checkpoint_dir / "final_trainer.pt").exists()

    final = load_metadata(checkpoint_dir / "final_metadata.pkl")
    latest = load_metadata(checkpoint_dir / "latest_metadata.pkl")
    assert final["epoch"] == final["best_epoch"] == load_metadata(checkpoint_dir / "best_metadata.pkl")["epoch"]
    assert latest["epoch"] == EPOCHS
    assert final["history"]["epoch"] == list(range(EPOCHS + 1))
    assert final["training"] == {
        "epochs": EPOCHS,
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "patience": 5,
        "augment": False,
        "batch_size": 8,
        "bf16": False,
    }
    assert sorted(final["data_fingerprints"]) == sorted(p.name for p in scan_data_folder(sample_dir).labelled)

    # final_* is the best epoch's classifier; the last epoch's encoder has moved from the random one.
    classifier, _ = load_checkpoint(checkpoint_dir / "final")
    best, _ = load_checkpoint(checkpoint_dir / "best")
    assert all(torch.equal(best.encoder.state_dict()[k], v) for k, v in classifier.encoder.state_dict().items())
    latest, _ = load_checkpoint(checkpoint_dir / "latest")
    random_encoder = build_encoder(42).state_dict()
    assert any(not torch.equal(random_encoder[k], v) for k, v in latest.encoder.state_dict().items())
    # inference.py uses a trained checkpoint like any other.
    output = checkpoint_dir.parent / "trained_predictions.json"
    inference = run_script(
        "inference.py", "--checkpoint", checkpoint_dir, "--input", sample_dir, "--output", output, "--cpu"
    )
    assert inference.returncode == 0, inference.stderr
    predictions = read_json(output)
    test_predictions = read_json(checkpoint_dir / "test_predictions.json")
    for name, record in test_predictions.items():
        if name != "errors":
            assert predictions[name]["probabilities"] == pytest.approx(record["probabilities"], abs=1e-6)


@pytest.mark.slow
def test_epochs_zero_keeps_the_seeded_random_encoder(sample_dir, tmp_path):
    result = run_script(
        "train.py", "--data_dir", sample_dir, "--checkpoint_dir", tmp_path, "--cpu", "--epochs", "0", *CNN_MODEL
    )
    assert result.returncode == 0, result.stderr
    classifier, metadata = load_checkpoint(tmp_path / "final")
    random_encoder = build_encoder(42).state_dict()
    assert all(torch.equal(random_encoder[k], v) for k, v in classifier.encoder.state_dict().items())
    assert not (tmp_path / "latest_trainer.pt").exists() and not (tmp_path / "best_encoder.pt").exists()
    # The SVM is the one fitted on the random encoder's features of the training split.
    folder = scan_data_folder(sample_dir)
    names = [path.name for path in folder.labelled]
    train = [names.index(name) for name in metadata.run.train_files]
    reference = HHTClassifier(features="cnn", model="joint", seed=42).fit(
        np.stack([np.load(folder.labelled[i])["hht"] for i in train]), np.array(folder.labels)[train]
    )
    probe = np.stack([np.load(path)["hht"] for path in folder.test])
    assert np.array_equal(classifier.predict_proba(probe), reference.predict_proba(probe))


# Runs train.py with a patch that SIGKILLs the process at a chosen moment: at the start of the
# Nth optimizer step (mid-epoch) or at the Nth checkpoint file written (mid-save).
KILLER = """
import os, runpy, signal, sys
import torch
import semg_hht.model.checkpoint.writing as checkpoint

where, count = sys.argv[1], int(sys.argv[2])
sys.argv = [sys.argv[3]] + sys.argv[4:]
calls = [0]

def countdown():
    calls[0] += 1
    if calls[0] == count:
        os.kill(os.getpid(), signal.SIGKILL)

if where == "step":
    step = torch.optim.AdamW.step
    def killing_step(self, *args, **kwargs):
        countdown()
        return step(self, *args, **kwargs)
    torch.optim.AdamW.step = killing_step
else:
    write_temporary = checkpoint.write_temporary
    def killing_write(*args, **kwargs):
        countdown()
        return write_temporary(*args, **kwargs)
    checkpoint.write_temporary = killing_write
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _final_state(checkpoint_dir):
    return torch.load(checkpoint_dir / "final_encoder.pt", weights_only=True)


@pytest.mark.parametrize(
    "where, count",
    [
        ("step", 5),  # 3 steps per epoch: the kill lands in the middle of epoch 2
        ("open", 20),  # the 20th checkpoint file written: part way through the save after epoch 1 or 2
    ],
)
@pytest.mark.slow
def test_kill_and_resume_ends_exactly_like_an_uninterrupted_run(trained_encoder, sample_dir, tmp_path, where, count):
    reference_dir, _ = trained_encoder
    flags = [
        "--data_dir",
        str(sample_dir),
        "--checkpoint_dir",
        str(tmp_path),
        "--cpu",
        "--epochs",
        str(EPOCHS),
        *CNN_MODEL,
    ]
    killed = run_python("-c", KILLER, where, str(count), ROOT / "train.py", *flags)
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "final_encoder.pt").exists()
    _, _, state = load_training_checkpoint(tmp_path / "latest")
    assert 0 <= state["epoch"] < EPOCHS

    if where == "open":
        assert list(tmp_path.glob(".*.tmp")), "the kill did not land mid-save: no temporary file is left"

    resumed = _train(sample_dir, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {state['epoch']} of {EPOCHS} completed" in resumed.stdout
    assert not list(tmp_path.glob("**/.*.tmp")), "the resumed run left the killed save's temporary files"
    reference, result = _final_state(reference_dir), _final_state(tmp_path)
    assert all(torch.equal(reference[key], result[key]) for key in reference)
    assert read_json(tmp_path / "test_predictions.json") == read_json(reference_dir / "test_predictions.json")
    history = load_metadata(tmp_path / "final_metadata.pkl")["history"]
    reference_history = load_metadata(reference_dir / "final_metadata.pkl")["history"]
    assert history["val_loss"] == reference_history["val_loss"]


@pytest.mark.slow
def test_resume_after_a_finished_run_repeats_its_result(trained_encoder, sample_dir, tmp_path):
    reference_dir, _ = trained_encoder
    shutil.copytree(reference_dir, tmp_path, dirs_exist_ok=True)
    resumed = _train(sample_dir, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 1/" not in resumed.stderr  # nothing left to train
    assert read_json(tmp_path / "test_predictions.json") == read_json(reference_dir / "test_predictions.json")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "0.01"], "'lr': 0.001"),
        (["--epochs", "4"], "'epochs': 3"),
        (["--epochs", "0"], "'epochs': 0"),
    ],
)
@pytest.mark.slow
def test_resume_with_other_training_settings_is_refused(trained_encoder, sample_dir, tmp_path, flags, message):
    reference_dir, _ = trained_encoder
    shutil.copytree(reference_dir, tmp_path, dirs_exist_ok=True)
    result = _train(sample_dir, tmp_path, "--resume", *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "other settings" in result.stderr and message in result.stderr


@pytest.mark.slow
def test_resume_with_changed_data_is_refused(trained_encoder, sample_dir, tmp_path):
    reference_dir, _ = trained_encoder
    checkpoint_dir, data_dir = tmp_path / "checkpoints", tmp_path / "data"
    shutil.copytree(reference_dir, checkpoint_dir)
    shutil.copytree(sample_dir, data_dir)
    changed = sorted(data_dir.glob("*fatigue*.npz"))[3]
    matrix = np.load(changed)["hht"]
    np.savez(changed, hht=matrix * 2)
    result = _train(data_dir, checkpoint_dir, "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"1 files with different content (e.g. {changed.name})" in result.stderr


@pytest.mark.slow
def test_bad_training_flags_are_usage_errors(sample_dir, tmp_path):
    for flags, message in ((["--lr", "0"], "--lr"), (["--patience", "-1"], "--patience")):
        result = _train(sample_dir, tmp_path, *flags)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_history_is_json_serialisable(trained_encoder):
    checkpoint_dir, _ = trained_encoder
    history = load_metadata(checkpoint_dir / "final_metadata.pkl")["history"]
    assert json.loads(json.dumps(history)) == history


GENDER_MOVEMENT = [(gender, movement) for gender in ("M", "F") for movement in ("full", "half", "invalid")]


def texture_folder(folder: Path, subjects: int = 4) -> None:
    """A data set with a known answer: each class a stripe texture of its own period (2 to 64 columns),
    one file per training subject and two test files of subject T01 per class. Test files of the
    textures of classes 3-5 are labelled as classes 0-2, so a classifier that tells the textures
    apart scores a recall of 2/4 on each of classes 0-2: balanced accuracy exactly 0.5 (1.0 would
    mean the test labels were not used, e.g. training files scored)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []

    def write(name: str, texture: int, label: int, subject: str, split: str) -> None:
        stripes = (np.arange(256) // 2**texture) % 2
        matrix = np.repeat(stripes[None, :].astype(np.float32), 256, axis=0)
        np.savez(folder / name, hht=matrix + 0.05 * rng.random((256, 256), dtype=np.float32))
        rows.append([name, *GENDER_MOVEMENT[label], subject, split])

    for texture in range(6):
        for subject in range(subjects):
            write(f"c{texture}_s{subject}.npz", texture, texture, f"S{subject}", "")
        for index in range(2):
            write(f"c{texture}_test_{index}.npz", texture, texture % 3, "T01", "test")
    with open(folder / "labels.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "gender", "movement", "subject", "split"])
        writer.writerows(rows)


@pytest.mark.slow
def test_the_evaluation_script_reproduces_its_table(tmp_path):
    output = tmp_path / "results.json"
    # The script uses the simulated set it finds in --work_dir under the name it would give it.
    texture_folder(tmp_path / "simulated_seed0_8_12")
    command = ["benchmarks/evaluate_encoder.py", "--datasets", "simulated"]
    command += ["--seeds", "0", "--epochs", "1", "--sim_samples", "8", "--sim_test", "12", "--cpu"]
    result = run_python(ROOT / command[0], *command[1:], "--work_dir", tmp_path, "--output", output)
    assert result.returncode == 0, result.stderr
    document = json.loads(output.read_text())
    (run,) = document["results"]["simulated"]["0"]
    for method in ("random encoder + SVM", "trained encoder + SVM", "trained linear head"):
        assert 0 <= run[method] <= 1 and f"| simulated | {method} | " in result.stdout
        assert run[method] == pytest.approx(0.5), (method, run[method])
        assert f"| simulated | {method} | 0.500 ± 0.000 | 0.500 | " in result.stdout
    merged = run_python(ROOT / "benchmarks/evaluate_encoder.py", "--summarise", output)
    assert merged.stdout.strip() == document["table"]


@pytest.mark.slow
def test_training_works_with_batches_of_one(sample_dir):
    trainer = _trainer(sample_dir, epochs=1, batch_size=1)
    trainer.run()
    assert trainer.epoch == 1 and np.isfinite(trainer.history["train_loss"]).all()


@pytest.mark.slow
def test_validation_of_a_class_training_lacks_still_has_a_loss(sample_dir):
    folder = scan_data_folder(sample_dir)
    labels = np.array(folder.labels)
    train = np.flatnonzero(labels < 5)
    val = np.flatnonzero(labels == 5)
    trainer = EncoderTrainer(
        HHTClassifier(features="cnn", model="joint", seed=0),
        EncoderTrainingOptions(epochs=1),
        LabelledFiles([folder.labelled[i] for i in train], labels[train]),
        LabelledFiles([folder.labelled[i] for i in val], labels[val]),
        progress=False,
    )
    trainer.run()
    assert np.isfinite(trainer.history["val_loss"]).all() and trainer.best is not None
