"""The Hilbert-Huang transform: known answers, exact reconstruction, scale invariance, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from conftest import REALDATA, UPSTREAM_MATRIX
from semg_hht.hht.decomposition import emd, ensemble_emd
from semg_hht.hht.spectrum import (
    DEFAULT_F_MAX,
    DEFAULT_F_MIN,
    DEFAULT_N_FREQ,
    DEFAULT_N_TIME,
    HHTInputError,
    frequency_axis,
    hilbert_spectrum,
    instantaneous_amplitude_frequency,
)

PLUX_BURSTS = REALDATA / "plux-samples" / "emg_bursts_raw_adc.csv"
ROW_SPACING = (DEFAULT_F_MAX - DEFAULT_F_MIN) / (DEFAULT_N_FREQ - 1)


def tone(frequency: float, fs: float, seconds: float = 2.0, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return amplitude * np.sin(2 * np.pi * frequency * t)


def semg_like(fs: float = 1000.0, n: int = 2000, seed: int = 0) -> np.ndarray:
    """White noise band-limited to 20-450 Hz under a burst envelope."""
    sos = butter(4, [20, 450], btype="bandpass", fs=fs, output="sos")
    noise = sosfiltfilt(sos, np.random.default_rng(seed).standard_normal(n))
    return noise * (0.2 + np.exp(-0.5 * ((np.arange(n) - n / 2) / (n / 6)) ** 2))


def row_of(frequency: float) -> float:
    return (frequency - DEFAULT_F_MIN) / ROW_SPACING


def dominant_frequency(x: np.ndarray, fs: float) -> float:
    return float(np.fft.rfftfreq(x.size, 1 / fs)[np.abs(np.fft.rfft(x)).argmax()])


# --- known answers ------------------------------------------------------------------------


@pytest.mark.parametrize(("f0", "fs"), [(100.0, 1000.0), (300.0, 2000.0), (37.5, 1000.0)])
def test_a_pure_sine_lands_in_its_row_with_its_amplitude(f0, fs):
    spectrum = hilbert_spectrum(tone(f0, fs, amplitude=2.0), fs)
    assert abs(int(spectrum.mean(axis=1).argmax()) - row_of(f0)) <= 1
    # Each column holds one component of amplitude 2, away from the Hilbert transform's ends.
    assert np.allclose(spectrum.sum(axis=0)[16:-16], 2.0, rtol=0.02)


def test_a_linear_chirps_ridge_follows_its_instantaneous_frequency():
    fs, seconds = 2000.0, 2.0
    t = np.arange(int(fs * seconds)) / fs
    chirp = np.sin(2 * np.pi * (50 * t + 62.5 * t**2))  # 50 Hz rising to 300 Hz
    spectrum = hilbert_spectrum(chirp, fs)
    centres = (np.arange(DEFAULT_N_TIME) + 0.5) / DEFAULT_N_TIME * seconds
    error = spectrum.argmax(axis=0) - row_of(50 + 125 * centres)
    inner = slice(DEFAULT_N_TIME // 10, -DEFAULT_N_TIME // 10)
    assert np.abs(error[inner]).max() <= 2


def test_two_separated_tones_become_two_imfs():
    fs = 1000.0
    imfs, _ = emd(tone(40, fs) + tone(200, fs, amplitude=0.5))
    assert dominant_frequency(imfs[0], fs) == pytest.approx(200, abs=1)
    assert dominant_frequency(imfs[1], fs) == pytest.approx(40, abs=1)
    assert imfs[0].std() == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert imfs[1].std() == pytest.approx(1 / np.sqrt(2), rel=0.02)


def test_instantaneous_amplitude_and_frequency_of_a_sine():
    fs = 1000.0
    amplitude, frequency = instantaneous_amplitude_frequency(tone(50, fs, amplitude=3.0), fs)
    assert amplitude.shape == frequency.shape == (1, 2000)
    assert np.allclose(amplitude[0, 100:-100], 3.0, rtol=1e-2)
    assert np.allclose(frequency[0, 100:-100], 50.0, atol=0.5)


def test_power_and_log_options():
    fs = 1000.0
    x = tone(100, fs, amplitude=2.0)
    power = hilbert_spectrum(x, fs, quantity="power")
    assert np.allclose(power.sum(axis=0)[16:-16], 4.0, rtol=0.04)
    amplitude = hilbert_spectrum(x, fs)
    assert np.allclose(hilbert_spectrum(x, fs, log=True), np.log1p(amplitude), rtol=1e-6)


# --- decomposition ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal",
    [semg_like(), semg_like(2000.0, 4000) + 32768.0, np.round(200 * semg_like()).astype(np.int16)],
    ids=["semg-like", "with-adc-offset", "integer-counts"],
)
def test_imfs_and_residual_reconstruct_the_signal(signal):
    imfs, residual = emd(signal)
    assert imfs.ndim == 2 and imfs.shape[1] == signal.size and residual.shape == signal.shape
    assert 3 <= len(imfs) <= int(np.log2(signal.size))
    assert np.allclose(imfs.sum(axis=0) + residual, signal, rtol=0, atol=1e-9 * np.abs(signal).max())
    # Fastest oscillation first.
    zero_crossings = [np.count_nonzero(np.diff(np.signbit(imf))) for imf in imfs[:3]]
    assert zero_crossings == sorted(zero_crossings, reverse=True)


def test_a_pure_sine_is_one_imf_and_a_ramp_is_all_residual():
    x = tone(100, 1000.0)
    imfs, residual = emd(x)
    assert np.allclose(imfs[0], x, atol=1e-2)
    assert np.abs(imfs[1:]).max(initial=0) < 1e-2
    ramp = np.linspace(0, 1, 500)
    imfs, residual = emd(ramp)
    assert imfs.shape == (0, 500) and np.array_equal(residual, ramp)


def test_scaling_the_signal_scales_the_amplitudes_and_nothing_else():
    fs = 1000.0
    x = semg_like(fs)
    volts, millivolts = hilbert_spectrum(x, fs), hilbert_spectrum(x * 1e-3, fs)
    assert np.allclose(millivolts, volts * 1e-3, rtol=1e-4, atol=1e-7 * volts.max() * 1e-3)
    power = hilbert_spectrum(x, fs, quantity="power")
    assert np.allclose(hilbert_spectrum(x * 1e-3, fs, quantity="power"), power * 1e-6, rtol=1e-4, atol=1e-13)
    imfs, _ = emd(x)
    small_imfs, _ = emd(x * 1e-3)
    assert small_imfs.shape == imfs.shape
    assert np.allclose(small_imfs, imfs * 1e-3, rtol=1e-6, atol=1e-12)
    ensemble, _ = ensemble_emd(x, "ceemdan", ensembles=3, seed=1)
    small_ensemble, _ = ensemble_emd(x * 1e-3, "ceemdan", ensembles=3, seed=1)
    assert np.allclose(small_ensemble, ensemble * 1e-3, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("method", ["eemd", "ceemdan"])
def test_ensemble_methods_reconstruct_and_are_reproducible_with_a_seed(method):
    x = semg_like(n=1000)
    imfs, residual = ensemble_emd(x, method, ensembles=4, seed=7)
    assert imfs.shape[1] == 1000 and len(imfs) >= 3
    assert np.allclose(imfs.sum(axis=0) + residual, x, atol=1e-12)
    again, _ = ensemble_emd(x, method, ensembles=4, seed=7)
    other, _ = ensemble_emd(x, method, ensembles=4, seed=8)
    assert np.array_equal(imfs, again)
    assert not np.allclose(imfs[0], other[0])
    spectrum = hilbert_spectrum(x, 1000.0, method=method, ensembles=4, seed=7)
    assert np.array_equal(spectrum, hilbert_spectrum(x, 1000.0, method=method, ensembles=4, seed=7))
    assert spectrum.shape == (256, 256) and spectrum.any()


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fs", "n"), [(1000.0, 2000), (2000.0, 4000), (1000.0, 256), (1000.0, 10_000)])
def test_the_matrix_is_256_by_256_float32_finite_and_non_negative(fs, n):
    spectrum = hilbert_spectrum(semg_like(fs, n), fs)
    assert spectrum.shape == (256, 256)
    assert spectrum.dtype == np.float32
    assert np.isfinite(spectrum).all() and (spectrum >= 0).all() and spectrum.any()


@pytest.mark.skipif(not UPSTREAM_MATRIX.exists(), reason="shared/realdata/upstream-hht/Test1_1_001.npz is absent")
def test_the_frequency_axis_is_the_upstream_files():
    with np.load(UPSTREAM_MATRIX, allow_pickle=False) as archive:
        upstream = archive["frequency"]
        assert archive["spectrum"].shape == (DEFAULT_N_FREQ, DEFAULT_N_TIME)
    assert np.allclose(frequency_axis(), upstream)
    assert np.allclose(frequency_axis(DEFAULT_N_FREQ, DEFAULT_F_MIN, DEFAULT_F_MAX), upstream)


@pytest.mark.skipif(not PLUX_BURSTS.exists(), reason="shared/realdata/plux-samples/emg_bursts_raw_adc.csv is absent")
def test_a_real_recording_has_its_energy_in_the_semg_band():
    counts = np.loadtxt(PLUX_BURSTS, comments="#")
    segment = counts[1000:3000]  # 2 s at 1000 Hz around the first burst, raw ADC counts
    spectrum = hilbert_spectrum(segment, 1000.0).astype(np.float64)
    assert np.isfinite(spectrum).all() and spectrum.any()
    mean_frequency = (frequency_axis() * spectrum.sum(axis=1)).sum() / spectrum.sum()
    assert 40 <= mean_frequency <= 200


@pytest.mark.parametrize(
    "signal",
    [
        np.clip(3 * tone(60, 1000.0), -1, 1),  # clipped: flat runs at both rails
        np.round(20 * tone(80, 1000.0)) + 512,  # coarse ADC steps: many equal neighbours
        tone(100, 1000.0) + 0.001 * np.sign(tone(0.3, 1000.0)),  # a step in the middle
    ],
    ids=["clipped", "coarse-adc", "step"],
)
def test_awkward_but_valid_signals_give_a_usable_matrix(signal):
    spectrum = hilbert_spectrum(signal, 1000.0)
    assert np.isfinite(spectrum).all() and (spectrum >= 0).all() and spectrum.any()


# --- bad input ----------------------------------------------------------------------------

GOOD = semg_like()


def _with(index: int, value: float) -> np.ndarray:
    x = GOOD.copy()
    x[index] = value
    return x


@pytest.mark.parametrize(
    ("signal", "kwargs", "message"),
    [
        (_with(10, np.nan), {}, "non-finite"),
        (_with(-1, np.inf), {}, "non-finite"),
        (np.zeros(2000), {}, "all zero"),
        (np.full(2000, 3.3), {}, "constant"),
        (GOOD[:255], {}, "255 samples"),
        (GOOD, {"fs": 800.0}, "Nyquist"),
        (GOOD, {"fs": 900.0}, "Nyquist"),
        (GOOD.reshape(2, 1000), {}, "1-D"),
        (GOOD[:, None], {}, "1-D"),
        (GOOD.astype(complex), {}, "real"),
        (np.array(["1"] * 300), {}, "real"),
        (GOOD, {"fs": 0.0}, "sampling rate"),
        (GOOD, {"fs": float("nan")}, "sampling rate"),
        (GOOD, {"quantity": "energy"}, "quantity"),
        (GOOD, {"method": "vmd"}, "method"),
        (GOOD, {"f_min": 500.0, "fs": 2000.0}, "f_min < f_max"),
        (GOOD[:300], {"n_time": 400}, "at least 400"),
        (np.linspace(-1, 1, 2000), {}, "no oscillation"),
        (1 - np.cos(np.linspace(0, 2 * np.pi, 2000)), {}, "fewer than three extrema"),
        (tone(2.0, 1000.0), {}, "falls within"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_input_raises_a_clear_error(signal, kwargs, message):
    kwargs = {"fs": 1000.0} | kwargs
    with pytest.raises(HHTInputError, match=message):
        hilbert_spectrum(signal, **kwargs)


def test_bad_input_to_the_decompositions_raises_too():
    with pytest.raises(HHTInputError, match="non-finite"):
        emd(_with(0, np.nan))
    with pytest.raises(HHTInputError, match="1-D"):
        ensemble_emd(GOOD.reshape(4, 500))
    with pytest.raises(HHTInputError, match="method"):
        ensemble_emd(GOOD, method="emd")
    with pytest.raises(HHTInputError, match="ensembles"):
        ensemble_emd(GOOD, ensembles=0)
    with pytest.raises(HHTInputError, match="max_imfs"):
        emd(GOOD, max_imfs=0)
    assert issubclass(HHTInputError, ValueError)
