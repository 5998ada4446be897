"""The forest head: a random forest with Platt-calibrated votes, as plain arrays evaluated with numpy.

A random forest (Breiman 2001, Machine Learning 45:5) is the tree candidate among the heads: the
field's peer reaches its best with one (TRAINING_GUIDE.md), and ``--tune`` chooses it where the
inner cross-validation prefers it to the SVM. A checkpoint stores it in ``P_head.npz`` beside the
other heads' layouts, read with ``allow_pickle=False``. The arithmetic:

1. each tree sends a row from its root down: at node ``k`` to ``left[k]`` when
   ``float32(x[feature[k]]) <= threshold[k]`` (scikit-learn compares in float32), else to
   ``right[k]``, until a leaf (``left[k] == -1``);
2. the forest's vote for class ``c`` is the mean over trees of the leaf's share of training rows
   of ``c`` (``value``): scikit-learn's ``predict_proba`` of the forest;
3. the votes are calibrated as the SVM's decision values are: Platt's sigmoid per class
   (:func:`~semg_hht.model.svm_head.platt_probabilities`), fitted on the out-of-bag votes (each
   training row voted on only by the trees that did not see it), so calibration needs no refit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semg_hht.model.svm_head import platt_probabilities

HEAD_KIND = "forest"
"""The value of the ``head`` array that marks this head's arrays in a head file."""

_ARRAY_KEYS = (
    "head",
    "classes",
    "n_features",
    "tree_starts",
    "feature",
    "threshold",
    "left",
    "right",
    "value",
    "calibration_a",
    "calibration_b",
)
LEAF = -1


class ForestHead:
    """Predict calibrated class probabilities from features with the arrays of a fitted random forest.

    Parameters
    ----------
    arrays : dict of str to ndarray
        As made by :meth:`from_sklearn` (see :meth:`to_arrays`); checked for consistent shapes. Node
        arrays hold every tree's nodes one tree after another, tree ``t`` at
        ``tree_starts[t]:tree_starts[t + 1]``, child indices relative to their tree.
    """

    def __init__(self, arrays: dict[str, np.ndarray]):
        missing = [key for key in _ARRAY_KEYS if key not in arrays]
        if missing:
            raise ValueError(f"missing arrays {', '.join(missing)}")
        self.classes_ = np.asarray(arrays["classes"], dtype=np.int64)
        self.n_features = int(np.asarray(arrays["n_features"]))
        self.tree_starts = np.asarray(arrays["tree_starts"], dtype=np.int64)
        self.feature = np.asarray(arrays["feature"], dtype=np.int64)
        self.threshold = np.asarray(arrays["threshold"], dtype=np.float64)
        self.left = np.asarray(arrays["left"], dtype=np.int64)
        self.right = np.asarray(arrays["right"], dtype=np.int64)
        self.value = np.asarray(arrays["value"], dtype=np.float64)
        self.calibration_a = np.asarray(arrays["calibration_a"], dtype=np.float64)
        self.calibration_b = np.asarray(arrays["calibration_b"], dtype=np.float64)
        self._check(str(np.asarray(arrays["head"])))

    def _check(self, kind: str) -> None:
        n_classes, n_nodes = len(self.classes_), len(self.feature)
        n_calibrators = 1 if n_classes == 2 else n_classes
        expected = {
            "threshold": (self.threshold.shape, (n_nodes,)),
            "left": (self.left.shape, (n_nodes,)),
            "right": (self.right.shape, (n_nodes,)),
            "value": (self.value.shape, (n_nodes, n_classes)),
            "calibration_a": (self.calibration_a.shape, (n_calibrators,)),
            "calibration_b": (self.calibration_b.shape, (n_calibrators,)),
        }
        wrong = [f"{key} {got} (expected {want})" for key, (got, want) in expected.items() if got != want]
        ordered = len(self.tree_starts) >= 2 and self.tree_starts[0] == 0 and self.tree_starts[-1] == n_nodes
        sizes = np.diff(self.tree_starts)
        in_range = bool(np.all(sizes > 0)) and len(self.left) == n_nodes
        if in_range:
            inner = self.left != LEAF
            tree_size = np.repeat(sizes, sizes)[inner]
            local = (np.arange(n_nodes) - np.repeat(self.tree_starts[:-1], sizes))[inner]
            # Children inside their own tree and after their parent, so that every descent ends at a leaf.
            in_range = all(
                bool(np.all((child[inner] > local) & (child[inner] < tree_size))) for child in (self.left, self.right)
            ) and bool(np.all((self.feature[inner] >= 0) & (self.feature[inner] < self.n_features)))
        if kind != HEAD_KIND or n_classes < 2 or wrong or not ordered or not in_range:
            raise ValueError(f"inconsistent forest-head arrays: {', '.join(wrong) or 'kind, classes or trees'}")

    @classmethod
    def from_sklearn(cls, forest: Any, calibration_a: np.ndarray, calibration_b: np.ndarray) -> ForestHead:
        """The head of a fitted ``RandomForestClassifier`` (its trees' public ``tree_`` arrays) and Platt's
        ``a`` and ``b`` per calibrated class."""
        trees = [estimator.tree_ for estimator in forest.estimators_]
        values = [tree.value[:, 0, :] for tree in trees]
        shares = [value / np.maximum(value.sum(axis=1, keepdims=True), np.finfo(float).tiny) for value in values]
        return cls(
            {
                "head": np.array(HEAD_KIND),
                "classes": forest.classes_,
                "n_features": np.array(forest.n_features_in_),
                "tree_starts": np.concatenate([[0], np.cumsum([tree.node_count for tree in trees])]),
                "feature": np.concatenate([tree.feature for tree in trees]),
                "threshold": np.concatenate([tree.threshold for tree in trees]),
                "left": np.concatenate([tree.children_left for tree in trees]),
                "right": np.concatenate([tree.children_right for tree in trees]),
                "value": np.concatenate(shares),
                "calibration_a": np.asarray(calibration_a, dtype=np.float64),
                "calibration_b": np.asarray(calibration_b, dtype=np.float64),
            }
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (plain numeric and unicode arrays: no pickle needed)."""
        return {
            "head": np.array(HEAD_KIND),
            "classes": self.classes_,
            "n_features": np.array(self.n_features),
            "tree_starts": self.tree_starts,
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "value": self.value,
            "calibration_a": self.calibration_a,
            "calibration_b": self.calibration_b,
        }

    def votes(self, features: np.ndarray) -> np.ndarray:
        """The forest's uncalibrated votes (n, n_classes): scikit-learn's ``predict_proba`` of the forest."""
        x = np.asarray(features, dtype=np.float32)
        rows = np.arange(len(x))
        votes = np.zeros((len(x), len(self.classes_)))
        for start in self.tree_starts[:-1]:
            node = np.full(len(x), start)
            inner = self.left[node] != LEAF
            while inner.any():
                at = node[inner]
                goes_left = x[rows[inner], self.feature[at]] <= self.threshold[at]
                node[inner] = start + np.where(goes_left, self.left[at], self.right[at])
                inner = self.left[node] != LEAF
            votes += self.value[node]
        return votes / (len(self.tree_starts) - 1)

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """The votes as the calibration takes them: (n,) of the second class with two classes, else (n, n_classes)."""
        votes = self.votes(features)
        return votes[:, 1] if len(self.classes_) == 2 else votes

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, n_classes) of features (n, n_features), columns as ``classes_``."""
        return platt_probabilities(self.decision_function(features), self.calibration_a, self.calibration_b)
