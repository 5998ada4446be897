#!/usr/bin/env python3
"""What inference.py costs for a model of descriptors, against the machine's own limits, in one run.

Usage::

    python benchmarks/bench_inference.py [--files 1000] [--features hht+env] [--work_dir DIR]

It trains a model of descriptors (``--features``, by default train.py's: ``hht+env``) on a simulated
set of ``--files`` labelled files, then prints:

- start-up: the best wall time of ``python -c "import numpy, sklearn"`` and of ``inference.py`` on
  one file (end to end), their difference, and whether ``python -X importtime inference.py``
  imported torch;
- steady state: files/s of ``run_inference`` on the whole folder (imports done; reading, descriptors,
  head and the predictions JSON included) against a loop of ``np.load(path, allow_pickle=False)["hht"]``
  over the same files, each in a fresh interpreter of its own as a user would run it, with the files
  in the page cache (read once before), best of three. The loop is also timed with glibc keeping
  freed memory (what inference does, ``semg_hht.memory``): a fresh interpreter maps and page-faults
  each 256 KiB array anew, so that figure is the machine's limit for reading these files, and the
  plain loop what a user's own script reaches. Last, ``inference.py`` end to end on the folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from semg_hht.data.sample_data import generate_sample_data
from semg_hht.defaults import DEFAULT_FEATURES

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3


def best_wall(command: list[str], repeats: int = REPEATS) -> float:
    """Best wall seconds of ``command`` over ``repeats`` runs (output discarded; a failure raises)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - started)
    return best


# Each measurement runs in a fresh interpreter: what a process imported before (SciPy, say) changes
# how fast it reads files, through the C library's heap.
LOAD_LOOP = """
import sys, time
from pathlib import Path
import numpy as np
if sys.argv[2] == "kept":
    from semg_hht.memory import keep_freed_memory
    keep_freed_memory()
paths = sorted(Path(sys.argv[1]).glob("*.npz"))
best = float("inf")
for _ in range(1 + REPEATS):  # the first pass puts the files into the page cache
    started = time.perf_counter()
    for path in paths:
        with np.load(path, allow_pickle=False) as archive:
            archive["hht"]
    best = min(best, time.perf_counter() - started)
print(len(paths) / best)
"""
INFERENCE = """
import logging, sys, time
from semg_hht.inference.prediction import InferenceOptions, run_inference
from semg_hht.logs import PACKAGE, quieter
options = InferenceOptions(sys.argv[1], sys.argv[2], sys.argv[3])
best = float("inf")
for _ in range(1 + REPEATS):
    started = time.perf_counter()
    with quieter(PACKAGE, logging.ERROR):
        run_inference(options)
    best = min(best, time.perf_counter() - started)
print(int(sys.argv[4]) / best)
"""


def rate_in_fresh_process(code: str, *args: object) -> float:
    """The files/s that ``code`` prints, run in a new interpreter with ``args``."""
    command = [sys.executable, "-c", code.replace("REPEATS", str(REPEATS)), *map(str, args)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])


def imports_torch(command: list[str]) -> bool:
    result = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True)
    modules = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")]
    return any(name.split(".")[0] == "torch" for name in modules)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="simulated files (default: %(default)s)")
    parser.add_argument("--features", default=DEFAULT_FEATURES, help="train.py's --features (default: %(default)s)")
    parser.add_argument("--work_dir", help="keep the data and checkpoint here (default: a temporary folder)")
    args = parser.parse_args()
    if "cnn" in args.features:
        parser.error("--features: a model of descriptors (no cnn block) is what this measures")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.work_dir or temporary)
        data, checkpoints = work / "data", work / f"checkpoints_{args.features.replace('+', '_')}"
        if not data.exists():
            generate_sample_data(data, n_samples=-(-args.files // 6), n_test=0, seed=1)
        paths = sorted(data.glob("*.npz"))
        if not checkpoints.exists():
            train = [
                sys.executable,
                str(ROOT / "train.py"),
                "--data_dir",
                str(data),
                "--checkpoint_dir",
                str(checkpoints),
                "--features",
                args.features,
            ]
            subprocess.run(train, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        bare = best_wall([sys.executable, "-c", "import numpy, sklearn"])
        one_file = [
            sys.executable,
            str(ROOT / "inference.py"),
            "--checkpoint",
            str(checkpoints),
            "--input",
            str(paths[0]),
        ]
        single = best_wall(one_file)
        print(f"Start-up (best of {REPEATS}):")
        print(f"  python -c 'import numpy, sklearn':  {bare:.2f} s")
        print(f"  inference.py, one file:             {single:.2f} s  ({single - bare:+.2f} s)")
        print(f"  torch imported by inference.py:     {'yes' if imports_torch(one_file) else 'no'}")

        plain = rate_in_fresh_process(LOAD_LOOP, data, "plain")
        kept = rate_in_fresh_process(LOAD_LOOP, data, "kept")
        inference = rate_in_fresh_process(INFERENCE, checkpoints, data, work / "predictions.json", len(paths))
        folder = best_wall([*one_file[:-1], str(data), "--output", str(work / "predictions_cli.json")], repeats=1)
        print(f"\nSteady state on {len(paths)} files (page cache warm, best of {REPEATS}, each in a fresh process):")
        print(f"  np.load loop, plain:                {plain:,.0f} files/s")
        print(f"  np.load loop, freed memory kept:    {kept:,.0f} files/s")
        print(
            f"  run_inference (in-process):         {inference:,.0f} files/s "
            f"({inference / plain:.0%} of the plain loop, {inference / kept:.0%} of the kept one)"
        )
        print(f"  inference.py end to end:            {len(paths) / folder:,.0f} files/s ({folder:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
