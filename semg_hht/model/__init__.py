"""What a matrix becomes and how it is classified: the CNN encoder, the HHT descriptors, feature
sets and subject-wise normalisation, the scikit-learn estimator :class:`HHTClassifier`, its
pickle-free SVM head, and checkpoints. Uses :mod:`semg_hht.io` and :mod:`semg_hht.hht`."""
