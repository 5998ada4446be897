"""Explanations of real recordings, and their cost per file: the README's picture (docs/explanation_contraction.png).

Usage::

    python benchmarks/explain_contraction.py [--work DIR] [--picture docs/explanation_contraction.png]

The forearm recordings of ``../shared/realdata/contraction-intensity`` (subjects S1-S6,
channel 0, 1 kHz) are cut into 1 s windows every 0.5 s by compute_hht.py and labelled as
the evidence benchmark labels them (MVC -> M_full, 50P -> M_half, 20P and the rest class C1
-> M_invalid; gender unknown, fixed to M). train.py fits the default model on S2-S6, with
S1's windows as test files; inference.py ``--explain`` then explains every window of S1, a
subject the model never saw. Prints the cost per file (the target is under 2 s on two CPU
cores), the share of S1's windows predicted right, and the descriptors that moved the
predictions most; copies the explanation of the most confident right MVC window to ``--picture``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONTRACTION = ROOT.parent / "shared" / "realdata" / "contraction-intensity"
RECORDING = re.compile(r"^(S\d+)_(MVC|50P|20P)_C(\d+)_R\d+")
MOVEMENT = {"MVC": "full", "50P": "half", "20P": "invalid"}
HELD_OUT = "S1"


def run(script: str, *args: str | Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{script} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def convert(work: Path) -> Path:
    """Channel 0 of S1-S6, 1 s windows every 0.5 s, as compute_hht.py writes them (cached in ``work``)."""
    matrices = work / "matrices"
    if matrices.exists():
        return matrices
    recordings = work / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    for source in sorted(CONTRACTION.glob("S[1-6]/*.csv")):
        (recordings / source.name).symlink_to(source.resolve())
    partial = work / "matrices.partial"
    shutil.rmtree(partial, ignore_errors=True)
    run("compute_hht.py", "--input", recordings, "--output_dir", partial, "--fs", "1000", "--channel", "0",
        "--window", "1", "--hop", "0.5")  # fmt: skip
    partial.rename(matrices)
    return matrices


def write_labels(matrices: Path) -> Path:
    """labels.csv: every window's movement and subject; the held-out subject's windows are test files."""
    path = matrices.parent / "labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "gender", "movement", "subject", "split"])
        for matrix in sorted(matrices.glob("*.npz")):
            subject, level, motion = RECORDING.match(matrix.name).groups()
            movement = "invalid" if motion == "1" else MOVEMENT[level]
            writer.writerow([matrix.name, "M", movement, subject, "test" if subject == HELD_OUT else ""])
    return path


def explain_held_out(work: Path, matrices: Path, checkpoints: Path) -> tuple[dict[str, dict], str, float]:
    """inference.py --explain on the held-out subject's windows: the records, the printed cost, the wall time."""
    held_out = work / HELD_OUT
    shutil.rmtree(held_out, ignore_errors=True)
    held_out.mkdir()
    for matrix in sorted(matrices.glob(f"{HELD_OUT}_*.npz")):
        (held_out / matrix.name).symlink_to(matrix.resolve())
    predictions = work / "predictions.json"
    started = time.perf_counter()
    out = run("inference.py", "--checkpoint", checkpoints, "--input", held_out, "--explain", work / "explained",
              "--output", predictions, "--cpu")  # fmt: skip
    wall = time.perf_counter() - started
    document = json.loads(predictions.read_text(encoding="utf-8"))
    per_file = re.search(r"\(([\d.]+) s per file\)", out).group(1)
    return {name: record for name, record in document.items() if name != "errors"}, per_file, wall


def summarise(records: dict[str, dict], truth: dict[str, str]) -> str:
    """Print the accuracy and the strongest descriptors; return the file whose picture to show."""
    right = [name for name, record in records.items() if record["prediction"] == truth[name]]
    print(f"Predicted right: {len(right)} of {len(records)} ({len(right) / len(records):.2f})")
    contributions = np.array([list(r["explanation"]["descriptor_contributions"].values()) for r in records.values()])
    names = list(next(iter(records.values()))["explanation"]["descriptor_contributions"])
    strongest = np.argsort(-np.abs(contributions).mean(axis=0))[:5]
    described = ", ".join(f"{names[i]} {np.abs(contributions[:, i]).mean():.3f}" for i in strongest)
    print(f"Largest mean |contribution|: {described}")
    confidence = {name: records[name]["confidence"] for name in records}
    full = [name for name in right if truth[name] == "M_full"]
    return max(full or right or records, key=confidence.get)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="folder for the matrices and the model (default: a temporary one)")
    parser.add_argument("--picture", type=Path, help="copy the chosen explanation picture here")
    args = parser.parse_args()
    if not CONTRACTION.is_dir():
        raise SystemExit(f"{CONTRACTION} not found: the real recordings are needed")
    work = args.work or Path(tempfile.mkdtemp(prefix="explain_contraction_"))
    matrices = convert(work)
    labels = write_labels(matrices)
    checkpoints = work / "checkpoints"
    run("train.py", "--data_dir", matrices, "--labels", labels, "--checkpoint_dir", checkpoints, "--overwrite",
        "--cpu")  # fmt: skip
    records, per_file, wall = explain_held_out(work, matrices, checkpoints)
    print(f"{len(records)} windows of {HELD_OUT} explained: {per_file} s per file (explanation alone), "
          f"{wall / len(records):.2f} s per file for the whole inference.py run")  # fmt: skip
    with open(labels, encoding="utf-8") as stream:
        truth = {row["file"]: f"M_{row['movement']}" for row in csv.DictReader(stream)}
    chosen = summarise(records, truth)
    record = records[chosen]
    print(f"Chosen picture: {chosen} ({record['prediction']}, {record['confidence']:.2f}); "
          f"strongest block {record['explanation']['strongest_block']}")  # fmt: skip
    if args.picture:
        shutil.copy(record["explanation"]["picture"], args.picture)
        print(f"Copied to {args.picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
