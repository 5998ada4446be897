"""benchmarks/evaluate_recordings.py and libemg_peer.py: evidence per recording beside the classic and the peer."""

import importlib.util
import json
import sys

import numpy as np
import pytest

from conftest import ROOT, run_python

BENCHMARKS = ROOT / "benchmarks"


def load_benchmark(name: str):
    """A benchmark script as a module (its folder on the path: evaluate_recordings imports setup_libemg)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_peer_chooses_on_training_subjects_only():
    peer = load_benchmark("libemg_peer")
    subjects = ["S1", "S2", "S3"]
    # "a" is best when S1 is held out (it predicts S2 and S3 well without S1), "b" is best on S1 itself.
    scores = {
        "a": {"S1": {"S1": 0.2}, "S2": {"S2": 0.6}, "S3": {"S3": 0.6}, "S1,S2": {"S1": 0.2, "S2": 1.0},
              "S1,S3": {"S1": 0.2, "S3": 1.0}, "S2,S3": {"S2": 0.5, "S3": 0.5}},
        "b": {"S1": {"S1": 1.0}, "S2": {"S2": 0.4}, "S3": {"S3": 0.4}, "S1,S2": {"S1": 1.0, "S2": 0.0},
              "S1,S3": {"S1": 1.0, "S3": 0.0}, "S2,S3": {"S2": 0.6, "S3": 0.6}},
    }  # fmt: skip
    chosen = peer.choose(scores, ["a", "b"], subjects)
    assert chosen["S1"] == {"configuration": "a", "inner": 1.0, "score": 0.2}
    # For S2 the inner folds predict S1 (left out with S2) and S3: a gives (0.2 + 0.5) / 2, b (1.0 + 0.6) / 2.
    assert chosen["S2"]["configuration"] == "b" and chosen["S2"]["inner"] == pytest.approx(0.8)
    assert chosen["S2"]["score"] == 0.4


def test_the_peer_scores_one_prediction_per_recording():
    peer = load_benchmark("libemg_peer")
    labels, subjects = np.array([0, 1, 1]), np.array(["S1", "S1", "S2"])
    owners = np.array([0, 0, 0, 1, 1, 2])
    # Recording 0: two unsure windows for class 1 are outweighed by one sure window for class 0 (a vote would not be).
    probabilities = np.array([[0.45, 0.55], [0.45, 0.55], [1.0, 0.0], [0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])
    assert peer.recording_scores(probabilities, owners, labels, subjects, ["S1", "S2"]) == {"S1": 1.0, "S2": 0.0}


def write_recordings(folder, subjects=("S1", "S2", "S3"), seconds=1.2, channels=2, gains=(1.0, 1.5, 2.0)):
    """Contraction-like recordings: amplitude and spectrum change with the level, each subject with its own gain."""
    rng = np.random.default_rng(0)
    levels = {"MVC": (1.0, 0.6), "50P": (0.5, 0.4), "20P": (0.2, 0.25)}
    for k, subject in enumerate(subjects):
        (folder / subject).mkdir(parents=True)
        gain = gains[k]
        names = [(level, motion) for level in levels for motion in ("2", "3", "6")] + [("50P", "1")]
        for level, motion in names:
            amplitude, smoothing = levels[level]
            if motion == "1":
                amplitude = 0.05
            noise = rng.standard_normal((int(seconds * 1000), channels))
            kernel = np.ones(max(1, int(1 / smoothing))) / max(1, int(1 / smoothing))
            signal = np.stack([np.convolve(column, kernel, mode="same") for column in noise.T], axis=1)
            np.savetxt(
                folder / subject / f"{subject}_{level}_C{motion}_R1.csv", gain * amplitude * signal, delimiter=","
            )


@pytest.mark.slow
def test_the_recording_table_has_every_row_and_both_splits(tmp_path):
    write_recordings(tmp_path / "recordings")
    output = tmp_path / "figures.json"
    result = run_python(
        BENCHMARKS / "evaluate_recordings.py",
        "--contraction_dir", tmp_path / "recordings",
        "--work_dir", tmp_path / "work",
        "--units", "whole", "0.6/0.3",
        "--libemg_python", tmp_path / "absent" / "python",
        "--jobs", "2",
        "--trees", "20",
        "--output", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "method" not in line]
    # The classic pipeline, 10 feature sets x 2 layouts (per channel, channels in one vector) x 2 units, the 8
    # of the package not normalised (whole recordings, per channel), train.py's estimator per matrix (its default
    # features, hht, and each with amp), and on window samples of 4 feature sets x 2 units.
    assert len(rows) == 1 + 10 * 2 * 2 + 8 + 4 + 4 * 2
    assert "LibEMG skipped: LibEMG's environment is absent" in result.stdout
    report = json.loads(output.read_text())
    figures = report["figures"]
    # Each split's shared errors are printed, and every recording named wrong is one of the set's, wrong at most once
    # per row under our steps (the classic and the 8 rows not normalised left out).
    for scheme in ("LOSO", "LOMO"):
        assert f"{scheme}: recordings predicted wrong by every one of the {len(rows) - 1 - 8} rows" in result.stdout
    for errors in report["errors"].values():
        assert all(name.split("_")[0] in {"S1", "S2", "S3"} for name in errors)
        assert all(sum(counts.values()) <= len(rows) - 1 - 8 for counts in errors.values())
    for row, schemes in figures.items():
        assert set(schemes["LOSO"]) == {"S1", "S2", "S3"} and set(schemes["LOMO"]) == {"S1", "S2", "S3"}, row
        assert all(0 <= value <= 1 for scheme in schemes.values() for value in scheme.values())
    per_matrix = {row for row, schemes in figures.items() if schemes["LOSO per matrix"]}
    matrix_rows = {
        row
        for row in figures
        if " per channel, " in row or "--sample window" not in row and row.startswith("train.py: ")
    }
    assert per_matrix == matrix_rows
    # The levels differ in amplitude and spectrum, so the per-channel HHT descriptors must separate them.
    hht = figures["HHT descriptors per channel, z-scored, head by nested CV [whole]"]
    assert np.mean(list(hht["LOSO"].values())) > 0.6


setup_libemg = load_benchmark("setup_libemg")
PEER_PYTHON = setup_libemg.environment_python(setup_libemg.DEFAULT_ENV)


@pytest.mark.slow
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="LibEMG's environment (benchmarks/setup_libemg.py) is absent")
def test_the_peer_runs_in_its_own_environment(tmp_path):
    write_recordings(tmp_path / "recordings", seconds=0.6, channels=2)
    benchmark = load_benchmark("evaluate_recordings")
    recordings = benchmark.read_recordings(tmp_path / "recordings")
    result = benchmark.run_peer(recordings, tmp_path, PEER_PYTHON)
    assert set(result["chosen"]) == {"S1", "S2", "S3"}
    assert result["libemg_version"] == "2.0.3" and result["post_hoc_best"]["configuration"] in result["outer_scores"]


def test_the_motion_folds_never_train_on_the_held_out_motion_or_subject():
    benchmark = load_benchmark("evaluate_recordings")
    subjects = np.repeat(["S1", "S2", "S3"], 4)
    motions = np.tile(["1", "2", "3", "6"], 3)
    recordings = benchmark.Recordings([], np.zeros(12, int), subjects, motions, [], [])
    folds = benchmark.folds(recordings)
    assert [f.scheme for f in folds].count("LOSO") == 3 and [f.scheme for f in folds].count("LOMO") == 9
    for fold in folds:
        assert set(subjects[fold.test]) == {fold.subject} and fold.subject not in set(subjects[fold.train])
        if fold.scheme == "LOMO":
            (held_out,) = set(motions[fold.test])
            assert held_out != "1" and held_out not in set(motions[fold.train])
            assert len(fold.train) == 2 * 3  # the other two subjects' no-movement and two other motions


def test_channels_in_one_vector_puts_a_windows_channels_side_by_side_in_channel_order():
    benchmark = load_benchmark("evaluate_recordings")
    # Two recordings; recording 1 has two windows, and its second window lacks channel b.
    recording = np.array([0, 0, 1, 1, 1])
    segment = np.array([0, 0, 0, 0, 1])
    channel = np.array(["b", "a", "a", "b", "a"])
    x = np.arange(10.0).reshape(5, 2)
    samples = benchmark.Samples(recording, segment, channel, x)
    rows, owners = benchmark.channels_in_one_vector(x, samples)
    np.testing.assert_array_equal(rows, [[2, 3, 0, 1], [4, 5, 6, 7]])
    np.testing.assert_array_equal(owners, [0, 1])


def test_the_subject_spread_statistics_known_answer():
    spread = load_benchmark("subject_spread")
    # Two subjects, one channel and motion: A reads 0, 1, 3 at 20 %, 50 %, MVC; B, with a larger gain, 10, 12, 13.
    values = np.array([0.0, 1.0, 3.0, 10.0, 12.0, 13.0])
    subjects = np.repeat(["A", "B"], 3)
    channels, motions = np.full(6, "ch0"), np.full(6, "2")
    levels = np.tile(["20%", "50%", "MVC"], 2)
    cells = (values, subjects, channels, motions, levels)
    assert spread.within_subject_steps(*cells) == {("20%", "50%"): 1.5, ("50%", "MVC"): 1.5}
    # Per level the two subjects' variance (ddof 1) is 50, 60.5 and 50.
    assert spread.between_subject_spread(*cells) == pytest.approx(np.sqrt(53.5))
    # Across subjects, B's 20 % (10) reads above A's 50 % (1), A's 20 % (0) not above B's 50 % (12): one pair in two.
    assert spread.crossing_shares(*cells, "20%", "50%", 1.0) == (0.5, 0.0)
    assert spread.crossing_shares(*cells, "20%", "50%", -1.0) == (0.5, 1.0)


def test_centring_within_groups_touches_only_the_chosen_columns():
    spread = load_benchmark("subject_spread")
    x = np.array([[1.0, 5.0], [3.0, 7.0], [10.0, 0.0], [10.0, 4.0]])
    keys = np.array(["S1/a", "S1/a", "S2/a", "S2/a"])
    centred = spread.centred_within(x, keys, np.array([True, False]))
    np.testing.assert_array_equal(centred, [[-1, 5], [1, 7], [0, 0], [0, 4]])
    # Scaled: each group's column divided by its standard deviation; a constant column is only centred.
    scaled = spread.centred_within(x, keys, np.array([True, True]), scale=True)
    np.testing.assert_array_equal(scaled, [[-1, -1], [1, 1], [0, -1], [0, 1]])


def test_the_levels_of_the_contraction_recordings():
    spread = load_benchmark("subject_spread")
    names = ["S1_20P_C2_R1", "S1_50P_C1_R1", "S1_50P_C3_R1", "S1_MVC_C6_R1"]
    recordings = spread.Recordings(names, np.zeros(4, int), np.full(4, "S1"), np.array(["2", "1", "3", "6"]), [], [])
    np.testing.assert_array_equal(spread.recording_levels(recordings), ["20%", "rest", "50%", "MVC"])


@pytest.mark.slow
def test_the_subject_spread_tables_show_each_subjects_gain(tmp_path):
    # A level's amplitude is about 3 times the one below it, and the subjects' gains differ by up to 16 times.
    write_recordings(tmp_path / "recordings", seconds=0.8, gains=(1.0, 4.0, 16.0))
    result = run_python(
        BENCHMARKS / "subject_spread.py", "--contraction_dir", tmp_path / "recordings", "--work_dir", tmp_path / "work"
    )
    assert result.returncode == 0, result.stderr
    tables = [block for block in result.stdout.split("\n\n") if block.startswith("|")]
    spread_rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in tables[0].splitlines()[2:]}
    assert set(spread_rows) == {"td_log_mav", "log_total_energy", "mean_frequency_hz", "median_frequency_hz",
                                "amp_kurtosis", "amp_log_mav_rms_ratio"}  # fmt: skip
    # Every subject's levels are ordered in amplitude, but a subject's gain makes another's lower level read higher.
    across, within = (float(share) for share in spread_rows["td_log_mav"][4].split(" / "))
    assert within == 0.0 and across > 0.0
    accuracy_rows = tables[1].splitlines()[2:]
    assert len(accuracy_rows) == 12 and all(line.count("±") == 4 for line in accuracy_rows)
    # Amplitude alone grades a subject never seen only once its subject's level is known.
    means = [float(cell.split(" ± ")[0]) for cell in accuracy_rows[0].split(" | ")[2:]]
    assert accuracy_rows[0].startswith("| Hudgins' log MAV alone | LDA") and means[3] > means[0] + 0.2
    tried = tables[2].splitlines()[2:]
    assert len(tried) == 5 and all(line.count("±") == 3 for line in tried)


def test_shared_errors_count_the_rows_under_our_steps_that_got_a_recording_wrong():
    benchmark = load_benchmark("evaluate_recordings")
    names = ["S1_MVC_C2_R1", "S1_50P_C2_R1", "S2_MVC_C2_R1", "S2_50P_C2_R1"]
    subjects = np.repeat(["S1", "S2"], 2)
    recordings = benchmark.Recordings(names, np.array([0, 1, 0, 1]), subjects, np.full(4, "2"), [], [])
    steps = benchmark.steps_row("HHT descriptors", "whole")
    vector = benchmark.vector_row("HHT descriptors", "whole")
    raw = benchmark.steps_row("HHT descriptors", "whole", normalised=False)
    folds = [fold for fold in benchmark.folds(recordings) if fold.scheme == "LOSO"]
    # Both rows under our steps take S1's 50 % for MVC, one of them also S2's; the classic and the raw rows, wrong
    # everywhere, do not count.
    wrong = {"recordings": [2, 2], "head": "LDA"}
    outcomes = [
        (folds[0], {steps: {"recordings": [0, 0]}, vector: {"recordings": [0, 2]}, benchmark.CLASSIC_ROW: wrong}),
        (folds[1], {steps: {"recordings": [0, 1]}, vector: {"recordings": [0, 0]}, raw: wrong}),
    ]
    total, errors = benchmark.shared_errors(outcomes, recordings, "LOSO")
    assert total == 2 and errors == {"S1_50P_C2_R1": {"full": 1, "invalid": 1}, "S2_50P_C2_R1": {"full": 1}}
    assert benchmark.shared_errors(outcomes, recordings, "LOMO") == (2, {})
    line = benchmark.shared_errors_line("LOSO", total, errors, recordings)
    assert "every one of the 2 rows under our steps: S1_50P_C2_R1 (half; predicted full 1, invalid 1)." in line
    assert line.endswith("By at least half of them: S2_50P_C2_R1 (half; predicted full 1).")
