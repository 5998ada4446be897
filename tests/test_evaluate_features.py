"""benchmarks/evaluate_features.py: the evidence table's script end to end, and its scoring helpers."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys

import numpy as np
import pytest

from conftest import ROOT, read_json, run_python

SCRIPT = "benchmarks/evaluate_features.py"


@pytest.fixture(scope="session")
def bench():
    spec = importlib.util.spec_from_file_location("evaluate_features", ROOT / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_simulated_run_reports_every_row(tmp_path, bench):
    output = tmp_path / "results.json"
    result = run_python(
        ROOT / SCRIPT,
        *("--datasets", "simulated", "--sim_samples", "6", "--sim_test", "12", "--seeds", "0", "--epochs", "1"),
        *("--work_dir", tmp_path / "work", "--output", output),
    )
    assert result.returncode == 0, result.stderr
    document = read_json(output)
    expected = {bench.row_key(method, normalised) for method in bench.METHODS for normalised in method.normalisations}
    assert set(document["results"]["simulated"]) == expected
    assert "contraction" not in document["results"]
    for key, by_seed in document["results"]["simulated"].items():
        assert set(by_seed) == {"0"}, key
        for figure in ("gender", "quality", "balanced"):
            value = by_seed["0"][figure]
            assert math.isfinite(value) and 0.0 <= value <= 1.0, (key, figure, value)
    assert bench.row_key(bench.METHODS[0], False) in expected and bench.METHODS[0].kind == "lda"
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(expected)  # header and one line per row, no separator counted
    assert sum(line.startswith(f"| {bench.BASELINE} |") for line in table) == 2
    assert document["table"] in result.stdout
    assert "total" in document["seconds"] and "simulated" in document["seconds"]


def test_simulated_scores_known_answer(bench):
    truth = np.array([0, 0, 1, 3, 5])
    predicted = np.array([0, 1, 4, 3, 5])
    scores = bench.simulated_scores(truth, predicted)
    # genders 0 0 0 1 1 vs 0 0 1 1 1; qualities 0 0 1 0 2 vs 0 1 1 0 2; recalls 1/2, 0, 1, 1.
    assert scores == pytest.approx({"gender": 0.8, "quality": 0.8, "balanced": 0.625})


def test_one_class_accuracy_predicts_each_class_alone(bench):
    labels = np.array([0, 0, 1, 1, 2, 2])
    everything = np.arange(6)
    assert bench.one_class_accuracy(lambda rows: labels[rows], labels, everything) == 1.0
    assert bench.one_class_accuracy(lambda rows: np.zeros(len(rows), int), labels, everything) == pytest.approx(1 / 3)
    assert bench.one_class_accuracy(lambda rows: np.zeros(len(rows), int), labels, np.array([0, 1, 2])) == 0.5

    def right_only_in_mixed_sets(rows):
        # Like a normalised model: correct when it sees several classes, class 1 for a set of one class.
        return labels[rows] if len(np.unique(labels[rows])) > 1 else np.ones(len(rows), int)

    assert bench.balanced_accuracy(labels, right_only_in_mixed_sets(everything)) == 1.0
    assert bench.one_class_accuracy(right_only_in_mixed_sets, labels, everything) == pytest.approx(1 / 3)


def test_aggregation_known_answer(bench):
    assert bench.mean_std([0.75, 1.0]) == pytest.approx((0.875, 0.125))
    assert bench.cell([0.75, 1.0]) == "0.875 ± 0.125"
    assert bench.cell([]) == "–"


def test_table_and_best_rows_from_per_fold_scores(bench):
    baseline, td_svm, hht = (bench.row_key(bench.METHODS[i], False) for i in (0, 1, 4))
    results = {
        "contraction": {
            baseline: {"S1": {"balanced": 0.5, "one_class": 0.25}, "S2": {"balanced": 1.0, "one_class": 0.75}},
            td_svm: {"S1": {"balanced": 0.9, "one_class": 0.9}, "S2": {"balanced": 0.7, "one_class": 0.7}},
            hht: {"S1": {"balanced": 0.6, "one_class": 0.6}, "S2": {"balanced": 0.6, "one_class": 0.6}},
        },
        "simulated": {baseline: {"0": {"gender": 0.5, "quality": 0.6, "balanced": 0.2}}},
    }
    args = argparse.Namespace(no_tune=True, rows="")
    lines = bench.table(results, args).splitlines()
    assert (
        f"| {bench.BASELINE} | none | 0.750 ± 0.250 | 0.500 ± 0.250 | 0.500 ± 0.000 | 0.600 ± 0.000 | 0.200 ± 0.000 |"
        in lines
    )
    assert len(lines) == 2 + sum(len(m.normalisations) for m in bench.METHODS if m.kind != "tuned")
    assert bench.best_rows(results, args) == {baseline: {"S1": 0.5, "S2": 1.0}, td_svm: {"S1": 0.9, "S2": 0.7}}
    # --rows keeps the baseline and the rows it names.
    chosen = bench.rows(argparse.Namespace(no_tune=True, rows="scalable head"))
    assert [method.name for method, normalised in chosen if not normalised] == [
        bench.BASELINE,
        "HHT descriptors, scalable head",
        "HHT, factorised, scalable head",
    ]


def test_columns_slice_the_canonical_feature_matrix(bench):
    np.testing.assert_array_equal(bench.columns(("cnn",)), np.arange(256))
    np.testing.assert_array_equal(
        bench.columns(("hht", "td")), np.r_[256 : 256 + 28, 256 + 28 + 16 : 256 + 28 + 16 + 4]
    )
    np.testing.assert_array_equal(bench.columns(("hht", "env")), np.arange(256, 256 + 28 + 16))
