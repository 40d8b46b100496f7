"""Class-prior correction: the clicks' class balance is not the map's.

A user clicks a few points of every class, and error clicks come in equal numbers per class, so the models learn as
if every class covered the same share of the map; on a map that is 93% background and 7% road they paint far too
much road. After training, the model predicts a sample of the training rasters; the mean predicted probability of
each class there, divided by its share of the clicks, is the first step of the EM label-shift correction of Saerens
et al. (2002, "Adjusting the outputs of a classifier to new a priori probabilities"). Every later prediction
multiplies the probabilities by that ratio to the power ``STRENGTH`` (then renormalises).

Measured (docs/benchmarks.md, "Label efficiency by recipe"): iterating EM to convergence overshoots with these
models (it erased the road class of massachusetts_roads); the full first step helped massachusetts_roads (mean mIoU
+0.055) but hurt bsb_toy (-0.022), where the model's predicted shares are themselves off; half of it in log space
(the square root) was better than both on both datasets' final models.
"""

from itertools import groupby

import numpy as np

from engine.raster_io import open_raster, read_window

KEY = "class_prior_factor"  # in config.trained
STRENGTH = 0.5  # the power of the EM step's ratio that is applied
WINDOW = 256  # side of the sampled windows
WINDOWS = 8  # most windows per training run, drawn from all the rasters


def factor_of(mean_probs: np.ndarray, click_classes: np.ndarray, strength: float = STRENGTH) -> np.ndarray | None:
    """Per-class factors (mean 1 over the classes clicked): (predicted share / clicked share) ** strength; None when
    no class was clicked. Classes never clicked keep factor 1 (the model never learnt them; nothing to correct)."""
    n = len(mean_probs)
    counts = np.bincount(click_classes, minlength=n).astype(np.float64)
    if counts.sum() == 0:
        return None
    clicked = counts > 0
    factor = np.ones(n)
    factor[clicked] = (np.clip(mean_probs[clicked], 1e-6, None) / (counts[clicked] / counts.sum())) ** strength
    factor[clicked] = np.clip(factor[clicked] / factor[clicked].mean(), 1e-3, None)
    return factor


def adjust(probs: np.ndarray, factor) -> np.ndarray:
    """``probs`` (classes on axis -3) times ``factor``, renormalised; pixels of probability 0 everywhere stay 0."""
    if factor is None:
        return probs
    shape = (len(factor), 1, 1)
    out = probs * np.asarray(factor, np.float32).reshape(shape)
    total = out.sum(axis=-3, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0).astype(np.float32)


def sample_windows(rasters, rng: np.random.Generator, windows: int = WINDOWS, side: int = WINDOW, areas=None):
    """(raster, row, col, height, width) of up to ``windows`` distinct windows, drawn at random from a grid of
    ``side`` px windows over all the rasters (a raster smaller than a window is one window). ``areas``: per raster, a
    rasterio Window to draw from instead of the whole raster."""
    grid = []
    for k, path in enumerate(rasters):
        if areas is None:
            with open_raster(path) as ds:
                row0, col0, height, width = 0, 0, ds.height, ds.width
        else:
            row0, col0, height, width = (int(v) for v in (areas[k].row_off, areas[k].col_off, areas[k].height,
                                                           areas[k].width))  # fmt: skip
        h, w = min(side, height), min(side, width)
        grid += [(path, min(r, row0 + height - h), min(c, col0 + width - w), h, w)
                 for r in range(row0, row0 + height, side) for c in range(col0, col0 + width, side)]  # fmt: skip
    if len(grid) <= windows:
        return grid
    return [grid[i] for i in sorted(rng.choice(len(grid), windows, replace=False))]


def mean_probabilities(predict, rasters, bands: list[int], n_classes: int, rng) -> np.ndarray:
    """The mean class probabilities of ``predict(image, valid)`` over the valid pixels of sampled windows."""
    total, count = np.zeros(n_classes), 0
    for path, windows in groupby(sample_windows(rasters, rng), key=lambda window: window[0]):
        with open_raster(path) as ds:
            reads = [read_window(ds, bands, row, col, h, w) for _, row, col, h, w in windows]
        for image, valid in reads:
            if valid.any():
                total += predict(image, valid)[:, valid].sum(axis=1)
                count += int(valid.sum())
    return total / max(count, 1)
