#!/usr/bin/env python3
"""How the heads scale: fit time, prediction speed, peak memory, accuracy and calibration for N samples.

Usage::

    python benchmarks/bench_scale.py --n 100000 [--head scalable] [--model factorised] [--json]

The N training feature vectors are resampled with jitter from the HHT descriptors of simulated
recordings (``generate_sample_data``), so that the class structure is the product's own:
each row is a random file's 28 descriptors plus Gaussian noise of ``--jitter`` times each
descriptor's standard deviation. The 20,000 test vectors are made the same way from another
simulation (another seed: subjects never seen in training). Each head is fitted in a process of
its own, so that its peak resident memory (RSS, the whole process: interpreter, numpy and
scikit-learn included, about 150 MB before any data) is its own.

Printed per head: fit seconds, predictions/s (``predict_proba_features`` on the test vectors),
peak RSS in MB, balanced accuracy over the six classes and the expected calibration error
(ECE: 15 equal-width bins of the top class's probability, the gap between confidence and
accuracy weighted by the bin's share). ``--head`` (default: every head) runs that head, and the
RBF SVM beside it in the same run wherever N <= 20,000.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semg_hht.data.dataset import extract_file_features, scan_data_folder
from semg_hht.data.sample_data import generate_sample_data
from semg_hht.defaults import HEADS, MODELS
from semg_hht.evaluation.scores import balanced_accuracy
from semg_hht.logs import PACKAGE, quieter
from semg_hht.model.classifier import HHTClassifier

SVM_MAX_N = 20_000
TEST_N = 20_000
ECE_BINS = 15
FILES_PER_CLASS = 100


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: (n, k) probabilities vs class IDs (n,): sum over bins of |accuracy - confidence| x share."""
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs((predicted[members] == labels[members]).mean() - confidence[members].mean())
    return float(error)


def simulated_descriptors(folder: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """HHT descriptors (n, 28) and class IDs (n,) of a simulated data set (generated into ``folder`` once)."""
    if not folder.exists():
        generate_sample_data(folder, n_samples=FILES_PER_CLASS, n_test=0, seed=seed)
    data = scan_data_folder(folder)
    encoded = extract_file_features(HHTClassifier(features="hht"), data.labelled, 64)
    return encoded.features.astype(np.float64), np.asarray(data.labels)


def resample(base: tuple[np.ndarray, np.ndarray], n: int, jitter: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows drawn from ``base`` with Gaussian jitter of ``jitter`` x each column's std, as float32."""
    features, labels = base
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(labels), n)
    noise = rng.standard_normal((n, features.shape[1]), dtype=np.float32) * (jitter * features.std(axis=0))
    return (features[rows] + noise).astype(np.float32), labels[rows]


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB; None where the platform has no ``resource`` module (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def measure(job: dict) -> dict:
    """Fit one head on ``job["n"]`` resampled vectors and score it (runs in a process of its own)."""
    bases = np.load(job["bases"])
    train = resample((bases["train_x"], bases["train_y"]), job["n"], job["jitter"], seed=1)
    test_x, test_y = bases["test_x"], bases["test_y"]
    del bases
    classifier = HHTClassifier(features="hht", model=job["model"], head=job["head"])
    started = time.perf_counter()
    classifier.fit_features(*train)
    fit_seconds = time.perf_counter() - started
    del train
    started = time.perf_counter()
    probabilities = classifier.predict_proba_features(test_x)
    predict_seconds = time.perf_counter() - started
    return {
        "head": job["head"],
        "used": classifier.head_kind_,
        "n": job["n"],
        "fit_s": fit_seconds,
        "predictions_per_s": len(test_y) / predict_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "balanced_accuracy": balanced_accuracy(test_y, probabilities.argmax(axis=1)),
        "ece": expected_calibration_error(probabilities, test_y),
        "probability_sums_max_error": float(np.abs(probabilities.sum(axis=1) - 1).max()),
    }


def in_own_process(job: dict) -> dict:
    # spawn: a fresh interpreter on every platform, so that the peak RSS is this fit's alone.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (job,))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10_000], help="training vectors (one run each)")
    parser.add_argument("--head", choices=HEADS, help="the head to measure (default: every head)")
    parser.add_argument("--model", choices=MODELS, default="factorised", help="(default: %(default)s, train.py's)")
    parser.add_argument("--jitter", type=float, default=0.3, help="noise, in standard deviations (default: 0.3)")
    parser.add_argument("--work_dir", help="keep the simulated data here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return parser.parse_args()


def heads_for(n: int, head: str | None) -> list[str]:
    heads = [head] if head else ["svm", "scalable", "auto"]
    if n > SVM_MAX_N:
        return [h for h in heads if h != "svm"]
    return heads if "svm" in heads else ["svm", *heads]


def row(result: dict) -> str:
    rss = "n/a" if result["peak_rss_mb"] is None else f"{result['peak_rss_mb']:.0f}"
    head = result["head"] if result["head"] == result["used"] else f"{result['head']} ({result['used']})"
    return (
        f"| {result['n']:,} | {head} | {result['fit_s']:.2f} | {result['predictions_per_s']:,.0f} | {rss} "
        f"| {result['balanced_accuracy']:.3f} | {result['ece']:.3f} |"
    )


def main() -> int:
    args = parse_arguments()
    with tempfile.TemporaryDirectory() as temporary, quieter(PACKAGE, logging.ERROR):
        work = Path(args.work_dir or temporary)
        train_base = simulated_descriptors(work / "train_subjects", seed=0)
        test_base = simulated_descriptors(work / "test_subjects", seed=1)
        test_x, test_y = resample(test_base, TEST_N, args.jitter, seed=2)
        bases = work / "bases.npz"
        np.savez(bases, train_x=train_base[0], train_y=train_base[1], test_x=test_x, test_y=test_y)
        results = []
        for n in args.n:
            for head in heads_for(n, args.head):
                job = {"bases": str(bases), "n": n, "head": head, "model": args.model, "jitter": args.jitter}
                results.append(in_own_process(job))
                print(f"n={n:,} {head}: fit {results[-1]['fit_s']:.1f} s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Model {args.model}, HHT descriptors; test: {TEST_N:,} vectors of unseen simulated subjects.\n")
    print("| N | head | fit s | predictions/s | peak RSS MB | balanced acc. | ECE |")
    print("|---|---|---|---|---|---|---|")
    for result in results:
        print(row(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
