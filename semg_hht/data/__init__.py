"""Folders of matrices as labelled data (scan, labels, subjects, recordings, streamed features)
and simulated sEMG (the simulator and generate_sample_data.py). Uses io, hht and model."""
