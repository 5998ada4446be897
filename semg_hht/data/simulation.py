"""Simulated raw surface-EMG (sEMG) recordings of the six classes (gender x movement quality).

One recording is the sum of

* **motor-unit activity**: Gaussian noise shaped to the sEMG power spectrum
  model of Shwedyk et al. (1977), ``P(f) ~ f_h^4 f^2 / ((f^2 + f_l^2)(f^2 + f_h^2)^2)``
  with ``f_l = 60 Hz``, ``f_h = 120 Hz`` at the reference state (the values
  used by Farina & Merletti 2000; median frequency ~96 Hz, most power in
  50-150 Hz and ~97 % in 20-450 Hz, as De Luca 1997 describes for sEMG), then
  amplitude-modulated by an activation envelope (:func:`activation_envelope`);
* **electrode noise**, white and, like the activity, passed through the
  amplifier's 450 Hz anti-aliasing low-pass;
* **line interference** at 50 or 60 Hz with a weak third harmonic;
* **baseline wander** below ~1 Hz and, for one kind of invalid recording,
  **motion artefact** below ~20 Hz.

Physiology behind the classes (numbers are approximate; where the literature
gives a direction but no single figure the size is an assumption, said so):

* Conduction velocity: muscle fibre conduction velocity (MFCV) is about
  3-5 m/s (Farina & Merletti 2004), higher in larger fibres (Håkansson 1956),
  as type II fibres are. Men have larger fibres than women (Miller et al.
  1993), so a male subject draws a higher MFCV (4.4 vs 4.1 m/s on average,
  SD 0.35 m/s within each gender: the size of the difference is an
  assumption). Following the spectral scaling principle (Lindström &
  Magnusson 1977) the whole spectrum scales in frequency with MFCV.
* Subcutaneous fat is a spatial low-pass filter between fibres and electrode:
  amplitude falls and the spectrum compresses as it thickens (Farina et al.
  2002). Women have a thicker fat layer and lower sEMG amplitude (Nordander et
  al. 2003). Subjects draw a log-normal thickness (median 4.0 mm for M, 6.5 mm
  for F, ~35 % spread); amplitude falls ~10 % and frequency ~2 % per mm
  relative to 5 mm (assumed rates with the direction and relative size of
  Farina et al. 2002: amplitude far more sensitive than frequency).
* Both effects give M a higher median frequency (~12 % from the parameters,
  ~15 % measured, as line interference weighs more in weaker signals) and a
  higher amplitude (~25-30 %), but the within-gender spreads are of the same
  size, so the genders overlap (one threshold on the median frequency
  separates them only ~70-75 % of the time).
* Fatigue: over a sustained fatiguing contraction the spectrum compresses,
  median frequency falling ~20-30 % (De Luca 1997; Merletti & Parker 2004),
  as MFCV falls, while amplitude rises (widened action potentials carry more
  energy, and further units are recruited; De Luca 1984; Merletti et al.
  1990). A fatigue recording (the ``fatiguetest`` files, full movements)
  compresses its spectrum linearly by 10-30 % over the segment, ``s(t)``
  falling from ``s(0)``, and its amplitude rises by ``sqrt(s(0) / s(t))``
  from the widening times a recruitment gain growing to 0-30 %.
* Movement: a repetition has a concentric phase and an eccentric phase at
  50-80 % of the concentric activity (an assumed ratio: lengthening
  contractions need less EMG for the same load, Bigland & Lippold 1954).
  ``full`` range of motion is one (70 %) or two long repetitions covering
  ~80-95 % of the segment at peak activation 0.8-1.0; ``half`` range one
  repetition over 30-55 % of the segment at 0.4-0.7; ``invalid`` one of
  :data:`INVALID_KINDS`: irregular short bursts, a truncated (aborted)
  concentric phase, absent activation, sustained co-contraction without
  phasic bursts, or a movement buried under motion artefact (0-20 Hz, De Luca
  et al. 2010). All envelopes carry a resting tone of 1-3 % and an 8 %
  force fluctuation (25 % in co-contraction, 15 % in irregular bursts).
* Recording chain: electrode-skin noise of a few uV RMS grows with electrode
  impedance (Huigen et al. 2002), and so does line interference converted from
  common-mode voltage (Huhta & Webster 1973). Each subject draws an impedance
  (log-normal, median 20 kOhm), a mains frequency (50 or 60 Hz) and a signal
  gain (RMS at full activation, median 0.6 mV under 5 mm of fat), so that
  active recordings lie in the usual ~0.05-5 mV range.

References: Bigland & Lippold 1954, J Physiol 123:214; De Luca 1984, Crit Rev
Biomed Eng 11:251; De Luca 1997, J Appl Biomech 13:135; De Luca et al. 2010,
J Biomech 43:1573; Farina & Merletti 2000, J Electromyogr Kinesiol 10:337;
Farina et al. 2002, Biol Cybern 86:445; Farina & Merletti 2004, Med Biol Eng
Comput 42:432; Håkansson 1956, Acta Physiol Scand 37:14; Huhta & Webster 1973,
IEEE Trans Biomed Eng 20:91; Huigen et al. 2002, Med Biol Eng Comput 40:332;
Lindström & Magnusson 1977, Proc IEEE 65:653; Merletti et al. 1990, J Appl
Physiol 69:1810; Merletti & Parker 2004, Electromyography (Wiley); Miller et
al. 1993, Eur J Appl Physiol 66:254; Nordander et al. 2003, Eur J Appl Physiol
89:514; Shwedyk et al. 1977, IEEE Trans Biomed Eng 24.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import welch

from semg_hht.classes import GENDERS, MOVEMENTS
from semg_hht.defaults import DEFAULT_SIMULATED_DURATION_S, DEFAULT_SIMULATED_FS

INVALID_KINDS: tuple[str, ...] = ("irregular", "truncated", "absent", "co_contraction", "artefact")
MIN_SAMPLING_RATE_HZ = 1000.0

_REFERENCE_VELOCITY_M_S = 4.0
_REFERENCE_FAT_MM = 5.0
_SHWEDYK_LOW_HZ = 60.0
_SHWEDYK_HIGH_HZ = 120.0
_LOWPASS_HZ = 450.0
_LOWPASS_ORDER = 4
_FAT_AMPLITUDE_PER_MM = 0.10
_FAT_FREQUENCY_PER_MM = 0.02
_FAT_MEDIAN_MM = {"M": 4.0, "F": 6.5}
_FAT_LOG_SPREAD = 0.35
_VELOCITY_MEAN_M_S = {"M": 4.4, "F": 4.1}
_VELOCITY_SD_M_S = 0.35
_VELOCITY_RANGE_M_S = (3.0, 5.5)
_AMPLITUDE_MEDIAN_V = 0.6e-3
_IMPEDANCE_MEDIAN_KOHM = 20.0
_NOISE_MEDIAN_V = 2e-6
_LINE_MEDIAN_V = 20e-6
# The spectrum of a recording is interpolated between this many equally spaced nodes.
_SPECTRAL_NODES = 8
_FATIGUE_FREQUENCY_DROP = (0.10, 0.30)
_FATIGUE_RECRUITMENT_RISE = (0.0, 0.30)
_RESTING_TONE = (0.01, 0.03)
_FLUCTUATION_STEP_S = 0.1


@dataclass(frozen=True)
class Subject:
    """The parameters one simulated person draws; all their recordings share them.

    Attributes
    ----------
    gender : str
        ``"M"`` or ``"F"``.
    fat_thickness_mm : float
        Subcutaneous fat over the muscle, mm.
    conduction_velocity_m_s : float
        Mean muscle fibre conduction velocity, m/s.
    amplitude_v : float
        sEMG RMS at full activation under the reference 5 mm of fat, V.
    electrode_impedance_kohm : float
        Electrode-skin impedance, kOhm.
    noise_rms_v : float
        Electrode and amplifier noise RMS, V.
    mains_hz : float
        Mains frequency, 50.0 or 60.0 Hz.
    line_amplitude_v : float
        Typical peak amplitude of the line interference, V.
    """

    gender: str
    fat_thickness_mm: float
    conduction_velocity_m_s: float
    amplitude_v: float
    electrode_impedance_kohm: float
    noise_rms_v: float
    mains_hz: float
    line_amplitude_v: float

    @property
    def skin_amplitude_v(self) -> float:
        """sEMG RMS at full activation seen at the skin, after fat attenuation, V."""
        return self.amplitude_v * float(np.exp(-_FAT_AMPLITUDE_PER_MM * (self.fat_thickness_mm - _REFERENCE_FAT_MM)))

    @property
    def frequency_scale(self) -> float:
        """Factor on the reference spectrum's frequencies: conduction velocity times fat compression."""
        velocity = self.conduction_velocity_m_s / _REFERENCE_VELOCITY_M_S
        fat = np.exp(-_FAT_FREQUENCY_PER_MM * (self.fat_thickness_mm - _REFERENCE_FAT_MM))
        return float(velocity * fat)


def draw_subject(gender: str, rng: np.random.Generator) -> Subject:
    """Draw one simulated person of the given gender (``"M"`` or ``"F"``).

    Fat thickness is log-normal, conduction velocity normal (clipped to
    3.0-5.5 m/s), gain and electrode impedance log-normal; noise and line
    interference scale with impedance (as the square root and linearly);
    mains is 50 or 60 Hz with equal probability. See the module docstring
    for the figures.
    """
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    fat = _FAT_MEDIAN_MM[gender] * rng.lognormal(0.0, _FAT_LOG_SPREAD)
    velocity = np.clip(rng.normal(_VELOCITY_MEAN_M_S[gender], _VELOCITY_SD_M_S), *_VELOCITY_RANGE_M_S)
    impedance = _IMPEDANCE_MEDIAN_KOHM * rng.lognormal(0.0, 0.6)
    relative_impedance = impedance / _IMPEDANCE_MEDIAN_KOHM
    return Subject(
        gender=gender,
        fat_thickness_mm=float(fat),
        conduction_velocity_m_s=float(velocity),
        amplitude_v=float(_AMPLITUDE_MEDIAN_V * rng.lognormal(0.0, 0.35)),
        electrode_impedance_kohm=float(impedance),
        noise_rms_v=float(_NOISE_MEDIAN_V * np.sqrt(relative_impedance) * rng.lognormal(0.0, 0.2)),
        mains_hz=float(rng.choice((50.0, 60.0))),
        line_amplitude_v=float(_LINE_MEDIAN_V * relative_impedance * rng.lognormal(0.0, 0.5)),
    )


def _repetition(t: np.ndarray, start: float, stop: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """A concentric phase peaking at ``height``, then an eccentric phase at 50-80 % of it."""
    turn = start + rng.uniform(0.4, 0.6) * (stop - start)
    eccentric = height * rng.uniform(0.5, 0.8)
    knots = (
        start,
        start + 0.15 * (turn - start),
        start + 0.6 * (turn - start),
        turn,
        turn + 0.2 * (stop - turn),
        stop - 0.15 * (stop - turn),
        stop,
    )
    levels = (0.0, 0.75 * height, height, eccentric * rng.uniform(0.8, 1.0), eccentric, 0.7 * eccentric, 0.0)
    return np.interp(t, knots, levels, left=0.0, right=0.0)


def _bump(t: np.ndarray, start: float, stop: float, height: float) -> np.ndarray:
    inside = (t >= start) & (t <= stop)
    phase = np.where(inside, (t - start) / (stop - start), 0.0)
    return height * inside * np.sin(np.pi * phase) ** 2


def _fluctuation(t: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Slow multiplicative force fluctuation, ``1 + depth * N(0, 1)`` at knots 0.1 s apart."""
    knots = np.arange(0.0, t[-1] + 2 * _FLUCTUATION_STEP_S, _FLUCTUATION_STEP_S)
    return np.clip(1.0 + depth * np.interp(t, knots, rng.standard_normal(knots.size)), 0.0, None)


def _phasic_activation(
    movement: str, invalid_kind: str | None, t: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The movement's activation over times ``t`` (s) and the depth of its force fluctuation."""
    duration = t[-1]
    if movement == "full":
        start = rng.uniform(0.02, 0.10) * duration
        stop = duration - rng.uniform(0.02, 0.10) * duration
        if rng.random() < 0.7:
            return _repetition(t, start, stop, rng.uniform(0.8, 1.0), rng), 0.08
        middle = 0.5 * (start + stop) + rng.uniform(-0.05, 0.05) * duration
        gap = rng.uniform(0.03, 0.10) * duration
        first = _repetition(t, start, middle - gap / 2, rng.uniform(0.8, 1.0), rng)
        return first + _repetition(t, middle + gap / 2, stop, rng.uniform(0.8, 1.0), rng), 0.08
    if movement == "half":
        length = rng.uniform(0.30, 0.55) * duration
        start = rng.uniform(0.05 * duration, 0.95 * duration - length)
        return _repetition(t, start, start + length, rng.uniform(0.4, 0.7), rng), 0.08
    if invalid_kind == "irregular":
        activation = np.zeros_like(t)
        for _ in range(rng.integers(2, 6)):
            length = rng.uniform(0.08, 0.35)
            start = rng.uniform(0.0, duration - length)
            activation = np.maximum(activation, _bump(t, start, start + length, rng.uniform(0.15, 0.8)))
        return activation, 0.15
    if invalid_kind == "truncated":
        start = rng.uniform(0.02, 0.15) * duration
        planned = _repetition(t, start, duration - rng.uniform(0.02, 0.10) * duration, rng.uniform(0.6, 1.0), rng)
        cut = start + rng.uniform(0.15, 0.40) * duration
        ramp = rng.uniform(0.02, 0.05)
        return planned * np.clip((cut + ramp - t) / ramp, 0.0, 1.0), 0.08
    if invalid_kind == "absent":
        return np.zeros_like(t), 0.08
    if invalid_kind == "co_contraction":
        start = rng.uniform(0.0, 0.15) * duration
        stop = duration - rng.uniform(0.0, 0.15) * duration
        ramp = rng.uniform(0.05, 0.15)
        plateau = np.interp(t, (start, start + ramp, stop - ramp, stop), (0.0, 1.0, 1.0, 0.0), left=0.0, right=0.0)
        return rng.uniform(0.25, 0.55) * plateau, 0.25
    if invalid_kind == "artefact":
        length = rng.uniform(0.3, 0.9) * duration
        start = rng.uniform(0.02 * duration, 0.98 * duration - length)
        return _repetition(t, start, start + length, rng.uniform(0.4, 1.0), rng), 0.08
    raise ValueError(f"invalid_kind must be one of {INVALID_KINDS}, got {invalid_kind!r}")


def activation_envelope(
    movement: str,
    n_samples: int,
    fs: float,
    rng: np.random.Generator,
    invalid_kind: str | None = None,
) -> np.ndarray:
    """Muscle activation over a segment, relative to a full-range repetition's peak.

    Parameters
    ----------
    movement : {"full", "half", "invalid"}
    n_samples : int
        Number of samples N.
    fs : float
        Sampling rate, Hz.
    rng : numpy.random.Generator
    invalid_kind : str, optional
        One of :data:`INVALID_KINDS` for ``movement="invalid"`` (drawn when
        None); ignored otherwise.

    Returns
    -------
    ndarray of shape (N,), float64 in [0, 1]
        Phasic activation (see the module docstring for each movement), at
        least the resting tone of 1-3 %, times a slow force fluctuation.
    """
    if movement not in MOVEMENTS:
        raise ValueError(f"movement must be one of {MOVEMENTS}, got {movement!r}")
    if movement == "invalid" and invalid_kind is None:
        invalid_kind = str(rng.choice(INVALID_KINDS))
    t = np.arange(n_samples) / fs
    phasic, fluctuation_depth = _phasic_activation(movement, invalid_kind, t, rng)
    activation = np.maximum(phasic, rng.uniform(*_RESTING_TONE))
    return np.clip(activation * _fluctuation(t, fluctuation_depth, rng), 0.0, 1.0)


def _shwedyk_amplitude(freqs: np.ndarray, scale: float) -> np.ndarray:
    """Square root of the Shwedyk et al. (1977) PSD with both corners scaled by ``scale``."""
    low, high = _SHWEDYK_LOW_HZ * scale, _SHWEDYK_HIGH_HZ * scale
    return np.sqrt(freqs**2 / ((freqs**2 + low**2) * (freqs**2 + high**2) ** 2))


def _shaped_noise(filters: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise, one unit-variance row per row of ``filters`` (amplitude responses on the rfft grid)."""
    folded = 2 * np.sum(filters**2, axis=1) - filters[:, 0] ** 2
    if n_samples % 2 == 0:
        folded -= filters[:, -1] ** 2
    unit = filters / np.sqrt(folded / n_samples)[:, None]
    white = np.fft.rfft(rng.standard_normal((filters.shape[0], n_samples)), axis=1)
    return np.fft.irfft(white * unit, n=n_samples, axis=1)


def _line_interference(subject: Subject, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mains at the subject's 50/60 Hz (+-0.05 Hz grid deviation) with a 5-30 % third harmonic."""
    frequency = subject.mains_hz + rng.uniform(-0.05, 0.05)
    amplitude = subject.line_amplitude_v * rng.lognormal(0.0, 0.3)
    phases = rng.uniform(0.0, 2 * np.pi, 2)
    third = rng.uniform(0.05, 0.30)
    omega_t = 2 * np.pi * frequency * t
    return amplitude * (np.sin(omega_t + phases[0]) + third * np.sin(3 * omega_t + phases[1]))


def _baseline_wander(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two slow sinusoids (0.05-1 Hz, ~20 uV each): electrode potential drift, respiration, posture."""
    frequencies = rng.uniform(0.05, 1.0, 2)
    amplitudes = 20e-6 * rng.lognormal(0.0, 0.5, 2)
    phases = rng.uniform(0.0, 2 * np.pi, 2)
    return np.sum(amplitudes[:, None] * np.sin(2 * np.pi * frequencies[:, None] * t + phases[:, None]), axis=0)


def _motion_artefact(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 Gaussian transients (SD 20-80 ms, so below ~20 Hz) of ~0.5 mV and random sign."""
    artefact = np.zeros_like(t)
    for _ in range(rng.integers(1, 4)):
        centre = rng.uniform(0.0, t[-1])
        width = rng.uniform(0.02, 0.08)
        height = 0.5e-3 * rng.lognormal(0.0, 0.5) * rng.choice((-1.0, 1.0))
        artefact += height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return artefact


def simulate_recording(
    subject: Subject,
    movement: str,
    rng: np.random.Generator,
    fs: float = DEFAULT_SIMULATED_FS,
    duration_s: float = DEFAULT_SIMULATED_DURATION_S,
    fatigue: bool | None = None,
    invalid_kind: str | None = None,
) -> np.ndarray:
    """Simulate one raw sEMG recording of ``subject`` performing ``movement``.

    Parameters
    ----------
    subject : Subject
        From :func:`draw_subject`.
    movement : {"full", "half", "invalid"}
    rng : numpy.random.Generator
    fs : float
        Sampling rate, Hz, at least 1000 (sEMG needs the band up to 450 Hz).
    duration_s : float
        Length of the segment, s.
    fatigue : bool, optional
        Compress the spectrum and raise the amplitude over the segment (see
        the module docstring); defaults to True for ``full`` (the
        ``fatiguetest`` files), False otherwise. The random stream is used
        the same way either way, so one seed with and without fatigue gives
        the same recording but for the fatigue.
    invalid_kind : str, optional
        One of :data:`INVALID_KINDS` for ``movement="invalid"``, drawn when
        None; ignored otherwise.

    Returns
    -------
    ndarray of shape (N,), float64, volts
        ``N = round(fs * duration_s)`` samples.
    """
    n_samples = _checked_length(movement, fs, duration_s)
    if fatigue is None:
        fatigue = movement == "full"
    if movement == "invalid" and invalid_kind is None:
        invalid_kind = str(rng.choice(INVALID_KINDS))
    envelope = activation_envelope(movement, n_samples, fs, rng, invalid_kind)
    gain = subject.skin_amplitude_v * rng.lognormal(0.0, 0.15)
    activity, noise = _muscle_activity(subject.frequency_scale, fatigue, n_samples, fs, rng)
    t = np.arange(n_samples) / fs
    recording = gain * envelope * activity + subject.noise_rms_v * noise
    recording += _line_interference(subject, t, rng) + _baseline_wander(t, rng)
    if invalid_kind == "artefact" and movement == "invalid":
        recording += _motion_artefact(t, rng)
    return recording


def _checked_length(movement: str, fs: float, duration_s: float) -> int:
    """The number of samples of a recording, ``round(fs * duration_s)``, once the settings are checked."""
    if movement not in MOVEMENTS:
        raise ValueError(f"movement must be one of {MOVEMENTS}, got {movement!r}")
    if fs < MIN_SAMPLING_RATE_HZ:
        raise ValueError(f"fs must be at least {MIN_SAMPLING_RATE_HZ:g} Hz, got {fs:g}")
    n_samples = round(fs * duration_s)
    if n_samples < 2:
        raise ValueError(f"duration_s={duration_s:g} s at fs={fs:g} Hz gives fewer than 2 samples")
    return n_samples


def _muscle_activity(
    frequency_scale: float, fatigue: bool, n_samples: int, fs: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Muscle activity of one recording (about unit variance) and amplifier noise (unit variance), shapes (N,).

    The activity is Gaussian noise shaped by the Shwedyk et al. (1977) spectrum with both corners
    scaled by the subject's ``frequency_scale`` (times a per-recording jitter), crossfaded between
    ``_SPECTRAL_NODES`` spectra along the recording. With ``fatigue`` the nodes' scale falls
    linearly by a drawn fraction (spectral compression) and the amplitude rises with recruitment;
    the draws are made either way, so the stream does not depend on ``fatigue``. Both rows pass
    the amplifier's 450 Hz anti-aliasing low-pass (a 4th-order Butterworth magnitude response).
    """
    scale = frequency_scale * rng.lognormal(0.0, 0.03)
    drop = rng.uniform(*_FATIGUE_FREQUENCY_DROP)
    recruitment = rng.uniform(*_FATIGUE_RECRUITMENT_RISE)
    progress = np.linspace(0.0, 1.0, _SPECTRAL_NODES)
    node_scales = scale * (1.0 - drop * progress) if fatigue else np.full(_SPECTRAL_NODES, scale)

    freqs = np.fft.rfftfreq(n_samples, 1.0 / fs)
    lowpass = 1.0 / np.sqrt(1.0 + (freqs / _LOWPASS_HZ) ** (2 * _LOWPASS_ORDER))
    filters = np.vstack([_shwedyk_amplitude(freqs, s) * lowpass for s in node_scales] + [lowpass])
    rows = _shaped_noise(filters, n_samples, rng)
    # Power-complementary crossfade between the node spectra: squared weights are hat functions.
    t = np.arange(n_samples) / fs
    position = t / t[-1] * (_SPECTRAL_NODES - 1)
    weights = np.sqrt(np.clip(1.0 - np.abs(position[None, :] - np.arange(_SPECTRAL_NODES)[:, None]), 0.0, None))
    activity = np.sum(weights * rows[:-1], axis=0)
    if fatigue:
        local_scale = np.interp(position, np.arange(_SPECTRAL_NODES), node_scales)
        activity *= np.sqrt(scale / local_scale) * (1.0 + recruitment * t / t[-1])
    return activity, rows[-1]


def median_frequency(signal: np.ndarray, fs: float, band: tuple[float, float] = (20.0, 450.0)) -> float:
    """Median frequency (Hz) of ``signal`` (shape (N,)) within ``band``, from a Welch PSD.

    Welch segments are 256 samples (or N if shorter) with 50 % overlap; the
    frequency splitting the in-band power in half is interpolated between bins.
    """
    freqs, psd = welch(signal, fs=fs, nperseg=min(256, len(signal)))
    inside = (freqs >= band[0]) & (freqs <= band[1])
    cumulative = np.cumsum(psd[inside])
    return float(np.interp(0.5 * cumulative[-1], cumulative, freqs[inside]))
