"""The public import of the estimator, kept from the flat layout of release 0.2:
``from semg_hht.classifier import HHTClassifier`` (it lives in :mod:`semg_hht.model.classifier`)."""

from semg_hht.model.classifier import HHTClassifier

__all__ = ["HHTClassifier"]
