"""Scores, the gender and quality axes, cross-validation folds, and the labels file."""

import numpy as np
import pytest

from semg_hht.classes import CLASS_NAMES
from semg_hht.data.dataset import compile_group_pattern, scan_data_folder
from semg_hht.errors import UsageError
from semg_hht.evaluation.scores import scores
from semg_hht.evaluation.splits import cv_folds, make_split, parse_cv
from semg_hht.io.labels_file import read_labels_file


def test_scores_known_answer():
    # True: M_full, M_full, M_half, F_full; predicted: M_full, F_full (gender wrong), M_half, F_half (quality wrong).
    figures = scores(np.array([0, 0, 1, 3]), np.array([0, 3, 1, 4]))
    assert figures["n"] == 4
    assert figures["accuracy"] == 0.5
    # Recall: M_full 1/2, M_half 1, F_full 0 -> mean over the 3 true classes.
    assert figures["balanced_accuracy"] == pytest.approx(0.5)
    assert figures["gender_accuracy"] == 0.75 and figures["quality_accuracy"] == 0.75
    # F1 over the 4 classes seen: M_full 2/3, M_half 1, F_full 0, F_half 0.
    assert figures["macro_f1"] == pytest.approx((2 / 3 + 1) / 4)
    assert figures["confusion_matrix"][0] == [1, 0, 0, 1, 0, 0]
    assert figures["per_class"]["M_full"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert list(figures["per_class"]) == list(CLASS_NAMES)


def test_parse_cv():
    assert parse_cv("5") == 5 and parse_cv("LOSO") == "loso"
    for bad in ("1", "x", "2.5"):
        with pytest.raises(UsageError):
            parse_cv(bad)


def test_folds_partition_the_files_and_keep_subjects_apart():
    labels = np.tile(np.arange(6), 8)
    subjects = np.repeat([f"S{i}" for i in range(8)], 6)
    loso = cv_folds(labels, subjects, "loso", 0)
    assert [fold.name for fold in loso] == [f"S{i}" for i in range(8)]
    for folds in (loso, cv_folds(labels, subjects, 4, 0), cv_folds(labels, None, 3, 0)):
        assert sorted(np.concatenate([fold.test for fold in folds]).tolist()) == list(range(48))
        for fold in folds:
            assert not set(fold.train) & set(fold.test)
            if fold.held_out_subjects:
                assert set(subjects[fold.test]) == set(fold.held_out_subjects)
                assert not set(subjects[fold.train]) & set(fold.held_out_subjects)
    with pytest.raises(UsageError, match="needs subjects"):
        cv_folds(labels, None, "loso", 0)
    with pytest.raises(UsageError, match="more folds than there are subjects"):
        cv_folds(labels, subjects, 9, 0)
    with pytest.raises(UsageError, match="rarest class"):
        cv_folds(labels, None, 9, 0)


def test_make_split_honours_pins_and_subjects():
    labels = np.tile(np.arange(6), 10)
    subjects = np.repeat([f"S{i}" for i in range(10)], 6)
    pins = [None] * 60
    pins[0], pins[1] = "val", "train"
    train, val = make_split(labels, subjects, pins, 0.2, 0)
    assert 0 in val and 1 in train
    free_val = [i for i in val if pins[i] is None]
    free_train = [i for i in train if pins[i] is None]
    assert not set(subjects[free_val]) & set(subjects[free_train])
    with pytest.raises(UsageError, match="pins every file"):
        make_split(labels, None, ["train"] * 60, 0.2, 0)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_file_rows_and_problems(tmp_path):
    labels = read_labels_file(
        _write(
            tmp_path / "labels.csv",
            "\ufeffFile;Gender;Movement;Subject;Split\n"
            "a.npz;M;full;s1;\n"
            "b.npz;female;HALF;s2;val\n"
            "c.npz;X;full;s1;\n"
            "d.npz;M;sideways;s1;\n"
            "e.npz;;;s3;test\n"
            "f.npz;F;invalid;;maybe\n"
            "a.npz;F;full;s9;\n"
            ";M;full;s1;\n",
        )
    )
    assert labels.rows["a.npz"].class_id == 0 and labels.rows["a.npz"].subject == "s1"
    assert labels.rows["b.npz"].class_id == CLASS_NAMES.index("F_half") and labels.rows["b.npz"].split == "val"
    assert labels.rows["e.npz"].class_id is None and labels.rows["e.npz"].split == "test"
    assert set(labels.rows) == {"a.npz", "b.npz", "e.npz"}
    problems = "\n".join(labels.problems)
    for expected in (
        "line 4 (c.npz): gender 'X' is not M or F",
        "line 5 (d.npz): movement 'sideways'",
        "line 7 (f.npz): split 'maybe'",
        "line 8: a.npz is listed again",
        "line 9: no file name",
    ):
        assert expected in problems


@pytest.mark.parametrize(
    "text, message",
    [("file,gender\na.npz,M\n", r"lacks the column\(s\) movement"), ("", "is empty")],
)
def test_unusable_labels_files_are_usage_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        read_labels_file(_write(tmp_path / "labels.csv", text))


def test_scan_with_a_labels_file_reports_unlisted_and_missing_files(tmp_path):
    for name in ("a.npz", "b.npz", "c.npz", "t.npz"):
        (tmp_path / name).write_bytes(b"")
    labels = read_labels_file(
        _write(
            tmp_path / "labels.csv",
            "file,gender,movement,subject,split\na.npz,M,full,s1,\nb.npz,F,half,s2,train\n"
            "t.npz,F,invalid,s3,test\ngone.npz,M,half,s1,\n",
        )
    )
    folder = scan_data_folder(tmp_path, labels)
    assert [p.name for p in folder.labelled] == ["a.npz", "b.npz"] and folder.subjects == ["s1", "s2"]
    assert folder.pins == [None, "train"]
    assert [p.name for p in folder.test] == ["t.npz"] and list(folder.test_labels.values()) == [5]
    assert [(p.name, reason) for p, reason in folder.skipped] == [("c.npz", "not listed in labels.csv")]
    assert any("gone.npz, which is not in" in problem for problem in folder.problems)


def test_group_pattern_finds_subjects_in_names(tmp_path):
    for name in ("S1_BICEPS_full_M_001.npz", "S2_BICEPS_half_F_002.npz", "BICEPS_full_M_003.npz"):
        (tmp_path / name).write_bytes(b"")
    folder = scan_data_folder(tmp_path, group_pattern=compile_group_pattern(r"^(?P<subject>S\d+)_"))
    assert folder.subjects == ["S1", "S2"] and folder.has_subjects
    assert folder.skipped == [(tmp_path / "BICEPS_full_M_003.npz", "no subject from --group_pattern")]
    for bad, message in (("(", "not a valid regular expression"), ("S\\d+", "no group named 'subject'")):
        with pytest.raises(UsageError, match=message):
            compile_group_pattern(bad)
