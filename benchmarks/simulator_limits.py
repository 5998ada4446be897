#!/usr/bin/env python3
"""How much gender information the simulator's subjects carry: the ceiling of any classifier of simulated gender.

One command prints one Markdown table (stdout)::

    python benchmarks/simulator_limits.py [--subjects N] [--seed S]

The simulator (``semg_hht.data.simulation``) gives gender to a subject through two of its drawn
parameters only: subcutaneous fat (log-normal, median 4.0 mm for M, 6.5 mm for F) and muscle fibre
conduction velocity (normal, 4.4 and 4.1 m/s, SD 0.35). A recording shows them only through its
amplitude at the skin (``Subject.skin_amplitude_v``: the subject's gain, itself drawn, attenuated
by fat) and its spectrum's frequency scale (``Subject.frequency_scale``: velocity times the fat's
compression). So no classifier of a simulated recording can tell gender better than a classifier
that knows those subject-level numbers exactly; the recording's activation level (set by its
movement class), fatigue, noise and a finite 2 s segment only blur them further.

Each row is the balanced accuracy, 5-fold cross-validated on ``--subjects`` drawn subjects (half
of each gender), of a quadratic discriminant (the Bayes rule for Gaussian classes; log fat and
velocity are Gaussian per gender, so on the first row it is the Bayes rule itself, up to the
velocity's clipping at 3.0-5.5 m/s) on what the row names.

Movement quality and the six classes, in a second table: a recording shows its movement through
the activation envelope at the skin (the drawn envelope, :func:`activation_envelope`, times the
recording's gain: the subject's skin amplitude with its per-recording spread), through fatigue's
spectral compression (full movements only, a drawn 10-30 % fall of the frequency scale), and, for
the invalid kind ``artefact``, through a motion artefact below about 20 Hz that the default
20-450 Hz band-pass removes. Each row gives a gradient-boosted classifier those quantities known
exactly, on ``--recordings`` recordings (each of its own drawn subject, the classes balanced),
5-fold cross-validated: the envelope as its 20 quantiles (its values' distribution, blind to when
they happen), the fractions of the segment above 10, 30, 50 and 70 % of its peak, its rises through
half its peak (bursts), the log of its peak and of its mean; the fall of the frequency scale; the
artefact's presence; for the six classes also the log skin amplitude and log frequency scale of the
gender table. Unlike the gender rows these are estimates, not bounds: the summary drops some of
the envelope, and the classifier is not the Bayes rule; they say where the goals lie against what
the simulator puts into a recording.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import cross_val_score

from semg_hht.classes import MOVEMENTS
from semg_hht.data.simulation import (
    _FATIGUE_FREQUENCY_DROP,  # the simulator's own range, so the oracle draws what a recording carries
    GENDERS,
    INVALID_KINDS,
    Subject,
    activation_envelope,
    draw_subject,
)
from semg_hht.defaults import DEFAULT_SIMULATED_DURATION_S, DEFAULT_SIMULATED_FS

ENVELOPE_QUANTILES = np.linspace(0.0, 1.0, 20)
ACTIVE_LEVELS = (0.1, 0.3, 0.5, 0.7)
LOG_FLOOR = 1e-12
GAIN_SPREAD = 0.15
"""The per-recording log-normal spread of the gain around the subject's skin amplitude (simulate_recording's)."""

VIEWS = {
    "the drawn parameters: log fat thickness and conduction velocity": lambda s: [
        np.log(s.fat_thickness_mm),
        s.conduction_velocity_m_s,
    ],
    "what a recording can show, known exactly: log skin amplitude and log frequency scale": lambda s: [
        np.log(s.skin_amplitude_v),
        np.log(s.frequency_scale),
    ],
    "the frequency scale alone": lambda s: [np.log(s.frequency_scale)],
    "the skin amplitude alone": lambda s: [np.log(s.skin_amplitude_v)],
}


def ceilings(subjects: list[Subject]) -> dict[str, float]:
    """Each view's cross-validated balanced accuracy of gender over ``subjects``."""
    genders = np.array([subject.gender for subject in subjects])
    return {
        name: float(
            cross_val_score(
                QuadraticDiscriminantAnalysis(),
                np.array([view(subject) for subject in subjects]),
                genders,
                cv=5,
                scoring="balanced_accuracy",
            ).mean()
        )
        for name, view in VIEWS.items()
    }


@dataclass(frozen=True)
class MovementView:
    """What one simulated recording shows of its class, known exactly (module docstring)."""

    gender: str
    movement: str
    envelope_features: np.ndarray
    fatigue_fall: float
    artefact: bool
    gender_cues: np.ndarray


def envelope_features(envelope: np.ndarray) -> np.ndarray:
    """The summary of an envelope at the skin (module docstring), shape (20 + 4 + 3,)."""
    peak = float(envelope.max())
    above_half = envelope > 0.5 * peak
    rises = np.count_nonzero(above_half[1:] & ~above_half[:-1]) + int(above_half[0])
    active = [np.mean(envelope > level * peak) for level in ACTIVE_LEVELS]
    # The envelope can touch 0 (a fluctuation clipped there): floored so its log stays finite.
    quantiles = np.log(np.maximum(np.quantile(envelope, ENVELOPE_QUANTILES), LOG_FLOOR))
    return np.concatenate([quantiles, active, [rises, np.log(peak), np.log(envelope.mean())]])


def view_recording(gender: str, movement: str, rng: np.random.Generator) -> MovementView:
    """One recording of a new subject, as :func:`simulate_recording` draws its envelope, gain and fatigue."""
    subject = draw_subject(gender, rng)
    kind = str(rng.choice(INVALID_KINDS)) if movement == "invalid" else None
    n_samples = round(DEFAULT_SIMULATED_FS * DEFAULT_SIMULATED_DURATION_S)
    envelope = activation_envelope(movement, n_samples, DEFAULT_SIMULATED_FS, rng, kind)
    gain = subject.skin_amplitude_v * rng.lognormal(0.0, GAIN_SPREAD)
    fall = rng.uniform(*_FATIGUE_FREQUENCY_DROP) if movement == "full" else 0.0
    cues = np.array([np.log(subject.skin_amplitude_v), np.log(subject.frequency_scale)])
    return MovementView(gender, movement, envelope_features(gain * envelope), fall, kind == "artefact", cues)


def movement_views(n_recordings: int, rng: np.random.Generator) -> list[MovementView]:
    """``n_recordings`` recordings, the six classes in turn, each of its own subject."""
    classes = [(gender, movement) for gender in GENDERS for movement in MOVEMENTS]
    return [view_recording(*classes[k % len(classes)], rng) for k in range(n_recordings)]


MOVEMENT_ROWS = {
    "movement quality: the envelope at the skin alone": ("quality", False, False, False),
    "movement quality: the envelope at the skin and fatigue's compression (the default band-pass)": (
        "quality",
        True,
        False,
        False,
    ),
    "movement quality: the same and the motion artefact (no band-pass)": ("quality", True, True, False),
    "six classes: the envelope, fatigue's compression, skin amplitude and frequency scale (band-passed)": (
        "six",
        True,
        False,
        True,
    ),
}


def movement_ceilings(views: list[MovementView], seed: int) -> dict[str, float]:
    """Each row of :data:`MOVEMENT_ROWS`: the cross-validated balanced accuracy of a gradient-boosted classifier."""
    results = {}
    for name, (target, fatigue, artefact, gender) in MOVEMENT_ROWS.items():
        columns = [np.array([view.envelope_features for view in views])]
        if fatigue:
            columns.append(np.array([[view.fatigue_fall] for view in views]))
        if artefact:
            columns.append(np.array([[float(view.artefact)] for view in views]))
        if gender:
            columns.append(np.array([view.gender_cues for view in views]))
        labels = [view.movement if target == "quality" else f"{view.gender}_{view.movement}" for view in views]
        classifier = HistGradientBoostingClassifier(random_state=seed)
        scores = cross_val_score(classifier, np.hstack(columns), labels, cv=5, scoring="balanced_accuracy")
        results[name] = float(scores.mean())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=40_000, help="subjects drawn, half of each gender")
    parser.add_argument("--recordings", type=int, default=12_000, help="recordings drawn for quality and six classes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    subjects = [draw_subject(gender, rng) for _ in range(args.subjects // 2) for gender in GENDERS]
    print("| what the classifier knows of each subject | gender, balanced accuracy (ceiling) |")
    print("|---|---|")
    for name, accuracy in ceilings(subjects).items():
        print(f"| {name} | {accuracy:.3f} |")
    print(f"\n{len(subjects)} simulated subjects (seed {args.seed}); quadratic discriminant, 5-fold cross-validation.")
    views = movement_views(args.recordings, rng)
    print("\n| what the classifier knows of each recording, exactly | balanced accuracy (estimate of the ceiling) |")
    print("|---|---|")
    for name, accuracy in movement_ceilings(views, args.seed).items():
        print(f"| {name} | {accuracy:.3f} |")
    print(
        f"\n{len(views)} simulated recordings, each of its own subject (seed {args.seed}); gradient boosting, "
        "5-fold cross-validation."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
