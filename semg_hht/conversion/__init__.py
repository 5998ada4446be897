"""compute_hht.py's workflow: recordings -> channels -> preprocessed segments -> HHT matrix files,
fanned out on the Dask engine. Uses io, hht (the maths) and engine."""
