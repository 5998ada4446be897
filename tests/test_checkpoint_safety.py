"""Checkpoints survive crashes, refuse corruption and tampering, and older ones keep loading."""

import hashlib
import io
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.svm import SVC

from conftest import ROOT, run_script, start_python
from semg_hht.classes import CLASS_NAMES
from semg_hht.model.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    load_metadata,
    previous_prefix,
    save_checkpoint,
    verify_manifest,
)
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import build_encoder

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROBE = np.random.default_rng(99).normal(size=(8, 256))


def small_classifier(seed: int) -> HHTClassifier:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(24, 256)) + np.repeat(np.arange(6), 4)[:, None]
    return HHTClassifier(features="cnn", model="joint", seed=seed).fit_features(features, np.repeat(np.arange(6), 4))


@pytest.fixture()
def two_saves(tmp_path):
    """``latest`` saved twice, from classifiers A then B."""
    a, b = small_classifier(1), small_classifier(2)
    prefix = tmp_path / "latest"
    save_checkpoint(prefix, a, CheckpointMetadata.of(a))
    save_checkpoint(prefix, b, CheckpointMetadata.of(b))
    return prefix, a, b


def test_manifest_records_every_file(two_saves):
    prefix, _, b = two_saves
    manifest = verify_manifest(prefix)
    assert set(manifest["files"]) == {
        "latest_encoder.pt",
        "latest_scaler.pkl",
        "latest_svm.pkl",
        "latest_head.npz",
        "latest_metadata.pkl",
    }
    assert manifest["class_names"] == list(CLASS_NAMES) and manifest["format_version"] == 2
    assert set(manifest["versions"]) >= {"torch", "scikit-learn", "numpy", "semg_hht"}
    loaded, _ = load_checkpoint(prefix)
    np.testing.assert_array_equal(loaded.predict_proba_features(PROBE), b.predict_proba_features(PROBE))


def test_previous_checkpoint_is_kept(two_saves):
    prefix, a, _ = two_saves
    loaded, _ = load_checkpoint(previous_prefix(prefix))
    np.testing.assert_array_equal(loaded.predict_proba_features(PROBE), a.predict_proba_features(PROBE))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:-1] + bytes([p.read_bytes()[-1] ^ 1])), "does not match"),
        (lambda p: p.unlink(), "missing"),
    ],
)
@pytest.mark.parametrize("part", ["_encoder.pt", "_svm.pkl", "_head.npz", "_metadata.pkl"])
def test_damaged_file_is_refused_by_name(tmp_path, damage, message, part):
    classifier = small_classifier(1)
    prefix = tmp_path / "final"
    save_checkpoint(prefix, classifier, CheckpointMetadata.of(classifier))
    damage(Path(str(prefix) + part))
    with pytest.raises(CheckpointError) as caught:
        verify_manifest(prefix)
    assert message in str(caught.value) and f"final{part}" in str(caught.value)
    with pytest.raises(CheckpointError):
        load_checkpoint(prefix)


def test_files_mixed_from_two_runs_fall_back_to_the_previous(two_saves, tmp_path, capsys):
    prefix, a, _ = two_saves
    other = small_classifier(3)
    save_checkpoint(tmp_path / "other" / "latest", other, CheckpointMetadata.of(other))
    shutil.copy(tmp_path / "other" / "latest_svm.pkl", tmp_path / "latest_svm.pkl")
    with pytest.raises(CheckpointError, match="latest_svm.pkl: content does not match"):
        verify_manifest(prefix)
    loaded, _ = load_checkpoint(prefix)
    assert "loading the checkpoint it replaced" in capsys.readouterr().err
    np.testing.assert_array_equal(loaded.predict_proba_features(PROBE), a.predict_proba_features(PROBE))


def rewrite_with_manifest(prefix: Path, suffix: str, content: bytes) -> None:
    """Replace one file and its manifest record, as a hostile author could."""
    path = Path(str(prefix) + suffix)
    path.write_bytes(content)
    manifest_path = Path(str(prefix) + "_manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path.name] = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    manifest_path.write_text(json.dumps(manifest))


class _Marker:
    def __reduce__(self):
        return (os.system, ("touch unpickled_marker",))


def test_hostile_head_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    classifier = small_classifier(1)
    prefix = tmp_path / "final"
    save_checkpoint(prefix, classifier, CheckpointMetadata.of(classifier))
    arrays = classifier.head_.to_arrays()
    arrays["mean"] = np.array([_Marker()] * 256, dtype=object)
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    rewrite_with_manifest(prefix, "_head.npz", stream.getvalue())
    with pytest.raises(CheckpointError, match="final_head.npz: not a valid head.*object array"):
        load_checkpoint(prefix)
    assert not (tmp_path / "unpickled_marker").exists()
    arrays = classifier.head_.to_arrays()
    arrays["dual_coef"] = arrays["dual_coef"][:, :-1]
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    rewrite_with_manifest(prefix, "_head.npz", stream.getvalue())
    with pytest.raises(CheckpointError, match="inconsistent SVM arrays: dual_coef"):
        load_checkpoint(prefix)


@pytest.mark.slow
def test_loading_and_predicting_needs_no_scikit_learn(tmp_path):
    classifier = small_classifier(1)
    save_checkpoint(tmp_path / "final", classifier, CheckpointMetadata.of(classifier))
    code = (
        "import sys, numpy as np\n"
        "from semg_hht.model.checkpoint import load_checkpoint\n"
        f"classifier, _ = load_checkpoint({str(tmp_path / 'final')!r})\n"
        "classifier.predict_proba_features(np.zeros((2, 256)))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'joblib', 'scipy')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_resaving_a_loaded_checkpoint_keeps_its_pickles(two_saves, tmp_path):
    prefix, _, b = two_saves
    loaded, metadata = load_checkpoint(prefix)
    save_checkpoint(tmp_path / "copy", loaded, metadata)
    for suffix in ("_scaler.pkl", "_svm.pkl", "_head.npz"):
        assert Path(f"{tmp_path / 'copy'}{suffix}").read_bytes() == Path(f"{prefix}{suffix}").read_bytes()
    again, _ = load_checkpoint(tmp_path / "copy")
    np.testing.assert_array_equal(again.predict_proba_features(PROBE), b.predict_proba_features(PROBE))


def test_release_0_1_checkpoint_still_loads_with_the_same_predictions(capsys):
    expected = json.loads((FIXTURES / "checkpoint_v1" / "expected.json").read_text())
    probe = np.stack([np.random.default_rng(s).random((256, 256), dtype=np.float32) for s in expected["probe_seeds"]])
    classifier, metadata = load_checkpoint(FIXTURES / "checkpoint_v1" / "final")
    assert "without a manifest" in capsys.readouterr().err
    assert (metadata.format_version, metadata.schema_version) == (1, 1)
    np.testing.assert_allclose(classifier.predict_proba(probe), expected["probabilities"], atol=1e-6)
    with pytest.raises(CheckpointError, match="--safe"):
        load_checkpoint(FIXTURES / "checkpoint_v1" / "final", safe=True)


def original_layout_checkpoint(directory: Path) -> tuple[Path, HHTClassifier, np.ndarray, SVC]:
    """A checkpoint as the original project wrote it: pickles and an alphabetical LabelEncoder."""
    encoder = build_encoder(0)
    features = np.random.default_rng(5).normal(size=(36, 256)) + np.repeat(np.arange(6), 6)[:, None]
    names = [CLASS_NAMES[i] for i in np.repeat(np.arange(6), 6)]
    label_encoder = LabelEncoder().fit(list(CLASS_NAMES))  # classes_: F_full, F_half, ... M_invalid
    scaler = StandardScaler().fit(features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        svm = SVC(C=10.0, probability=True, random_state=0).fit(
            scaler.transform(features), label_encoder.transform(names)
        )
    prefix = directory / "final"
    torch.save(encoder.state_dict(), f"{prefix}_encoder.pt")
    for suffix, value in (("_scaler.pkl", scaler), ("_svm.pkl", svm)):
        with open(f"{prefix}{suffix}", "wb") as stream:
            pickle.dump(value, stream)
    metadata = {
        "epoch": 0,
        "history": {"train_acc": [np.float64(1.0)], "val_acc": [np.float64(0.9)]},
        "is_fitted": True,
        "label_encoder": label_encoder,
    }
    with open(f"{prefix}_metadata.pkl", "wb") as stream:
        pickle.dump(metadata, stream)
    return prefix, label_encoder, features, svm


def test_original_project_checkpoint_loads_with_correct_class_names(tmp_path):
    prefix, label_encoder, features, svm = original_layout_checkpoint(tmp_path)
    classifier, metadata = load_checkpoint(prefix)
    assert list(load_metadata(f"{prefix}_metadata.pkl")["label_encoder"].classes_) == sorted(CLASS_NAMES)
    ours = classifier.predict_proba_features(features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs = svm.predict_proba(classifier.scaler_.transform(features))
    for class_id, name in enumerate(CLASS_NAMES):
        np.testing.assert_allclose(ours[:, class_id], theirs[:, list(label_encoder.classes_).index(name)])
    # Files 0-5 are M_full: the original's label 3, our class 0.
    assert (classifier.predict_features(features[:6]) == 0).mean() >= 0.5


@pytest.mark.slow
def test_original_project_checkpoint_works_in_inference_cli(tmp_path):
    prefix, *_ = original_layout_checkpoint(tmp_path)
    np.savez(tmp_path / "x.npz", hht=np.random.default_rng(0).random((256, 256)))
    result = run_script("inference.py", "--checkpoint", prefix, "--input", tmp_path / "x.npz", "--cpu")
    assert result.returncode == 0, result.stderr
    assert "Prediction: " in result.stdout and "source you trust" in result.stderr
    refused = run_script("inference.py", "--checkpoint", prefix, "--input", tmp_path / "x.npz", "--cpu", "--safe")
    assert refused.returncode == 2 and "--safe" in refused.stderr and "Traceback" not in refused.stderr


def test_metadata_with_code_is_refused(tmp_path):
    classifier = small_classifier(1)
    prefix = tmp_path / "final"
    save_checkpoint(prefix, classifier, CheckpointMetadata.of(classifier))
    (tmp_path / "final_manifest.json").unlink()
    with open(tmp_path / "final_metadata.pkl", "wb") as stream:
        pickle.dump({"class_names": list(CLASS_NAMES), "hook": os.system}, stream)
    with pytest.raises(CheckpointError, match="refusing to load posix.system"):
        load_checkpoint(prefix)


SAVE_LOOP = """
import json, os, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from test_checkpoint_safety import PROBE, small_classifier
from semg_hht.model.checkpoint import CheckpointMetadata, save_checkpoint
# Each rename waits a little, so that a kill often lands between the renames of one save (its files
# half replaced); which files are renamed, and in what order, is the save code's own.
real_replace = os.replace
def slow_replace(*args, **kwargs):
    real_replace(*args, **kwargs)
    time.sleep({pause!r})
os.replace = slow_replace
classifiers = [small_classifier(1), small_classifier(2)]
with open({expected!r}, "w") as stream:
    json.dump([c.predict_proba_features(PROBE).tolist() for c in classifiers], stream)
i = 0
while True:
    save_checkpoint({prefix!r}, classifiers[i % 2], CheckpointMetadata.of(classifiers[i % 2], epoch=i))
    if i == 1:
        print("ready", flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_while_saving_never_loses_the_checkpoint(tmp_path, capsys):
    """Kill a process that does nothing but save, at random moments, until kills have landed mid-save."""
    prefix, expected_path = tmp_path / "latest", tmp_path / "expected.json"
    script = tmp_path / "save_loop.py"
    source = SAVE_LOOP.format(root=str(ROOT / "tests"), expected=str(expected_path), prefix=str(prefix), pause=0.02)
    script.write_text(source)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(0)
    kills, fell_back = 0, 0
    # At least 4 kills at random moments, and on until 2 of them have landed mid-save (at most 20).
    while kills < 4 or (fell_back < 2 and kills < 20):
        with start_python(script, pipe="stdout", env=env) as child:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.3))
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        kills += 1
        # Told apart from the loader: a kill between a save's renames leaves files its manifest does not match.
        try:
            verify_manifest(prefix)
            mid_save = False
        except CheckpointError:
            mid_save = True
        expected = json.loads(expected_path.read_text())
        loaded, metadata = load_checkpoint(prefix)
        used_previous = "loading the checkpoint it replaced" in capsys.readouterr().err
        assert used_previous == mid_save, "the previous checkpoint is loaded exactly when the latest is half saved"
        fell_back += used_previous
        got = loaded.predict_proba_features(PROBE)
        assert any(np.array_equal(got, np.array(e)) for e in expected), "a loaded checkpoint mixes two saves"
        assert isinstance(metadata.epoch, int)
    print(f"{kills} kills, {fell_back} landed mid-save and fell back to the previous checkpoint")
    assert fell_back >= 2, f"only {fell_back} of {kills} kills landed mid-save: the fallback was not exercised"


# Runs train.py with every rename into the checkpoint folder announced on stderr and followed by a
# pause, so that a kill sent on seeing one lands in the middle of that save (argv: folder, pause, script...).
ANNOUNCED_RENAMES = """
import os, runpy, sys, time
folder, pause = os.path.realpath(sys.argv[1]), float(sys.argv[2])
sys.argv = sys.argv[3:]
real_replace = os.replace
def announced_replace(source, target, *args, **kwargs):
    real_replace(source, target, *args, **kwargs)
    if os.path.dirname(os.path.realpath(target)) == folder:
        print(f"renamed {os.path.basename(target)}", file=sys.stderr, flush=True)
        time.sleep(pause)
os.replace = announced_replace
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _kill_train_py_after(renamed: str, sample_dir: Path, folder: Path, pause: float) -> None:
    """Run train.py (seed 7) into ``folder`` and SIGKILL it as soon as it has renamed ``renamed`` into place."""
    command = ["-c", ANNOUNCED_RENAMES, str(folder), str(pause), str(ROOT / "train.py")]
    command += ["--epochs", "0", "--data_dir", str(sample_dir), "--checkpoint_dir", str(folder)]
    command += ["--overwrite", "--cpu", "--seed", "7"]
    with start_python(*command, pipe="stderr") as child:
        for line in child.stderr:
            if line.strip() == f"renamed {renamed}":
                child.send_signal(signal.SIGKILL)
                break
        child.wait(timeout=300)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL, f"train.py ended ({child.returncode}) before it renamed {renamed}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["latest", "final"])
def test_sigkill_during_train_py_keeps_a_loadable_checkpoint(sample_dir, trained, tmp_path, capsys, name):
    """A kill in the middle of train.py's save of ``name`` (seed 7, over the seed-42 run's checkpoints)."""
    checkpoint_dir, _ = trained
    # The last file renamed before the manifest: the kill leaves ``name`` half replaced. The pause is
    # lengthened until the kill lands before the manifest's rename (a busy machine reacts late).
    for attempt, pause in enumerate((0.5, 2.0, 5.0)):
        folder = tmp_path / f"attempt{attempt}"
        shutil.copytree(checkpoint_dir, folder)
        _kill_train_py_after(f"{name}_metadata.pkl", sample_dir, folder, pause)
        try:
            verify_manifest(folder / name)
        except CheckpointError:
            break
    else:
        pytest.fail(f"no kill landed in the middle of the save of {name}")
    capsys.readouterr()
    for prefix in ("latest", "final"):
        classifier, metadata = load_checkpoint(folder / prefix)
        probe = np.random.default_rng(99).normal(size=(8, len(classifier.feature_names)))
        assert classifier.predict_proba_features(probe).shape == (8, 6)
        if prefix == name:
            assert "loading the checkpoint it replaced" in capsys.readouterr().err
            assert metadata.seed == 42, "the half-saved checkpoint falls back to the one it was replacing"
