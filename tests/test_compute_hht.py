"""compute_hht.py: raw recordings to HHT matrix files; known answers, real data, bad inputs, usage errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REALDATA, ROOT, mutated, run_script
from semg_hht.cli.common import run_command
from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.hht.preprocessing import Preprocessing, preprocess
from semg_hht.hht.spectrum import frequency_axis
from semg_hht.hht.time_domain import SEGMENT_FEATURE_NAMES, segment_features
from semg_hht.io.matrices import load_matrix, load_matrix_file
from semg_hht.io.recordings import RecordingError, read_recording

FS = 1000.0
SCRIPT = "compute_hht.py"
PLUX = REALDATA / "plux-samples"
CONTRACTION = REALDATA / "contraction-intensity" / "S1"
OUTPUT_KEYS = {
    "channel",
    "recording",
    "unit",
    "preprocessing",
    "hht",
    "time",
    "frequency",
    "sampling_rate",
    "segment_index",
    "segment_start_s",
    "td_features",
    "duration_s",
}


def sine(frequency: float, seconds: float) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(round(seconds * FS)) / FS)


def noise(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(samples, channels) white noise: broadband, like sEMG."""
    return np.random.default_rng(seed).standard_normal((round(seconds * FS), channels))


def write_csv(path: Path, samples: np.ndarray, header: str | None = None, delimiter: str = ",") -> None:
    lines = ["# exported by a test"] + ([header] if header else [])
    lines += [delimiter.join(f"{value:.6g}" for value in row) for row in np.atleast_2d(samples.T).T]
    path.write_text("\n".join(lines) + "\n")


def strongest_row(matrix: np.ndarray) -> int:
    return int(np.argmax(matrix.sum(axis=1)))


def row_of(frequency: float) -> int:
    return int(np.argmin(np.abs(frequency_axis() - frequency)))


def reported(text: str, name: str, reason: str) -> bool:
    return any(name in line and reason in line for line in text.splitlines())


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sine_npy_gives_its_frequency_row_and_the_axes(tmp_path):
    np.save(tmp_path / "sine.npy", sine(100, 2))
    result = run_script(SCRIPT, "--input", tmp_path / "sine.npy", "--output_dir", tmp_path / "out", "--fs", "1000")
    assert result.returncode == 0, result.stderr
    assert "Converted 1 of 1 file: 1 matrix written" in result.stdout
    with np.load(tmp_path / "out" / "sine.npz", allow_pickle=False) as archive:
        assert set(archive.files) == OUTPUT_KEYS
        matrix = archive["hht"]
        assert matrix.shape == (256, 256) and matrix.dtype == np.float32
        assert abs(strongest_row(matrix) - row_of(100)) <= 1
        np.testing.assert_array_equal(archive["frequency"], frequency_axis())
        np.testing.assert_array_equal(archive["time"], np.linspace(0, 1, 256))
        assert archive["sampling_rate"].shape == () and archive["sampling_rate"] == 1000.0
        assert archive["segment_index"] == 0 and archive["segment_start_s"] == 0.0
        assert str(archive["channel"]) == "ch0" and str(archive["recording"]) == "sine" and str(archive["unit"]) == ""
        assert json.loads(str(archive["preprocessing"])) == {
            "remove_mean": True,
            "bandpass_hz": [20.0, 450.0],
            "bandpass": "Butterworth order 4, zero-phase",
            "notch_hz": None,
            "notch": None,
        }
    np.testing.assert_array_equal(load_matrix(tmp_path / "out" / "sine.npz"), matrix)


@pytest.mark.slow
def test_npz_rate_wins_over_fs_and_channels_first_is_transposed(tmp_path):
    # (channels, samples): the shorter axis is the channels one.
    np.savez(tmp_path / "rec.npz", emg=np.stack([sine(80, 2), sine(200, 2)]), fs=np.float64(FS))
    out = tmp_path / "out"
    result = run_script(SCRIPT, "--input", tmp_path, "--output_dir", out, "--fs", "5000", "--channel", "1")
    assert result.returncode == 0, result.stderr
    with np.load(out / "rec.npz") as archive:
        assert archive["sampling_rate"] == FS
        assert abs(strongest_row(archive["hht"]) - row_of(200)) <= 1


@pytest.mark.slow
def test_csv_with_header_and_two_columns(tmp_path):
    write_csv(tmp_path / "rec.CSV", np.column_stack([sine(60, 2), sine(150, 2)]), header="time;emg", delimiter=";")
    result = run_script(
        SCRIPT, "--input", tmp_path / "rec.CSV", "--output_dir", tmp_path / "out", "--fs", "1000", "--channel", "1"
    )
    assert result.returncode == 0, result.stderr
    assert abs(strongest_row(load_matrix(tmp_path / "out" / "rec.npz")) - row_of(150)) <= 1


@pytest.mark.slow
def test_windowing_names_and_starts(tmp_path):
    np.save(tmp_path / "BICEPS_full_M_001.npy", noise(10.5, channels=1)[:, 0])
    out = tmp_path / "out"
    args = ("--input", tmp_path, "--output_dir", out, "--fs", "1000", "--window", "2", "--hop", "1", "--workers", "1")
    result = run_script(SCRIPT, *args)
    assert result.returncode == 0, result.stderr
    # The trailing 1.5 s after the start at 8 s cannot hold a 2 s window: dropped.
    names = sorted(path.name for path in out.iterdir())
    assert names == [f"BICEPS_full_M_001_seg{index:03d}.npz" for index in range(9)]
    for index, name in enumerate(names):
        with np.load(out / name) as archive:
            assert archive["segment_index"] == index and archive["segment_start_s"] == float(index)


@pytest.mark.slow
def test_each_segment_stores_the_time_domain_features_of_its_own_samples(tmp_path):
    # A growing amplitude and a rising tone: every window has features of its own, so one taken
    # from the wrong samples would not match.
    t = np.arange(round(3.2 * FS)) / FS
    signal = (0.2 + t) * noise(3.2, channels=1, seed=5)[:, 0] + np.sin(2 * np.pi * (40 + 30 * t) * t)
    np.save(tmp_path / "rec.npy", signal)
    out = tmp_path / "out"
    args = ("--input", tmp_path / "rec.npy", "--output_dir", out, "--fs", "1000", "--window", "1", "--hop", "0.5")
    result = run_script(SCRIPT, *args, "--workers", "2")
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in out.iterdir())
    assert names == [f"rec_seg{index:03d}.npz" for index in range(5)]
    stored = []
    # The features are those of the preprocessed channel (mean removed, band-passed) the spectrum is made from.
    conditioned = preprocess(signal, FS, Preprocessing())
    for index, name in enumerate(names):
        start = index * 500
        expected = segment_features(conditioned[start : start + 1000])
        with np.load(out / name) as archive:
            assert archive["td_features"].shape == (len(SEGMENT_FEATURE_NAMES),) == (6,)
            assert archive["td_features"].dtype == np.float64
            np.testing.assert_array_equal(archive["td_features"], expected)
        record = load_matrix_file(out / name)
        np.testing.assert_array_equal(record.time_domain, expected)
        assert record.channel == "ch0" and record.recording == "rec"
        stored.append(record.time_domain)
    assert not np.array_equal(stored[0], stored[1])
    # Whole recordings store the features of all their samples.
    whole = run_script(SCRIPT, "--input", tmp_path / "rec.npy", "--output_dir", tmp_path / "whole", "--fs", "1000")
    assert whole.returncode == 0, whole.stderr
    whole_features = load_matrix_file(tmp_path / "whole" / "rec.npz").time_domain
    np.testing.assert_array_equal(whole_features, segment_features(conditioned))


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    np.save(tmp_path / "a.npy", noise(4.5, seed=1))
    np.save(tmp_path / "b.npy", noise(3.2, seed=2))
    common = ("--input", tmp_path, "--fs", "1000", "--window", "1", "--method", "eemd", "--ensembles", "2")
    outputs = {}
    for workers in ("1", "2"):
        outputs[workers] = tmp_path / f"out{workers}"
        result = run_script(SCRIPT, *common, "--output_dir", outputs[workers], "--workers", workers)
        assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in outputs["1"].iterdir())
    assert len(names) == 7 and names == sorted(path.name for path in outputs["2"].iterdir())
    for name in names:
        with np.load(outputs["1"] / name) as one, np.load(outputs["2"] / name) as two:
            for key in OUTPUT_KEYS:
                np.testing.assert_array_equal(one[key], two[key])
    # Each segment has its own noise: identical segments of two files still differ.
    with np.load(outputs["1"] / "a_seg000.npz") as first, np.load(outputs["1"] / "a_seg001.npz") as second:
        assert not np.array_equal(first["hht"], second["hht"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2\n3,4\n", [[1, 2], [3, 4]]),
        ("# rate 1000\nch0;ch1\n1,5;2\n3;4\n", None),  # ';' wins, so '1,5' is a bad cell
        ("# rate 1000\nch0;ch1\n1;2\n3;4\n", [[1, 2], [3, 4]]),
        ("a b\n1 2\n\n3\t4\n", [[1, 2], [3, 4]]),
        ("emg\n7\n# pause\n8\n", [[7], [8]]),
    ],
)
def test_csv_dialects(tmp_path, text, expected):
    path = tmp_path / "x.csv"
    path.write_text(text)
    if expected is None:
        with pytest.raises(ValueError, match="line 3, column 1: '1,5' is not a number"):
            read_recording(path)
    else:
        np.testing.assert_array_equal(samples_of(read_recording(path)), expected)


def test_npz_keys_and_orientation(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, signal=np.arange(6.0).reshape(3, 2), emg=np.zeros(3), sampling_rate=np.array([2000]))
    recording = read_recording(path)
    assert [channel.fs for channel in recording.channels] == [2000.0, 2000.0]
    np.testing.assert_array_equal(recording.channels[1].signal, [1, 3, 5])  # 3 samples x 2 channels, as stored


# --- real data -------------------------------------------------------------------------------


def check_real_matrices(paths: list[Path]) -> None:
    for path in paths:
        matrix = load_matrix(path)
        assert np.isfinite(matrix).all() and matrix.std() > 0


@pytest.mark.skipif(not PLUX.is_dir(), reason=f"real recordings not present ({PLUX})")
@pytest.mark.slow
def test_real_plux_recording_with_comment_line(tmp_path):
    out = tmp_path / "out"
    args = ("--input", PLUX / "emg_bursts_raw_adc.csv", "--output_dir", out, "--fs", "1000", "--window", "2")
    result = run_script(SCRIPT, *args)
    assert result.returncode == 0, result.stderr
    paths = sorted(out.iterdir())
    assert len(paths) == 14  # 28.5 s in 2 s windows
    check_real_matrices(paths)


@pytest.mark.skipif(not CONTRACTION.is_dir(), reason=f"real recordings not present ({CONTRACTION})")
@pytest.mark.slow
def test_real_eight_channel_csv(tmp_path):
    source = CONTRACTION / "S1_MVC_C2_R1.csv"
    result = run_script(SCRIPT, "--input", source, "--output_dir", tmp_path, "--fs", "1000", "--channel", "3")
    assert result.returncode == 0, result.stderr
    check_real_matrices([tmp_path / "S1_MVC_C2_R1.npz"])
    wrong = run_script(SCRIPT, "--input", source, "--output_dir", tmp_path / "w", "--fs", "1000", "--channel", "8")
    assert wrong.returncode == 1 and "channel 8 does not exist: the recording has 8 channels (0-7)" in wrong.stderr


# --- the bad-input catalogue: one folder, converted with --fs 1000 --window 1 --channel 1 -------


class Payload:
    """Unpickling this creates the marker file: proof that an object array was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def objects(marker: Path) -> np.ndarray:
    array = np.empty(2000, dtype=object)
    array[:] = [Payload(marker)] * 2000
    return array


def raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def npy(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array)


def npz(**arrays) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def csv(samples: np.ndarray) -> Callable[[Path], None]:
    return lambda path: write_csv(path, samples)


def with_channel_1(values: np.ndarray) -> np.ndarray:
    samples = noise(values.size / FS)
    samples[:, 1] = values
    return samples


def truncated(path: Path) -> None:
    np.save(path, noise(2))
    path.write_bytes(path.read_bytes()[:4000])


def truncated_zip(path: Path) -> None:
    np.savez(path, signal=noise(2), fs=FS)
    path.write_bytes(path.read_bytes()[:4000])


def flat_stretch(path: Path) -> None:
    samples = noise(5)
    samples[2000:3000, 1] = 0.0
    np.save(path, samples)


def huge_stretch(path: Path) -> None:
    # The band-pass spreads a huge stretch into its neighbours, decaying by about 1e-10 per 0.5 s
    # (its 450 Hz edge lies near the Nyquist frequency): segment 1 overflows with segment 2, segment 0 does not.
    samples = noise(3)
    samples[2000:, 1] *= 1e50
    np.save(path, samples)


def nan_at_100(path: Path) -> None:
    np.save(path, with_channel_1(np.where(np.arange(2000) == 100, np.nan, 1.0 * np.arange(2000) % 7)))


MARKER = "unpickled.marker"
# file name -> (how to make it, the reason it is refused)
CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty_csv.csv": (raw(b""), "the file is empty"),
    "empty_npy.npy": (raw(b""), "the file is empty"),
    "empty_npz.npz": (raw(b""), "the file is empty"),
    "text_npy.npy": (raw(b"1,2\n3,4\n"), "not a .npy array"),
    "text_npz.npz": (raw(b"1,2\n3,4\n"), "not an .npz (zip) archive"),
    "png.csv": (raw(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)), "text (CSV) file: it holds NUL bytes"),
    "truncated_npy.npy": (truncated, "is truncated"),
    "truncated_npz.npz": (truncated_zip, "damaged .npz (zip) archive"),
    "letters.csv": (raw(b"1,2\n3,abc\n"), "line 2, column 2: 'abc' is not a number"),
    "ragged.csv": (raw(b"1,2\n3,4,5\n"), "line 2 has 3 columns, line 1 has 2"),
    "empty_cell.csv": (raw(b"1,2\n3,\n"), "line 2, column 2: empty cell"),
    "header_only.csv": (raw(b"# comment\nch0,ch1\n"), "no samples"),
    "nan.npy": (nan_at_100, "1 non-finite sample(s) (NaN or inf), the first at sample 100"),
    "inf.csv": (csv(with_channel_1(np.full(2000, np.inf))), "non-finite sample(s)"),
    "short.csv": (csv(noise(0.5)), "shorter than one --window of 1 s"),
    "flat.npy": (npy(with_channel_1(np.full(2000, 5.0))), "channel 'ch1' is constant (5)"),
    "zeros.csv": (csv(with_channel_1(np.zeros(2000))), "channel 'ch1' is all zero"),
    "low_rate.npz": (npz(signal=noise(2), fs=np.float64(40)), "40 Hz leaves no band above --f_min 20 Hz"),
    "one_channel.npy": (npy(noise(2)[:, 0]), "channel 1 does not exist: the recording has 1 channel (0)"),
    "object_npy.npy": (lambda path: np.save(path, objects(path.parent / MARKER)), "object array, refused"),
    "object_npz.npz": (lambda path: np.savez(path, signal=objects(path.parent / MARKER)), "object array, refused"),
    "complex.npy": (npy(noise(2) + 1j), "not a real number type"),
    "cube.npy": (npy(np.ones((10, 10, 10))), "shape (10, 10, 10)"),
    "no_samples.npy": (npy(np.zeros(0)), "the signal is empty"),
    "wrong_keys.npz": (npz(x=noise(2), fs=FS), "no array named 'signal' or 'emg' (keys: x, fs)"),
    "rate_shape.npz": (npz(signal=noise(2), fs=np.array([FS, FS])), "'fs' must be one number"),
    "rate_nan.npz": (npz(signal=noise(2), fs=np.float64(np.nan)), "must be a positive number of Hz"),
    "folder.csv": (lambda path: path.mkdir(), "not a regular file (a directory)"),
    "pipe.npy": (os.mkfifo, "not a regular file (a pipe"),
    "loop.csv": (lambda path: os.symlink(path.name, path), "cannot be read: Too many levels of symbolic links"),
    "dangling.npz": (lambda path: os.symlink("nowhere.npz", path), "cannot be read: No such file"),
    "dup.npy": (npy(noise(2)), "same names as those of dup.csv"),
    "L" * 245 + ".csv": (csv(noise(2)), "File name too long"),
}
GOOD = {
    "good_csv.csv": (lambda path: write_csv(path, noise(2.5), header="left,right"), 2),
    "good_npz.npz": (npz(signal=noise(2).T, fs=FS), 2),
    "dup.csv": (csv(noise(2)), 2),
    "bad_segment.npy": (flat_stretch, 4),
    "huge_segment.npy": (huge_stretch, 1),
}
NON_UTF8_GOOD = b"caf\xe9_\xff.csv"
NON_UTF8_BAD = b"flat_\xff.npy"
IGNORED = ("notes.md", "data.xyz", "info.json")


@pytest.fixture(scope="session")
def catalogue_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    for name, (make, _) in {**CASES, **GOOD}.items():
        make(folder / name)
    write_csv(Path(os.fsdecode(os.path.join(os.fsencode(folder), NON_UTF8_GOOD))), noise(2))
    np.save(os.fsdecode(os.path.join(os.fsencode(folder), NON_UTF8_BAD)), np.ones((2000, 2)))
    for name in IGNORED:
        (folder / name).write_text("{}")
    out = tmp_path_factory.mktemp("catalogue_out")
    args = ("--input", folder, "--output_dir", out, "--fs", "1000", "--window", "1", "--channel", "1")
    return folder, out, run_script(SCRIPT, *args)


@pytest.mark.parametrize("name", sorted(CASES), ids=lambda name: name[:20])
@pytest.mark.slow
def test_bad_file_is_named_with_its_reason(catalogue_run, name):
    _, _, result = catalogue_run
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert reported(result.stderr, name, CASES[name][1])


@pytest.mark.slow
def test_bad_segment_is_reported_and_the_rest_written(catalogue_run):
    _, out, result = catalogue_run
    assert reported(result.stderr, "bad_segment.npy: segment 2: ", "the signal is all zero")
    assert sorted(path.name for path in out.glob("bad_segment_*")) == [
        f"bad_segment_seg{index:03d}.npz" for index in (0, 1, 3, 4)
    ]
    assert reported(result.stderr, "huge_segment.npy: segment 1: ", "too large: the spectrum overflows float32")
    assert "Warning" not in result.stderr


@pytest.mark.slow
def test_catalogue_good_files_odd_names_and_summary(catalogue_run):
    folder, out, result = catalogue_run
    for name, (_, n_segments) in GOOD.items():
        written = sorted(out.glob(f"{Path(name).stem}_seg*.npz"))
        assert len(written) == n_segments, name
        for path in written:
            assert np.isfinite(load_matrix(path)).all()
    # A name that is not UTF-8 is converted under the same bytes and reported escaped.
    outputs = set(os.listdir(os.fsencode(out)))
    assert {b"caf\xe9_\xff_seg000.npz", b"caf\xe9_\xff_seg001.npz"} <= outputs
    assert reported(result.stderr, "flat_\\xff.npy", "channel 'ch1' is constant (1)")
    assert not (folder / MARKER).exists(), "an object array was unpickled"
    assert "Ignored 3 files with other extensions: .json, .md, .xyz" in result.stdout
    n_files = len(CASES) + len(GOOD) + 2
    assert f"Converted 6 of {n_files} files: 13 matrices written" in result.stdout
    assert f"Failed: {len(CASES) + 1} file(s), 3 segment(s)" in result.stdout
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


@pytest.mark.slow
def test_missing_fs_is_an_error_only_for_the_files_that_need_it(tmp_path):
    np.savez(tmp_path / "with_rate.npz", signal=noise(1), fs=FS)
    np.savez(tmp_path / "without_rate.npz", signal=noise(1))
    write_csv(tmp_path / "plain.csv", noise(1))
    result = run_script(SCRIPT, "--input", tmp_path, "--output_dir", tmp_path / "out", "--workers", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert reported(result.stderr, "plain.csv", "needs --fs: .csv files carry no sampling rate")
    assert reported(result.stderr, "without_rate.npz", "holds no sampling rate ('fs' or 'sampling_rate'); give --fs")
    assert os.listdir(tmp_path / "out") == ["with_rate.npz"]


def samples_of(recording) -> np.ndarray:
    """A recording's channels side by side, (n_samples, n_channels)."""
    return np.column_stack([channel.signal for channel in recording.channels])


def valid_bytes(suffix: str) -> bytes:
    stream = io.BytesIO()
    if suffix == ".npy":
        np.save(stream, noise(0.3))
    elif suffix == ".npz":
        np.savez(stream, signal=noise(0.3), fs=FS)
    else:
        stream.write(b"# comment\nleft,right\n" + b"".join(b"%g,%g\n" % tuple(row) for row in noise(0.05)))
    return stream.getvalue()


@settings(max_examples=200)
@given(data=st.data())
def test_random_and_mutated_bytes_never_crash(tmp_path_factory, data):
    suffix = data.draw(st.sampled_from([".csv", ".npy", ".npz"]), label="extension")
    content = mutated(data, valid_bytes(suffix), 0, 6)
    path = tmp_path_factory.mktemp("fuzz") / f"x{suffix}"
    path.write_bytes(content)
    try:
        recording = read_recording(path)
    except RecordingError as error:
        assert error.reason
    else:
        samples = samples_of(recording)
        assert samples.ndim == 2 and samples.dtype == np.float64 and samples.size


# --- overwriting -------------------------------------------------------------------------------


@pytest.mark.slow
def test_existing_outputs_are_kept_without_overwrite(tmp_path):
    np.save(tmp_path / "a.npy", noise(2.2))
    out = tmp_path / "out"
    args = ("--input", tmp_path / "a.npy", "--output_dir", out, "--fs", "1000", "--window", "1", "--workers", "1")
    assert run_script(SCRIPT, *args).returncode == 0
    (out / "a_seg000.npz").unlink()
    (out / "a_seg001.npz").write_bytes(b"mine")
    again = run_script(SCRIPT, *args)
    assert again.returncode == 1
    assert reported(again.stderr, "a.npy", "1 of its 2 outputs exist already (a_seg001.npz, ...); use --overwrite")
    # The file is refused as a whole, before any work.
    assert os.listdir(out) == ["a_seg001.npz"] and (out / "a_seg001.npz").read_bytes() == b"mine"
    replaced = run_script(SCRIPT, *args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    load_matrix(out / "a_seg001.npz")


# --- usage errors --------------------------------------------------------------------------------


def usage_error(tmp_path: Path, capsys, **overrides) -> str:
    """Run a conversion in this process; assert exit code 2 and return the message."""
    np.save(tmp_path / "a.npy", noise(1))
    options = {"input": str(tmp_path), "output_dir": str(tmp_path / "out"), "fs": FS, **overrides}
    assert run_command(lambda: run_conversion(ConversionOptions(**options))) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window": 0.0}, "--window must be a positive number"),
        ({"window": 1.0, "hop": -1.0}, "--hop must be a positive number"),
        ({"hop": 1.0}, "--hop needs --window"),
        ({"fs": float("nan")}, "--fs must be a positive number"),
        ({"fs": 500.0, "f_max": 450.0}, "500 Hz is too low for --f_max 450 Hz"),
        ({"fs": 40.0}, "a sampling rate of 40 Hz leaves no band above --f_min 20 Hz (it ends at 18)"),
        ({"window": 0.1}, "--window 0.1 s is 100 samples at 1000 Hz; at least 256 are needed"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"ensembles": 0}, "--ensembles must be at least 1"),
        ({"channel": "1,,2"}, "--channel '1,,2' has an empty item"),
        ({"bandpass": (450.0, 20.0)}, "--bandpass needs 0 < low < high Hz"),
        ({"notch": 55.0}, "--notch is at the mains frequency, 50 or 60 Hz"),
        ({"seed": -1}, "--seed must be 0 or more"),
        ({"f_min": 300.0, "f_max": 200.0}, "need 0 <= --f_min < --f_max"),
        ({"f_min": -5.0}, "need 0 <= --f_min < --f_max"),
        ({"fs": None}, "--fs is required"),
        ({"input": "does/not/exist"}, "Input not found"),
        ({"output_dir": "."}, None),  # set below: the input folder itself
    ],
)
def test_invalid_flags_rejected_before_reading_data(tmp_path, capsys, overrides, message):
    if message is None:
        overrides, message = {"output_dir": str(tmp_path)}, "--output_dir must not be the input folder"
    assert message in usage_error(tmp_path, capsys, **overrides)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_usage_errors_from_the_command_line(tmp_path):
    write_csv(tmp_path / "a.csv", noise(1))
    np.savez(tmp_path / "b.npz", signal=noise(1), fs=FS)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("x")
    for args, message in [
        (("--input", tmp_path / "a.csv", "--output_dir", tmp_path / "o"), "--fs is required"),
        (("--input", tmp_path / "b.npz", "--output_dir", tmp_path), "must not be the folder of an .npz input"),
        (("--input", tmp_path / "empty", "--output_dir", tmp_path / "o"), "ignored 1 file with other extensions: .md"),
        (("--input", tmp_path, "--output_dir", tmp_path / "o", "--method", "fast"), "invalid choice: 'fast'"),
    ]:
        result = run_script(SCRIPT, *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "b.npz", "empty"]


@pytest.mark.slow
def test_help_does_not_import_torch_or_numpy():
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{SCRIPT}', '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / SCRIPT)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0\n"
        "print(sorted({'torch', 'numpy', 'semg_hht.conversion.workflow'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "Exit codes" in result.stdout
    assert result.stdout.strip().endswith("[]")
