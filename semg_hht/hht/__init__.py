"""From a recording's samples to a 256x256 Hilbert-Huang matrix: EMD and its noise-assisted
ensembles, the Hilbert spectrum, preprocessing, the Hudgins time-domain features of a segment,
and the conversion of a folder of recordings (compute_hht.py). Uses :mod:`semg_hht.io`."""
