"""Files in and out: untrusted NumPy files, HHT matrix files, recordings of every format, the labels
file, predictions JSON, pictures, and the atomic writes and folder locks that keep them whole.

Depends on nothing else in the package (only :mod:`semg_hht.classes`, :mod:`semg_hht.errors`,
:mod:`semg_hht.defaults`, :mod:`semg_hht.logs`)."""
