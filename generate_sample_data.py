#!/usr/bin/env python3
"""Write a sample data set of simulated sEMG recordings and their HHT matrices.

A front-end of ``semg_hht/cli/simulate.py`` (also ``semg-hht simulate``): its
docstring, shown by ``--help``, gives the flags, the outputs and the exit codes.
"""

from semg_hht.cli.simulate import main

if __name__ == "__main__":
    raise SystemExit(main())
