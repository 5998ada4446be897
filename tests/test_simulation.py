"""The raw sEMG simulator: output format, reproducibility, and class statistics ordered as the physiology says."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.signal import welch

from semg_hht.classes import GENDERS, MOVEMENTS
from semg_hht.data.simulation import (
    INVALID_KINDS,
    Subject,
    activation_envelope,
    draw_subject,
    median_frequency,
    simulate_recording,
)

FS = 2000.0
N_SAMPLES = 4000
PER_GROUP = 40
ACTIVE_LEVEL = 0.1  # envelope level (fraction of full activation) counted as a burst


def moving_rms(signal: np.ndarray, window_s: float = 0.05) -> np.ndarray:
    width = round(window_s * FS)
    return np.sqrt(np.convolve(signal**2, np.ones(width) / width, mode="same"))


def active_samples(signal: np.ndarray, subject: Subject) -> np.ndarray:
    """Where a smoothed rectified signal exceeds 15 % of the subject's full-activation RMS."""
    return moving_rms(signal - signal.mean()) > 0.15 * subject.skin_amplitude_v


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal**2)))


def burst_count(envelope: np.ndarray) -> int:
    above = envelope > ACTIVE_LEVEL
    return int(above[0]) + int(np.sum(above[1:] & ~above[:-1]))


@pytest.fixture(scope="session")
def recordings() -> dict[tuple[str, str], list[tuple[Subject, np.ndarray]]]:
    """PER_GROUP recordings per class, each by its own simulated subject."""
    groups = {}
    for g, gender in enumerate(GENDERS):
        for m, movement in enumerate(MOVEMENTS):
            group = []
            for i in range(PER_GROUP):
                rng = np.random.default_rng((11, g, m, i))
                subject = draw_subject(gender, rng)
                group.append((subject, simulate_recording(subject, movement, rng)))
            groups[gender, movement] = group
    return groups


def test_recordings_are_finite_float64_volts(recordings):
    for (_, movement), group in recordings.items():
        for _, signal in group:
            assert signal.shape == (N_SAMPLES,)
            assert signal.dtype == np.float64
            assert np.all(np.isfinite(signal))
            assert np.max(np.abs(signal)) < 10e-3
            if movement != "invalid":
                assert 5e-5 < moving_rms(signal).max() < 5e-3


def test_rate_and_duration_set_the_length():
    subject = draw_subject("F", np.random.default_rng(0))
    assert simulate_recording(subject, "half", np.random.default_rng(1), fs=1000.0, duration_s=1.5).shape == (1500,)


def test_same_seed_reproduces_other_seed_differs():
    subject = draw_subject("M", np.random.default_rng(3))
    assert draw_subject("M", np.random.default_rng(3)) == subject
    first = simulate_recording(subject, "full", np.random.default_rng(5))
    np.testing.assert_array_equal(first, simulate_recording(subject, "full", np.random.default_rng(5)))
    assert not np.allclose(first, simulate_recording(subject, "full", np.random.default_rng(6)))


def test_fatigue_defaults_on_for_full_only():
    subject = draw_subject("F", np.random.default_rng(8))
    for movement, default in (("full", True), ("half", False), ("invalid", False)):
        implicit = simulate_recording(subject, movement, np.random.default_rng(9))
        explicit = simulate_recording(subject, movement, np.random.default_rng(9), fatigue=default)
        np.testing.assert_array_equal(implicit, explicit)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, r: draw_subject("X", r),
        lambda s, r: simulate_recording(s, "quarter", r),
        lambda s, r: simulate_recording(s, "invalid", r, invalid_kind="sneeze"),
        lambda s, r: simulate_recording(s, "full", r, fs=500.0),
        lambda s, r: simulate_recording(s, "full", r, duration_s=0.0),
        lambda s, r: activation_envelope("quarter", 100, FS, r),
    ],
    ids=["gender", "movement", "invalid_kind", "fs", "duration", "envelope_movement"],
)
def test_unknown_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call(draw_subject("M", np.random.default_rng(0)), np.random.default_rng(1))


@pytest.mark.parametrize("movement, kind", [(m, None) for m in MOVEMENTS] + [("invalid", k) for k in INVALID_KINDS])
def test_activation_envelope_lies_in_unit_range(movement, kind):
    rng = np.random.default_rng(4)
    for _ in range(20):
        envelope = activation_envelope(movement, N_SAMPLES, FS, rng, kind)
        assert envelope.shape == (N_SAMPLES,)
        assert envelope.min() >= 0.0 and envelope.max() <= 1.0


def test_full_bursts_last_longer_than_half():
    rng = np.random.default_rng(12)
    fraction = {
        movement: np.mean(
            [np.mean(activation_envelope(movement, N_SAMPLES, FS, rng) > ACTIVE_LEVEL) for _ in range(80)]
        )
        for movement in ("full", "half")
    }
    assert fraction["full"] > 0.75 > 0.55 > fraction["half"] > 0.3


def test_full_bursts_last_longer_than_half_in_the_signal(recordings):
    for gender in GENDERS:
        full, half = (
            np.mean([np.mean(active_samples(x, s)) for s, x in recordings[gender, movement]])
            for movement in ("full", "half")
        )
        assert full > half + 0.25


def test_each_invalid_kind_has_its_pattern():
    rng = np.random.default_rng(21)

    def envelopes(kind):
        return [activation_envelope("invalid", N_SAMPLES, FS, rng, kind) for _ in range(40)]

    assert all(e.max() < ACTIVE_LEVEL for e in envelopes("absent"))
    assert np.mean([burst_count(e) >= 2 for e in envelopes("irregular")]) > 0.7
    after_cut = int(0.6 * N_SAMPLES)
    assert all(e[after_cut:].max() < ACTIVE_LEVEL for e in envelopes("truncated"))
    plateaus = envelopes("co_contraction")
    assert all(np.mean(e > ACTIVE_LEVEL) > 0.6 for e in plateaus)
    assert 0.2 < np.median([np.median(e[e > ACTIVE_LEVEL]) for e in plateaus]) < 0.6


def test_invalid_bursts_are_more_variable_and_weaker(recordings):
    rng = np.random.default_rng(22)
    fractions = {
        movement: [np.mean(activation_envelope(movement, N_SAMPLES, FS, rng) > ACTIVE_LEVEL) for _ in range(100)]
        for movement in MOVEMENTS
    }
    assert np.std(fractions["invalid"]) > 2 * max(np.std(fractions["full"]), np.std(fractions["half"]))
    assert min(fractions["invalid"]) == 0.0
    for gender in GENDERS:
        invalid, full = (np.mean([rms(x) for _, x in recordings[gender, m]]) for m in ("invalid", "full"))
        assert invalid < full


def test_motion_artefact_adds_low_frequency_power():
    def low_fraction(kind):
        values = []
        for i in range(20):
            rng = np.random.default_rng((31, i))
            signal = simulate_recording(draw_subject("M", rng), "invalid", rng, invalid_kind=kind)
            freqs, psd = welch(signal, fs=FS, nperseg=1024)
            values.append(psd[freqs < 20].sum() / psd.sum())
        return np.median(values)

    assert low_fraction("artefact") > 3 * low_fraction("irregular")


def test_activity_rms_full_above_half(recordings):
    for gender in GENDERS:
        full, half = (
            np.mean([rms(x[active_samples(x, s)]) for s, x in recordings[gender, movement]])
            for movement in ("full", "half")
        )
        assert full > 1.3 * half


def test_rms_male_above_female(recordings):
    for movement in ("full", "half"):
        male, female = (np.mean([np.log(rms(x)) for _, x in recordings[g, movement]]) for g in GENDERS)
        assert male > female


def best_threshold_accuracy(high: np.ndarray, low: np.ndarray) -> float:
    values = np.concatenate([high, low])
    return max((np.sum(high > t) + np.sum(low <= t)) / values.size for t in values)


def test_subject_parameters_differ_by_gender_but_overlap():
    subjects = {
        g: [draw_subject(g, np.random.default_rng((41, k, i))) for i in range(200)] for k, g in enumerate(GENDERS)
    }
    fat = {g: np.array([s.fat_thickness_mm for s in subjects[g]]) for g in GENDERS}
    velocity = {g: np.array([s.conduction_velocity_m_s for s in subjects[g]]) for g in GENDERS}
    assert fat["F"].mean() > fat["M"].mean() and best_threshold_accuracy(fat["F"], fat["M"]) < 0.9
    assert velocity["M"].mean() > velocity["F"].mean() and best_threshold_accuracy(velocity["M"], velocity["F"]) < 0.9
    assert all(3.0 <= v <= 5.5 for g in GENDERS for v in velocity[g])
    assert {s.mains_hz for g in GENDERS for s in subjects[g]} == {50.0, 60.0}


def test_median_frequency_male_above_female_but_overlapping(recordings):
    for movement in ("full", "half"):
        male, female = (np.array([median_frequency(x, FS) for _, x in recordings[g, movement]]) for g in GENDERS)
        assert male.mean() > female.mean() + 5.0
        assert 60.0 < female.mean() < male.mean() < 130.0
        assert best_threshold_accuracy(male, female) < 0.9


def test_fatigue_compresses_the_spectrum_and_raises_the_amplitude():
    third = N_SAMPLES // 3
    mdf_ratio, rms_gain = [], []
    for i in range(PER_GROUP):
        subject = draw_subject(GENDERS[i % 2], np.random.default_rng((51, i)))
        tired, fresh = (
            simulate_recording(subject, "full", np.random.default_rng((52, i)), fatigue=fatigue)
            for fatigue in (True, False)
        )
        mdf_ratio.append(median_frequency(tired[-third:], FS) / median_frequency(tired[:third], FS))
        # The eccentric phase at the end is weaker than the concentric phase at the start, so the
        # amplitude rise shows against the same recording without fatigue (same seed, same envelope).
        rms_gain.append((rms(tired[-third:]) / rms(tired[:third])) / (rms(fresh[-third:]) / rms(fresh[:third])))
    assert np.mean(mdf_ratio) < 0.93 and np.mean(np.array(mdf_ratio) < 1.0) > 0.7
    assert np.mean(rms_gain) > 1.1 and np.mean(np.array(rms_gain) > 1.0) > 0.9


def test_power_lies_mainly_in_the_semg_band(recordings):
    fractions = []
    for (_, movement), group in recordings.items():
        if movement == "invalid":
            continue
        for subject, signal in group:
            freqs, psd = welch(signal[active_samples(signal, subject)], fs=FS, nperseg=512)
            fractions.append(psd[(freqs >= 20) & (freqs <= 450)].sum() / psd.sum())
    assert np.mean(fractions) > 0.93 and min(fractions) > 0.85


def test_line_interference_at_the_subject_mains():
    def peak_ratio(freqs, psd, frequency):
        k = int(np.argmin(np.abs(freqs - frequency)))
        return psd[k] / np.median(np.r_[psd[k - 15 : k - 4], psd[k + 5 : k + 16]])

    at_mains, at_other = [], []
    for i in range(PER_GROUP):
        rng = np.random.default_rng((61, i))
        subject = draw_subject(GENDERS[i % 2], rng)
        signal = simulate_recording(subject, "invalid", rng, invalid_kind="absent")
        freqs, psd = welch(signal, fs=FS, nperseg=2000)
        at_mains.append(peak_ratio(freqs, psd, subject.mains_hz))
        at_other.append(peak_ratio(freqs, psd, 110.0 - subject.mains_hz))
    assert np.median(at_mains) > 10 * np.median(at_other)
    assert np.mean(np.array(at_mains) > 2.0) > 0.9


def _python_calls(function, *args, **kwargs) -> int:
    """How many Python and C functions ``function(*args, **kwargs)`` calls, counted by a profile hook."""
    count = [0]

    def profile(frame, event, arg):
        count[0] += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        function(*args, **kwargs)
    finally:
        sys.setprofile(None)
    return count[0]


def test_simulation_is_vectorised():
    """The simulation is fast because its per-sample work is NumPy's: the calls it makes in Python do not
    grow with the recording's length (a loop over samples would add tens of thousands for 20 s)."""
    subjects = [draw_subject(g, np.random.default_rng((71, i))) for i, g in enumerate(GENDERS * 2)]
    for number, subject in enumerate(subjects):
        for movement in MOVEMENTS:
            calls = {
                duration: _python_calls(
                    simulate_recording, subject, movement, np.random.default_rng((72, number)), duration_s=duration
                )
                for duration in (2.0, 20.0)
            }
            assert calls[2.0] == calls[20.0], (movement, calls)
            assert calls[2.0] < 1000, (movement, calls)
