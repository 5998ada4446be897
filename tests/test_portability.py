"""The scripts run where POSIX is missing: a proxy for Windows on this Linux machine.

Each run starts ``python`` with the POSIX-only modules (``fcntl``, ``resource``, ``pwd``, ``grp``,
``termios``) unimportable by the package and the scripts (third-party libraries keep their own
platform's backend, as they would on Windows), ``os.fork`` and ``os.forkpty`` absent, and multiprocessing's start
method ``spawn``, as on Windows. The folder lock then takes its Windows path (``msvcrt.locking``):
a stand-in of ``msvcrt`` gives it Windows' semantics (a mandatory lock of a byte range from the
file position, ``PermissionError`` when another process holds it) on top of the real ``fcntl``
captured before it was hidden, and logs each call so that the tests can assert the path was taken.
Windows itself runs the suite in the GitHub Actions workflow (.github/workflows/tests.yml).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, read_json

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="the proxy imitates Windows on a POSIX system; on Windows the suite itself runs"
)

PROXY = """
import builtins, fcntl as real_fcntl, multiprocessing, os, runpy, sys, types
# These take an importable msvcrt for Windows: imported before the stand-in exists.
import getpass, subprocess

BLOCKED = {"fcntl", "resource", "pwd", "grp", "termios"}
real_import = builtins.__import__


def posix_hidden_import(name, globals=None, locals=None, fromlist=(), level=0):
    # Only for our code (the package and the scripts): third-party libraries choose their own
    # platform's backend (psutil's Linux one imports resource; its Windows one does not).
    importer = (globals or {}).get("__name__") or ""
    ours = importer == "__main__" or importer.split(".")[0] == "semg_hht"
    if ours and level == 0 and name.split(".")[0] in BLOCKED:
        raise ModuleNotFoundError(f"No module named {name!r} (POSIX-only, hidden by the portability proxy)")
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = posix_hidden_import
# register_at_fork stays: libraries register their Linux hooks by it (torch does, at import).
for name in ("fork", "forkpty"):
    if hasattr(os, name):
        delattr(os, name)
multiprocessing.set_start_method("spawn", force=True)


def locking(descriptor, mode, nbytes):
    with open(os.environ["MSVCRT_LOG"], "a") as log:
        log.write(f"{os.getpid()} locking {mode}\\n")
    start = os.lseek(descriptor, 0, os.SEEK_CUR)
    if mode == msvcrt.LK_UNLCK:
        real_fcntl.lockf(descriptor, real_fcntl.LOCK_UN, nbytes, start)
        return
    try:
        real_fcntl.lockf(descriptor, real_fcntl.LOCK_EX | real_fcntl.LOCK_NB, nbytes, start)
    except OSError:
        raise PermissionError(13, "Permission denied") from None


msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2
msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt
sys.argv = sys.argv[1:]
if sys.argv[0] == "-c":
    code, sys.argv = sys.argv[1], ["-c", *sys.argv[2:]]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.path[0] = os.path.dirname(sys.argv[0])
    runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Holds the folder lock of argv[1] until the file argv[2] exists, saying "held" once it holds it.
HOLD_LOCK = """
import os, sys, time
from semg_hht.io.folder_lock import folder_lock
with folder_lock(sys.argv[1], "holder"):
    print("held", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.05)
"""


def proxied(log: Path, *arguments, **options) -> subprocess.CompletedProcess:
    """``python ARGUMENTS`` under the proxy; ``msvcrt.locking`` calls go to ``log``."""
    env = dict(os.environ, MSVCRT_LOG=str(log))
    command = [sys.executable, "-c", PROXY, *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, **options)


def test_the_proxy_hides_posix():
    code = (
        "import os, multiprocessing\n"
        "def importable(name):\n"
        "    try:\n"
        "        exec(f'import {name}')\n"
        "    except ImportError:\n"
        "        return False\n"
        "    return True\n"
        "print([importable(m) for m in ('fcntl', 'resource', 'pwd', 'grp', 'termios', 'numpy')],"
        " hasattr(os, 'fork'), multiprocessing.get_start_method())\n"
    )
    result = proxied(Path(os.devnull), "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "[False, False, False, False, False, True] False spawn"


@pytest.mark.slow
def test_the_four_scripts_run_without_posix(tmp_path):
    log = tmp_path / "msvcrt.log"
    data, checkpoints, predictions = tmp_path / "data", tmp_path / "checkpoints", tmp_path / "predictions.json"
    steps = [
        ("generate_sample_data.py", "--output_dir", data, "--n_samples", "6", "--n_test", "2", "--save_signals"),
        ("compute_hht.py", "--input", data / "signals", "--output_dir", tmp_path / "converted", "--workers", "2"),
        ("train.py", "--data_dir", data, "--checkpoint_dir", checkpoints, "--epochs", "0", "--cpu"),
        ("inference.py", "--checkpoint", checkpoints / "final", "--input", data, "--output", predictions),
    ]
    for script, *arguments in steps:
        result = proxied(log, ROOT / script, *arguments)
        assert result.returncode == 0, f"{script}: {result.stderr}"
    assert len(list((tmp_path / "converted").glob("*.npz"))) == len(list((data / "signals").glob("*.npz")))
    document = read_json(predictions)
    assert document["errors"] == {} and len(document) - 1 == len(list(data.glob("*.npz")))
    # The three scripts that write into a folder took its lock by the Windows path, once each.
    assert log.read_text().count("locking 2") == 3


def test_the_windows_lock_refuses_a_second_run_and_frees_the_folder_when_released(tmp_path):
    log, folder, release = tmp_path / "msvcrt.log", tmp_path / "out", tmp_path / "release"
    env = dict(os.environ, MSVCRT_LOG=str(log))
    command = [sys.executable, "-c", PROXY, "-c", HOLD_LOCK, folder, release]
    holder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert holder.stdout.readline() == "held\n"
        second = proxied(log, "-c", HOLD_LOCK, folder, release)
        assert second.returncode != 0 and "is in use by another run (process" in second.stderr
        assert f"process {holder.pid}, holder" in second.stderr
    finally:
        release.touch()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    again = proxied(log, "-c", HOLD_LOCK, folder, release)
    assert again.returncode == 0 and again.stdout == "held\n"
    calls = log.read_text().split("\n")
    assert sum(call.endswith("locking 2") for call in calls) == 3  # holder, refused run, next run
    assert not folder.exists(), "the last holder wrote nothing: the folder it created is gone"
