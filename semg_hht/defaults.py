"""Defaults chosen by measurement (``python benchmarks/bench_speed.py``); importing this is free.

``DEFAULT_BATCH_SIZE``: on the 2-core development machine the encoder runs at about the same
speed from batch 8 to 64 (roughly 125-155 samples/s, within the run-to-run noise), while peak
memory grows with the batch and, from 16 up, with the number of files (freed activation
buffers fragment the heap). Folder inference peaked at 380 MB for 1,000 files and 377 MB for
6,000 with batches of 8; at 452 and 553 MB with batches of 16; at 656 MB with 32 on 190 files.
"""

DEFAULT_BATCH_SIZE = 8

DEFAULT_EPOCHS = 20
"""Encoder training epochs: in ``benchmarks/evaluate_encoder.py`` (TRAINING_GUIDE.md) early stopping
ended every run by epoch 18 and the best epochs were 1-13; training lifted the SVM's balanced
accuracy by 0.02-0.04 over the random encoder on the simulated and the real data."""

DEFAULT_FEATURES = "cnn"
DEFAULT_NORMALISATION = "none"
DEFAULT_MODEL = "joint"
