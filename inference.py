#!/usr/bin/env python3
"""Predict HHT matrix files with a trained sEMG-HHT checkpoint.

Exit codes: 0 every input predicted; 1 some inputs could not be read (the rest
are predicted and written); 2 usage error (no such checkpoint, no input files);
3 out of device memory; 4 --output could not be written (the predictions are then
printed on stdout as JSON).
"""

from semg_hht.cli.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
