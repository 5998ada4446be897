"""Faults a lab laptop meets: a full disk, a read-only folder, two runs into one folder.

File-system faults are simulated without root in two ways: ``os.open`` and
``os.write`` patched to fail with a chosen errno from the n-th call on (a disk
that fills up stays full), and, in subprocesses, a real file-size limit
(``RLIMIT_FSIZE``), which makes the kernel refuse writes past it (``EFBIG``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_checkpoint_safety import PROBE, small_classifier

from conftest import ROOT, read_json, run_failing, run_script, start_python
from semg_hht.errors import EXIT_USAGE, EXIT_WRITE_FAILED, WriteError
from semg_hht.io.folder_lock import LOCK_NAME, FolderInUseError, folder_lock
from semg_hht.model.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint

REASONS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its content."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


class FailingWrites:
    """``os.open`` for writing and ``os.write`` that fail with ``error`` from call ``first_failure`` on.

    ``first_failure=None`` fails nothing and only counts the calls.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: int, first_failure: int | None):
        self.error, self.first_failure, self.calls = error, first_failure, 0
        real_open, real_write = os.open, os.write

        def failing_open(path, flags, *args, **kwargs):
            if flags & WRITE_FLAGS:
                self._count(path)
            return real_open(path, flags, *args, **kwargs)

        def failing_write(descriptor, data):
            self._count(descriptor)
            return real_write(descriptor, data)

        monkeypatch.setattr(os, "open", failing_open)
        monkeypatch.setattr(os, "write", failing_write)

    def _count(self, what) -> None:
        self.calls += 1
        if self.first_failure is not None and self.calls >= self.first_failure:
            raise OSError(self.error, os.strerror(self.error), str(what))


@pytest.fixture()
def saved_twice(tmp_path):
    """``latest`` saved from classifier 1, then 2: a checkpoint and its ``.previous/``."""
    prefix = tmp_path / "latest"
    for seed in (1, 2):
        classifier = small_classifier(seed)
        save_checkpoint(prefix, classifier, CheckpointMetadata.of(classifier))
    return prefix


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS], ids=["full disk", "read-only"])
def test_a_save_failing_at_any_write_leaves_the_folder_exactly_as_it_was(saved_twice, monkeypatch, error):
    prefix, folder = saved_twice, saved_twice.parent
    before = folder_state(folder)
    replacement = small_classifier(3)
    elsewhere = folder / "elsewhere"
    with monkeypatch.context() as patch:
        counting = FailingWrites(patch, error, None)
        save_checkpoint(elsewhere / "latest", replacement, CheckpointMetadata.of(replacement))
    shutil.rmtree(elsewhere)
    writes_in_a_save = counting.calls
    assert writes_in_a_save == 12, "each of the six files (five and the manifest) is opened and written"

    for first_failure in range(1, writes_in_a_save + 1):
        with monkeypatch.context() as patch:
            FailingWrites(patch, error, first_failure)
            with pytest.raises(WriteError) as raised:
                save_checkpoint(prefix, replacement, CheckpointMetadata.of(replacement))
        message = str(raised.value)
        assert message.startswith(f"cannot write {folder}") and REASONS[error] in message, message
        assert "nothing was saved" in message and "\n" not in message
        assert folder_state(folder) == before, f"a save failing at write {first_failure} changed the folder"

    loaded, _ = load_checkpoint(prefix)
    np.testing.assert_array_equal(
        loaded.predict_proba_features(PROBE), small_classifier(2).predict_proba_features(PROBE)
    )


def test_a_save_is_refused_before_writing_when_the_disk_has_no_room(saved_twice, monkeypatch):
    folder = saved_twice.parent
    before = folder_state(folder)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000))
    counting = FailingWrites(monkeypatch, errno.ENOSPC, None)
    with pytest.raises(WriteError, match=r"not enough free space; it needs \d+\.\d\d MB and .* has 0\.00 MB free"):
        save_checkpoint(saved_twice, small_classifier(3), CheckpointMetadata.of(small_classifier(3)))
    assert counting.calls == 0 and folder_state(folder) == before


def test_a_rename_failing_during_the_commit_puts_the_replaced_checkpoint_back(saved_twice, monkeypatch):
    prefix, folder = saved_twice, saved_twice.parent
    expected = small_classifier(2).predict_proba_features(PROBE)
    replacement = small_classifier(3)
    real_replace = os.replace
    for failing_call in range(1, 30):
        calls = [0]

        def failing_replace(source, target, *, _failing=failing_call, _calls=calls):
            _calls[0] += 1
            if _calls[0] == _failing:
                raise OSError(errno.EIO, "Input/output error")
            return real_replace(source, target)

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", failing_replace)
            try:
                save_checkpoint(prefix, replacement, CheckpointMetadata.of(replacement))
            except WriteError as error:
                assert "Input/output error" in str(error)
            else:
                break
        loaded, _ = load_checkpoint(prefix)
        np.testing.assert_array_equal(loaded.predict_proba_features(PROBE), expected)
        assert not list(folder.rglob(".*.tmp"))
    assert failing_call > 10, "the renames of .previous/ and of the checkpoint were each made to fail"
    loaded, _ = load_checkpoint(prefix)
    np.testing.assert_array_equal(loaded.predict_proba_features(PROBE), replacement.predict_proba_features(PROBE))


# --- the scripts ----------------------------------------------------------------------------


def run_limited(limit_bytes: int, script: str, *args) -> subprocess.CompletedProcess:
    """A script under a real file-size limit: the kernel refuses writes past ``limit_bytes`` (EFBIG)."""

    import resource  # POSIX: the slow tests that use it run on Linux and macOS only

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    command = [sys.executable, str(ROOT / script), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, preexec_fn=limit)


def assert_one_line_error(result: subprocess.CompletedProcess, *parts: str) -> str:
    assert result.returncode == EXIT_WRITE_FAILED, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


@pytest.fixture()
def trained_copy(trained, tmp_path) -> Path:
    """A copy of a folder train.py wrote (seed 42), to be written into again."""
    folder = tmp_path / "checkpoints"
    shutil.copytree(trained[0], folder)
    return folder


TRAIN = ("--epochs", "0", "--cpu", "--seed", "7")


@pytest.mark.parametrize("error", ["ENOSPC", "EROFS"])
@pytest.mark.slow
def test_train_py_that_cannot_save_says_why_and_changes_nothing(sample_dir, trained_copy, error):
    before = folder_state(trained_copy)
    result = run_failing(
        error, ".final_", "train.py", "--data_dir", sample_dir, "--checkpoint_dir", trained_copy, "--overwrite", *TRAIN
    )
    reason = REASONS[getattr(errno, error)]
    assert_one_line_error(result, f"cannot write {trained_copy}", reason, "nothing was saved")
    assert folder_state(trained_copy) == before


@pytest.mark.slow
def test_train_py_into_a_read_only_folder_stops_before_training(sample_dir, trained_copy):
    before = folder_state(trained_copy)
    result = run_failing(
        "EROFS",
        LOCK_NAME,
        "train.py",
        "--data_dir",
        sample_dir,
        "--checkpoint_dir",
        trained_copy,
        "--overwrite",
        *TRAIN,
    )
    assert_one_line_error(result, f"cannot write {trained_copy}: read-only file system; choose a folder")
    assert "Loading data" not in result.stdout
    assert folder_state(trained_copy) == before


@pytest.mark.slow
def test_train_py_under_a_file_size_limit_leaves_no_partial_file(sample_dir, trained_copy):
    before = folder_state(trained_copy)
    result = run_limited(
        100_000, "train.py", "--data_dir", sample_dir, "--checkpoint_dir", trained_copy, "--overwrite", *TRAIN
    )
    assert_one_line_error(result, "file too large", "nothing was saved")
    assert folder_state(trained_copy) == before


@pytest.mark.slow
def test_train_py_keeps_test_predictions_it_cannot_write(sample_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    result = run_failing(
        "ENOSPC", ".test_predictions", "train.py", "--data_dir", sample_dir, "--checkpoint_dir", folder, *TRAIN
    )
    assert_one_line_error(result, "test_predictions.json: no space left on device", "printed on stdout instead")
    printed = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert sorted(printed) == ["BICEPS_test_001.npz", "FOREARM_test_003.npz", "TRICEPS_test_002.npz", "errors"]
    load_checkpoint(folder / "final")
    assert not list(folder.rglob(".*.tmp"))


@pytest.mark.slow
def test_inference_output_onto_a_full_disk_prints_the_predictions(trained, sample_dir, tmp_path):
    output = tmp_path / "predictions.json"
    args = ("--checkpoint", trained[0], "--input", sample_dir, "--output", output, "--cpu")
    result = run_failing("ENOSPC", ".predictions.json", "inference.py", *args)
    assert_one_line_error(result, f"cannot write {output}: no space left on device", "printed on stdout instead")
    printed = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert len(printed) == 34 and printed["errors"] == {}
    assert not output.exists() and not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_inference_output_into_a_read_only_folder_is_refused_before_predicting(trained, sample_dir, tmp_path):
    args = ("--checkpoint", trained[0], "--input", sample_dir, "--output", tmp_path / "p.json", "--cpu")
    result = run_failing("EROFS", ".write-test", "inference.py", *args)
    assert_one_line_error(result, f"cannot write {tmp_path}: read-only file system")
    assert "Loading model" not in result.stdout


@pytest.mark.slow
def test_sample_data_onto_a_full_disk_gives_one_message_and_no_partial_file(tmp_path):
    out = tmp_path / "data"
    result = run_limited(100_000, "generate_sample_data.py", "--output_dir", out, "--n_samples", "4", "--workers", "2")
    assert_one_line_error(result, "file too large", "incomplete and has no labels.csv")
    assert not (out / "labels.csv").exists() and not list(out.glob(".*"))


@pytest.mark.slow
def test_compute_hht_onto_a_full_disk_names_each_file(tmp_path):
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(0).normal(size=2000))
    out = tmp_path / "out"
    result = run_limited(100_000, "compute_hht.py", "--input", tmp_path, "--output_dir", out, "--fs", "1000")
    assert result.returncode == EXIT_WRITE_FAILED and "Traceback" not in result.stderr, result.stderr
    for name in ("a", "b"):
        assert f"Error: {tmp_path / name}.npy: cannot write {name}.npz: file too large" in result.stderr
    assert "the outputs of 2 file(s) could not be written" in result.stderr
    assert not out.exists(), "the output folder the run created is removed again: nothing could be written into it"


# --- one writer per folder --------------------------------------------------------------------


def test_a_locked_folder_refuses_a_second_holder_and_is_tidy_after(tmp_path):
    folder = tmp_path / "new"
    with folder_lock(folder, "first"):
        content = (folder / LOCK_NAME).read_text().split("\n")
        assert content[0] == str(os.getpid()) and content[1] == "first"
        with pytest.raises(
            FolderInUseError, match=f"{folder} is in use by another run \\(process {os.getpid()}, first"
        ):
            with folder_lock(folder, "second"):
                pass
    assert not folder.exists(), "a folder the lock created and nothing was written into is removed"
    with folder_lock(folder, "again"):
        (folder / "kept.txt").write_text("x")
        (folder / ".notes.tmp").write_text("the user's")
        (folder / ".final_encoder.pt.k3j_9x2a.tmp").write_text("a killed save's")
    # Released: the run's own writers are done, so a temporary of one killed during it goes (a Dask worker's).
    assert sorted(os.listdir(folder)) == [".notes.tmp", "kept.txt"]
    (folder / ".final_encoder.pt.k3j_9x2a.tmp").write_text("a save killed after the release")
    with folder_lock(folder, "the next run"):
        assert sorted(os.listdir(folder)) == sorted([LOCK_NAME, ".notes.tmp", "kept.txt"])


def _start_train(sample_dir: Path, folder: Path, seed: int) -> subprocess.Popen:
    arguments = ["--data_dir", sample_dir, "--checkpoint_dir", folder, "--epochs", "0", "--cpu", "--seed", str(seed)]
    return start_python(ROOT / "train.py", *arguments, pipe="stderr")


def _wait_for_lock(folder: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if (folder / LOCK_NAME).read_text().split("\n")[0] == str(process.pid):
                return
        except FileNotFoundError:
            pass
        assert process.poll() is None, "the run ended before it held the lock"
        time.sleep(0.01)
    raise AssertionError("the run never held the lock")


def assert_one_run_wrote(folder: Path, seed: int) -> None:
    """Checkpoints, report and predictions of ``folder`` all come from the run with ``seed``."""
    report = read_json(folder / "report.json")
    assert report["settings"]["seed"] == seed
    for name in ("final", "latest"):
        manifest = hashlib.sha256((folder / f"{name}_manifest.json").read_bytes()).hexdigest()
        assert report["checkpoints"][name]["manifest_sha256"] == manifest
        assert load_checkpoint(folder / name)[1].seed == seed
    assert not (folder / ".previous").exists() and not (folder / LOCK_NAME).exists()


@pytest.mark.slow
def test_a_second_train_py_into_a_folder_in_use_is_refused(sample_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    first = _start_train(sample_dir, folder, seed=1)
    _wait_for_lock(folder, first)
    first.send_signal(signal.SIGSTOP)  # holds the lock for as long as the second run needs
    try:
        second = run_script("train.py", "--data_dir", sample_dir, "--checkpoint_dir", folder, *TRAIN)
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == EXIT_USAGE
    assert f"Error: {folder} is in use by another run (process {first.pid}, train.py, since " in second.stderr
    assert_one_run_wrote(folder, seed=1)


@pytest.mark.slow
def test_two_train_py_started_together_one_trains_the_other_refuses(sample_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    runs = {seed: _start_train(sample_dir, folder, seed) for seed in (1, 2)}
    results = {seed: (run.communicate(timeout=300)[1], run.returncode)[::-1] for seed, run in runs.items()}
    winners = [seed for seed, (code, _) in results.items() if code == 0]
    losers = [seed for seed, (code, _) in results.items() if code == EXIT_USAGE]
    assert len(winners) == 1 and len(losers) == 1, results
    refusal = results[losers[0]][1]
    # Started together the second one finds the lock; on a slow machine it may find the first run's checkpoints.
    assert "is in use by another run" in refusal or "Checkpoints already exist" in refusal, refusal
    assert_one_run_wrote(folder, seed=winners[0])


@pytest.mark.slow
def test_a_killed_lock_holder_does_not_block_the_next_run(sample_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    killed = _start_train(sample_dir, folder, seed=1)
    _wait_for_lock(folder, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert (folder / LOCK_NAME).exists(), "the kill landed while the run held the lock, leaving its file"
    result = run_script(
        "train.py", "--data_dir", sample_dir, "--checkpoint_dir", folder, "--overwrite", "--epochs", "0", "--cpu"
    )
    assert result.returncode == 0, result.stderr
    assert not (folder / LOCK_NAME).exists() and not list(folder.rglob(".*.tmp"))
