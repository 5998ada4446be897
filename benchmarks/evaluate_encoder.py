#!/usr/bin/env python3
"""Does training the encoder help? Random encoder + SVM, trained encoder + SVM and the trained linear head.

Reproduces the comparison table of TRAINING_GUIDE.md with one command::

    python benchmarks/evaluate_encoder.py

Two data sets, each over several seeds (the seed draws the simulated data, the
splits and all initial weights):

* ``simulated``: ``generate_sample_data`` with ``--sim_samples`` labelled files
  per class; the models are tested on the generator's test files, which come
  from subjects never seen in training (their classes from ``labels.csv``).
* ``contraction``: the real recordings in ``../shared/realdata/contraction-intensity``
  (subjects S1-S6; ``--contraction_dir``), converted with compute_hht's code (channels ``--channels``,
  ``--window`` s segments every ``--hop`` s), labelled MVC -> full, 50P -> half,
  20P and C1 (no movement) -> invalid, gender fixed to M; evaluated
  leave-one-subject-out.

Runs can be split (``--datasets``, ``--seeds``, a shared ``--work_dir`` prepared with
``--prepare_only``) and their JSON files merged into one table with ``--summarise``.

Within each training set a subject-wise 20 % is held out for early stopping, so
neither the early stopping nor the test ever sees a training subject. The
random encoder + SVM is the trainer's epoch 0: the same initial weights and
split. Balanced accuracy is the mean recall over the classes present (chance:
1/6 on simulated, 1/3 on contraction). Results go to stdout as a Markdown
table and to ``--output`` as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.data.dataset import extract_file_features
from semg_hht.data.sample_data import generate_sample_data
from semg_hht.evaluation.scores import balanced_accuracy
from semg_hht.evaluation.splits import grouped_split
from semg_hht.io.labels_file import read_labels_file
from semg_hht.logs import PACKAGE, configure_logging, quieter
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import resolve_device
from semg_hht.training.trainer import EncoderTrainer, EncoderTrainingOptions, LabelledFiles

DEFAULT_CONTRACTION_DIR = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "contraction-intensity"
)
CONTRACTION_FS = 1000.0
CONTRACTION_NAME = re.compile(r"^(S\d+)_(MVC|50P|20P)_C(\d+)_R\d+_")
LEVEL_CLASS = {
    "MVC": CLASS_NAMES.index("M_full"),
    "50P": CLASS_NAMES.index("M_half"),
    "20P": CLASS_NAMES.index("M_invalid"),
}
METHODS = ("random encoder + SVM", "trained encoder + SVM", "trained linear head")


@dataclass
class Items:
    """Matrix files with class IDs and subjects, parallel."""

    paths: list[Path]
    labels: np.ndarray
    groups: np.ndarray

    def take(self, index: np.ndarray) -> Items:
        return Items([self.paths[i] for i in index], self.labels[index], self.groups[index])


def fit_and_test(train: Items, test: Items, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """Train on ``train`` (subject-wise early-stopping split), score the three methods on ``test``."""
    inner_train, inner_val = grouped_split(train.labels, train.groups, 0.2, seed)
    fit, val = train.take(inner_train), train.take(inner_val)
    classifier = HHTClassifier(
        features="cnn", model="joint", seed=seed, batch_size=args.batch_size, device=resolve_device(args.cpu)
    )
    options = EncoderTrainingOptions(epochs=args.epochs, lr=args.lr, patience=args.patience, augment=args.augment)
    trainer = EncoderTrainer(
        classifier, options, LabelledFiles(fit.paths, fit.labels), LabelledFiles(val.paths, val.labels), progress=False
    )
    started = time.perf_counter()
    snapshots: dict[str, object] = {}

    def keep_untrained(improved: bool) -> None:
        if trainer.epoch == 0:
            snapshots["random"] = copy.deepcopy(classifier)
            snapshots["random_seconds"] = time.perf_counter() - started

    # Quiet: the per-epoch lines and progress bars; the table is the result.
    with quieter(PACKAGE, logging.ERROR):
        trainer.run(keep_untrained)
        seconds = time.perf_counter() - started
        random_classifier = snapshots["random"]
        assert isinstance(random_classifier, HHTClassifier) and trainer.best is not None
        random_features = extract_file_features(random_classifier, test.paths, args.batch_size).features
        trained_features = extract_file_features(trainer.best, test.paths, args.batch_size).features
    return {
        METHODS[0]: balanced_accuracy(test.labels, random_classifier.predict_features(random_features)),
        METHODS[1]: balanced_accuracy(test.labels, trainer.best.predict_features(trained_features)),
        METHODS[2]: balanced_accuracy(test.labels, trainer.head_predict_proba(trained_features).argmax(axis=1)),
        "random_seconds": float(snapshots["random_seconds"]),  # type: ignore[arg-type]
        "trained_seconds": seconds,
        "epochs_run": trainer.epoch,
        "best_epoch": trainer.best_epoch,
    }


def simulated_runs(seed: int, work: Path, args: argparse.Namespace) -> Iterator[dict[str, float]]:
    folder = work / f"simulated_seed{seed}_{args.sim_samples}_{args.sim_test}"
    if not folder.exists():
        # Made aside and renamed: runs sharing a --work_dir never see a half-written set.
        partial = Path(tempfile.mkdtemp(dir=work))
        with quieter(PACKAGE, logging.ERROR):
            generate_sample_data(partial / "data", n_samples=args.sim_samples, n_test=args.sim_test, seed=seed)
        try:
            (partial / "data").rename(folder)
        except OSError:  # another run got there first with the same data
            shutil.rmtree(partial / "data")
        partial.rmdir()
    rows = read_labels_file(folder / "labels.csv").rows
    items = {
        split: Items(
            [folder / name for name, row in rows.items() if row.split == split],
            np.array([row.class_id for row in rows.values() if row.split == split]),
            np.array([row.subject for row in rows.values() if row.split == split]),
        )
        for split in (None, "test")
    }
    yield fit_and_test(items[None], items["test"], seed, args)


def contraction_items(work: Path, args: argparse.Namespace) -> Items:
    """Convert the real recordings once (cached in ``work``) and label them."""
    output = work / "contraction"
    paths: list[Path] = []
    for channel in args.channels:
        channel_dir = output / f"channel{channel}"
        if not channel_dir.exists():
            for subject_dir in sorted(Path(args.contraction_dir).glob("S*")):
                options = ConversionOptions(
                    input=str(subject_dir),
                    fs=CONTRACTION_FS,
                    output_dir=str(channel_dir),
                    channel=str(channel),
                    window=args.window,
                    hop=args.hop,
                    workers=args.workers,
                )
                with quieter(PACKAGE, logging.ERROR):
                    if run_conversion(options) != 0:
                        raise SystemExit(f"compute_hht failed on {subject_dir}")
        paths.extend(sorted(channel_dir.glob("*.npz")))
    labels, groups = [], []
    for path in paths:
        match = CONTRACTION_NAME.match(path.name)
        if match is None:
            raise SystemExit(f"unexpected file name {path.name}")
        subject, level, motion = match.groups()
        labels.append(CLASS_NAMES.index("M_invalid") if motion == "1" else LEVEL_CLASS[level])
        groups.append(subject)
    return Items(paths, np.array(labels), np.array(groups))


def contraction_runs(seed: int, items: Items, args: argparse.Namespace) -> Iterator[dict[str, float]]:
    """Leave-one-subject-out: one run per held-out subject."""
    for subject in np.unique(items.groups):
        held_out = items.groups == subject
        run = fit_and_test(items.take(np.flatnonzero(~held_out)), items.take(np.flatnonzero(held_out)), seed, args)
        yield {**run, "subject": str(subject)}


def summarise(results: dict[str, dict[int, list[dict]]]) -> str:
    lines = [
        "| data | method | balanced accuracy, mean ± std over seeds | per seed | training time per fit (s) |",
        "|---|---|---|---|---|",
    ]
    for data, by_seed in results.items():
        for method in METHODS:
            per_seed = [float(np.mean([run[method] for run in runs])) for runs in by_seed.values()]
            key = "random_seconds" if method == METHODS[0] else "trained_seconds"
            seconds = np.mean([run[key] for runs in by_seed.values() for run in runs])
            lines.append(
                f"| {data} | {method} | {np.mean(per_seed):.3f} ± {np.std(per_seed):.3f} | "
                f"{', '.join(f'{value:.3f}' for value in per_seed)} | {seconds:.0f} |"
            )
    return "\n".join(lines)


def main() -> int:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets", nargs="+", default=["simulated", "contraction"], choices=["simulated", "contraction"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--sim_samples", type=int, default=40, help="simulated labelled files per class")
    parser.add_argument("--sim_test", type=int, default=120, help="simulated test files (unseen subjects)")
    parser.add_argument("--contraction_dir", default=str(DEFAULT_CONTRACTION_DIR), help="the real recordings")
    parser.add_argument("--channels", nargs="+", type=int, default=[0, 4], help="contraction-intensity channels")
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=None, help="processes for the HHT (default: one per CPU)")
    parser.add_argument("--work_dir", help="keep generated data here (default: a temporary folder)")
    parser.add_argument("--output", help="write all results as JSON")
    parser.add_argument("--prepare_only", action="store_true", help="only convert the real recordings into --work_dir")
    parser.add_argument(
        "--summarise", nargs="+", metavar="JSON", help="print one table from the --output files of several runs"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    if args.summarise:
        merged: dict[str, dict[int, list[dict]]] = {}
        for path in args.summarise:
            for data, by_seed in json.loads(Path(path).read_text())["results"].items():
                merged.setdefault(data, {}).update(by_seed)
        print(summarise(merged))
        return 0
    if args.prepare_only:
        if not args.work_dir:
            parser.error("--prepare_only needs --work_dir")
        contraction_items(Path(args.work_dir), args)
        return 0

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.work_dir or temporary)
        work.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[int, list[dict]]] = {}
        device = resolve_device(args.cpu)
        print(f"device {device}, epochs {args.epochs}, patience {args.patience}, lr {args.lr}, augment {args.augment}")
        for data in args.datasets:
            items = contraction_items(work, args) if data == "contraction" else None
            results[data] = {}
            for seed in args.seeds:
                started = time.perf_counter()
                runs = results[data].setdefault(seed, [])
                for run in simulated_runs(seed, work, args) if items is None else contraction_runs(seed, items, args):
                    runs.append(run)
                    if args.output:  # after every fit, so that an interrupted evaluation keeps what it did
                        write_results(args, results, summarise(results))
                scores = ", ".join(f"{method} {np.mean([run[method] for run in runs]):.3f}" for method in METHODS)
                print(f"{data} seed {seed}: {scores} ({time.perf_counter() - started:.0f} s)", flush=True)
    table = summarise(results)
    print(table)
    if args.output:
        write_results(args, results, table)
    return 0


def write_results(args: argparse.Namespace, results: dict, table: str) -> None:
    document = {"settings": vars(args), "results": results, "table": table}
    Path(args.output).write_text(json.dumps(document, indent=2), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
