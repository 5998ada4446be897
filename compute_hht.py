#!/usr/bin/env python3
"""Convert raw sEMG recordings into the 256x256 HHT matrix files the classifier reads.

A front-end of ``semg_hht/cli/hht.py`` (also ``semg-hht hht``): its
docstring, shown by ``--help``, gives the flags, the outputs and the exit codes.
"""

from semg_hht.cli.hht import main

if __name__ == "__main__":
    raise SystemExit(main())
