"""The simulated annotator: a dense reference label answers clicks.

Every function takes the reference (uint8 H x W), where it holds a class (``valid``) and the pixels already
labelled (``labelled``), and returns new ``PixelLabels`` that never repeat a labelled pixel. Choices are drawn from
the ``rng`` given, so a seeded generator makes them reproducible.
"""

import numpy as np

from engine.points import PixelLabels


def _pick(mask: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    flat = np.flatnonzero(mask)
    if k <= 0 or flat.size == 0:
        return np.zeros(0, np.int64)
    return np.sort(rng.choice(flat, size=min(k, flat.size), replace=False))


def _labels(flat: np.ndarray, reference: np.ndarray) -> PixelLabels:
    width = reference.shape[1]
    flat = np.asarray(flat, np.int64)
    return PixelLabels(flat // width, flat % width, reference.ravel()[flat].astype(np.int64))


def _per_class(mask, reference, num_classes: int, k: int, rng, labelled) -> PixelLabels:
    """``k`` random pixels of each class among those of ``mask`` not yet ``labelled``."""
    open_ = mask if labelled is None else mask & ~labelled
    picks = [_pick(open_ & (reference == c), k, rng) for c in range(num_classes)]
    return _labels(np.sort(np.concatenate(picks)), reference)


def labelled_mask(labels: PixelLabels, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[labels.rows, labels.cols] = True
    return mask


def points_per_class(
    reference: np.ndarray,
    valid: np.ndarray,
    num_classes: int,
    k: int,
    rng: np.random.Generator,
    labelled: np.ndarray | None = None,
) -> PixelLabels:
    """``k`` random pixels of each class present in the reference (the first clicks when there are no seeds)."""
    return _per_class(valid, reference, num_classes, k, rng, labelled)


def error_clicks(
    predicted: np.ndarray,
    reference: np.ndarray,
    valid: np.ndarray,
    num_classes: int,
    k: int,
    rng: np.random.Generator,
    labelled: np.ndarray | None = None,
) -> PixelLabels:
    """The seed paper's protocol: per class, ``k`` random pixels of that class that the prediction gets wrong."""
    return _per_class(valid & (predicted != reference), reference, num_classes, k, rng, labelled)


def answer(
    rows: np.ndarray, cols: np.ndarray, reference: np.ndarray, valid: np.ndarray, labelled: np.ndarray | None = None
) -> PixelLabels:
    """The reference's class at the given pixels, skipping pixels without a class and already labelled ones."""
    flat = np.unique(np.asarray(rows, np.int64) * reference.shape[1] + np.asarray(cols, np.int64))
    keep = valid.ravel()[flat]
    if labelled is not None:
        keep &= ~labelled.ravel()[flat]
    return _labels(flat[keep], reference)


def answer_regions(
    segments: np.ndarray,
    regions: np.ndarray,
    reference: np.ndarray,
    valid: np.ndarray,
    labelled: np.ndarray | None = None,
) -> PixelLabels:
    """Every pixel of the given superpixels, labelled from the reference (``--label-regions``)."""
    inside = np.isin(segments, np.asarray(regions)) & (segments > 0) & valid
    if labelled is not None:
        inside &= ~labelled
    return _labels(np.flatnonzero(inside), reference)


def merge(labels: PixelLabels, new: PixelLabels) -> PixelLabels:
    return labels.extend(new.rows, new.cols, new.classes)
