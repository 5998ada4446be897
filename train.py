#!/usr/bin/env python3
"""Train the sEMG-HHT classifier on a folder of labelled HHT matrices.

A front-end of ``semg_hht/cli/train.py`` (also ``semg-hht train``): its
docstring, shown by ``--help``, gives the flags, the outputs and the exit codes.
"""

from semg_hht.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
