#!/usr/bin/env python3
"""Train the sEMG-HHT CNN-SVM classifier on a folder of labelled HHT matrices.

Exit codes: 0 trained on every file; 1 trained, but some files were skipped or
labels-file rows were unusable (each listed); 2 nothing trained (bad flags, no
usable data, resume refused, the checkpoint folder in use by another run); 3 out
of device memory; 4 results could not be written (full disk, read-only folder:
the previous checkpoints are unchanged).
"""

from semg_hht.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
