"""PNG pictures: confusion matrix, training curves, example spectra per class, one spectrum, explanations.

Drawn with matplotlib's object interface on the Agg canvas (no pyplot, no display,
no global backend switch), at fixed pixel sizes, and written atomically.
matplotlib is imported only when a picture is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from semg_hht.classes import CLASS_NAMES
from semg_hht.io.atomic import atomic_open
from semg_hht.io.matrices import MatrixAxes

DPI = 100
CONFUSION_SIZE = (640, 560)
CURVES_SIZE = (960, 400)
SPECTRUM_SIZE = (640, 480)
EXAMPLE_TILE = 160
MATRIX_TILE = 128
EXPLANATION_SIZE = (1120, 480)
DIFFERENCE_TILE = 200


def _figure(size: tuple[int, int], layout: Literal["constrained"] | None = "constrained") -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | os.PathLike) -> None:
    # No bbox_inches="tight": the picture keeps exactly the size it was made with.
    with atomic_open(path) as stream:
        figure.savefig(stream, format="png", dpi=DPI)


def save_confusion_matrix(path: str | os.PathLike, matrix: Sequence[Sequence[int]], title: str) -> None:
    """The 6 x 6 confusion matrix (rows true, columns predicted class), 640 x 560 pixels.

    Each cell shows its count; the colour is the share of its row (the recall of that class).
    """
    counts = np.asarray(matrix, dtype=int)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = _figure(CONFUSION_SIZE)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.6 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    ticks = range(len(CLASS_NAMES))
    axes.set_xticks(ticks, CLASS_NAMES, rotation=45, ha="right")
    axes.set_yticks(ticks, CLASS_NAMES)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="share of the true class")
    _save(figure, path)


def save_training_curves(path: str | os.PathLike, history: dict[str, list]) -> None:
    """Loss and accuracy per epoch (training, validation, SVM validation), 960 x 400 pixels."""
    epochs = history["epoch"]
    figure = _figure(CURVES_SIZE)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        loss_axes.plot(epochs, _plottable(history.get(key)), marker="o", label=label)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy (linear head)", title="loss")
    for key, label in (
        ("train_accuracy", "head, training"),
        ("val_accuracy", "head, validation"),
        ("svm_val_accuracy", "SVM, validation"),
    ):
        accuracy_axes.plot(epochs, _plottable(history.get(key)), marker="o", label=label)
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for axes in (loss_axes, accuracy_axes):
        axes.legend()
        axes.grid(alpha=0.3)
    _save(figure, path)


def _norm(matrix: np.ndarray) -> Any:
    """Colour scale for a spectrum: square-root, saturating at the 99.5th percentile.

    Hilbert spectra are sparse, a few bins holding most of the energy; a linear scale shows them
    as a few dots on black.
    """
    from matplotlib.colors import Normalize, PowerNorm

    low, high = float(np.min(matrix)), float(np.percentile(matrix, 99.5))
    if high <= low:
        high = float(np.max(matrix)) if float(np.max(matrix)) > low else low + 1.0
    if low < 0:
        return Normalize(vmin=low, vmax=high, clip=True)
    return PowerNorm(gamma=0.5, vmin=0.0, vmax=high, clip=True)


def _plottable(values: list | None) -> list[float]:
    return [np.nan if value is None else value for value in values or []]


def save_class_examples(path: str | os.PathLike, examples: dict[int, list[tuple[str, np.ndarray]]]) -> None:
    """A grid of example spectra: one row per class, up to 4 per row, 160 pixels a tile.

    ``examples`` maps class IDs to (file name, (256, 256) matrix) pairs; rows are in class ID
    order. Each tile has its own colour scale (as :func:`save_spectrum`'s, from 0 to 1). The
    tiles are drawn as one image, which is several times faster than one axes per tile.
    """
    classes = sorted(examples)
    columns = max(1, max(len(items) for items in examples.values()))
    size, gap = MATRIX_TILE, MATRIX_TILE // 5  # the gap holds the file name
    step = size + gap
    mosaic = np.full((len(classes) * step - gap, columns * step - gap), np.nan)
    figure = _figure((EXAMPLE_TILE * columns + 60, EXAMPLE_TILE * len(classes)))
    axes = figure.add_subplot()
    for row, class_id in enumerate(classes):
        for column, (name, matrix) in enumerate(examples[class_id]):
            top, left = (len(classes) - 1 - row) * step, column * step
            mosaic[top : top + size, left : left + size] = _norm(matrix)(_tile(matrix, size))
            label = name if len(name) <= 26 else "..." + name[-23:]
            axes.text(left + size / 2, top + size + gap / 2, label, ha="center", va="center", fontsize=6)
    colours = _colour_map("magma")
    axes.imshow(mosaic, origin="lower", cmap=colours, vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([(len(classes) - 1 - row) * step + size / 2 for row in range(len(classes))])
    axes.set_yticklabels([CLASS_NAMES[class_id] for class_id in classes], fontsize=8)
    for side in axes.spines.values():
        side.set_visible(False)
    _save(figure, path)


def _tile(matrix: np.ndarray, size: int) -> np.ndarray:
    """``matrix`` resampled to ``size`` x ``size`` by nearest rows and columns."""
    rows = np.linspace(0, matrix.shape[0] - 1, size).round().astype(int)
    columns = np.linspace(0, matrix.shape[1] - 1, size).round().astype(int)
    return matrix[np.ix_(rows, columns)]


def _colour_map(name: str) -> Any:
    """Matplotlib's colour map ``name``, with missing values (NaN: the gaps between tiles) in white."""
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="white")


def save_spectrum(
    path: str | os.PathLike,
    matrix: np.ndarray,
    frequency: np.ndarray,
    duration_s: float,
    title: str,
    label: str = "amplitude",
) -> None:
    """One Hilbert spectrum: time (s) on x, frequency (Hz) on y, a colour bar; 640 x 480 pixels.

    Parameters
    ----------
    matrix : ndarray, shape (n_frequencies, n_times)
        Row 0 is the lowest frequency.
    frequency : ndarray, shape (n_frequencies,)
        Centre of each row in Hz.
    duration_s : float
        Length of the segment in seconds.
    """
    extent, time_label, frequency_label = _extent(MatrixAxes(frequency, duration_s), matrix.shape)
    figure = _figure(SPECTRUM_SIZE)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, origin="lower", aspect="auto", extent=extent, cmap="magma", norm=_norm(matrix))
    axes.set(xlabel=time_label, ylabel=frequency_label, title=title)
    figure.colorbar(image, ax=axes, label=f"{label} (square-root scale)")
    _save(figure, path)


def _extent(axes_info: MatrixAxes, shape: tuple[int, int]) -> tuple[tuple[float, float, float, float], str, str]:
    """imshow extent and axis labels of a matrix: Hz and s where the file stores them, else rows and fractions."""
    frequency, duration = axes_info.frequency, axes_info.duration_s
    if frequency is not None:
        step = (frequency[-1] - frequency[0]) / max(1, len(frequency) - 1)
        low, high, frequency_label = frequency[0] - step / 2, frequency[-1] + step / 2, "frequency (Hz)"
    else:
        low, high, frequency_label = -0.5, shape[0] - 0.5, "frequency row"
    if duration is not None:
        return (0.0, duration, low, high), "time (s)", frequency_label
    return (0.0, 1.0, low, high), "time (fraction of the segment)", frequency_label


def _symmetric(values: np.ndarray, percentile: float = 100.0) -> float:
    """The colour limit of signed values: the given percentile of their magnitude (1 if all are 0)."""
    largest = float(np.percentile(np.abs(values), percentile))
    return largest if largest > 0 else 1.0


def _diverging(limit: float) -> dict[str, Any]:
    """Colours for signed values: blue below 0, white at 0, red above, symmetric."""
    return {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}


def save_explanation(
    path: str | os.PathLike, matrix: np.ndarray, occlusion: np.ndarray, axes_info: MatrixAxes, title: str
) -> None:
    """The spectrum and its occlusion map side by side, same axes, colour bars; 1120 x 480 pixels.

    ``axes_info`` is the file's stored axes; ``occlusion`` the
    (16, 16) drop in the predicted class's probability per occluded block.
    """
    extent, time_label, frequency_label = _extent(axes_info, matrix.shape)
    figure = _figure(EXPLANATION_SIZE)
    spectrum_axes, map_axes = figure.subplots(1, 2, sharex=True, sharey=True)
    image = spectrum_axes.imshow(matrix, origin="lower", aspect="auto", extent=extent, cmap="magma", norm=_norm(matrix))
    figure.colorbar(image, ax=spectrum_axes, label="amplitude (square-root scale)")
    limit = _symmetric(occlusion)
    drawn = map_axes.imshow(
        occlusion, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    figure.colorbar(drawn, ax=map_axes, label="drop in probability when the block is occluded")
    spectrum_axes.set(xlabel=time_label, ylabel=frequency_label, title="Hilbert spectrum")
    map_axes.set(xlabel=time_label, title="occlusion map (red: supports the prediction)")
    figure.suptitle(title)
    _save(figure, path)


def save_class_differences(path: str | os.PathLike, means: dict[int, np.ndarray], axes_info: MatrixAxes) -> None:
    """Each class's mean spectrum (top row) and its difference from the mean of all classes (bottom row).

    ``means`` maps class IDs to (256, 256) mean matrices of the training files; the overall mean
    weights each class equally. 200 pixels a column, 440 high.
    """
    classes = sorted(means)
    spectra = [means[class_id] for class_id in classes]
    overall = np.mean(spectra, axis=0)
    differences = [spectrum - overall for spectrum in spectra]
    extent, time_label, frequency_label = _extent(axes_info, overall.shape)
    size = (DIFFERENCE_TILE * len(classes) + 120, 2 * DIFFERENCE_TILE + 40)
    # Each row one image of its tiles, and fixed margins: one axes per tile and the constrained
    # layout took most of the drawing time, and train.py draws this picture on every run.
    figure = _figure(size, layout=None)
    top, bottom = figure.subplots(2, 1, gridspec_kw=_difference_margins(size))
    # Saturating like the spectra (a few bins hold most of the energy, and of its differences).
    limit = _symmetric(np.stack(differences), 99.5)
    for axes, tiles, colours, label in (
        (top, spectra, {"cmap": "magma", "norm": _norm(np.stack(spectra))}, "mean amplitude"),
        (bottom, differences, _diverging(limit), "class mean - overall mean"),
    ):
        image = _draw_tiles(axes, tiles, extent, colours)
        axes.set_ylabel(frequency_label)
        figure.colorbar(image, cax=_colour_bar_axes(figure, axes, size), label=label)
    starts = _tile_starts(extent, overall.shape[1], len(classes))
    for start, class_id in zip(starts, classes, strict=True):
        middle = start + (extent[1] - extent[0]) / 2
        top.annotate(
            CLASS_NAMES[class_id],
            (middle, extent[3]),
            xytext=(0, 5),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="large",
        )
    top.set_xticks([])
    bottom.set_xticks(*_time_ticks(extent, starts))
    # Once for the row: a long label under each tile would run into its neighbours.
    figure.supxlabel(time_label, y=0.01, va="bottom", fontsize="medium")
    _save(figure, path)


def _tile_starts(extent: tuple[float, float, float, float], width: int, count: int) -> np.ndarray:
    """Where each of ``count`` tiles ``width`` columns wide starts along a row (:func:`_draw_tiles`), in
    the extent's time units: one tile spans the extent, a gap of an eighth of a tile follows it."""
    start, end = extent[:2]
    return start + np.arange(count) * (end - start) * _tile_step(width) / width


def _tile_step(width: int) -> int:
    """Columns from one tile's start to the next: the tile and a gap of an eighth of it."""
    return width + width // 8


def _draw_tiles(axes: Any, tiles: list[np.ndarray], extent: tuple[float, float, float, float], colours: dict) -> Any:
    """``tiles`` (each (rows, width)) side by side as one image on ``axes``, white gaps between them."""
    rows, width = tiles[0].shape
    step = _tile_step(width)
    mosaic = np.full((rows, (len(tiles) - 1) * step + width), np.nan)
    for column, tile in enumerate(tiles):
        mosaic[:, column * step : column * step + width] = tile
    colour_map = _colour_map(colours["cmap"])
    start, end, low, high = extent
    right = _tile_starts(extent, width, len(tiles))[-1] + end - start
    image = axes.imshow(
        mosaic, origin="lower", aspect="auto", extent=(start, right, low, high), **{**colours, "cmap": colour_map}
    )
    for side in axes.spines.values():
        side.set_visible(False)
    return image


def _time_ticks(extent: tuple[float, float, float, float], starts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Positions and labels of at most 3 round times in each tile (more would touch between tiles)."""
    from matplotlib.ticker import MaxNLocator

    start, end = extent[:2]
    values = np.asarray(MaxNLocator(nbins=2, steps=[1, 2, 2.5, 5, 10]).tick_values(start, end))
    values = values[(values >= start - 1e-9) & (values <= end + 1e-9)]
    positions = np.concatenate([tile + values - start for tile in starts])
    return positions, [f"{value:g}" for value in values] * len(starts)


def _difference_margins(size: tuple[int, int]) -> dict[str, float]:
    """Grid margins of the class-differences picture, in figure fractions, from pixels: 70 left
    (frequency labels), 110 right (colour bars), 30 top (titles), 45 bottom (time labels)."""
    width, height = size
    return {
        "left": 70 / width,
        "right": 1 - 110 / width,
        "top": 1 - 30 / height,
        "bottom": 45 / height,
        "hspace": 0.15,
    }


def _colour_bar_axes(figure: Any, beside: Any, size: tuple[int, int]) -> Any:
    """A 12-pixel-wide colour bar 20 pixels right of the axes ``beside``, as tall as it."""
    box = beside.get_position()
    return figure.add_axes((box.x1 + 20 / size[0], box.y0, 12 / size[0], box.height))
