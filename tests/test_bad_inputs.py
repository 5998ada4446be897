"""The bad-input catalogue: every case gets a message naming the file and the reason, and the run goes on.

Each case is checked three ways: the loader alone, inference.py over a folder holding every case at once,
and train.py over labelled files holding every case at once.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import mutated, random_matrix, read_json, run_script
from semg_hht.classes import parse_filename
from semg_hht.data.dataset import scan_data_folder
from semg_hht.io.matrices import MatrixFileError, load_matrix

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def npz(**arrays) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def truncated(path: Path) -> None:
    np.savez(path, hht=random_matrix())
    path.write_bytes(path.read_bytes()[:4000])


def object_array(path: Path) -> None:
    array = np.empty((256, 256), dtype=object)
    array[:] = 1.0
    np.savez(path, hht=array)


def zip_without_arrays(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


def symlink_loop(path: Path) -> None:
    os.symlink(path.name, path)


def dangling_symlink(path: Path) -> None:
    os.symlink("does-not-exist.npz", path)


def named_pipe(path: Path) -> None:
    os.mkfifo(path)


def near_float32_max(path: Path) -> None:
    np.savez(path, hht=random_matrix() * np.float32(3.0e38))


# case -> (how to make the file, the reason it is refused; None: accepted)
CASES: dict[str, tuple[Callable[[Path], None], str | None]] = {
    "zero_bytes": (raw(b""), "the file is empty"),
    "truncated_zip": (truncated, "damaged .npz"),
    "text_renamed": (raw(b"time,emg\n0,0.1\n"), "not an .npz"),
    "png_renamed": (raw(PNG_HEADER + bytes(200)), "not an .npz"),
    "directory": (lambda path: path.mkdir(), "not a regular file (a directory)"),
    "named_pipe": (named_pipe, "not a regular file (a pipe"),
    "symlink_loop": (symlink_loop, "cannot be read: Too many levels of symbolic links"),
    "dangling_symlink": (dangling_symlink, "cannot be read: No such file"),
    "object_array": (object_array, "object array"),
    "empty_archive": (npz(), "the archive is empty"),
    "zip_without_arrays": (zip_without_arrays, "holds no NumPy arrays"),
    "two_unnamed_arrays": (npz(a=random_matrix(1), b=random_matrix(2)), "2 2-D arrays"),
    "shape_128": (npz(hht=np.ones((128, 128))), "shape (128, 128)"),
    "shape_rgb": (npz(hht=np.ones((256, 256, 3))), "shape (256, 256, 3)"),
    "shape_1d": (npz(hht=np.ones(256)), "shape (256,)"),
    "complex": (npz(hht=random_matrix().astype(complex)), "not a real number type"),
    "bool": (npz(hht=random_matrix() > 0.5), "not a real number type"),
    "string": (npz(hht=np.full((256, 256), "a")), "not a real number type"),
    "nan": (npz(hht=np.where(random_matrix() > 0.99, np.nan, 1.0)), "NaN or infinite"),
    "plus_inf": (npz(hht=np.where(random_matrix() > 0.99, np.inf, 1.0)), "NaN or infinite"),
    "minus_inf": (npz(hht=np.where(random_matrix() > 0.99, -np.inf, 1.0)), "NaN or infinite"),
    "float32_overflow": (npz(hht=random_matrix().astype(np.float64) * 1e39), "NaN or infinite"),
    "all_zero": (npz(hht=np.zeros((256, 256))), "the matrix is constant"),
    "all_constant": (npz(hht=np.full((256, 256), 5.0)), "the matrix is constant"),
    # Accepted:
    "channel_first": (npz(hht=random_matrix()[None]), None),
    "channel_last": (npz(hht=random_matrix()[..., None]), None),
    "integers": (npz(hht=(random_matrix() * 1000).astype(np.int16)), None),
    "compressed": (lambda path: np.savez_compressed(path, hht=random_matrix()), None),
    "fortran_order": (npz(hht=np.asfortranarray(random_matrix())), None),
    "spectrum_key": (npz(spectrum=random_matrix().astype(np.float64), time=np.linspace(0, 1, 256)), None),
}
# Finite in float32 but so large that the encoder overflows: refused when encoded, not when read
# (by a model with the CNN block; the descriptors stay finite).
WITH_CNN = ("--features", "cnn+hht")
ENCODER_CASES = {"near_float32_max": (near_float32_max, "overflows float32")}


POSIX_FILE_KINDS = {"named_pipe", "symlink_loop", "dangling_symlink"}
"""Cases that need what Windows lacks (named pipes in the file system) or keeps from ordinary users (symlinks)."""


@pytest.mark.parametrize("case", sorted(CASES))
def test_loader(case, tmp_path):
    if case in POSIX_FILE_KINDS and os.name != "posix":
        pytest.skip("needs a named pipe or a symlink, which this platform does not give an ordinary user")
    make, reason = CASES[case]
    path = tmp_path / f"{case}.npz"
    make(path)
    if reason is None:
        matrix = load_matrix(path)
        assert matrix.shape == (256, 256) and matrix.dtype == np.float32
        with np.load(path) as archive:  # the values numpy itself reads (Fortran order, compression, ints)
            stored = archive["hht" if "hht" in archive else "spectrum"]
        np.testing.assert_array_equal(matrix, stored.reshape(256, 256).astype(np.float32))
        return
    with pytest.raises(MatrixFileError) as caught:
        load_matrix(path)
    assert reason in caught.value.reason and str(path) in str(caught.value)


def test_unreadable_file(tmp_path, monkeypatch):
    # Permission bits do not bind root, so the refusal is simulated at open().
    path = tmp_path / "locked.npz"
    np.savez(path, hht=random_matrix())
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    with pytest.raises(MatrixFileError, match="cannot be read: Permission denied"):
        load_matrix(path)


def odd_names() -> dict[str, bytes]:
    return {
        "non_utf8": b"BICEPS_test_caf\xe9_\xff.npz",
        "long": ("DELTOID_test_" + "x" * 230 + ".npz").encode(),
        "spaces": b"FOREARM test 001 with spaces.npz",
    }


def make_catalogue(folder: Path, name_of: Callable[[str], str]) -> None:
    for case, (make, _) in {**CASES, **ENCODER_CASES}.items():
        make(folder / name_of(case))
    for raw_name in odd_names().values():
        with open(os.path.join(os.fsencode(folder), raw_name), "wb") as stream:
            np.savez(stream, hht=random_matrix(7))


def reported(text: str, name: str, reason: str) -> bool:
    return any(name in line and reason in line for line in text.splitlines())


def escaped(raw_name: bytes) -> str:
    return raw_name.decode("utf-8", errors="backslashreplace")


@pytest.fixture(scope="session")
def inference_run(sample_dir, tmp_path_factory):
    # The CNN block is there so the encoder's overflow is one of the cases; hht covers the descriptors.
    checkpoints = tmp_path_factory.mktemp("catalogue_checkpoints")
    trained = run_script("train.py", *("--data_dir", sample_dir, "--checkpoint_dir", checkpoints, "--cpu"), *WITH_CNN)
    assert trained.returncode == 0, trained.stderr
    folder = tmp_path_factory.mktemp("catalogue_inference")
    make_catalogue(folder, lambda case: f"{case}.npz")
    output = tmp_path_factory.mktemp("out") / "predictions.json"
    result = run_script("inference.py", "--checkpoint", checkpoints, "--input", folder, "--output", output, "--cpu")
    return result, read_json(output)


@pytest.mark.parametrize("case", sorted({**CASES, **ENCODER_CASES}))
@pytest.mark.slow
def test_inference_reports_each_case_and_goes_on(inference_run, case):
    result, document = inference_run
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = {**CASES, **ENCODER_CASES}[case][1]
    name = f"{case}.npz"
    if reason is None:
        assert document[name]["prediction"]
    else:
        assert reason in document["errors"][name]
        assert reported(result.stderr, name, reason)


@pytest.mark.slow
def test_inference_handles_odd_names(inference_run):
    result, document = inference_run
    for raw_name in odd_names().values():
        assert document[escaped(raw_name)]["prediction"]
    assert escaped(odd_names()["non_utf8"]) in result.stdout
    n_errors = sum(reason is not None for _, reason in {**CASES, **ENCODER_CASES}.values())
    assert len(document["errors"]) == n_errors


@pytest.mark.slow
def test_training_reports_each_case_and_goes_on(sample_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    make_catalogue(data, lambda case: f"BICEPS_full_M_{case}.npz")
    result = run_script(
        "train.py",
        "--epochs",
        "0",
        "--data_dir",
        data,
        "--checkpoint_dir",
        tmp_path / "checkpoints",
        "--cpu",
        *WITH_CNN,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    accepted = sum(reason is None for _, reason in CASES.values())
    assert f"Loaded {30 + accepted} training samples" in result.stdout
    summary = result.stderr[result.stderr.index("Skipped ") :]
    for case, (_, reason) in {**CASES, **ENCODER_CASES}.items():
        if reason is not None:
            assert reported(summary, f"BICEPS_full_M_{case}.npz: ", reason)
    assert (tmp_path / "checkpoints" / "final_manifest.json").exists()


@pytest.mark.slow
def test_hundred_thousand_file_listing(trained, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(100_000):
        (folder / f"BICEPS_test_{i:06d}.npz").touch()
    np.savez(folder / "BICEPS_test_zzz_valid.npz", hht=random_matrix())
    assert len(scan_data_folder(folder).test) == 100_001
    output = tmp_path / "many.json"
    result = run_script("inference.py", "--checkpoint", trained[0], "--input", folder, "--output", output, "--cpu")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    document = read_json(output)
    assert len(document["errors"]) == 100_000 and document["BICEPS_test_zzz_valid.npz"]["prediction"]


def valid_npz_bytes() -> bytes:
    stream = io.BytesIO()
    np.savez(stream, hht=random_matrix())
    return stream.getvalue()


VALID_NPZ = valid_npz_bytes()


@settings(max_examples=150)
@given(data=st.data())
def test_random_and_mutated_bytes_never_crash(tmp_path_factory, data):
    if data.draw(st.booleans(), label="mutate a valid file"):
        content = mutated(data, VALID_NPZ, 1, 8)
    else:
        content = data.draw(st.binary(max_size=2048), label="random bytes")
    path = tmp_path_factory.mktemp("fuzz") / "x.npz"
    path.write_bytes(content)
    try:
        matrix = load_matrix(path)
    except MatrixFileError as error:
        assert error.reason
    else:
        assert matrix.shape == (256, 256) and matrix.dtype == np.float32 and np.isfinite(matrix).all()


NAME_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")


@settings(max_examples=200)
@given(stem=st.text(NAME_CHARACTERS, min_size=1, max_size=60))
def test_random_file_names_are_labelled_or_explained(tmp_path_factory, stem):
    name = stem + ".npz"
    label = parse_filename(name)
    assert label.kind in ("labelled", "test", "unlabelled")
    assert (label.kind == "unlabelled") == bool(label.reason)
    folder = tmp_path_factory.mktemp("names")
    try:
        (folder / name).write_bytes(b"")
    except OSError:  # a name the file system refuses (too long in bytes) is not a case for the tool
        return
    scanned = scan_data_folder(folder)
    assert len(scanned.labelled) + len(scanned.test) + len(scanned.skipped) == 1


def test_a_header_claiming_gigabytes_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge_header.npz"
    # A version 2.0 .npy whose header-length field claims 2**31 bytes.
    member = b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{'descr': '<f4'}"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hht.npy", member)
    with pytest.raises(MatrixFileError, match="header claims 2147483648 bytes"):
        load_matrix(path)
