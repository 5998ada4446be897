"""From a recording's samples to a 256x256 Hilbert-Huang matrix: EMD and its noise-assisted
ensembles, the Hilbert spectrum and its axes, preprocessing, and the Hudgins time-domain features
of a segment: the maths, on arrays and sampling rates (compute_hht.py's workflow is
:mod:`semg_hht.conversion`). Uses nothing of the package but the defaults."""
