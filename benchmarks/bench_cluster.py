"""Benchmark compute_hht.py on its Dask engine: files/s in-process, with 2 local workers, and with 2 workers
behind a running scheduler, in one run on the same files, beside the machine's own limit.

Usage::

    python benchmarks/bench_cluster.py [--files 2000] [--seconds 2] [--fs 2000] [--method emd] [--json]

The recordings are band-limited noise under a burst envelope (sEMG-like), ``--seconds`` long at
``--fs`` Hz, one ``.npy`` file each, made in a temporary folder. Each configuration is one whole
``compute_hht.py`` command, timed from start to exit (interpreter, cluster start and worker imports
included); the conversion phase alone is the time the run itself reports. The machine's limit is
two in-process runs side by side, each on half of the files: what two cores give with no engine at
all. The engine's overhead per file is the core time it adds: ``(2 x wall_2 - wall_1) / files``.
The running scheduler and its workers get the Dask settings docs/running_at_scale.md recommends for
a cluster that converts (the local cluster's own, ``semg_hht.engine.LOCAL_CLUSTER_CONFIG``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from scipy.signal import butter, sosfiltfilt  # noqa: E402

from semg_hht.engine import LOCAL_CLUSTER_CONFIG  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "compute_hht.py"
PHASE = re.compile(r"written in ([0-9.]+) s")


def make_recordings(folder: Path, count: int, seconds: float, fs: float) -> None:
    """``count`` sEMG-like recordings: 20-450 Hz noise under a Gaussian burst, fixed seeds."""
    folder.mkdir(parents=True)
    n = round(seconds * fs)
    sos = butter(4, [20.0, min(450.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    t = np.arange(n) / n
    for index in range(count):
        rng = np.random.default_rng(index)
        envelope = 0.1 + np.exp(-0.5 * ((t - rng.uniform(0.3, 0.7)) / 0.15) ** 2)
        np.save(folder / f"REC_full_M_{index:05d}.npy", sosfiltfilt(sos, rng.standard_normal(n)) * envelope)


def convert(inputs: Path, output: Path, args: argparse.Namespace, *flags: str) -> tuple[float, float]:
    """Run compute_hht.py; (wall seconds, conversion-phase seconds)."""
    command = [sys.executable, str(SCRIPT), "--input", str(inputs), "--output_dir", str(output)]
    command += ["--fs", f"{args.fs:g}", "--method", args.method, *flags]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    match = PHASE.search(result.stdout)
    return wall, float(match.group(1)) if match else wall


def machine_limit(inputs: Path, work: Path, args: argparse.Namespace) -> float:
    """Seconds for two in-process runs side by side, each on half of the files (symbolic links)."""
    halves = [work / "half0", work / "half1"]
    for half in halves:
        half.mkdir()
    for index, path in enumerate(sorted(inputs.iterdir())):
        (halves[index % 2] / path.name).symlink_to(path)
    command = [sys.executable, str(SCRIPT), "--fs", f"{args.fs:g}", "--method", args.method, "--workers", "1"]
    started = time.perf_counter()
    runs = [
        subprocess.Popen(
            [*command, "--input", str(half), "--output_dir", str(work / f"out-{half.name}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for half in halves
    ]
    if any(run.wait() != 0 for run in runs):
        raise SystemExit("an in-process run of the machine-limit pair failed")
    return time.perf_counter() - started


def start_cluster(folder: Path, n_workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A ``dask scheduler`` and ``n_workers`` single-threaded ``dask worker`` processes; (address, processes)."""
    scheduler_file = folder / "scheduler.json"
    # The settings docs/running_at_scale.md recommends for a cluster that converts: the local cluster's own.
    settings = {_environment_name(key): str(value) for key, value in LOCAL_CLUSTER_CONFIG.items()}
    environment = dict(os.environ, **settings)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": environment}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(scheduler_file)],
            **quiet,
        )
    ]
    deadline = time.monotonic() + 60
    while not (scheduler_file.exists() and "address" in (scheduler_file.read_text() or "{}")):
        if time.monotonic() > deadline:
            raise SystemExit("the Dask scheduler did not start")
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    processes += [
        subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1"], **quiet)
        for _ in range(n_workers)
    ]
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(n_workers, timeout=60)
    return address, processes


def _environment_name(key: str) -> str:
    """The environment variable that sets Dask's configuration ``key`` (``distributed.admin.tick.interval``
    -> ``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL``)."""
    return "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split("."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fs", type=float, default=2000.0)
    parser.add_argument("--method", default="emd", choices=("emd", "eemd", "ceemdan"))
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every configuration, one after another in each round, each round starting at the next "
        "configuration; each figure is the median over rounds, and the ratio's range is given beside it (this "
        "machine's cores vary from run to run)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        inputs = work / "in"
        make_recordings(inputs, args.files, args.seconds, args.fs)
        rounds = [one_round(inputs, work / f"round{number}", args, number) for number in range(args.repeat)]
    report(rounds, args)


CONFIGURATIONS = ("in-process (1 worker)", "local cluster, 2 workers", "running scheduler, 2 workers")


def one_round(
    inputs: Path, work: Path, args: argparse.Namespace, number: int
) -> tuple[dict[str, tuple[float, float]], float]:
    """Every configuration once, on the same files: the (wall, phase) seconds of each, and the machine limit's.

    Round ``number`` starts at configuration ``number`` and takes them in turn (then the machine limit):
    the machine's speed drifts over minutes, and a fixed order would hand the drift to one configuration.
    """
    work.mkdir()
    rows: dict[str, tuple[float, float]] = {}
    for offset in range(len(CONFIGURATIONS)):
        name = CONFIGURATIONS[(number + offset) % len(CONFIGURATIONS)]
        rows[name] = run_configuration(name, inputs, work, args)
    return {name: rows[name] for name in CONFIGURATIONS}, machine_limit(inputs, work, args)


def run_configuration(name: str, inputs: Path, work: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(wall, phase) seconds of configuration ``name`` converting ``inputs`` into a folder of its own."""
    if name == "in-process (1 worker)":
        return convert(inputs, work / "one", args, "--workers", "1")
    if name == "local cluster, 2 workers":
        return convert(inputs, work / "local", args, "--workers", "2")
    # Started for its own run only: idle workers would take a little of the other runs' cores.
    address, processes = start_cluster(work, 2)
    try:
        return convert(inputs, work / "remote", args, "--scheduler", address)
    finally:
        for process in processes:
            process.kill()


def figures_of(rows: dict[str, tuple[float, float]], limit: float, n: int) -> dict[str, dict[str, float]]:
    """One round's figures per configuration."""
    one_wall = rows["in-process (1 worker)"][0]
    return {
        name: {
            "wall_s": wall,
            "files_per_s": n / wall,
            "conversion_files_per_s": n / phase,
            "ratio_to_1_worker": one_wall / wall,
            "share_of_machine_limit": limit / wall,
            "overhead_ms_per_file": 1e3 * (2 * wall - one_wall) / n if "2 workers" in name else 0.0,
        }
        for name, (wall, phase) in rows.items()
    }


def report(rounds: list[tuple[dict[str, tuple[float, float]], float]], args: argparse.Namespace) -> None:
    n = args.files
    per_round = [figures_of(rows, limit, n) for rows, limit in rounds]
    figures = {
        name: {key: round(float(np.median([each[name][key] for each in per_round])), 2) for key in per_round[0][name]}
        for name in per_round[0]
    }
    for name in figures:
        ratios = [each[name]["ratio_to_1_worker"] for each in per_round]
        figures[name]["ratio_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    limit_rate = float(np.median([n / limit for _, limit in rounds]))
    summary = {
        "files": n,
        "seconds": args.seconds,
        "fs": args.fs,
        "method": args.method,
        "cores": os.cpu_count(),
        "rounds": len(rounds),
        "machine_limit_files_per_s": round(limit_rate, 1),
        "runs": figures,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{n} recordings of {args.seconds:g} s at {args.fs:g} Hz, {args.method}, {os.cpu_count()} cores")
    print(f"medians over {len(rounds)} round(s); machine limit (two in-process runs side by side): {limit_rate:.1f}/s")
    header = ("wall s", "files/s", "phase/s", "x 1 wkr", "range", "of limit", "ms/file")
    print(f"{'configuration':32} " + " ".join(f"{column:>9}" for column in header))
    for name, row in figures.items():
        low, high = row["ratio_range"]
        print(
            f"{name:32} {row['wall_s']:9.2f} {row['files_per_s']:9.1f} {row['conversion_files_per_s']:9.1f} "
            f"{row['ratio_to_1_worker']:9.2f} {f'{low:.2f}-{high:.2f}':>9} {row['share_of_machine_limit']:9.2f} "
            f"{row['overhead_ms_per_file']:9.2f}"
        )


if __name__ == "__main__":
    main()
