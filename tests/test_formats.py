"""Recording readers on files this project did not write: PLUX, C3D, Delsys, EDF/BDF; channels, --list, preprocessing.

Third-party files: ``../shared/realdata/plux-samples`` (PLUX OpenSignals .h5), ``../shared/realdata/formats``
(C3D from Vicon, Qualisys and BTS systems, a Delsys Trigno CSV export, OpenSignals text exports) and the
EDF/BDF files EDFbrowser's generator wrote that ship inside the pyEDFlib wheel. No Noraxon export is public,
so that layout is a file written here; EDF files are also written with edfio's own writer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REALDATA, mutated, run_script
from semg_hht.errors import EXIT_CUT_SHORT, EXIT_PARTIAL
from semg_hht.hht.preprocessing import Preprocessing, preprocess
from semg_hht.io.formats.matlab import MatSelection
from semg_hht.io.formats.plux import emg_millivolts
from semg_hht.io.matrices import list_npz_files, load_matrix_file
from semg_hht.io.recordings import (
    ChannelSelection,
    RecordingError,
    read_recording,
    recording_parts,
    select_channels,
)

SCRIPT = "compute_hht.py"
FORMATS = REALDATA / "formats"
PLUX = REALDATA / "plux-samples"
VICON = FORMATS / "c3d_vicon-nexus_delsys-trigno_pyomeca.c3d"
QUALISYS = FORMATS / "c3d_qualisys-qtm_emg_ezc3d-testFiles.c3d"
BTS = FORMATS / "c3d_bts_emg_ezc3d-testFiles.c3d"
DELSYS = FORMATS / "delsys_trigno_csv_emgio_truncated_trigno_sample.csv"
OPENSIGNALS = FORMATS / "opensignals_biosignalsplux_emg_paper_1_1.txt"
needs_formats = pytest.mark.skipif(not FORMATS.is_dir(), reason=f"real lab exports not present ({FORMATS})")
needs_plux = pytest.mark.skipif(not PLUX.is_dir(), reason=f"real PLUX recordings not present ({PLUX})")
PYEDFLIB = importlib.util.find_spec("pyedflib")
EDF_DATA = Path(PYEDFLIB.origin).parent / "tests" / "data" if PYEDFLIB else None
needs_pyedflib = pytest.mark.skipif(
    PYEDFLIB is None, reason="pyEDFlib (whose wheel ships EDFbrowser's EDF/BDF test files) is not installed"
)


def names(recording) -> list[str]:
    return [channel.name for channel in recording.channels]


def chosen(recording, text: str) -> list[str]:
    indices, _ = select_channels(recording, ChannelSelection.parse(text))
    return [recording.channels[i].name for i in indices]


# --- PLUX ----------------------------------------------------------------------------------------------


@needs_plux
def test_opensignals_h5_is_converted_to_millivolts_with_the_emg_transfer_function():
    recording = read_recording(PLUX / "emg_bursts.h5")
    (channel,) = recording.channels
    adc = np.loadtxt(PLUX / "emg_bursts_raw_adc.csv")  # the same raw/channel_3 values, exported as text
    assert channel.name == "PORT3_CHN1" and channel.fs == 1000.0 and channel.unit == "mV" and channel.is_emg
    np.testing.assert_allclose(channel.signal, (adc / 2**16 - 0.5) * 3.0)
    assert "transfer function" in recording.conversion
    # 12-bit resolution (bioplux) from the file's attributes.
    fatigue = read_recording(PLUX / "emg_fatigue.h5").channels[0]
    np.testing.assert_allclose(fatigue.signal, (np.loadtxt(PLUX / "emg_fatigue_raw_adc.csv") / 2**12 - 0.5) * 3.0)


@needs_formats
def test_opensignals_text_export():
    recording = read_recording(OPENSIGNALS)
    table = np.loadtxt(OPENSIGNALS, comments="#")
    assert names(recording) == ["CH1", "CH2", "CH3"] and recording.format == "OpenSignals text"
    emg1, _, accelerometer = recording.channels
    assert emg1.fs == 1000.0 and emg1.signal.size == 6600 and emg1.unit == "mV"
    np.testing.assert_allclose(emg1.signal, (table[:, 2] / 2**16 - 0.5) * 3.0)
    assert not accelerometer.is_emg and accelerometer.unit == "ADC counts"
    np.testing.assert_array_equal(accelerometer.signal, table[:, 4])
    assert chosen(recording, "all") == ["CH1", "CH2"]


def test_bitalino_transfer_function_uses_its_supply_and_gain():
    np.testing.assert_allclose(emg_millivolts(np.array([0, 512, 1024]), 10, "BITalino"), [-1.6353, 0, 1.6353], 1e-4)


# --- C3D -----------------------------------------------------------------------------------------------


@needs_formats
def test_c3d_from_three_systems():
    bts = read_recording(BTS)
    assert chosen(bts, "all")[:2] == ["Left Rectus femoris", "Right Rectus femoris"]
    assert len(chosen(bts, "all")) == 8  # the EMG channels are named by muscle: found by their unit (mV)
    femoris = bts.channels[36]
    assert femoris.fs == 1000.0 and femoris.signal.size == 6750 and femoris.unit == "mV"
    assert 0.05 < np.abs(femoris.signal).max() < 1.0  # peaks of 0.1-0.7 mV; not rescaled
    qualisys = read_recording(QUALISYS)
    assert chosen(qualisys, "all") == [f"EMG {k}" for k in range(1, 17)]
    assert {c.fs for c in qualisys.channels} == {2000.0} and qualisys.channels[40].signal.size == 3400
    vicon = read_recording(VICON)
    live, notes = select_channels(vicon, ChannelSelection.parse("all"))
    assert len(live) == 13 and "19 flat EMG channels left out" in notes[0]
    biceps = vicon.channels[names(vicon).index("Biceps.EMG4")]
    assert biceps.unit == "mV" and 1e-3 < np.std(biceps.signal) < 1.0  # volts in the file, mV here


@needs_formats
def test_c3d_cut_short_or_damaged_is_named(tmp_path):
    content = BTS.read_bytes()
    (tmp_path / "half.c3d").write_bytes(content[: len(content) // 2])
    (tmp_path / "header.c3d").write_bytes(content[:600])
    with pytest.raises(RecordingError, match=r"half\.c3d: the file is cut short: \d+ of its 675 frames"):
        read_recording(tmp_path / "half.c3d")
    with pytest.raises(RecordingError, match=r"header\.c3d: not a readable C3D file"):
        read_recording(tmp_path / "header.c3d")


# --- Delsys, Noraxon-style and plain tables -----------------------------------------------------------


@needs_formats
def test_delsys_trigno_export_with_per_channel_rates():
    recording = read_recording(DELSYS)
    assert chosen(recording, "all") == ["Mini sensor 10: EMG 10", "Mini sensor 11: EMG 11"]
    emg, acc = recording.channels[0], recording.channels[1]
    assert emg.fs == pytest.approx(1259.259, abs=0.01) and emg.signal.size == 2519 and emg.unit == "mV"
    assert acc.fs == pytest.approx(148.148, abs=0.01) and acc.signal.size == 297 and not acc.is_emg
    first_row = DELSYS.read_text().splitlines()[18].split(",")
    assert emg.signal[0] == pytest.approx(float(first_row[1]) * 1000)
    # emgio cut the export to 2 s; its lines still announce the whole recording's points.
    expected = "the header announces 81141 samples of 'Mini sensor 10: EMG 10', 2519 were read (and 13 more channels)"
    assert recording.shortfall == expected


@needs_formats
def test_delsys_export_cut_after_its_labels_or_header(tmp_path):
    lines = DELSYS.read_text().splitlines(keepends=True)
    (tmp_path / "labels.csv").write_text("".join(lines[:14]))
    (tmp_path / "header.csv").write_text("".join(lines[:18]))
    with pytest.raises(RecordingError, match="without its column header"):
        read_recording(tmp_path / "labels.csv")
    with pytest.raises(RecordingError, match="ends after its header"):
        read_recording(tmp_path / "header.csv")


def noraxon_like(path: Path, fs: float = 1500.0, seconds: float = 2.0) -> np.ndarray:
    """A Noraxon MR3-style export: title lines, a time column (3 decimals), named sensors in uV."""
    t = np.arange(round(fs * seconds)) / fs
    rng = np.random.default_rng(3)
    values = rng.normal(0, 50, (t.size, 2))
    rows = [f"{a:.3f},{b:.4f},{c:.4f}" for a, b, c in zip(t, values[:, 0], values[:, 1], strict=True)]
    path.write_text("MR3 export\nRecorded 2026-01-01\n" + "time,RT TIB.ANT. (uV),LT TIB.ANT. (uV)\n" + "\n".join(rows))
    return values


def test_named_columns_with_a_time_column(tmp_path):
    values = noraxon_like(tmp_path / "walk.csv")
    recording = read_recording(tmp_path / "walk.csv")
    assert names(recording) == ["RT TIB.ANT.", "LT TIB.ANT."]
    channel = recording.channels[0]
    assert channel.fs == pytest.approx(1500.0, rel=1e-3) and channel.unit == "mV"
    np.testing.assert_allclose(channel.signal, values[:, 0] / 1000, atol=1e-7)
    assert chosen(recording, "lt tib.ant.") == ["LT TIB.ANT."]  # names match ignoring case
    with pytest.raises(ValueError, match=r"no channel named 'Biceps' \(2 channels: 'RT TIB.ANT.', 'LT TIB.ANT.'\)"):
        chosen(recording, "Biceps")


def test_plain_table_header_names_its_channels(tmp_path):
    (tmp_path / "a.csv").write_text("biceps;triceps\n1;2\n3;4\n")
    assert names(read_recording(tmp_path / "a.csv")) == ["biceps", "triceps"]
    (tmp_path / "b.csv").write_text("1,2\n3,4\n")
    recording = read_recording(tmp_path / "b.csv")
    assert names(recording) == ["ch0", "ch1"] and recording.channels[0].fs is None
    assert chosen(recording, "1,ch0") == ["ch1", "ch0"]
    with pytest.raises(ValueError, match=r"channel 2 does not exist: the recording has 2 channels \(0-1\)"):
        chosen(recording, "2")


# --- EDF / BDF ----------------------------------------------------------------------------------------


@needs_pyedflib
def test_edfbrowser_bdf_and_edf_agree_with_pyedflib():
    import pyedflib  # an independent reader: C, not edfio

    for name in ("test_generator.bdf", "test_generator.edf"):
        recording = read_recording(EDF_DATA / name)
        signals, headers, _ = pyedflib.highlevel.read_edf(str(EDF_DATA / name))
        assert names(recording) == [header["label"] for header in headers]
        for channel, expected, header in zip(recording.channels, signals, headers, strict=True):
            assert channel.fs == header["sample_frequency"] and channel.unit == "mV"  # uV in the file
            np.testing.assert_allclose(channel.signal, np.asarray(expected) / 1000, rtol=1e-6, atol=1e-9)


@needs_pyedflib
@pytest.mark.slow
def test_edf_channels_at_low_rates_get_bands_that_fit_unless_a_band_is_given(tmp_path):
    out = tmp_path / "out"
    result = run_script(SCRIPT, "--input", EDF_DATA / "test_generator.edf", "--output_dir", out, "--channel", "all")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "band 20-90 Hz for its 200 Hz sampling rate" in result.stderr
    squarewave = load_matrix_file(out / "test_generator_squarewave.npz")
    assert (squarewave.frequency[0], squarewave.frequency[-1]) == (20.0, 90.0)
    bdf = EDF_DATA / "test_generator.bdf"
    args = ("--input", bdf, "--output_dir", tmp_path / "given", "--channel", "ramp 7Hz", "--bandpass", "20", "450")
    result = run_script(SCRIPT, *args, "--f_max", "200")  # a 500 Hz signal: the band-pass given is used as given
    assert result.returncode == 1
    assert "a sampling rate of 500 Hz is too low for the band-pass 20-450 Hz (needs more than 900 Hz)" in result.stderr


def write_edf(path: Path, signals: list[tuple[str, str, np.ndarray]], fs: float = 1000.0) -> None:
    """An EDF file written by edfio, the reading library's own writer: (label, unit, values) per signal."""
    import edfio

    edf_signals = [
        edfio.EdfSignal(values, sampling_frequency=fs, label=label, physical_dimension=unit)
        for label, unit, values in signals
    ]
    edfio.Edf(edf_signals).write(path)


def test_edf_written_by_edfio(tmp_path):
    rng = np.random.default_rng(0)
    emg, force = rng.normal(0, 100, 4000), rng.normal(500, 5, 4000)
    write_edf(tmp_path / "trial.edf", [("EMG biceps", "uV", emg), ("Force", "N", force)])
    recording = read_recording(tmp_path / "trial.edf")
    assert names(recording) == ["EMG biceps", "Force"] and chosen(recording, "all") == ["EMG biceps"]
    np.testing.assert_allclose(recording.channels[0].signal, emg / 1000, atol=1e-2 / 1000)  # 16-bit steps
    assert recording.channels[1].unit == "N"


def test_edf_bad_files(tmp_path):
    write_edf(tmp_path / "good.edf", [("Force", "N", np.random.default_rng(0).normal(0, 1, 3000))])
    with pytest.raises(ValueError, match=r"no EMG channel \(1 channel: 'Force'\)"):
        chosen(read_recording(tmp_path / "good.edf"), "all")
    content = (tmp_path / "good.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(content[: len(content) - 1000])
    (tmp_path / "header.edf").write_bytes(content[:200])
    with pytest.raises(RecordingError, match=r"cut\.edf: the file is cut short: 2 of its 3 data records are complete"):
        read_recording(tmp_path / "cut.edf")
    with pytest.raises(RecordingError, match=r"header\.edf: the file is cut short inside its 256-byte header"):
        read_recording(tmp_path / "header.edf")
    (tmp_path / "text.edf").write_bytes(b"0" * 300)
    with pytest.raises(RecordingError, match=r"text\.edf: "):
        read_recording(tmp_path / "text.edf")


# --- bad files of the other formats ---------------------------------------------------------------------


@needs_formats
def test_opensignals_cut_short_header_only_and_no_emg(tmp_path):
    lines = OPENSIGNALS.read_text().splitlines(keepends=True)
    (tmp_path / "header.txt").write_text("".join(lines[:3]))
    (tmp_path / "cut.txt").write_text("".join(lines[:500]) + lines[500][:5])
    (tmp_path / "two.txt").write_text("".join(lines[:2]))
    (tmp_path / "acc.txt").write_text(lines[0] + lines[1].replace('"EMG", "EMG"', '"ACC", "ACC"') + "".join(lines[2:]))
    with pytest.raises(RecordingError, match="no samples: the file ends after its header"):
        read_recording(tmp_path / "header.txt")
    cut = read_recording(tmp_path / "cut.txt")  # the complete rows, and what is missing
    assert cut.shortfall == "the file ends mid-row: its last row (2 of 5 values) was left out, 497 complete rows read"
    assert cut.channels[0].signal.size == 497 and read_recording(OPENSIGNALS).shortfall is None
    # Cut inside the last value, the last row still has its five values: the missing line break tells.
    (tmp_path / "in_value.txt").write_text("".join(lines[:500]) + lines[500].rstrip("\t\n")[:-2])
    assert read_recording(tmp_path / "in_value.txt").shortfall.startswith("the file ends mid-row: its last row (5 of 5")
    with pytest.raises(RecordingError, match="the header is cut short"):
        read_recording(tmp_path / "two.txt")
    with pytest.raises(ValueError, match=r"no EMG channel \(3 channels: 'CH1', 'CH2', 'CH3'\)"):
        chosen(read_recording(tmp_path / "acc.txt"), "all")


@needs_plux
def test_h5_cut_short_is_named(tmp_path):
    content = (PLUX / "emg_bursts.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(content[: len(content) // 3])
    with pytest.raises(RecordingError, match=r"cut\.h5: not a readable HDF5 file"):
        read_recording(tmp_path / "cut.h5")


# --- the command line --------------------------------------------------------------------------------


@needs_formats
@pytest.mark.slow
def test_list_prints_channels_without_converting(tmp_path):
    result = run_script(SCRIPT, "--input", BTS, "--list")
    assert result.returncode == 0, result.stderr
    assert "C3D, 44 channels" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "Left Tibialis anterior" in line)
    assert line.split()[0] == "40" and " yes " in line and "1000" in line and "6750" in line and line.endswith("mV")


@needs_formats
@pytest.mark.slow
def test_channel_all_with_windows_names_each_channel_and_stores_it(tmp_path):
    out = tmp_path / "out"
    args = ("--input", BTS, "--output_dir", out, "--channel", "all", "--window", "2", "--workers", "2")
    result = run_script(SCRIPT, *args)
    assert result.returncode == 0, result.stderr
    files = list_npz_files(out)
    assert len(files) == 8 * 3  # 8 EMG channels, three whole 2 s windows of 6.75 s
    assert out / "c3d_bts_emg_ezc3d-testFiles_Left-Rectus-femoris_seg002.npz" in files
    record = load_matrix_file(out / "c3d_bts_emg_ezc3d-testFiles_Right-Tibialis-anterior_seg000.npz")
    assert record.channel == "Right Tibialis anterior" and record.recording == "c3d_bts_emg_ezc3d-testFiles"
    # The stored time-domain features are those of the preprocessed channel: a known answer.
    channel = read_recording(BTS).channels[41]
    conditioned = preprocess(channel.signal, 1000.0, Preprocessing())
    from semg_hht.hht.time_domain import segment_features

    np.testing.assert_allclose(record.time_domain, segment_features(conditioned[:2000]))
    assert "preprocessing: mean removed, band-pass 20-450 Hz" in result.stdout


def test_preprocessing_removes_what_lies_outside_the_band_and_the_mains():
    fs = 2000.0
    t = np.arange(4000) / fs
    emg_band = np.sin(2 * np.pi * 120 * t)
    signal = (
        5.0 + 3 * np.sin(2 * np.pi * 2 * t) + emg_band + 2 * np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 150 * t)
    )
    default = preprocess(signal, fs, Preprocessing())
    middle = slice(1000, 3000)  # away from the ends, where zero-phase filters settle
    assert abs(default[middle].mean()) < 0.01  # offset and 2 Hz drift gone
    # 50 Hz and its harmonic at 150 Hz gone, 120 Hz kept.
    notched = preprocess(signal, fs, Preprocessing(notch=50.0))
    assert np.abs(notched - preprocess(emg_band, fs, Preprocessing()))[middle].max() < 0.1
    untouched = preprocess(signal, fs, Preprocessing(remove_mean=False, bandpass=None))
    np.testing.assert_array_equal(untouched, signal)
    assert Preprocessing(notch=50.0).notch_frequencies(fs) == [50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0]


@needs_formats
@pytest.mark.slow
def test_channels_by_name_and_a_name_that_does_not_exist(tmp_path):
    out = tmp_path / "out"
    chosen_names = "Left Rectus femoris,right tibialis anterior"
    result = run_script(SCRIPT, "--input", BTS, "--output_dir", out, "--channel", chosen_names, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in list_npz_files(out)) == [
        "c3d_bts_emg_ezc3d-testFiles_Left-Rectus-femoris.npz",
        "c3d_bts_emg_ezc3d-testFiles_Right-Tibialis-anterior.npz",
    ]
    missing = run_script(SCRIPT, "--input", FORMATS, "--output_dir", tmp_path / "none", "--channel", "Biceps")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"{BTS}: no channel named 'Biceps' (44 channels: 'Fx1', 'Fy1'" in missing.stderr
    assert f"{DELSYS}: no channel named 'Biceps' (14 channels: 'Mini sensor 10: EMG 10'" in missing.stderr
    assert f"{OPENSIGNALS}: no channel named 'Biceps' (3 channels: 'CH1', 'CH2', 'CH3')" in missing.stderr


@needs_formats
@needs_plux
@settings(max_examples=60)
@given(data=st.data())
def test_damaged_lab_files_are_refused_with_a_reason_never_a_crash(tmp_path_factory, data):
    source = data.draw(st.sampled_from([BTS, OPENSIGNALS, DELSYS, PLUX / "emg_bursts.h5"]), label="file")
    path = tmp_path_factory.mktemp("damaged") / f"x{source.suffix}"
    path.write_bytes(mutated(data, source.read_bytes(), 1, 6))
    try:
        recording = read_recording(path)
    except RecordingError as error:
        assert error.reason and str(path) in str(error)
    else:
        assert recording.channels and all(channel.signal.ndim == 1 for channel in recording.channels)


def write_force_c3d(path: Path) -> None:
    """A C3D file written by the c3d package's own writer: two analog force channels, no EMG."""
    import c3d

    writer = c3d.Writer(point_rate=100.0, analog_rate=1000.0)
    rng = np.random.default_rng(0)
    writer.add_frames(
        [(np.zeros((1, 5), np.float32), rng.normal(0, 1, (2, 10)).astype(np.float32)) for _ in range(300)]
    )
    writer.set_point_labels(["marker"])
    writer.set_analog_labels(["Force X", "Force Y"])
    with open(path, "wb") as stream:
        writer.write(stream)


@pytest.fixture
def one_file_per_format(tmp_path) -> Path:
    """A folder with a file of every format: the real exports where present, written ones otherwise."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    write_edf(folder / "edf_trial.edf", [("EMG biceps", "uV", np.random.default_rng(1).normal(0, 50, 3000))])
    noraxon_like(folder / "noraxon_trial.csv")
    write_force_c3d(folder / "force_trial.c3d")
    for source in (BTS, DELSYS, OPENSIGNALS, PLUX / "emg_bursts.h5"):
        if source.exists():
            (folder / source.name).symlink_to(source)
    return folder


@pytest.mark.slow
def test_rate_too_low_and_unknown_names_in_every_format(one_file_per_format, tmp_path):
    names = sorted(path.name for path in one_file_per_format.iterdir())
    args = ("--input", one_file_per_format, "--output_dir", tmp_path / "out", "--workers", "1")
    low = run_script(SCRIPT, *args, "--bandpass", "20", "1200")
    assert low.returncode == 1 and "Traceback" not in low.stderr
    for name in names:
        line = next(line for line in low.stderr.splitlines() if name in line)
        assert "Hz is too low for the band-pass 20-1200 Hz (needs more than 2400 Hz)" in line, line
    unknown = run_script(SCRIPT, *args, "--channel", "Biceps")
    assert unknown.returncode == 1
    for name in names:
        assert any(name in line and "no channel named 'Biceps' (" in line for line in unknown.stderr.splitlines())
    assert not (tmp_path / "out").exists() or not list_npz_files(tmp_path / "out")


@pytest.mark.slow
def test_no_emg_channel_in_c3d_delsys_and_h5(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    write_force_c3d(folder / "force.c3d")
    if FORMATS.is_dir():
        (folder / "imu_only.csv").write_text(DELSYS.read_text().replace("EMG", "ACC"))
    if PLUX.is_dir():
        import h5py

        copy = folder / "accelerometer.h5"
        copy.write_bytes((PLUX / "emg_bursts.h5").read_bytes())
        with h5py.File(copy, "r+") as handle:
            next(iter(handle.values()))["raw/channel_3"].attrs["sensor"] = "ACC"
    result = run_script(SCRIPT, "--input", folder, "--output_dir", tmp_path / "out", "--channel", "all")
    assert result.returncode == 1
    for path in folder.iterdir():
        line = next(line for line in result.stderr.splitlines() if path.name in line)
        assert "no EMG channel (" in line and "choose channels by --channel number or name" in line, line


@needs_formats
def test_exports_cut_short_are_converted_named_and_given_their_own_exit_code(tmp_path):
    inputs, lines = tmp_path / "in", OPENSIGNALS.read_text().splitlines(keepends=True)
    inputs.mkdir()
    (inputs / "cut.txt").write_text("".join(lines[:800]) + lines[800][:9])
    (inputs / "whole.txt").write_text("".join(lines))
    args = ("--input", inputs, "--output_dir", tmp_path / "out", "--workers", "1")
    result = run_script(SCRIPT, *args)
    assert result.returncode == EXIT_CUT_SHORT, result.stderr
    expected = "cut.txt: cut short: the file ends mid-row: its last row (3 of 5 values) was left out, 797 complete rows"
    assert expected in result.stderr and "whole.txt" not in result.stderr
    assert "Converted 2 of 2 files" in result.stdout and "Cut short: 1 file(s)" in result.stdout
    # A file that fails outranks one cut short: the exit code says some input was not converted.
    (inputs / "empty.txt").write_text("")
    again = run_script(SCRIPT, *args, "--overwrite")
    assert again.returncode == EXIT_PARTIAL and "cut.txt: cut short" in again.stderr


# --- MATLAB .mat ------------------------------------------------------------------------------

SAPSANIS = REALDATA / "sapsanis-db1"


def ninapro_file(path: Path, relabelled: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A NinaPro-layout file (no NinaPro file is here): emg (samples x 3), movements 1 and 2 twice each, rest 0."""
    import scipy.io

    emg = np.random.default_rng(0).standard_normal((6000, 3))
    stimulus, repetition = np.zeros((6000, 1), int), np.zeros((6000, 1), int)
    for k, (movement, number) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2)]):
        stimulus[500 + 1300 * k : 1500 + 1300 * k], repetition[500 + 1300 * k : 1500 + 1300 * k] = movement, number
    names = ("restimulus", "rerepetition") if relabelled else ("stimulus", "repetition")
    variables = {"emg": emg, names[0]: stimulus, names[1]: repetition, "frequency": np.array([[2000.0]])}
    scipy.io.savemat(path, variables)
    return emg, stimulus[:, 0], repetition[:, 0]


@pytest.mark.parametrize("relabelled", [True, False])
def test_ninapro_layout_gives_one_recording_per_movement_repetition(tmp_path, relabelled):
    emg, stimulus, _ = ninapro_file(tmp_path / "S1_A1_E1.mat", relabelled)
    recording = read_recording(tmp_path / "S1_A1_E1.mat")
    parts = [part for part, _ in recording_parts(recording)]
    assert parts == ["mov01-rep01", "mov01-rep02", "mov02-rep01", "mov02-rep02"]
    third = [channel for channel in recording.channels if channel.part == "mov02-rep01"]
    assert [channel.name for channel in third] == ["ch1", "ch2", "ch3"] and third[0].fs == 2000.0
    np.testing.assert_array_equal(third[2].signal, emg[500 + 2600 : 1500 + 2600, 2])
    assert recording.format == "MATLAB .mat (ninapro)" and (stimulus != 0).sum() == 4000


def test_trials_and_channels_layouts_and_version_7_3(tmp_path):
    import h5py
    import scipy.io

    rng = np.random.default_rng(1)
    cyl_ch1, cyl_ch2, signal = rng.standard_normal((3, 800)), rng.standard_normal((3, 800)), rng.standard_normal(900)
    scipy.io.savemat(tmp_path / "trials.mat", {"cyl_ch1": cyl_ch1, "cyl_ch2": cyl_ch2})
    trials = read_recording(tmp_path / "trials.mat", MatSelection(layout="trials"))
    assert [part for part, _ in recording_parts(trials)] == ["cyl-t01", "cyl-t02", "cyl-t03"]
    second = [channel for channel in trials.channels if channel.part == "cyl-t02"]
    np.testing.assert_array_equal(second[1].signal, cyl_ch2[1])
    # Version 7.3 is HDF5 behind MATLAB's 512-byte header, its arrays stored column-major (transposed).
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as archive:
        archive["left"] = signal[:, None].T
        archive["both"] = np.stack([signal, -signal], axis=1).T
        archive["fs"] = np.array([[1000.0]])
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116))
    channels = read_recording(path, MatSelection(("both",), "channels"))
    assert [channel.name for channel in channels.channels] == ["both1", "both2"] and channels.channels[0].fs == 1000.0
    np.testing.assert_array_equal(channels.channels[1].signal, -signal)
    listed = r"no numeric variable named 'right' \(3 numeric variables: both 900x2, fs 1x1, left 900x1\)"
    with pytest.raises(RecordingError, match=listed):
        read_recording(path, MatSelection(("right",), "channels"))
    (tmp_path / "fake.mat").write_text("not matlab")
    with pytest.raises(RecordingError, match="not a MATLAB .mat file"):
        read_recording(tmp_path / "fake.mat")


@pytest.mark.skipif(not (SAPSANIS / "male_1.mat").exists(), reason="the Sapsanis recordings are absent")
def test_the_real_sapsanis_file_reads_as_180_two_channel_trials():
    import scipy.io

    recording = read_recording(SAPSANIS / "male_1.mat", MatSelection(layout="trials"))
    parts = recording_parts(recording)
    assert len(parts) == 180 and all([c.name for c in part.channels] == ["ch1", "ch2"] for _, part in parts)
    stored = scipy.io.loadmat(SAPSANIS / "male_1.mat")
    lateral = dict(parts)["lat-t07"]
    np.testing.assert_array_equal(lateral.channels[0].signal, stored["lat_ch1"][6])
    assert lateral.channels[0].fs is None  # the file stores no rate: --fs 500


@pytest.mark.slow
def test_compute_hht_converts_a_ninapro_file_per_repetition_and_lists_its_variables(tmp_path):
    ninapro_file(tmp_path / "S1_A1_E1.mat")
    listed = run_script(SCRIPT, "--input", tmp_path / "S1_A1_E1.mat", "--list")
    assert listed.returncode == 0 and "4 numeric variables: emg 6000x3" in listed.stdout
    assert "12 channels in 4 recordings (mov01-rep01, ...)" in listed.stdout
    out = tmp_path / "out"
    result = run_script(SCRIPT, "--input", tmp_path / "S1_A1_E1.mat", "--output_dir", out, "--channel", "all")
    assert result.returncode == 0, result.stderr
    assert len(list_npz_files(out)) == 12
    record = load_matrix_file(out / "S1_A1_E1_mov02-rep01_ch3.npz")
    assert (record.recording, record.channel) == ("S1_A1_E1_mov02-rep01", "ch3")
