#!/usr/bin/env python3
"""Predict HHT matrix files with a trained sEMG-HHT checkpoint.

A front-end of ``semg_hht/cli/infer.py`` (also ``semg-hht infer``): its
docstring, shown by ``--help``, gives the flags, the outputs and the exit codes.
"""

from semg_hht.cli.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
