"""The Dask engine: local clusters, a real `dask scheduler` and `dask worker` processes, and their faults.

Each test that needs a running cluster starts its own scheduler and workers as separate processes on
this machine (`python -m dask scheduler`, `python -m dask worker`), as a lab would by hand, and stops
them at the end; `compute_hht.py --scheduler ADDRESS` runs against them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import ROOT, run_python, run_script
from semg_hht import engine
from semg_hht.cli.common import run_command
from semg_hht.conversion.workflow import ConversionOptions, run_conversion
from semg_hht.errors import EXIT_SCHEDULER, SchedulerError
from semg_hht.io.matrices import load_matrix

pytestmark = pytest.mark.slow

FS = 1000.0
SCRIPT = "compute_hht.py"
ARRAYS = ("hht", "time", "frequency", "sampling_rate", "segment_index", "segment_start_s", "td_features")


@dataclass
class Cluster:
    """A running Dask scheduler and its workers, each a process of its own."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start_cluster(folder: Path, n_workers: int) -> Cluster:
    scheduler_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0"]
        + ["--no-dashboard", "--scheduler-file", str(scheduler_file)],
        **quiet,
    )
    _wait_for(scheduler_file.exists, 60, "the scheduler's file")
    _wait_for(lambda: "address" in json.loads(scheduler_file.read_text() or "{}"), 10, "the scheduler's address")
    address = json.loads(scheduler_file.read_text())["address"]
    # No nanny: a killed worker stays dead, as a lost machine would.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
            + ["--name", f"w{index}"],
            cwd=folder,  # not the project's folder: paths must reach workers absolute
            **quiet,
        )
        for index in range(n_workers)
    ]
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(n_workers, timeout=60)
    return Cluster(address, scheduler, workers)


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = _start_cluster(folder, 2)
    yield running
    for process in [*running.workers, running.scheduler]:
        process.kill()
        process.wait(10)


def noisy_recordings(folder: Path, count: int, seconds: float, first_seed: int = 0) -> list[Path]:
    """``count`` white-noise recordings (broadband, like sEMG) saved as .npy files."""
    folder.mkdir(exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"REC_full_M_{index:03d}.npy"
        np.save(path, np.random.default_rng(first_seed + index).standard_normal(round(seconds * FS)))
        paths.append(path)
    return paths


def assert_same_outputs(expected: Path, actual: Path) -> list[str]:
    """Both folders hold the same matrix files (and nothing else) with identical arrays; their names."""
    names = sorted(os.listdir(expected))
    assert sorted(os.listdir(actual)) == names, "missing, extra or left-over files"
    for name in names:
        with np.load(expected / name, allow_pickle=False) as one, np.load(actual / name, allow_pickle=False) as two:
            for key in ARRAYS:
                np.testing.assert_array_equal(one[key], two[key], err_msg=f"{name}: {key}")
    return names


def convert(*args: str | Path) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, "--fs", "1000", *args)


def start_convert(*args: str | Path) -> subprocess.Popen:
    """compute_hht.py as its own process (its own process group, as a terminal would start it)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / SCRIPT), "--fs", "1000", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_interruptible if os.name == "posix" else None,
    )


def _interruptible() -> None:
    """In the child before it runs: Ctrl-C delivered and not ignored, as in a job a terminal starts. The test
    runner's process can hold SIGINT ignored or blocked (a library's doing, below Python's view), and a
    child inherits both, so the Ctrl-C test would otherwise send a signal its process never sees."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def count_outputs(folder: Path) -> int:
    return len(list(folder.glob("*.npz"))) if folder.exists() else 0


# --- local clusters ------------------------------------------------------------------------------


def test_two_local_workers_write_the_arrays_of_one(tmp_path):
    # 40 files: tasks of several files each (batches), and eemd's noise seeded per file and segment.
    noisy_recordings(tmp_path / "in", 40, 1.2)
    common = ("--input", tmp_path / "in", "--window", "0.5", "--method", "eemd", "--ensembles", "2")
    one = convert(*common, "--output_dir", tmp_path / "one", "--workers", "1")
    two = convert(*common, "--output_dir", tmp_path / "two", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert "workers: in-process" in one.stdout and "local Dask cluster of 2 workers" in two.stdout
    assert len(assert_same_outputs(tmp_path / "one", tmp_path / "two")) == 80
    # Both workers took files, and the summary counts each file once.
    assert "Converted 40 of 40 files: 80 matrices" in two.stdout
    per_worker = next(line for line in two.stdout.splitlines() if line.startswith("Files per worker:"))
    counts = [int(part.rsplit(" ", 1)[1]) for part in per_worker.split(": ", 1)[1].split(", ")]
    assert len(counts) == 2 and sum(counts) == 40 and min(counts) > 0


def test_one_input_file_runs_in_process_without_a_cluster(tmp_path, monkeypatch, capsys):
    noisy_recordings(tmp_path / "in", 1, 2.5)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a local Dask cluster was started")

    monkeypatch.setattr(engine, "_local_client", no_cluster)
    options = ConversionOptions(str(tmp_path / "in"), str(tmp_path / "out"), fs=FS, window=1.0, workers=2)
    assert run_command(lambda: run_conversion(options)) == 0
    assert len(os.listdir(tmp_path / "out")) == 2 and "workers: in-process" in capsys.readouterr().out


def test_a_rerun_skips_files_converted_before_and_refuses_partly_converted_ones(tmp_path):
    noisy_recordings(tmp_path / "in", 3, 2.2)
    args = ("--input", tmp_path / "in", "--output_dir", tmp_path / "out", "--window", "1", "--workers", "1")
    assert convert(*args).returncode == 0
    (tmp_path / "out" / "REC_full_M_002_seg001.npz").unlink()
    again = convert(*args)
    # Two files were converted before; the third has one of its two outputs and is named, not replaced.
    assert again.returncode == 1, again.stderr
    assert "Skipped 2 file(s) converted before" in again.stdout
    assert "REC_full_M_002.npy: 1 of its 2 outputs exist already" in again.stderr
    assert not (tmp_path / "out" / "REC_full_M_002_seg001.npz").exists()


def test_a_local_worker_killed_mid_task_is_replaced_and_its_files_run_again(tmp_path):
    noisy_recordings(tmp_path / "in", 24, 3.0)
    common = ("--input", tmp_path / "in", "--method", "eemd", "--ensembles", "4")
    reference = convert(*common, "--output_dir", tmp_path / "reference", "--workers", "1")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    with start_convert(*common, "--output_dir", out, "--workers", "2") as run:
        _wait_for(lambda: count_outputs(out) >= 2, 120, "the first outputs")
        workers = [
            child
            for child in psutil.Process(run.pid).children(recursive=True)
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        written_at_kill = count_outputs(out)
        workers[0].kill()
        stdout, stderr = run.communicate(timeout=300)
    assert written_at_kill < 24, "the kill must land while files are still pending"
    assert run.returncode == 0, stderr
    assert "Converted 24 of 24 files" in stdout
    assert_same_outputs(tmp_path / "reference", out)


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group, as a POSIX terminal's Ctrl-C does")
def test_ctrl_c_stops_the_run_and_its_local_cluster(tmp_path):
    # Enough work (about a minute on two workers) that the interrupt lands mid-run even on a loaded machine:
    # with 24 files the run could end before the test got to send it.
    recordings = noisy_recordings(tmp_path / "in", 400, 3.0)
    out = tmp_path / "out"
    run = start_convert("--input", tmp_path / "in", "--output_dir", out, "--method", "eemd", "--workers", "2")
    _wait_for(lambda: count_outputs(out) >= 1, 120, "the first output")
    children = psutil.Process(run.pid).children(recursive=True)
    assert len([child for child in children if "spawn_main" in " ".join(child.cmdline())]) == 2
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    assert count_outputs(out) < len(recordings)  # the interrupt landed with files still pending
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"processes left behind: {[child.cmdline() for child in alive]}"
    # What was written is whole, and nothing temporary is left behind.
    for path in out.iterdir():
        assert path.suffix == ".npz" and not path.name.startswith(".")
        load_matrix(path)


# --- a running cluster: `dask scheduler` and `dask worker` processes -------------------------------


def test_a_running_scheduler_gives_the_arrays_of_one_worker(tmp_path, cluster):
    noisy_recordings(tmp_path / "in", 12, 2.0)
    common = ("--input", tmp_path / "in", "--window", "1", "--method", "eemd", "--ensembles", "2")
    one = convert(*common, "--output_dir", tmp_path / "one", "--workers", "1")
    remote = convert(*common, "--output_dir", tmp_path / "remote", "--scheduler", cluster.address)
    assert one.returncode == 0 and remote.returncode == 0, one.stderr + remote.stderr
    assert f"workers: Dask scheduler {cluster.address} (2 workers at the start)" in remote.stdout
    assert len(assert_same_outputs(tmp_path / "one", tmp_path / "remote")) == 24
    # The sample data set fans out on the same engine, with the same result.
    simulate = ("--n_samples", "3", "--n_test", "2")
    alone = run_script("generate_sample_data.py", *simulate, "--output_dir", tmp_path / "alone", "--workers", "1")
    shared = run_script(
        "generate_sample_data.py", *simulate, "--output_dir", tmp_path / "shared", "--scheduler", cluster.address
    )
    assert alone.returncode == 0 and shared.returncode == 0, alone.stderr + shared.stderr
    names = sorted(path.name for path in (tmp_path / "alone").glob("*.npz"))
    assert len(names) == 20 and names == sorted(path.name for path in (tmp_path / "shared").glob("*.npz"))
    for name in names:
        np.testing.assert_array_equal(load_matrix(tmp_path / "alone" / name), load_matrix(tmp_path / "shared" / name))


def test_a_bad_file_among_good_ones_is_reported_once_through_the_cluster(tmp_path, cluster):
    noisy_recordings(tmp_path / "in", 6, 2.0)
    (tmp_path / "in" / "REC_full_M_bad.npy").write_bytes(b"not a numpy file")
    result = convert("--input", tmp_path / "in", "--output_dir", tmp_path / "out", "--scheduler", cluster.address)
    assert result.returncode == 1
    assert "Converted 6 of 7 files" in result.stdout and "Failed: 1 file(s)" in result.stdout
    bad = [line for line in result.stderr.splitlines() if "REC_full_M_bad.npy" in line]
    assert bad == [f"Error: {tmp_path / 'in' / 'REC_full_M_bad.npy'}: the file is not a .npy array"]
    assert count_outputs(tmp_path / "out") == 6


def test_a_worker_killed_while_files_are_pending_leaves_no_file_missing_or_twice(tmp_path, cluster):
    noisy_recordings(tmp_path / "in", 24, 3.0)
    common = ("--input", tmp_path / "in", "--method", "eemd", "--ensembles", "4")
    reference = convert(*common, "--output_dir", tmp_path / "reference", "--workers", "1")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    with start_convert(*common, "--output_dir", out, "--scheduler", cluster.address) as run:
        _wait_for(lambda: count_outputs(out) >= 2, 120, "the first outputs")
        written_at_kill = count_outputs(out)
        cluster.workers[0].kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        assert cluster.workers[0].wait(10) == (-signal.SIGKILL if os.name == "posix" else 1)
        stdout, stderr = run.communicate(timeout=300)
    assert written_at_kill < 24, "the kill must land while files are still pending"
    assert run.returncode == 0, stderr
    # Each input counted once; the same files and arrays as one worker, no temporary file left.
    assert "Converted 24 of 24 files: 24 matrices" in stdout
    assert_same_outputs(tmp_path / "reference", out)


def test_a_lost_scheduler_ends_the_run_with_its_own_exit_status_and_a_rerun_finishes(tmp_path, cluster):
    noisy_recordings(tmp_path / "in", 24, 3.0)
    common = ("--input", tmp_path / "in", "--method", "eemd", "--ensembles", "4")
    out = tmp_path / "out"
    with start_convert(*common, "--output_dir", out, "--scheduler", cluster.address) as run:
        _wait_for(lambda: count_outputs(out) >= 2, 120, "the first outputs")
        cluster.scheduler.kill()
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == EXIT_SCHEDULER == 5, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: lost the connection to the Dask scheduler at {cluster.address}; "
        "what was written stays, and running again skips finished files"
    ]
    assert "Traceback" not in stderr
    for worker in cluster.workers:  # a worker may still be writing its last file: let it end
        worker.kill()
        worker.wait(10)
    written = count_outputs(out)
    assert 2 <= written < 24
    for path in out.glob("*.npz"):
        load_matrix(path)
    # Running again (here without the cluster) converts only what is missing.
    rerun = convert(*common, "--output_dir", out, "--workers", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert f"Skipped {written} file(s) converted before" in rerun.stdout
    reference = convert(*common, "--output_dir", tmp_path / "reference", "--workers", "1")
    assert reference.returncode == 0
    assert_same_outputs(tmp_path / "reference", out)


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 2)
    noisy_recordings(tmp_path / "in", 2, 2.0)
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    options = ConversionOptions(str(tmp_path / "in"), str(tmp_path / "out"), fs=FS, scheduler=address)
    assert run_command(lambda: run_conversion(options)) == EXIT_SCHEDULER
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"Error: cannot reach a Dask scheduler at {address}")


def test_workers_that_cannot_reach_the_paths_stop_the_run_naming_worker_and_path(tmp_path):
    with engine.open_engine(2, None, 2) as local:
        with pytest.raises(SchedulerError, match=r"worker tcp://127\.0\.0\.1:\d+ .* cannot read .*nowhere"):
            local.check_access(str(tmp_path / "nowhere"), str(tmp_path))
        local.check_access(str(tmp_path), str(tmp_path))  # readable and writable: no error
    # A folder that is a file cannot be written into.
    (tmp_path / "file").write_text("")
    assert "cannot write into" in engine.access_problem(str(tmp_path), str(tmp_path / "file"))


def _engine_settings(dask_worker=None, dask_scheduler=None) -> dict:
    """What a worker's or the scheduler's engine does beside the tasks (runs in that process)."""
    import dask

    server = dask_worker if dask_worker is not None else dask_scheduler
    return {
        "profile": dask.config.get("distributed.worker.profile.enabled"),
        "periodic": sorted(server.periodic_callbacks),
        "tick_ms": server.periodic_callbacks["tick"].callback_time,
        "monitor_ms": server.periodic_callbacks["monitor"].callback_time,
    }


def test_a_local_cluster_runs_its_engine_quietly_and_leaves_the_callers_settings_alone():
    import dask
    import distributed  # noqa: F401 - adds its settings' defaults to Dask's configuration

    before = dask.config.get("distributed.admin.tick.interval")
    with engine.open_engine(2, None, 2) as local:
        workers = local.client.run(_engine_settings)
        scheduler = local.client.run_on_scheduler(_engine_settings)
    assert len(workers) == 2
    for settings in [*workers.values(), scheduler]:
        assert settings["tick_ms"] == 1000 and settings["monitor_ms"] == 5000
    for settings in workers.values():
        assert settings["profile"] is False and "profile" not in settings["periodic"]
    assert dask.config.get("distributed.admin.tick.interval") == before == "20ms"


def test_a_local_cluster_starts_from_a_thread_other_than_the_main_one(tmp_path):
    # Signal handlers can be changed only in the main thread (a GUI or notebook may call the library
    # from another): the cluster still starts there, and runs tasks.
    outcomes: list[engine.TaskOutcome] = []

    def run() -> None:
        with engine.open_engine(2, None, 2) as local:
            outcomes.extend(local.run(abs, [-1, -2], "thread"))

    worker_thread = threading.Thread(target=run)
    worker_thread.start()
    worker_thread.join(120)
    assert sorted(outcome.value for outcome in outcomes) == [1, 2]
    assert all(outcome.worker.startswith("tcp://") for outcome in outcomes)


def test_a_script_read_from_stdin_starts_local_workers(tmp_path):
    """Spawned workers re-run the main script from its path; from stdin that path ('<stdin>') does not exist."""
    script = (
        "from semg_hht.data.sample_data import generate_sample_data\n"
        f"paths = generate_sample_data({str(tmp_path / 'data')!r}, n_samples=2, n_test=0, workers=2)\n"
        "print(len(paths))\n"
    )
    result = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "12" and len(list((tmp_path / "data").glob("*.npz"))) == 12


def test_the_cluster_benchmark_times_every_configuration_on_the_same_files():
    result = run_python(ROOT / "benchmarks/bench_cluster.py", "--files", "12", "--seconds", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["files"] == 12 and figures["machine_limit_files_per_s"] > 0
    runs = figures["runs"]
    assert list(runs) == ["in-process (1 worker)", "local cluster, 2 workers", "running scheduler, 2 workers"]
    assert runs["in-process (1 worker)"]["ratio_to_1_worker"] == 1.0
    for row in runs.values():
        assert row["wall_s"] > 0 and row["files_per_s"] == pytest.approx(12 / row["wall_s"], rel=0.02)


def test_each_round_of_the_cluster_benchmark_starts_at_the_next_configuration(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "benchmarks/bench_cluster.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    order: list[str] = []
    monkeypatch.setattr(bench, "run_configuration", lambda name, *_: order.append(name) or (1.0, 1.0))
    monkeypatch.setattr(bench, "machine_limit", lambda *_: 1.0)

    rows, _ = bench.one_round(tmp_path / "in", tmp_path / "round1", None, 1)
    assert order == [*bench.CONFIGURATIONS[1:], bench.CONFIGURATIONS[0]]
    assert list(rows) == list(bench.CONFIGURATIONS)  # reported in the same order every round
