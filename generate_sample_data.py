#!/usr/bin/env python3
"""Write a sample data set: simulated raw sEMG recordings of the six classes, each turned into
its 256x256 Hilbert spectrum, named by the labelling convention, with labels.csv beside them.

Exit codes: 0 written; 2 bad flags, files that would be overwritten, or the folder in
use by another run; 4 a file could not be written (full disk, read-only folder).
"""

from semg_hht.cli.simulate import main

if __name__ == "__main__":
    raise SystemExit(main())
