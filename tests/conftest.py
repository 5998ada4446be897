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

import atexit
import contextlib
import io
import json
import locale
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


# Scripts run in forks of one waiting Python process that has imported the heavy third-party modules
# (torch, scikit-learn, SciPy, matplotlib: about 4.7 s of CPU per start; torch._dynamo, which the
# first optimizer imports: 1.9 s more; sklearn.inspection, which every report's permutation importance
# imports: 0.1 s) and the package's modules the scripts run (0.25 s a run). A patch a run makes before
# it starts a script must therefore replace a module's own attribute, as the kill tests' do (they
# assert that their kill landed). Each run is a fresh fork, so no state passes from one run to the
# next; it runs ``python script.py ...`` or ``python -c CODE ...`` as the interpreter would
# (``__main__``, argv, the script's folder or '' first on sys.path, exit status, a signal's death as
# -N), on the standard streams the request passes (a Unix socket carries them). A fork of the waiting
# process serves each request: it starts the run as its own child, sends its pid, waits and sends its
# exit status, so runs can go side by side. The waiting process ends when the test process does.
WARM_START = """
import contextlib, json, os, runpy, socket, sys
import matplotlib.backends.backend_agg, matplotlib.figure, scipy.signal, sklearn.inspection, sklearn.svm
import torch, torch._dynamo
# Runs share the package's compiled files in the socket's folder: with PYTHONDONTWRITEBYTECODE set
# (as on the development machine), each run would compile the package anew (about 0.15 s).
sys.dont_write_bytecode, sys.pycache_prefix = False, os.path.join(os.path.dirname(sys.argv[1]), "pycache")
import semg_hht.cli.hht, semg_hht.cli.infer, semg_hht.cli.simulate, semg_hht.cli.train
import semg_hht.data.sample_data, semg_hht.evaluation.explanation, semg_hht.conversion.workflow
import semg_hht.inference.prediction, semg_hht.training.pipeline
parent = os.getppid()
listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
listener.bind(sys.argv[1])
listener.listen()
listener.settimeout(2)
print("ready", flush=True)
while os.getppid() == parent:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        continue
    message, streams, _, _ = socket.recv_fds(connection, 1 << 17, 3)
    if os.fork() == 0:
        listener.close()
        pid = os.fork()
        if pid == 0:
            break
        for stream in streams:
            os.close(stream)
        connection.send(b"%d" % pid)
        connection.send(b"%d" % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        os._exit(0)
    for stream in streams:
        os.close(stream)
    connection.close()
else:
    raise SystemExit(0)
connection.close()
for descriptor, stream in enumerate(streams):
    os.dup2(stream, descriptor)
    os.close(stream)
# New stream objects, as a starting interpreter makes them: the inherited ones know the old files.
sys.stdin = sys.__stdin__ = os.fdopen(0, "r", closefd=False)
sys.stdout = sys.__stdout__ = os.fdopen(1, "w", closefd=False)
sys.stderr = sys.__stderr__ = os.fdopen(2, "w", closefd=False, errors="backslashreplace", buffering=1)
request = json.loads(message)
os.chdir(request["cwd"])
os.environ.clear()
os.environ.update(request["env"])
arguments = request["argv"]
if arguments[0] == "-c":
    sys.argv, sys.path[0] = ["-c", *arguments[2:]], ""
    exec(compile(arguments[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
else:
    sys.argv, sys.path[0] = arguments, os.path.dirname(arguments[0])
    runpy.run_path(arguments[0], run_name="__main__")
"""

# A stand-in for the interpreter's path where a tool starts Python itself (example_workflow.sh's
# $PYTHON): it hands its arguments, folder, environment and standard streams to the waiting process
# and ends as the run did.
WARM_PYTHON = """#!{python} -S
import json, os, signal, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
connection.connect({address!r})
request = {{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}
socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
connection.recv(32)
status = int(connection.recv(32))
if status < 0:
    signal.signal(-status, signal.SIG_DFL)
    os.kill(os.getpid(), -status)
sys.exit(status)
"""
_warm_starter: list[tuple[subprocess.Popen, str]] = []


def _starter_address() -> str:
    """The socket of this test process's waiting Python process, started on first use."""
    if not _warm_starter or _warm_starter[0][0].poll() is not None:
        folder = tempfile.mkdtemp(prefix="warm-")
        address = os.path.join(folder, "socket")
        starter = subprocess.Popen([sys.executable, "-c", WARM_START, address], stdout=subprocess.PIPE, cwd=ROOT)
        assert starter.stdout.readline() == b"ready\n", "the waiting Python process did not start"
        atexit.register(shutil.rmtree, folder, True)
        atexit.register(starter.kill)
        _warm_starter[:] = [(starter, address)]
    return _warm_starter[0][1]


def warm_python(folder: Path) -> Path:
    """An executable in ``folder`` that runs ``python ARGS`` as the waiting process (see WARM_PYTHON)."""
    path = folder / "warm-python"
    path.write_text(WARM_PYTHON.format(python=sys.executable, address=_starter_address()), encoding="utf-8")
    path.chmod(0o755)
    return path


def _as_text(path: Path) -> str:
    """A captured stream as ``subprocess.run(..., text=True)`` returns it (universal newlines)."""
    return path.read_bytes().decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def run_script(script: str, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run one of the top-level scripts in a new process and capture its output."""
    return run_python(ROOT / script, *args, cwd=cwd)


def _request_run(
    arguments: tuple[str | Path, ...], cwd: Path | None, env: dict[str, str] | None, streams: list[int]
) -> socket.socket:
    """Hand ``python ARGUMENTS`` with standard streams ``streams`` to the waiting process; the connection
    then receives the run's pid and, when it ends, its exit status."""
    request = {"argv": list(map(str, arguments)), "cwd": str(cwd or ROOT), "env": env or dict(os.environ)}
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection.connect(_starter_address())
    socket.send_fds(connection, [json.dumps(request).encode()], streams)
    return connection


@contextlib.contextmanager
def _killed_after(timeout: float | None, pid: int) -> Iterator[threading.Event]:
    """Within the block, SIGKILL process ``pid`` once ``timeout`` seconds have passed (never if None);
    the event yielded says whether it was killed."""
    timed_out = threading.Event()
    timer = threading.Timer(timeout or 0, lambda: (timed_out.set(), os.kill(pid, signal.SIGKILL)))
    if timeout is not None:
        timer.start()
    try:
        yield timed_out
    finally:
        timer.cancel()


def run_python(*arguments: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *arguments], capture_output=True, text=True)``, started warm."""
    argv = list(map(str, arguments))
    with tempfile.TemporaryDirectory() as folder:
        stdout, stderr = Path(folder) / "stdout", Path(folder) / "stderr"
        with open(os.devnull, "rb") as nothing, open(stdout, "wb") as out, open(stderr, "wb") as err:
            connection = _request_run(arguments, cwd, None, [nothing.fileno(), out.fileno(), err.fileno()])
        with connection:
            pid = int(connection.recv(32))
            with _killed_after(300, pid) as timed_out:
                returncode = int(connection.recv(32))
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(argv, 300)
        return subprocess.CompletedProcess([sys.executable, *argv], returncode, _as_text(stdout), _as_text(stderr))


class WarmProcess:
    """A run of the waiting process started without waiting for it, as ``subprocess.Popen(..., text=True)``
    with one stream piped: ``pid``, ``stdout`` or ``stderr``, ``send_signal``, ``poll``, ``wait``,
    ``communicate`` and ``returncode``.

    Kill tests use it: the run is a process of its own, so a signal sent to ``pid`` lands there.
    Leaving the ``with`` block kills a run still going, so that a failed test does not hold up the
    next ones.
    """

    def __init__(self, connection: socket.socket, pipe: str, stream: io.TextIOWrapper) -> None:
        self.pid = int(connection.recv(32))
        self.returncode: int | None = None
        self._connection = connection
        self._pipe = pipe
        setattr(self, pipe, stream)

    def __enter__(self) -> WarmProcess:
        return self

    def __exit__(self, *exception: object) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it may have ended already
                self.send_signal(signal.SIGKILL)
            self.wait()

    def send_signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.wait(timeout=0.001)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._connection.settimeout(timeout)
            try:
                self.returncode = int(self._connection.recv(32))
            except TimeoutError:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0) from None
            self._connection.close()
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read the piped stream to its end and wait: ``(stdout, stderr)``, ``None`` for the one not piped.
        A run still going after ``timeout`` seconds is killed and ``subprocess.TimeoutExpired`` raised."""
        with _killed_after(timeout, self.pid) as timed_out, getattr(self, self._pipe) as stream:
            output = stream.read()
            self.wait()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        return (output, None) if self._pipe == "stdout" else (None, output)


def start_python(
    *arguments: str | Path, pipe: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> WarmProcess:
    """``subprocess.Popen([sys.executable, *arguments], text=True)`` with ``pipe`` ("stdout" or "stderr")
    piped and the other streams on the null device, started warm (see WARM_START)."""
    read_end, write_end = os.pipe()
    with open(os.devnull, "rb+") as nothing:
        streams = [nothing.fileno(), write_end if pipe == "stdout" else nothing.fileno()]
        streams.append(write_end if pipe == "stderr" else nothing.fileno())
        connection = _request_run(arguments, cwd, env, streams)
    os.close(write_end)  # the run holds the only writing end: its end is the reader's end of file
    return WarmProcess(connection, pipe, open(read_end, encoding=locale.getpreferredencoding(False)))


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
    """Run a script as :func:`run_script` does, with writes to files named ``name_prefix...`` failing with ``error``."""
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
