"""The classifier's feature steps as scikit-learn transformers.

Each step maps a batch to a block of feature columns (:mod:`semg_hht.model.feature_sets`):

* :class:`HHTDescriptors`: (n, 256, 256) matrices -> (n, 28) named descriptors (and, asked, the 16
  of the envelope from the same pass over each matrix); nothing to learn;
* :class:`EnvelopeDescriptors`: (n, 256, 256) matrices -> (n, 16) descriptors of the activation
  envelope's shape, for a model without the hht block; nothing to learn;
* :class:`CNNFeatures`: (n, 256, 256) matrices -> (n, 256) encoder features; ``fit`` takes the
  given encoder or builds one from ``seed``;
* :class:`StoredSegmentFeatures`: one block of the features stored in each matrix file (``td``
  -> (n, 4), ``amp`` -> (n, 2));
* :class:`SubjectNormaliser`: (n, d) features standardised within each subject's (and muscle's) files.

The matrix steps return float32 features, the normaliser float64 like the SVM. They follow
scikit-learn's transformer contract without importing it (:mod:`semg_hht.model.estimator_base`): a
checkpoint predicts through them with numpy (and torch for the CNN block, imported only there). The
heads' own steps are in :mod:`semg_hht.model.svm_fitting`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from semg_hht.defaults import DEFAULT_SEED
from semg_hht.model.descriptors import hht_descriptors, hht_descriptors_and_time_profile
from semg_hht.model.envelope import envelope_descriptors, envelope_from_profile
from semg_hht.model.estimator_base import Transformer
from semg_hht.model.feature_sets import BLOCK_NAMES, STORED_COLUMNS
from semg_hht.model.normalisation import FileGroups, PopulationStatistics, normalise_within_groups

if TYPE_CHECKING:
    import torch

    from semg_hht.model.encoder import HHTEncoder


class _Stateless(Transformer):
    """A step with nothing to learn: ``fit`` returns it as it is, ``transform`` needs no fit."""

    def fit(self, X: Any, y: Any = None) -> _Stateless:
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class HHTDescriptors(_Stateless):
    """The named HHT descriptors (:mod:`semg_hht.model.descriptors`) of (n, 256, 256) matrices, shape (n, 28);
    with ``envelope``, the envelope's descriptors after them, shape (n, 28 + 16).

    Parameters
    ----------
    frequency : array of shape (256,), optional
        Hz of each matrix row; by default the 20-450 Hz axis of the default conversion.
    envelope : bool
        Add the ``env`` block, from the time profile the HHT descriptors sum anyway (one pass over
        each matrix for both blocks instead of two).
    """

    def __init__(self, frequency: Any = None, envelope: bool = False):
        self.frequency = frequency
        self.envelope = envelope

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not self.envelope:
            return np.asarray(hht_descriptors(X, self.frequency), dtype=np.float32)
        descriptors, profile = hht_descriptors_and_time_profile(X, self.frequency)
        # One matrix gives 1-D rows, as hht_descriptors does.
        envelope = envelope_from_profile(np.atleast_2d(profile)).reshape(*descriptors.shape[:-1], -1)
        return np.concatenate([descriptors, envelope], axis=-1).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(BLOCK_NAMES["hht"] + (BLOCK_NAMES["env"] if self.envelope else ()), dtype=object)


class EnvelopeDescriptors(_Stateless):
    """The activation envelope's shape (:mod:`semg_hht.model.envelope`) of (n, 256, 256) matrices, shape (n, 16)."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(envelope_descriptors(X), dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(BLOCK_NAMES["env"], dtype=object)


class StoredSegmentFeatures(_Stateless):
    """One block of the features stored in each file (``td_features``: Hudgins' 4, then the amplitude
    distribution's 2): a list of stored rows (None where a file has none) -> (n, width of ``block``).

    Parameters
    ----------
    block : {"td", "amp"}
    """

    def __init__(self, block: str = "td"):
        self.block = block

    def transform(self, X: list[np.ndarray | None] | None) -> np.ndarray:
        columns = STORED_COLUMNS[self.block]
        if X is None or any(row is None or len(row) < columns.stop for row in X):
            raise ValueError(
                f"the {self.block} block needs its features ({', '.join(BLOCK_NAMES[self.block])}) "
                "stored in each matrix file"
            )
        width = columns.stop - columns.start
        # No row is None after the check above.
        rows = [row[columns] for row in cast(list[np.ndarray], X)]
        return np.stack(rows).astype(np.float32) if rows else np.empty((0, width), np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(BLOCK_NAMES[self.block], dtype=object)


class CNNFeatures(Transformer):
    """The encoder's 256 features of (n, 256, 256) matrices (:func:`~semg_hht.model.encoder.encode_batches`).

    Parameters
    ----------
    encoder : HHTEncoder, optional
        The encoder to run; by default one initialised from ``seed`` (built by ``fit``).
    seed : int
    device : torch.device or str
    bf16 : bool
        Encode under bfloat16 autocast.

    Attributes
    ----------
    encoder_ : HHTEncoder
        The encoder used: ``encoder`` itself when given (not a copy).
    """

    def __init__(
        self,
        encoder: HHTEncoder | None = None,
        seed: int = DEFAULT_SEED,
        device: torch.device | str = "cpu",
        bf16: bool = False,
    ):
        self.encoder = encoder
        self.seed = seed
        self.device = device
        self.bf16 = bf16

    def fit(self, X: Any = None, y: Any = None) -> CNNFeatures:
        # Imported here: a model without the CNN block predicts without torch.
        from semg_hht.model.encoder import build_encoder

        self.encoder_ = self.encoder if self.encoder is not None else build_encoder(self.seed)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "encoder_"):
            raise RuntimeError("CNNFeatures is not fitted; call fit() first")
        import torch

        from semg_hht.model.encoder import encode_batches

        return next(encode_batches(self.encoder_, [X], torch.device(self.device), self.bf16))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(BLOCK_NAMES["cnn"], dtype=object)


class SubjectNormaliser(Transformer):
    """Standardise (n, d) features within each group of files
    (:func:`~semg_hht.model.normalisation.normalise_within_groups`).

    ``transform`` needs the files' ``groups``; the fitted population statistics stand in for a
    group too small to have its own.

    Parameters
    ----------
    normalisation : {"subject", "subject_muscle"}
        What makes a group.
    population : PopulationStatistics, optional
        Fixed fallback statistics (a loaded model's); by default those of the features ``fit`` sees.
    """

    def __init__(self, normalisation: str = "subject", population: PopulationStatistics | None = None):
        self.normalisation = normalisation
        self.population = population

    def fit(self, X: np.ndarray, y: Any = None) -> SubjectNormaliser:
        X = np.asarray(X, dtype=np.float64)
        self.population_ = self.population if self.population is not None else PopulationStatistics.of(X)
        return self

    def transform(self, X: np.ndarray, groups: FileGroups | None = None) -> np.ndarray:
        if not hasattr(self, "population_"):
            raise RuntimeError("SubjectNormaliser is not fitted; call fit() first")
        if groups is None:
            raise ValueError(f"{self.normalisation}-wise normalisation needs the subject of every file")
        X = np.asarray(X, dtype=np.float64)
        return normalise_within_groups(X, groups.keys(self.normalisation), self.population_)
