"""Shared fixtures: small data sets made in the test, and running the scripts as a user would."""

from __future__ import annotations

import os

# The suite runs on two processes on two cores (pytest.ini's -n 2): one thread each for torch,
# OpenMP and BLAS, inherited by the scripts the tests start (train.py's torch honours OMP_NUM_THREADS
# too: 46 s against 36.5 s for two encoder-training runs side by side), so that no process's idle threads
# spin on a core the other one needs (measured: 387 s against 483 s for the whole suite). Set
# before numpy and torch are first imported, which read these at import.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

import contextlib
import importlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"
UPSTREAM_MATRIX = REALDATA / "upstream-hht" / "Test1_1_001.npz"

# Property-based tests: the same examples every run, so that CI cannot fail on a new random draw.
settings.register_profile(
    "semg_hht", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("semg_hht")


@pytest.fixture(autouse=True)
def script_logging():
    """The package's log records reach stdout and stderr as the scripts configure them, so tests that
    call the library in-process see what a user of the scripts would."""
    from semg_hht.logs import configure_logging

    configure_logging()


# The scripts' work runs in this process, through each front-end's ``main(argv)``: the heavy modules
# (torch, scikit-learn, SciPy, matplotlib) are imported once per test process, not once per run.
# Tests whose point is a real process (a kill, a signal, an exit status seen by the shell, the
# bytes of the standard streams, worker processes started by a script) use :func:`run_python` or
# :func:`start_python`, which start ``python`` itself.
SCRIPT_MODULES = {
    "train.py": "semg_hht.cli.train",
    "inference.py": "semg_hht.cli.infer",
    "compute_hht.py": "semg_hht.cli.hht",
    "generate_sample_data.py": "semg_hht.cli.simulate",
}


def run_script(script: str, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a top-level script's ``main(argv)`` in this process, as ``python script ARGS`` would run it:
    its exit status (an argparse ``SystemExit`` included) and what it wrote to stdout and stderr."""
    main = importlib.import_module(SCRIPT_MODULES[script]).main
    argv = [str(argument) for argument in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), _working_in(cwd):
        try:
            status = main(argv, prog=script)
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    return subprocess.CompletedProcess([sys.executable, script, *argv], status, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _working_in(folder: Path | None) -> Iterator[None]:
    """Within the block, ``folder`` (if given) is the working folder (``contextlib.chdir`` is Python 3.11+)."""
    previous = os.getcwd()
    os.chdir(folder or previous)
    try:
        yield
    finally:
        os.chdir(previous)


def run_python(*arguments: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python ARGUMENTS`` in a new process: ``subprocess.run(..., capture_output=True, text=True)``."""
    command = [sys.executable, *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd or ROOT, timeout=600)


def start_python(
    *arguments: str | Path, pipe: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """``python ARGUMENTS`` started in a new process with ``pipe`` ("stdout" or "stderr") piped as text and
    the other streams on the null device. Kill tests use it: a signal sent to its ``pid`` lands there."""
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, pipe: subprocess.PIPE}
    command = [sys.executable, *map(str, arguments)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, text=True, cwd=cwd or ROOT, env=env, **streams)


# Runs a script with os.open, os.write and os.fsync failing (errno argv[1]) for files whose name starts
# with argv[2].
FAILING_SCRIPT = """
import errno, os, runpy, sys
error, prefix = getattr(errno, sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[3:]
real_open, real_write, real_fsync = os.open, os.write, os.fsync

def doomed(path):
    return os.path.basename(path).startswith(prefix)

def doomed_descriptor(descriptor):
    # By what the descriptor is open on now: descriptor numbers are reused after a close.
    try:
        return doomed(os.readlink(f"/proc/self/fd/{descriptor}"))
    except OSError:
        return False

def failing_open(path, flags, *args, **kwargs):
    if error == errno.EROFS and doomed(os.fsdecode(path)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        raise OSError(error, os.strerror(error), path)
    return real_open(path, flags, *args, **kwargs)

def failing_write(descriptor, data):
    if doomed_descriptor(descriptor):
        raise OSError(error, os.strerror(error))
    return real_write(descriptor, data)

# Writes through a file object bypass os.write; a full disk then shows at fsync (delayed allocation).
def failing_fsync(descriptor):
    if doomed_descriptor(descriptor):
        raise OSError(error, os.strerror(error))
    return real_fsync(descriptor)

os.open, os.write, os.fsync = failing_open, failing_write, failing_fsync
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_failing(error: str, name_prefix: str, script: str, *args) -> subprocess.CompletedProcess:
    """Run a script in a new process (:func:`run_python`), writes to files named ``name_prefix...`` failing."""
    return run_python("-c", FAILING_SCRIPT, error, name_prefix, ROOT / script, *args)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """30 labelled files (5 per class) and 3 test files."""
    from semg_hht.data.sample_data import generate_sample_data

    directory = tmp_path_factory.mktemp("sample")
    generate_sample_data(directory, n_samples=5, n_test=3, seed=1)
    return directory


@pytest.fixture(scope="session")
def trained(sample_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A checkpoint folder trained by train.py on ``sample_dir``, and the run's output."""
    checkpoint_dir = tmp_path_factory.mktemp("checkpoints")
    result = run_script(
        "train.py", "--epochs", "0", "--data_dir", sample_dir, "--checkpoint_dir", checkpoint_dir, "--cpu"
    )
    assert result.returncode == 0, result.stderr
    return checkpoint_dir, result


def random_matrix(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((256, 256), dtype=np.float32)


def mutated(data: st.DataObject, content: bytes, min_mutations: int, max_mutations: int) -> bytes:
    """``content`` with a drawn number of bytes flipped, inserted or cut off from a drawn position."""
    content = bytearray(content)
    for _ in range(data.draw(st.integers(min_mutations, max_mutations), label="mutations")):
        if not content:
            break
        position = data.draw(st.integers(0, len(content) - 1), label="position")
        action = data.draw(st.sampled_from(["flip", "truncate", "insert"]), label="action")
        if action == "flip":
            content[position] ^= data.draw(st.integers(1, 255), label="mask")
        elif action == "truncate":
            del content[position:]
        else:
            content[position:position] = data.draw(st.binary(min_size=1, max_size=16), label="inserted")
    return bytes(content)
