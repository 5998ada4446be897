import pytest

from semg_hht.classes import CLASS_NAMES, class_id, is_npz_name, parse_filename


def test_class_table_order():
    assert CLASS_NAMES == ("M_full", "M_half", "M_invalid", "F_full", "F_half", "F_invalid")
    assert [class_id(g, m) for g in "MF" for m in ("full", "half", "invalid")] == list(range(6))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("BICEPS_fatiguetest_M_006.npz", "M_full"),
        ("TRICEPS_half_F_012.npz", "F_half"),
        ("FOREARM_invalid_M_003.npz", "M_invalid"),
        ("DELTOID_full_F_001.npz", "F_full"),
        ("BICEPS_wrong_F_010.npz", "F_invalid"),
        ("biceps_FatigueTest_m_006.NPZ", "M_full"),
        ("Triceps_HALF_f_1.npz", "F_half"),
        ("some/dir/FOREARM_invalid_M_003.npz", "M_invalid"),
    ],
)
def test_labelled_names(name, expected):
    label = parse_filename(name)
    assert label.kind == "labelled"
    assert label.class_name == expected
    assert label.class_id == CLASS_NAMES.index(expected)


@pytest.mark.parametrize(
    "name",
    ["BICEPS_test_001.npz", "DELTOID_test_042.npz", "Test1_1_015.npz", "test_M_full_001.npz", "BICEPS_TEST_M_001.npz"],
)
def test_test_files(name):
    assert parse_filename(name).kind == "test"


def test_fatiguetest_is_not_a_test_file():
    assert parse_filename("BICEPS_fatiguetest_F_001.npz").kind == "labelled"


def test_substrings_are_not_tokens():
    # 'contest' holds 'test', 'halfway' holds 'half': neither is a token.
    assert parse_filename("contest_full_M_001.npz").kind == "labelled"
    label = parse_filename("BICEPS_halfway_M_001.npz")
    assert label.kind == "unlabelled" and "movement" in label.reason


@pytest.mark.parametrize(
    "name, reason",
    [
        ("BICEPS_full_001.npz", "no gender"),
        ("BICEPS_M_001.npz", "no movement"),
        ("BICEPS_full_half_M_001.npz", "conflicting movement"),
        ("BICEPS_full_M_F_001.npz", "both M and F"),
        ("random.npz", "no movement"),
    ],
)
def test_unlabelled_names_say_why(name, reason):
    label = parse_filename(name)
    assert label.kind == "unlabelled"
    assert label.class_id is None
    assert reason in label.reason


def test_npz_extension_any_case():
    assert is_npz_name("a.npz") and is_npz_name("a.NPZ") and not is_npz_name("a.npy")


def test_class_id_rejects_unknown():
    with pytest.raises(ValueError):
        class_id("X", "full")
