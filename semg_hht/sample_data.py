"""A synthetic sample data set of 256x256 spectra with class-dependent structure.

Each matrix imitates a Hilbert spectrum (rows: 256 frequency bins, 20-450 Hz,
row 0 lowest; columns: 256 time bins) as a ridge of energy around a centre
frequency, gated by an activation envelope over time:

* gender shifts the centre frequency (F higher than M) and the bandwidth
  (M wider), with per-sample spreads wide enough that the two overlap;
* movement sets the envelope: ``full`` one long, strong burst whose centre
  frequency falls over time (the spectral compression of a fatigue test),
  ``half`` a shorter, weaker burst, ``invalid`` a few short irregular bursts;
* every matrix gets a random gain and multiplicative and additive noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_open
from .classes import GENDERS, MOVEMENTS
from .matrices import MATRIX_SHAPE

MUSCLES = ("BICEPS", "TRICEPS", "FOREARM", "DELTOID")
MOVEMENT_FILE_TOKENS = {"full": "fatiguetest", "half": "half", "invalid": "invalid"}
_CENTRE_ROW = {"M": 75.0, "F": 95.0}
_CENTRE_SPREAD_ROWS = 14.0
# The encoder's instance norm and global pooling discard absolute level and
# position, so gender must also show in the spectrum's shape: a wider band for M.
_RIDGE_WIDTH_ROWS = {"M": (22.0, 34.0), "F": (12.0, 24.0)}


def _envelope(movement: str, rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    def burst(start: float, stop: float, height: float) -> np.ndarray:
        inside = (t >= start) & (t <= stop)
        phase = np.where(inside, (t - start) / max(stop - start, 1e-6), 0.0)
        return height * inside * np.sin(np.pi * phase) ** 2

    if movement == "full":
        start = rng.uniform(0.03, 0.12)
        return burst(start, rng.uniform(0.85, 0.97), rng.uniform(0.8, 1.2))
    if movement == "half":
        start = rng.uniform(0.15, 0.35)
        return burst(start, start + rng.uniform(0.3, 0.45), rng.uniform(0.45, 0.75))
    envelope = np.zeros_like(t)
    for _ in range(rng.integers(2, 5)):
        start = rng.uniform(0.0, 0.85)
        envelope += burst(start, start + rng.uniform(0.05, 0.15), rng.uniform(0.2, 0.9))
    return envelope


def synthetic_matrix(gender: str, movement: str, rng: np.random.Generator) -> np.ndarray:
    """One synthetic (256, 256) float32 spectrum of the given class."""
    if gender not in GENDERS or movement not in MOVEMENTS:
        raise ValueError(f"unknown class {gender}_{movement}")
    n_freq, n_time = MATRIX_SHAPE
    t = np.linspace(0.0, 1.0, n_time)
    rows = np.arange(n_freq, dtype=float)[:, None]
    centre = _CENTRE_ROW[gender] + rng.normal(0.0, _CENTRE_SPREAD_ROWS)
    drift = rng.uniform(15.0, 30.0) if movement == "full" else rng.uniform(-5.0, 5.0)
    centre_over_time = centre - drift * t
    width = rng.uniform(*_RIDGE_WIDTH_ROWS[gender])
    ridge = np.exp(-0.5 * ((rows - centre_over_time[None, :]) / width) ** 2)
    spectrum = ridge * _envelope(movement, rng, t)[None, :] * rng.lognormal(0.0, 0.3)
    spectrum *= rng.gamma(4.0, 0.25, size=MATRIX_SHAPE)
    spectrum += np.abs(rng.normal(0.0, 0.05, size=MATRIX_SHAPE))
    return spectrum.astype(np.float32)


def generate_sample_data(
    output_dir: str | os.PathLike,
    n_samples: int = 20,
    n_test: int = 10,
    seed: int = 42,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``6 * n_samples`` labelled files and ``n_test`` test files into ``output_dir``.

    Labelled files are named ``MUSCLE_movement_GENDER_###.npz`` (movements
    ``fatiguetest``, ``half``, ``invalid``), test files ``MUSCLE_test_###.npz``
    with contents of random classes. Existing files are never replaced unless
    ``overwrite``. Returns the paths written, labelled first.
    """
    if n_samples < 0 or n_test < 0:
        raise ValueError("n_samples and n_test must not be negative")
    rng = np.random.default_rng(seed)
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[Path, str, str]] = []
    number = 0
    for gender in GENDERS:
        for movement in MOVEMENTS:
            for _ in range(n_samples):
                number += 1
                muscle = MUSCLES[number % len(MUSCLES)]
                name = f"{muscle}_{MOVEMENT_FILE_TOKENS[movement]}_{gender}_{number:03d}.npz"
                plan.append((directory / name, gender, movement))
    for index in range(1, n_test + 1):
        name = f"{MUSCLES[index % len(MUSCLES)]}_test_{index:03d}.npz"
        plan.append((directory / name, str(rng.choice(GENDERS)), str(rng.choice(MOVEMENTS))))
    if not overwrite:
        existing = [path.name for path, _, _ in plan if path.exists()]
        if existing:
            raise FileExistsError(
                f"{len(existing)} files already exist in {directory} (e.g. {existing[0]}); "
                "use another folder or --overwrite"
            )
    for path, gender, movement in plan:
        matrix = synthetic_matrix(gender, movement, rng)
        with atomic_open(path) as stream:
            np.savez(stream, hht=matrix)
    return [path for path, _, _ in plan]
