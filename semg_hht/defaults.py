"""Defaults chosen by measurement (``benchmarks/bench_speed.py``, ``benchmarks/evaluate_features.py``);
importing this is free.

``DEFAULT_BATCH_SIZE``: on the 2-core development machine the encoder runs at about the same
speed from batch 8 to 64 (roughly 125-155 samples/s, within the run-to-run noise), while peak
memory grows with the batch and, from 16 up, with the number of files (freed activation
buffers fragment the heap). Folder inference peaked at 380 MB for 1,000 files and 377 MB for
6,000 with batches of 8; at 452 and 553 MB with batches of 16; at 656 MB with 32 on 190 files.
"""

from typing import Final

DEFAULT_BATCH_SIZE = 8

# The model's defaults follow the evidence table of ``benchmarks/evaluate_features.py``
# (TRAINING_GUIDE.md, "What the model sees"): real recordings, leave-one-subject-out, and
# simulated subjects never seen in training, with the classic time-domain + LDA pipeline beside.

DEFAULT_FEATURES = "hht+env"
"""The 28 HHT descriptors and the 16 of the activation envelope's shape, both from the matrix (no
encoder to run, any matrix file): on simulated subjects never seen in training (24 seeds) movement
quality 0.870 against 0.788 for the descriptors alone and six classes 0.621 against 0.561; on the
real recordings 0.628 against 0.600 without subject information (0.716 against 0.729 with it,
within the spread over subjects). ``cnn+hht`` and ``hht+td`` scored below ``hht`` on the simulated
set, ``cnn+hht`` at several times the cost."""

DEFAULT_EPOCHS = 0
"""Encoder training only concerns feature sets with ``cnn``: three epochs lifted the CNN alone
from 0.532 to 0.549 on the real recordings (still below every descriptor row) and from 0.388 to
0.404 six-class on the simulated set (best epoch 0 for one of its two seeds), at about 100 times
the fitting time."""

DEFAULT_NORMALISATION = "none"
"""Subject-wise normalisation lifts the real recordings from 0.600 to 0.729 (hht) when every
subject recorded every class, but drops to chance (0.35) for a subject whose files are of one
class, and lowers the simulated set (test subjects with four files of random classes): an
option for users whose protocol covers the classes per subject, not a default."""

DEFAULT_MODEL = "factorised"
"""Gender (pooled over a subject's files) times movement quality: on the simulated set gender
0.683 against 0.604 and six-class 0.534 against 0.460 for the joint SVM (descriptors, seeds 0 and
1); identical on the real set, whose subjects are all male."""

DEFAULT_GENDER_FEATURES = "subject"
"""The factorised model's gender head sees the columns that describe the subject (the spectrum's
level and distribution; no timing, trend or envelope shape): simulated gender 0.719 against 0.683
on every column (24 seeds; TRAINING_GUIDE.md, "The envelope and the gender head")."""
GENDER_FEATURE_CHOICES = ("subject", "all")

# Training and SVM settings (train.py's flags, TrainingOptions, HHTClassifier and the trainer read these).
DEFAULT_SEED = 42
DEFAULT_TEST_SIZE = 0.2
"""Fraction of the labelled files (or subjects) held out for validation."""
DEFAULT_LR = 1e-3
"""Peak learning rate of AdamW (one-cycle schedule) when the encoder is trained."""
DEFAULT_WEIGHT_DECAY = 1e-2
DEFAULT_PATIENCE = 5
"""Epochs without a lower validation loss before encoder training stops; 0 never stops early."""
SVM_KERNELS = ("rbf", "linear", "poly", "sigmoid")
DEFAULT_SVM_C = 10.0
DEFAULT_SVM_KERNEL = "rbf"
DEFAULT_SVM_GAMMA = "scale"
HEADS = ("auto", "svm", "scalable", "forest")
DEFAULT_HEAD = "auto"
"""``svm``: the calibrated RBF SVM; ``scalable``: Nystroem + logistic regression, whose fit grows
about linearly with the samples; ``forest``: a random forest with calibrated votes; ``auto``: the SVM
up to :data:`AUTO_SVM_MAX_SAMPLES` training samples, the scalable head above (docs/scaling.md has
the figures)."""
AUTO_SVM_MAX_SAMPLES = 12_000
"""Where ``auto`` stops choosing the SVM, whose fit grows about as n^2 and depends on how much the
classes overlap (more support vectors): 12-21 s at 12,000 simulated descriptor vectors (joint and
factorised model, 2 cores; benchmarks/bench_scale.py), 86 s at 16,000 in an earlier measurement on
harder data. The scalable head is as accurate from 1,000 samples up (docs/scaling.md), so the
threshold keeps the SVM's fit under about a minute with a margin."""
MODELS = ("joint", "factorised")
SAMPLE_KINDS = ("matrix", "window")
"""What one training sample is: one matrix (one channel of one window), or one window of all channels
(:mod:`semg_hht.data.windows`)."""
DEFAULT_SAMPLE = "matrix"
NORMALISATION_MODES = ("none", "subject", "subject_muscle")
AGGREGATION_RULES = ("mean", "majority")
DEFAULT_AGGREGATION_RULE = "mean"
"""One prediction per recording: the mean of its files' class probabilities (the sum rule)."""

# Inference (inference.py's flags and InferenceOptions).
AGGREGATE_LEVELS = ("file", "recording")
"""``file``: one prediction per matrix file; ``recording``: also one per recording from its files."""
DEFAULT_AGGREGATE = "file"

# The Hilbert-Huang transform (compute_hht.py's flags and semg_hht.hht.spectrum read these); Final, so that the
# string defaults type as the literals of semg_hht.hht.spectrum's parameters.
HHT_METHODS = ("emd", "eemd", "ceemdan")
DEFAULT_HHT_METHOD: Final = "emd"
"""Plain EMD: EEMD costs about 20-25 times as much and CEEMDAN 40-50 times at 30 ensembles, in
proportion to ``ensembles`` (docs/performance.md)."""
DEFAULT_ENSEMBLES = 30
"""Noise realisations averaged by EEMD and CEEMDAN; 30 is what the upstream tool uses."""
DEFAULT_NOISE_WIDTH = 0.2
"""Standard deviation of the added noise relative to the signal's (Wu & Huang 2009)."""
DEFAULT_N_FREQ = 256
"""Frequency rows of the spectrum matrix."""
DEFAULT_N_TIME = 256
"""Time columns of the spectrum matrix."""
DEFAULT_F_MIN = 20.0
"""Frequency of row 0 in Hz: below it lie motion artefacts and baseline drift."""
DEFAULT_F_MAX = 450.0
"""Frequency of the last row in Hz: the upper edge of surface-EMG content."""
SPECTRUM_QUANTITIES = ("amplitude", "power")
DEFAULT_SPECTRUM_QUANTITY: Final = "amplitude"
"""The spectrum sums instantaneous amplitudes (``power``: their squares)."""

DEFAULT_CHANNEL = "0"
"""The first channel of each recording."""

# Preprocessing of each channel before the transform (compute_hht.py and Preprocessing).
DEFAULT_BANDPASS = (DEFAULT_F_MIN, DEFAULT_F_MAX)
"""Zero-phase band-pass LOW, HIGH in Hz: the band of surface EMG and the one the spectrum shows (the
measurement: :mod:`semg_hht.hht.preprocessing`, TRAINING_GUIDE.md, "Preprocessing")."""
MAINS_FREQUENCIES = (50.0, 60.0)
"""The mains frequencies a notch (and its harmonics) can remove, Hz."""
DEFAULT_NOTCH = None
"""No notch: band-pass alone unless the recording shows mains hum."""
DEFAULT_REMOVE_MEAN = True

# The sample data set (generate_sample_data.py's flags and semg_hht.data.sample_data read these).
DEFAULT_SAMPLES_PER_CLASS = 20
"""Labelled files per class of the sample data set."""
DEFAULT_SAMPLE_TEST_FILES = 10
"""Unlabelled test files of the sample data set, from subjects not among the labelled files'."""
DEFAULT_SIMULATED_FS = 2000.0
"""Sampling rate of a simulated recording, Hz."""
DEFAULT_SIMULATED_DURATION_S = 2.0
"""Length of a simulated recording, s: one matrix per recording."""

# Folders.
DEFAULT_CHECKPOINT_DIR = "./checkpoints"
DEFAULT_SAMPLE_DIR = "./data"
MAT_LAYOUTS = ("auto", "channels", "trials", "ninapro")
"""How a ``.mat`` recording holds its signal (:mod:`semg_hht.io.formats.matlab`); ``auto`` is the default."""
FITTED_BAND_FRACTION = 0.45
"""Without ``f_max``, a recording's band ends at this fraction of its sampling rate where that is below 450 Hz:
under Nyquist (0.5) with room for the anti-aliasing filter's roll-off, as the 20-450 Hz band of 1 kHz recordings."""
