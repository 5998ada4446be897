"""Hudgins' time-domain features: known answers for sines, invariances, the threshold, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from semg_hht.hht.time_domain import (
    AMPLITUDE_NAMES,
    DEFAULT_THRESHOLD_FRACTION,
    SEGMENT_FEATURE_NAMES,
    TIME_DOMAIN_NAMES,
    amplitude_distribution_features,
    hudgins_features,
    segment_features,
)

FS = 1000.0
LOG_MAV, LOG_WL, ZC, SSC = range(4)


def sine(frequency: float, n_samples: int, amplitude: float = 1.0, fs: float = FS) -> np.ndarray:
    # A phase off zero, so that no sample lies exactly on a crossing or a peak.
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(n_samples) / fs + 0.3)


def resting_wave(n_samples: int = 2000) -> np.ndarray:
    """A slow (2 Hz) wave that rests at exactly zero around each sign change, leaving it smoothly."""
    wave = np.sin(2 * np.pi * 2 * np.arange(n_samples) / FS)
    return np.sign(wave) * np.maximum(np.abs(wave) - 0.3, 0.0) ** 2


def test_names_and_default():
    assert TIME_DOMAIN_NAMES == ("log_mav", "log_wl", "zc", "ssc")
    assert DEFAULT_THRESHOLD_FRACTION == 0.01


@pytest.mark.parametrize(
    ("frequency", "n_samples", "amplitude"),
    [(25.0, 1000, 1.0), (37.0, 2000, 3.0), (50.0, 4000, 0.002), (120.0, 1500, 250.0)],
)
def test_sine_over_whole_periods(frequency, n_samples, amplitude):
    periods = frequency * n_samples / FS
    assert periods.is_integer()
    features = hudgins_features(sine(frequency, n_samples, amplitude))
    assert features.shape == (4,) and features.dtype == np.float64
    # Two crossings and two turns per period, 2 f / fs per sample; the one past the last sample is missed.
    for feature in (ZC, SSC):
        assert round(features[feature] * n_samples) in (2 * periods - 1, 2 * periods)
    # Mean of |A sin| is 2A/pi; each period rises and falls by 2A, so the length is 4A f / fs per sample.
    # Sampled, these fall short by under 1 % at 20 samples a period, by under 3 % at 8.
    rtol = 3e-2 if FS / frequency < 20 else 1e-2
    np.testing.assert_allclose(np.exp(features[LOG_MAV]), 2 * amplitude / np.pi, rtol=rtol)
    np.testing.assert_allclose(np.exp(features[LOG_WL]), 4 * amplitude * frequency / FS, rtol=rtol)


def test_turns_of_a_slow_wave_fall_below_the_threshold():
    # At 100 samples a period the crossings step by 6 % of the amplitude but the peaks by 0.2 %,
    # less than 1 % of the std (0.7 %): the crossings count, the turns do not.
    features = hudgins_features(sine(10, 1000))
    assert features[ZC] == 0.02 and features[SSC] == 0
    assert hudgins_features(sine(10, 1000), threshold_fraction=0)[SSC] == 0.02


def test_rates_do_not_depend_on_the_window_length():
    short, long = hudgins_features(sine(40, 500)), hudgins_features(sine(40, 5000))
    # Raw sums and counts would differ by a factor of 10 (2.3 in the logs); the rates differ only by
    # the step or count lost at the end of the short window, one of 500 (a steep step: 1.5 average ones).
    np.testing.assert_allclose(short, long, rtol=0, atol=2 / 500)


@pytest.mark.parametrize("k", [1e-3, 2.0**-10, 1e6, 1e300, 1e-300])
def test_scaling_shifts_the_logs_by_log_k_and_keeps_the_rates(k):
    x = np.random.default_rng(3).standard_normal(3000) + sine(60, 3000)
    base, scaled = hudgins_features(x), hudgins_features(k * x)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled[[LOG_MAV, LOG_WL]], base[[LOG_MAV, LOG_WL]] + np.log(k), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(scaled[[ZC, SSC]], base[[ZC, SSC]])


def test_the_mean_is_removed_first():
    x = sine(30, 1000)
    shifted = hudgins_features(x + 100.0)
    np.testing.assert_allclose(shifted, hudgins_features(x), rtol=0, atol=1e-9)
    # An offset larger than the wave would leave no crossing at all, were the mean kept.
    assert shifted[ZC] == pytest.approx(0.06, abs=1e-3)


def test_noise_below_the_threshold_adds_no_zero_crossings():
    clean = resting_wave()
    noisy = clean + np.random.default_rng(0).uniform(-2e-4, 2e-4, clean.size)
    # Steps of at most 4e-4 where the wave rests, below 1 % of the std (about 2.7e-3).
    assert 4e-4 < DEFAULT_THRESHOLD_FRACTION * clean.std()
    assert hudgins_features(noisy)[ZC] == hudgins_features(clean)[ZC]
    assert hudgins_features(noisy)[SSC] == hudgins_features(clean)[SSC]
    # Without the threshold the noise crosses zero over and over where the wave rests.
    raw_noisy, raw_clean = hudgins_features(noisy, threshold_fraction=0), hudgins_features(clean, threshold_fraction=0)
    assert raw_noisy[ZC] > raw_clean[ZC] + 0.05
    assert raw_noisy[SSC] > raw_clean[SSC] + 0.05


def test_threshold_counts_only_big_steps():
    # Zero mean; crossings by steps of 2, 2, 2, 1.01, 0.02, 0.012 and 0.004, and a std of about 0.707.
    x = np.array([1.0, -1.0, 1.0, -1.0, 0.01, -0.01, 0.002, -0.002])
    assert hudgins_features(x)[ZC] * x.size == 6
    assert hudgins_features(x, threshold_fraction=0.02)[ZC] * x.size == 5
    assert hudgins_features(x, threshold_fraction=0)[ZC] * x.size == 7


def test_2d_equals_row_by_row():
    rng = np.random.default_rng(1)
    rows = np.stack([sine(45, 1500), 1e-6 * rng.standard_normal(1500), resting_wave(1500), 5e4 * sine(3, 1500) + 7])
    features = hudgins_features(rows)
    assert features.shape == (4, 4) and features.dtype == np.float64
    for row, expected in zip(rows, features, strict=True):
        np.testing.assert_array_equal(hudgins_features(row), expected)
    np.testing.assert_array_equal(hudgins_features(rows[:1]), features[:1])


def test_integer_input():
    x = np.array([0, 3, -2, 5, -1, 4, -3, 2], dtype=np.int16)
    np.testing.assert_array_equal(hudgins_features(x), hudgins_features(x.astype(np.float64)))


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (np.where(np.arange(100) == 7, np.nan, 1.0), "1 non-finite value(s) (NaN or inf), the first at sample 7"),
        (np.stack([np.arange(10.0), np.full(10, np.inf)]), "the first at signal 1, sample 0"),
        (np.full(50, 2.5), "the signal is constant (2.5)"),
        (np.stack([np.arange(10.0), np.zeros(10)]), "signal 1 is constant (0)"),
        (np.array([1.0, 2.0]), "at least 3 samples; got 2"),
        (np.ones((2, 3, 4)), "1-D (samples) or 2-D (signals x samples); got shape (2, 3, 4)"),
        (np.float64(1.0), "got shape ()"),
        (np.zeros((0, 10)), "no signal"),
        (np.arange(10) + 1j, "real numbers; got dtype complex128"),
        (np.arange(10) % 2 == 0, "real numbers; got dtype bool"),
    ],
)
def test_bad_signals_are_refused(signal, message):
    for features in (hudgins_features, amplitude_distribution_features, segment_features):
        with pytest.raises(ValueError) as error:
            features(signal)
        assert message in str(error.value)


@pytest.mark.parametrize("fraction", [-0.01, float("nan"), float("inf")])
def test_bad_threshold_fraction_is_refused(fraction):
    with pytest.raises(ValueError, match="threshold_fraction must be a finite number >= 0"):
        hudgins_features(sine(10, 100), threshold_fraction=fraction)


# --- the amplitude distribution ------------------------------------------------------------------


def test_amplitude_distribution_known_answers():
    """Excess kurtosis and log(MAV / RMS): a sinusoid -1.5 and log(2 sqrt 2 / pi) exactly (whole periods); a
    square wave -2 and 0; Gaussian noise 0 and log sqrt(2 / pi), a Laplacian 3 and log(1 / sqrt 2), to sampling
    error."""
    assert AMPLITUDE_NAMES == ("kurtosis", "log_mav_rms_ratio")
    # 100 samples a period: the sampled mean |sin| is 2 / pi to 2e-5.
    np.testing.assert_allclose(
        amplitude_distribution_features(sine(10, 1000)), [-1.5, np.log(2 * np.sqrt(2) / np.pi)], atol=1e-4
    )
    square = np.tile([1.0, -1.0], 50)
    np.testing.assert_allclose(amplitude_distribution_features(square), [-2.0, 0.0], atol=1e-12)
    rng = np.random.default_rng(0)
    gaussian = amplitude_distribution_features(rng.standard_normal(400_000))
    np.testing.assert_allclose(gaussian, [0.0, np.log(np.sqrt(2 / np.pi))], atol=0.02)
    laplacian = amplitude_distribution_features(rng.laplace(size=400_000))
    np.testing.assert_allclose(laplacian, [3.0, np.log(1 / np.sqrt(2))], atol=0.1)


def test_sparse_spikes_are_less_gaussian_than_dense_activity():
    """Few motor units (rare spikes on a quiet baseline) against many (their sum): the kurtosis falls and the
    MAV / RMS ratio rises towards the Gaussian's as trains are superimposed."""
    rng = np.random.default_rng(3)
    spike = np.hanning(9) * np.sin(np.linspace(0, 2 * np.pi, 9))

    def trains(count: int) -> np.ndarray:
        x = 1e-3 * rng.standard_normal(3000)
        for _ in range(count):
            x += np.convolve(rng.random(3000) < 0.01, spike * rng.uniform(0.5, 2), mode="same")
        return x

    one, ten, many = (amplitude_distribution_features(trains(count)) for count in (1, 10, 200))
    assert one[0] > 10 > ten[0] > 2 > 0.5 > many[0] > -0.5
    assert one[1] < ten[1] < many[1] and abs(many[1] - np.log(np.sqrt(2 / np.pi))) < 0.03


def test_amplitude_distribution_ignores_scale_and_offset():
    x = np.random.default_rng(4).laplace(size=2000)
    base = amplitude_distribution_features(x)
    for scaled in (1e-300 * x, 1e300 * x, 7.0 * x + 1e3, -x):
        np.testing.assert_allclose(amplitude_distribution_features(scaled), base, rtol=1e-9, atol=1e-9)


def test_segment_features_are_hudgins_then_the_amplitude_distribution():
    rows = np.stack([sine(45, 1500), np.random.default_rng(5).laplace(size=1500)])
    features = segment_features(rows)
    assert features.shape == (2, len(SEGMENT_FEATURE_NAMES)) == (2, 6)
    np.testing.assert_array_equal(features[:, :4], hudgins_features(rows))
    np.testing.assert_array_equal(features[:, 4:], amplitude_distribution_features(rows))
    np.testing.assert_array_equal(segment_features(rows[1]), features[1])
    assert SEGMENT_FEATURE_NAMES[:4] == TIME_DOMAIN_NAMES
