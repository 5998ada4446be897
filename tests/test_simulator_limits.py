"""benchmarks/simulator_limits.py: the ceiling of simulated gender, against the Bayes rule's known answer."""

import importlib.util
import math
import sys

import numpy as np
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
