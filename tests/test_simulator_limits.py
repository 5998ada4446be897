"""benchmarks/simulator_limits.py: the ceiling of simulated gender, against the Bayes rule's known answer."""

import importlib.util
import math
import sys

import numpy as np
import pytest
from scipy.stats import norm

from conftest import ROOT
from semg_hht.data.simulation import draw_subject


def load_limits():
    spec = importlib.util.spec_from_file_location("simulator_limits", ROOT / "benchmarks" / "simulator_limits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulator_limits"] = module
    spec.loader.exec_module(module)
    return module


def test_the_drawn_parameters_ceiling_is_the_bayes_rule_of_two_gaussians():
    limits = load_limits()
    rng = np.random.default_rng(1)
    subjects = [draw_subject(gender, rng) for _ in range(10_000) for gender in ("M", "F")]
    ceilings = list(limits.ceilings(subjects).values())
    # Log fat (SD 0.35) and velocity (SD 0.35) are Gaussian with equal spreads per gender, so the Bayes
    # rule's accuracy is Phi(D / 2), D the Mahalanobis distance between the genders' means.
    distance = math.hypot(math.log(6.5 / 4.0) / 0.35, (4.4 - 4.1) / 0.35)
    assert abs(ceilings[0] - norm.cdf(distance / 2)) < 0.01
    # What a recording shows is a blurred view of those parameters, and each half of it less again.
    assert ceilings[0] > ceilings[1] > ceilings[2] > ceilings[3] > 0.55


def test_an_envelope_summary_known_answer():
    limits = load_limits()
    envelope = np.where(np.arange(1000) < 250, 2.0, 0.5)  # a quarter of the segment at 2, the rest at 0.5
    features = limits.envelope_features(envelope)
    quantiles = np.exp(features[:20])
    assert quantiles[0] == 0.5 and quantiles[-1] == 2.0
    np.testing.assert_allclose(features[20:24], [1.0, 0.25, 0.25, 0.25])  # above 10 (0.2), 30, 50, 70 % of the peak
    assert features[24] == 1  # one rise through half the peak
    np.testing.assert_allclose(features[25:], [np.log(2.0), np.log(0.875)])


@pytest.mark.slow
def test_what_a_recording_shows_of_its_movement():
    limits = load_limits()
    views = limits.movement_views(600, np.random.default_rng(0))
    falls = {movement: [v.fatigue_fall for v in views if v.movement == movement] for movement in ("full", "half")}
    assert all(0.1 <= fall <= 0.3 for fall in falls["full"]) and set(falls["half"]) == {0.0}
    assert {v.movement for v in views if v.artefact} == {"invalid"}
    ceilings = list(limits.movement_ceilings(views, seed=0).values())
    # Each quality row knows more than the one before it; six classes have a lower chance (1/6) and score lower.
    assert 0.6 < ceilings[0] <= ceilings[1] + 0.02 and ceilings[1] <= ceilings[2] + 0.02
    assert 1 / 6 + 0.2 < ceilings[3] < ceilings[1]
