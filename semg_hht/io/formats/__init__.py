"""Readers of recording file formats, one module per family; :mod:`semg_hht.io.recordings` chooses among them.

Each reader takes a path and returns a :class:`~semg_hht.io.formats.common.Recording`: the
signal of every channel with its name, sampling rate and unit. Readers raise ``ValueError``
with the reason; the caller names the file.
"""
