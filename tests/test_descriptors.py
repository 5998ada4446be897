"""HHT descriptors: known answers on synthetic spectra, scale behaviour, batching, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from semg_hht.hht.spectrum import frequency_axis
from semg_hht.model.descriptors import DESCRIPTOR_NAMES, N_BANDS, hht_descriptors

FREQUENCY = frequency_axis()
SPACING = FREQUENCY[1] - FREQUENCY[0]
N = 256
AMPLITUDE_COLUMNS = ["log_total_energy", *(f"log_band_energy_{k}" for k in range(N_BANDS))]


def describe(matrix: np.ndarray, frequency: np.ndarray | None = None) -> dict[str, float]:
    return dict(zip(DESCRIPTOR_NAMES, hht_descriptors(matrix, frequency), strict=True))


def tone(row: int, amplitude: float = 0.3) -> np.ndarray:
    """All the energy in one frequency row, over every column."""
    matrix = np.zeros((N, N))
    matrix[row] = amplitude
    return matrix


def track(rows: np.ndarray, amplitude: np.ndarray | float = 1.0) -> np.ndarray:
    """One cell per column, at ``rows[t]``, with ``amplitude`` (per column or constant)."""
    matrix = np.zeros((N, N))
    matrix[rows, np.arange(N)] = amplitude
    return matrix


def bursts(*spans: tuple[int, int], row: int = 100) -> np.ndarray:
    """Energy in one row over the columns ``start .. stop - 1`` of each span, zero elsewhere."""
    matrix = np.zeros((N, N))
    for start, stop in spans:
        matrix[row, start:stop] = 1.0
    return matrix


def textured(seed: int = 0) -> np.ndarray:
    """A random spectrum with a frequency ridge, two bursts and silent columns."""
    rng = np.random.default_rng(seed)
    matrix = rng.random((N, N)) * np.exp(-0.5 * ((np.arange(N)[:, None] - 90) / 30) ** 2)
    matrix[:, :30] = 0.0
    matrix[:, 120:150] *= 0.05
    return matrix


def test_names_are_unique_snake_case_and_match_the_output_width():
    assert N_BANDS == 8
    assert len(set(DESCRIPTOR_NAMES)) == len(DESCRIPTOR_NAMES)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) for name in DESCRIPTOR_NAMES)
    assert hht_descriptors(tone(10)).shape == (len(DESCRIPTOR_NAMES),)
    assert hht_descriptors(np.stack([tone(10)] * 3)).shape == (3, len(DESCRIPTOR_NAMES))


@pytest.mark.parametrize("row", [0, 77, 160, 255])
def test_pure_tone(row):
    d = describe(tone(row))
    f = FREQUENCY[row]
    assert d["log_total_energy"] == pytest.approx(np.log(0.3 * N), abs=1e-12)
    for name in ["mean_frequency_hz", "median_frequency_hz", "if_mean_hz"]:
        assert d[name] == pytest.approx(f, rel=1e-12), name
    for name in ["spectral_spread_hz", "if_std_hz", "energy_cv", "mdf_slope_hz_per_segment"]:
        assert d[name] == pytest.approx(0.0, abs=1e-6), name
    assert d["log_energy_slope_per_segment"] == pytest.approx(0.0, abs=1e-12)
    band = row // 32
    assert d[f"log_relative_band_energy_{band}"] == pytest.approx(0.0, abs=1e-9)
    assert d[f"log_band_energy_{band}"] == pytest.approx(d["log_total_energy"], abs=1e-9)
    others = [d[f"log_relative_band_energy_{k}"] for k in range(N_BANDS) if k != band]
    assert max(others) < -25
    assert (d["active_fraction"], d["burst_count"], d["mean_burst_duration"]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("start", "stop"), [(40, 200), (220, 30)])
def test_linear_chirp(start, stop):
    rows = np.rint(start + (stop - start) * np.arange(N) / (N - 1)).astype(int)
    d = describe(track(rows))
    f_a, f_b = FREQUENCY[start], FREQUENCY[stop]
    assert d["mean_frequency_hz"] == pytest.approx((f_a + f_b) / 2, abs=0.5 * SPACING)
    assert d["median_frequency_hz"] == pytest.approx((f_a + f_b) / 2, abs=SPACING)
    assert d["if_mean_hz"] == pytest.approx((f_a + f_b) / 2, abs=0.5 * SPACING)
    # A uniform sweep over [f_a, f_b]: spread and IF std are its standard deviation.
    assert d["spectral_spread_hz"] == pytest.approx(abs(f_b - f_a) / np.sqrt(12), rel=0.01)
    assert d["if_std_hz"] == pytest.approx(abs(f_b - f_a) / np.sqrt(12), rel=0.01)
    # Chunk centres are 256 columns apart per segment while the sweep spans 255: 1/255 extra.
    assert d["mdf_slope_hz_per_segment"] == pytest.approx(f_b - f_a, rel=0.01)
    assert d["log_energy_slope_per_segment"] == pytest.approx(0.0, abs=1e-12)


def test_mdf_slope_of_a_stepped_spectrum_is_exact():
    step = np.repeat(20 + 10 * np.arange(8), 32)
    d = describe(track(step))
    assert d["mdf_slope_hz_per_segment"] == pytest.approx(8 * 10 * SPACING, rel=1e-9)


def test_log_energy_slope_of_a_stepped_amplitude_is_exact():
    centres = (np.arange(8) + 0.5) / 8
    d = describe(track(np.full(N, 50), np.repeat(np.exp(-1.5 * centres), 32)))
    assert d["log_energy_slope_per_segment"] == pytest.approx(-1.5, rel=1e-9)
    assert d["mdf_slope_hz_per_segment"] == pytest.approx(0.0, abs=1e-9)


def test_one_burst_of_known_length():
    d = describe(bursts((64, 128)))
    assert d["active_fraction"] == pytest.approx(0.25, abs=2 / N)
    assert d["burst_count"] == 1.0
    assert d["mean_burst_duration"] == pytest.approx(0.25, abs=2 / N)
    assert d["mdf_slope_hz_per_segment"] == pytest.approx(0.0, abs=1e-9)
    assert d["median_frequency_hz"] == pytest.approx(FREQUENCY[100], rel=1e-12)
    # Half the columns at 4x the mean energy, the rest at 0: cv = sqrt(4 - 1) = sqrt(3).
    assert d["energy_cv"] == pytest.approx(np.sqrt(3), rel=1e-12)


def test_two_separated_bursts():
    d = describe(bursts((20, 60), (150, 200)))
    assert d["burst_count"] == 2.0
    assert d["active_fraction"] == pytest.approx(90 / N, abs=4 / N)
    assert d["mean_burst_duration"] == pytest.approx(45 / N, abs=2 / N)


def test_energy_cv_of_a_two_level_profile():
    d = describe(track(np.full(N, 60), np.repeat([1.0, 3.0], N // 2)))
    assert d["energy_cv"] == pytest.approx(0.5, rel=1e-12)
    assert d["active_fraction"] == pytest.approx(0.5, abs=2 / N)


def test_if_mean_counts_instants_where_mnf_counts_energy():
    # First half of the segment at row 50 (amplitude 1), second half at row 150 (0.8): all active.
    d = describe(track(np.repeat([50, 150], N // 2), np.repeat([1.0, 0.8], N // 2)))
    low, high = FREQUENCY[50], FREQUENCY[150]
    assert d["active_fraction"] == 1.0
    assert d["if_mean_hz"] == pytest.approx((low + high) / 2, rel=1e-12)
    assert d["if_std_hz"] == pytest.approx((high - low) / 2, rel=1e-12)
    assert d["mean_frequency_hz"] == pytest.approx((low + 0.8 * high) / 1.8, rel=1e-12)


def test_scaling_shifts_only_the_amplitude_descriptors():
    matrix = textured()
    base, scaled = hht_descriptors(matrix), hht_descriptors(7.0 * matrix)
    amplitude = np.isin(DESCRIPTOR_NAMES, AMPLITUDE_COLUMNS)
    np.testing.assert_allclose(scaled[amplitude] - base[amplitude], np.log(7.0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(scaled[~amplitude], base[~amplitude], rtol=1e-9, atol=1e-9)
    # The texture makes every scale-free descriptor non-trivial, so the check has teeth.
    assert np.all(base[~amplitude] != 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_equals_one_by_one(dtype):
    stack = np.stack([textured(seed) for seed in range(5)] + [tone(3), bursts((64, 128))]).astype(dtype)
    batch = hht_descriptors(stack)
    singles = np.stack([hht_descriptors(matrix) for matrix in stack])
    np.testing.assert_allclose(batch, singles, rtol=1e-12, atol=1e-12)


def test_float32_agrees_with_float64():
    matrix = textured(3)
    np.testing.assert_allclose(
        hht_descriptors(matrix.astype(np.float32)),
        hht_descriptors(matrix.astype(np.float32).astype(np.float64)),
        rtol=1e-5,
        atol=1e-4,
    )


def test_integer_input_is_accepted():
    counts = (textured(4) * 1000).astype(np.int64)
    np.testing.assert_array_equal(hht_descriptors(counts), hht_descriptors(counts.astype(np.float64)))


def test_finite_on_sparse_and_empty_matrices():
    sparse = np.zeros((N, N))
    sparse[40, 10] = 2.0
    sparse[200, 11] = 1e-30
    sparse[5, 250] = 3.0
    single_cell = np.zeros((N, N))
    single_cell[255, 255] = 1.0
    stack = np.stack([sparse, single_cell, np.zeros((N, N)), textured()])
    out = hht_descriptors(stack)
    assert out.dtype == np.float64
    assert np.all(np.isfinite(out))
    zero = dict(zip(DESCRIPTOR_NAMES, out[2], strict=True))
    assert zero["log_total_energy"] == pytest.approx(np.log(np.finfo(np.float64).tiny))
    assert zero["burst_count"] == 0.0
    assert zero["log_relative_band_energy_0"] == pytest.approx(np.log(1e-12))


def test_extreme_but_valid_scales_stay_finite():
    for scale in (1e-35, 1e35):
        out = hht_descriptors((textured() * scale).astype(np.float32))
        assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(hht_descriptors(textured() * 1e240)))


def test_empty_batch():
    assert hht_descriptors(np.zeros((0, N, N))).shape == (0, len(DESCRIPTOR_NAMES))


def test_custom_frequency_axis():
    matrix = textured()
    shifted = describe(matrix, FREQUENCY + 5.0)
    base = describe(matrix)
    assert describe(matrix, FREQUENCY) == base
    for name in ["mean_frequency_hz", "median_frequency_hz", "if_mean_hz"]:
        assert shifted[name] == pytest.approx(base[name] + 5.0, rel=1e-12), name
    assert shifted["spectral_spread_hz"] == pytest.approx(base["spectral_spread_hz"], rel=1e-9)


@pytest.mark.parametrize(
    ("matrices", "message"),
    [
        (np.zeros((N, N - 1)), "shape"),
        (np.zeros(N), "shape"),
        (np.zeros((2, 1, N, N)), "shape"),
        (np.zeros((N, N), dtype=complex), "real"),
        (np.zeros((N, N), dtype=bool), "real"),
        (-tone(5), "non-negative"),
        (np.where(np.eye(N) > 0, np.nan, 0.0), "NaN"),
        (np.where(np.eye(N) > 0, np.inf, 0.0), "finite"),
        (tone(5, 1e300), "finite"),
    ],
)
def test_bad_matrices_raise(matrices, message):
    with pytest.raises(ValueError, match=message):
        hht_descriptors(matrices)


@pytest.mark.parametrize("frequency", [FREQUENCY[:-1], FREQUENCY[::-1], np.where(FREQUENCY > 100, np.nan, FREQUENCY)])
def test_bad_frequency_raises(frequency):
    with pytest.raises(ValueError, match="frequency"):
        hht_descriptors(tone(5), frequency)
