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
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.model_selection import cross_val_score

from semg_hht.data.simulation import GENDERS, Subject, draw_subject

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=40_000, help="subjects drawn, half of each gender")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    subjects = [draw_subject(gender, rng) for _ in range(args.subjects // 2) for gender in GENDERS]
    print("| what the classifier knows of each subject | gender, balanced accuracy (ceiling) |")
    print("|---|---|")
    for name, accuracy in ceilings(subjects).items():
        print(f"| {name} | {accuracy:.3f} |")
    print(f"\n{len(subjects)} simulated subjects (seed {args.seed}); quadratic discriminant, 5-fold cross-validation.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
