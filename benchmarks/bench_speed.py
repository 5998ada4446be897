"""Speed and memory of semg-hht on this machine, against the machine's own limit.

Usage::

    python benchmarks/bench_speed.py [--train_files 1200] [--infer_files 1000] [--large_files 10000]

In one run it measures and prints:

- the roofline: torch's float32 matmul GFLOP/s (best of several 2048x2048 products);
- the encoder's samples/s and GFLOP/s per batch size through the product's own path
  (``encode_batches``), as a fraction of the roofline, and with bfloat16 autocast;
- end to end, as a user runs them, for the models of :data:`MODELS` (the CNN + SVM of earlier
  releases, CNN + descriptors, and the default descriptors; encoder training is measured by
  ``bench_training.py``): ``train.py`` on a simulated set of ``--train_files`` labelled files,
  ``inference.py`` on ``--infer_files`` files and, for the default, ``--large_files`` files (the
  large folder repeats the set through symbolic links), with wall time, files/s and the process's
  peak RSS as the kernel counts it (``VmHWM``, Linux);
- training in-process (imports excluded), and what bfloat16 changes in the predictions;
- start-up: ``inference.py --help``, ``import torch``, and a one-file inference;
- HHT matrices/s for 2 s segments at 2 kHz on one core.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from semg_hht.data.sample_data import generate_sample_data
from semg_hht.data.simulation import draw_subject, simulate_recording
from semg_hht.defaults import DEFAULT_FEATURES
from semg_hht.hht.spectrum import hilbert_spectrum
from semg_hht.inference.prediction import InferenceOptions, run_inference
from semg_hht.logs import PACKAGE, configure_logging, quieter
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import build_encoder, encode_batches
from semg_hht.training.options import TrainingOptions
from semg_hht.training.pipeline import run_training

ROOT = Path(__file__).resolve().parent.parent
"""The repository, whose scripts the end-to-end runs start."""

# Multiply-adds of the three convolutions per sample, x2 for FLOP: 18.9 M + 604 M + 604 M.
MODELS = (("cnn", "joint"), ("cnn+hht", "factorised"), (DEFAULT_FEATURES, "factorised"))
"""(features, model) measured end to end: the model of earlier releases first."""
ENCODER_FLOP = 2 * (1 * 64 * 9 * 128 * 128 + 64 * 128 * 9 * 64 * 64 + 128 * 256 * 9 * 32 * 32)


def matmul_roofline(size: int = 2048, trials: int = 6) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def encoder_rate(batch_size: int, bf16: bool = False, samples: int = 96) -> float:
    """Best samples/s of ``encode_batches`` over three timed passes of ``samples`` matrices."""
    encoder = build_encoder(0)
    matrices = np.random.default_rng(0).random((batch_size, 256, 256), dtype=np.float32)
    batches = max(1, samples // batch_size)
    device = torch.device("cpu")
    for _ in encode_batches(encoder, [matrices], device, bf16):
        pass
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in encode_batches(encoder, [matrices] * batches, device, bf16):
            pass
        best = max(best, batches * batch_size / (time.perf_counter() - start))
    return best


# Runs a script and, at its exit, writes its own peak RSS (VmHWM, kB). ru_maxrss from wait4
# would not do: Linux carries a parent's peak into a forked child across exec, and this
# benchmark process is large.
_PEAK_RSS_RUNNER = (
    "import atexit, runpy, sys\n"
    "report_path = sys.argv[1]\n"
    "def report():\n"
    "    status = open('/proc/self/status').read()\n"
    "    open(report_path, 'w').write(status.split('VmHWM:')[1].split()[0])\n"
    "atexit.register(report)\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_measured(command: list[str]) -> tuple[float, float, int]:
    """Run ``[python, script, args...]``; its wall seconds, peak RSS in MB, and exit code."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as report:
        wrapped = [command[0], "-c", _PEAK_RSS_RUNNER, report.name, *command[1:]]
        start = time.perf_counter()
        code = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        seconds = time.perf_counter() - start
        peak_kb = Path(report.name).read_text().strip()
    return seconds, int(peak_kb) / 1024 if peak_kb else float("nan"), code


def script(name: str, *args: object) -> list[str]:
    return [sys.executable, str(ROOT / name), *map(str, args)]


def best_wall(command: list[str], repeats: int = 3) -> float:
    """Best wall seconds of a plain command over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def link_folder(source: list[Path], target: Path, count: int) -> None:
    target.mkdir()
    for index in range(count):
        (target / f"BICEPS_test_{index:06d}.npz").symlink_to(source[index % len(source)])


def hht_rate(segments: int = 30) -> float:
    rng = np.random.default_rng(0)
    subject = draw_subject("M", rng)
    signals = [simulate_recording(subject, "full", rng, 2000.0, 2.0) * 1e3 for _ in range(segments)]
    start = time.perf_counter()
    for signal in signals:
        hilbert_spectrum(signal, 2000.0)
    return segments / (time.perf_counter() - start)


def bf16_effect(checkpoint: Path, folder: Path) -> tuple[float, float]:
    """Share of files whose predicted class bf16 changes, and the largest probability change."""
    documents = []
    for bf16 in (False, True):
        output = folder.parent / f"bf16_{bf16}.json"
        options = InferenceOptions(str(checkpoint), str(folder), str(output), cpu=True, bf16=bf16)
        with quieter(PACKAGE, logging.ERROR):
            run_inference(options)
        documents.append(json.loads(output.read_text()))
    names = [name for name in documents[0] if name != "errors"]
    changed = sum(documents[0][n]["class_id"] != documents[1][n]["class_id"] for n in names)
    largest = max(
        abs(documents[0][n]["probabilities"][c] - documents[1][n]["probabilities"][c])
        for n in names
        for c in documents[0][n]["probabilities"]
    )
    return changed / len(names), largest


def main() -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_files", type=int, default=1200, help="labelled files for train.py")
    parser.add_argument("--infer_files", type=int, default=1000, help="files for inference.py")
    parser.add_argument("--large_files", type=int, default=10000, help="files for the memory-growth check (0: skip)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    roofline = matmul_roofline()
    print(f"\nRoofline: float32 matmul {roofline:.1f} GFLOP/s")
    print(f"Encoder: {ENCODER_FLOP / 1e9:.3f} GFLOP per sample")
    print(f"{'batch':>5} {'precision':>9} {'samples/s':>10} {'GFLOP/s':>8} {'of roofline':>12}")
    for batch_size, bf16 in [(1, False), (8, False), (16, False), (32, False), (64, False), (32, True)]:
        rate = encoder_rate(batch_size, bf16)
        gflops = rate * ENCODER_FLOP / 1e9
        precision = "bf16" if bf16 else "float32"
        print(f"{batch_size:>5} {precision:>9} {rate:>10.1f} {gflops:>8.1f} {gflops / roofline:>11.0%}")
    print(f"(roofline measured again after the encoder: {matmul_roofline():.1f} GFLOP/s)")

    print(f"\nHHT: {hht_rate():.1f} matrices/s (2 s segments at 2 kHz, one process; numpy is single-threaded here)")

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        data = work / "data"
        start = time.perf_counter()
        per_class = -(-args.train_files // 6)
        paths = generate_sample_data(data, n_samples=per_class, n_test=0, seed=1)
        print(f"\nGenerated {len(paths)} simulated files in {time.perf_counter() - start:.1f} s")

        print("\nEnd to end (wall time includes start-up; RSS is the process's peak)")
        print(f"{'run':<44} {'files':>6} {'wall s':>7} {'files/s':>8} {'peak RSS MB':>12}")
        for features, model in MODELS:
            checkpoints = work / f"ck_{features}"
            flags = ("--features", features, "--model", model)
            wall, rss, code = run_measured(
                script("train.py", "--data_dir", data, "--checkpoint_dir", checkpoints, "--cpu", *flags)
            )
            label = f"train.py --features {features}"
            print(f"{label:<44} {len(paths):>6} {wall:>7.1f} {len(paths) / wall:>8.1f} {rss:>12.0f}  (exit {code})")
            results = {}
            # The memory-growth check only for the default model: it takes most of the run.
            counts = [args.infer_files] + ([args.large_files] if features == DEFAULT_FEATURES else [])
            for count in [count for count in counts if count > 0]:
                folder = work / f"infer_{count}"
                if not folder.exists():
                    link_folder(paths, folder, count)
                command = script("inference.py", "--checkpoint", checkpoints, "--input", folder, "--cpu")
                wall, rss, code = run_measured([*command, "--output", work / f"predictions_{count}.json"])
                results[count] = rss
                label = f"inference.py --features {features} (folder)"
                print(f"{label:<44} {count:>6} {wall:>7.1f} {count / wall:>8.1f} {rss:>12.0f}  (exit {code})")
            if len(results) == 2:
                small, large = results.values()
                print(f"Peak RSS at {args.large_files} files is {large / small - 1:+.1%} of that at {args.infer_files}")

        options = TrainingOptions(str(data), str(work / "ck_inprocess"), cpu=True)
        start = time.perf_counter()
        with quieter(PACKAGE, logging.ERROR):
            run_training(options)
        seconds = time.perf_counter() - start
        print(f"\ntrain.py in-process (imports excluded): {seconds:.1f} s, {len(paths) / seconds:.1f} files/s")

        changed, largest = bf16_effect(work / "ck_cnn", work / f"infer_{args.infer_files}")
        print(
            f"bf16 autocast vs float32: {changed:.1%} of predicted classes change; "
            f"largest probability change {largest:.3f}"
        )

        print("\nStart-up")
        print(f"  inference.py --help:            {best_wall(script('inference.py', '--help')):.2f} s")
        print(f"  python -c 'import torch':       {best_wall([sys.executable, '-c', 'import torch']):.2f} s")
        one_file = script("inference.py", "--checkpoint", work / f"ck_{DEFAULT_FEATURES}", "--input", paths[0], "--cpu")
        print(f"  one-file inference (end to end): {best_wall(one_file):.2f} s")
    print(f"\n(default --batch_size {HHTClassifier().batch_size})")


if __name__ == "__main__":
    main()
