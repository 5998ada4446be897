"""Subject-wise splits."""

import numpy as np
import pytest

from semg_hht.errors import UsageError
from semg_hht.evaluation.splits import grouped_split


def test_grouped_split_keeps_each_group_on_one_side_and_every_class_in_validation():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"S{i}" for i in range(10)], 12)
    labels = np.tile(np.arange(6), 20)
    rng.shuffle(labels)
    for seed in range(5):
        train, val = grouped_split(labels, groups, 0.2, seed)
        assert sorted(np.concatenate([train, val])) == list(range(len(labels)))
        assert not set(groups[train]) & set(groups[val])
        assert set(labels[val]) == set(range(6))
        assert 1 <= len(set(groups[val])) <= 3
    assert np.array_equal(grouped_split(labels, groups, 0.2, 3)[1], grouped_split(labels, groups, 0.2, 3)[1])


def test_grouped_split_needs_two_groups():
    with pytest.raises(UsageError, match="at least 2 subjects"):
        grouped_split(np.array([0, 1, 0, 1]), np.array(["a"] * 4), 0.2, 0)
