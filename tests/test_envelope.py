"""Activation-envelope descriptors: known answers on synthetic envelopes, scale, batching, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from semg_hht.model.envelope import ENVELOPE_NAMES, QUANTILE_FLOOR, envelope_descriptors

N = 256


def describe(matrix: np.ndarray) -> dict[str, float]:
    return dict(zip(ENVELOPE_NAMES, envelope_descriptors(matrix), strict=True))


def with_profile(profile: np.ndarray, row: int = 100) -> np.ndarray:
    """A matrix whose time profile is ``profile``: all of each column's amplitude in one row."""
    matrix = np.zeros((N, N))
    matrix[row] = profile
    return matrix


def bursts(*spans: tuple[int, int]) -> np.ndarray:
    """Amplitude 1 over the columns ``start .. stop - 1`` of each span, 0 elsewhere."""
    profile = np.zeros(N)
    for start, stop in spans:
        profile[start:stop] = 1.0
    return with_profile(profile)


def test_names_are_unique_snake_case_and_match_the_output_width():
    assert len(ENVELOPE_NAMES) == 16 and len(set(ENVELOPE_NAMES)) == 16
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) for name in ENVELOPE_NAMES)
    assert envelope_descriptors(bursts((10, 20))).shape == (16,)
    assert envelope_descriptors(np.stack([bursts((10, 20))] * 3)).shape == (3, 16)


def test_a_rectangular_burst_known_answer():
    """Columns 64-191 at 1: the 9-column smoothing ramps 1/9 per column across each edge."""
    d = describe(bursts((64, 192)))
    # At or above 1/9 from column 60 to 195 (136 columns), 2/9: 61-194, 3/9: 62-193; 0.7 needs
    # 7/9 (66-189), 0.9 needs 9/9 (68-187).
    expected = {10: 136, 20: 134, 30: 132, 70: 124, 90: 120}
    for level, columns in expected.items():
        assert d[f"active_fraction_{level}"] == pytest.approx(columns / N)
    # Half the columns are 0 (floored), the top quarter 1.
    assert d["log_envelope_quantile_10"] == pytest.approx(np.log(QUANTILE_FLOOR))
    assert d["log_envelope_quantile_90"] == pytest.approx(0.0)
    assert d["burst_count_30"] == d["burst_count_70"] == 1
    assert d["activity_centre"] == pytest.approx(0.5)
    assert d["activity_spread"] == pytest.approx(0.5 / np.sqrt(12), rel=0.02)  # uniform over half the segment
    # The slow course spreads each sharp edge over 41 columns: an onset is rough by this measure too.
    assert d["envelope_roughness"] > 0.1
    assert d["main_burst_centre"] == pytest.approx(0.5)


def test_a_steady_contraction_sits_at_its_peak_all_the_time():
    d = describe(with_profile(np.full(N, 0.3)))
    assert all(d[f"active_fraction_{level}"] == 1.0 for level in (10, 20, 30, 70, 90))
    assert all(d[f"log_envelope_quantile_{q}"] == pytest.approx(0.0) for q in (10, 25, 50, 75, 90))
    assert d["burst_count_30"] == 1 and d["envelope_roughness"] == pytest.approx(0.0, abs=1e-12)
    assert d["activity_centre"] == pytest.approx(0.5) and d["main_burst_centre"] == pytest.approx(0.5)


def test_bursts_are_counted_at_each_level():
    # A loud burst and a quiet one at 50 % of it: both above 30 % of the peak, one above 70 %.
    profile = np.zeros(N)
    profile[20:60] = 1.0
    profile[150:200] = 0.5
    d = describe(with_profile(profile))
    assert (d["burst_count_30"], d["burst_count_70"]) == (2, 1)
    assert d["activity_centre"] > 0.3  # pulled late by the second burst


def test_the_main_burst_centre_reads_where_the_activity_builds():
    ramp = np.zeros(N)
    ramp[50:150] = np.linspace(0.2, 1.0, 100)  # builds up, then stops short: a cut concentric phase
    fading = ramp.copy()
    fading[50:150] = ramp[50:150][::-1]  # abrupt onset, then fades
    late, early = describe(with_profile(ramp))["main_burst_centre"], describe(with_profile(fading))["main_burst_centre"]
    # The main burst is the part from half the peak up: weights rising linearly from 0.5 to 1 over
    # the run put their mean at (1/4 + 1/6) / (3/4) = 5/9 of it.
    assert late == pytest.approx(5 / 9, abs=0.01)
    assert early == pytest.approx(4 / 9, abs=0.01)


def test_the_roughness_of_a_fluctuation_known_answer():
    """A 40 % fluctuation of period 24 columns: the 9-column smoothing keeps sin(9 pi / 24) / (9 sin(pi / 24))
    = 0.787 of it, the 41-column slow course -0.149, so ``s / b`` swings by about 0.315 + 0.06 = 0.375
    around 1: a standard deviation of 0.375 / sqrt(2) = 0.265."""
    time = np.arange(N)
    fluctuating = 1.0 + 0.4 * np.sin(2 * np.pi * time / 24)
    assert describe(with_profile(fluctuating))["envelope_roughness"] == pytest.approx(0.265, rel=0.05)
    assert describe(with_profile(np.ones(N)))["envelope_roughness"] == 0.0


def test_scale_invariance_batching_and_dtypes():
    rng = np.random.default_rng(0)
    matrices = rng.random((4, N, N)) * np.linspace(0.0, 1.0, N) ** 2
    values = envelope_descriptors(matrices)
    np.testing.assert_allclose(envelope_descriptors(matrices * 7.0), values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(envelope_descriptors(matrices * 1e-200), values, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.stack([envelope_descriptors(m) for m in matrices]), values)
    np.testing.assert_allclose(envelope_descriptors(matrices.astype(np.float32)), values, rtol=1e-5, atol=1e-6)
    # Column sums that overflow float32 are summed again in float64.
    huge = (matrices * 1e37).astype(np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(huge.sum(axis=1)).any()
    np.testing.assert_allclose(envelope_descriptors(huge), values, rtol=1e-5, atol=1e-6)


def test_a_silent_matrix_gives_zeros_and_the_quantile_floor():
    d = describe(np.zeros((N, N)))
    for name, value in d.items():
        expected = np.log(QUANTILE_FLOOR) if name.startswith("log_envelope_quantile") else 0.0
        assert value == pytest.approx(expected), name
    assert envelope_descriptors(np.empty((0, N, N))).shape == (0, 16)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.zeros((N, 128)), "shape"),
        (-np.ones((N, N)), "non-negative"),
        (np.full((N, N), np.nan), "NaN"),
        (np.full((N, N), np.inf), "finite"),
        (np.full((N, N), 1e307), "finite"),
    ],
)
def test_bad_input_is_refused(matrix, message):
    with pytest.raises(ValueError, match=message):
        envelope_descriptors(matrix)


def test_a_model_of_both_blocks_sums_each_matrix_once_and_gets_the_same_columns(monkeypatch):
    from semg_hht.model import envelope
    from semg_hht.model.classifier import HHTClassifier
    from semg_hht.model.descriptors import hht_descriptors
    from semg_hht.model.feature_steps import HHTDescriptors

    matrices = np.random.default_rng(1).random((5, N, N), dtype=np.float32) * np.linspace(0.1, 1.0, N)
    expected = np.concatenate([hht_descriptors(matrices), envelope_descriptors(matrices)], axis=1)
    # With the hht block the envelope takes the HHT descriptors' time profile: its own sum never runs.
    monkeypatch.setattr(envelope, "_time_profile", lambda stack: pytest.fail("the time profile was summed twice"))
    both = HHTClassifier(features="hht+env").transform(matrices)
    np.testing.assert_allclose(both, expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    monkeypatch.undo()
    one = HHTDescriptors(envelope=True)
    assert one.transform(matrices[0]).shape == (44,) and list(one.get_feature_names_out()[28:]) == list(ENVELOPE_NAMES)
    alone = HHTClassifier(features="env").transform(matrices)
    np.testing.assert_array_equal(alone, envelope_descriptors(matrices).astype(np.float32))
