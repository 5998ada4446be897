#!/usr/bin/env python3
"""Make LibEMG's own environment for the peer rows of evaluate_recordings.py.

LibEMG needs numpy < 2 and the suite needs numpy >= 2, so the peer gets a virtual environment
of its own, at ``benchmarks/.libemg-env`` unless ``--env DIR`` says otherwise::

    python benchmarks/setup_libemg.py [--env DIR]

It installs the pinned releases below from the package index (LibEMG pulls about 40 packages, a
minute on a fast connection) and checks that the peer's imports work. evaluate_recordings.py
finds the environment at that default place (or takes ``--libemg_python``) and skips the peer
rows, saying why, where it is absent. The suite itself never installs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

DEFAULT_ENV = Path(__file__).resolve().parent / ".libemg-env"
# LibEMG's last release and the versions it was measured with here; numpy < 2 is LibEMG's own pin.
PINNED = ("libemg==2.0.3", "numpy==1.26.4", "scipy==1.17.1", "scikit-learn==1.9.1")
CHECK = "from libemg.feature_extractor import FeatureExtractor; from libemg.emg_predictor import EMGClassifier"


def environment_python(env: Path) -> Path:
    """The Python of the virtual environment ``env`` on this platform."""
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", type=Path, default=DEFAULT_ENV, help="where to make the environment")
    args = parser.parse_args(argv)
    python = environment_python(args.env)
    if not python.exists():
        print(f"making {args.env}", file=sys.stderr)
        venv.create(args.env, with_pip=True)
    install = [str(python), "-m", "pip", "install", "--quiet", *PINNED]
    if subprocess.run(install).returncode != 0:
        print(f"installing {' '.join(PINNED)} into {args.env} failed (see pip's messages above)", file=sys.stderr)
        return 1
    if subprocess.run([str(python), "-c", CHECK]).returncode != 0:
        print(f"LibEMG is installed in {args.env} but does not import (see above)", file=sys.stderr)
        return 1
    print(f"LibEMG's environment is ready: {python}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
