"""Point-to-region expansion: each click's label spreads over the pixels of its superpixel that look like it.

For a click, SLIC superpixels are computed on a window around it; the label goes to the pixels of the click's
superpixel that lie within ``tolerance`` of the click's value (normalised units, per band on average) and are
connected to the click through such pixels, so it never crosses a strong edge. Spread labels carry a loss weight
below a click's; a pixel claimed by clicks of different classes gets no spread label.

With ``consensus``, the region is computed at five superpixel sizes (0.6 to 1.4 times ``region``) and a pixel gets
the label when at least three of them spread to it: a pixel that only one segmentation puts with the click lies
near an edge, where a spread label is most often wrong (docs/benchmarks.md, "Consensus expansion").
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from engine.points import PixelLabels
from engine.superpixels import masked_slic

Reader = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]  # (row, col, size) -> normalised image, valid


@dataclass(frozen=True)
class ExpansionOptions:
    region: int = 10  # superpixel side in pixels
    tolerance: float = 0.5  # RMS distance over bands to the click's value, in normalised (std) units
    weight: float = 0.3  # loss weight of a spread label (a click weighs 1)
    compactness: float = 1.0  # in normalised units: lower values fragment superpixels in flat areas
    consensus: bool = False  # keep the pixels that most of several superpixel sizes spread to


SCALES = (0.6, 0.8, 1.0, 1.2, 1.4)  # superpixel sizes of the consensus, times ``region``
VOTES = 3  # of len(SCALES)


def superpixel_region(
    image: np.ndarray, valid: np.ndarray, row: int, col: int, options: ExpansionOptions
) -> np.ndarray:
    """The bool mask (H x W) of pixels that the click at (row, col) spreads to, itself included."""
    if not options.consensus:
        return _region(image, valid, row, col, options.region, options)
    votes = sum(_region(image, valid, row, col, options.region * scale, options).astype(np.int32) for scale in SCALES)
    region = votes >= VOTES
    components, _ = ndimage.label(region)
    return components == components[row, col] if region[row, col] else region


def _region(image, valid, row: int, col: int, side: float, options: ExpansionOptions) -> np.ndarray:
    """superpixel_region with superpixels of about ``side`` px."""
    segments = masked_slic(
        np.moveaxis(image, 0, -1).astype(np.float64),
        valid,
        n_segments=max(4, round(image[0].size / side**2)),
        compactness=options.compactness,
    )
    if segments[row, col] == 0:
        return np.zeros(valid.shape, bool)
    distance = np.sqrt(((image - image[:, row : row + 1, col : col + 1]) ** 2).mean(axis=0))
    similar = (segments == segments[row, col]) & valid & (distance <= options.tolerance)
    components, _ = ndimage.label(similar)
    return components == components[row, col]


def expand_clicks(read: Reader, labels: PixelLabels, options: ExpansionOptions | None = None,
                  regions: np.ndarray | None = None) -> PixelLabels:  # fmt: skip
    """The clicks of ``labels`` plus the labels spread from each click (weight ``options.weight``). ``regions``
    (int per label) gives each click its own superpixel side in px, ``options.region`` when None; a click given 0
    does not spread, though no spread label takes its pixel."""
    options = options or ExpansionOptions()
    if len(labels) == 0:
        return labels
    sides = np.full(len(labels), options.region, np.int64) if regions is None else np.asarray(regions, np.int64)
    clicked = (labels.weight_array() >= 1.0) & (sides > 0)
    spread: dict[tuple[int, int], int] = {}
    conflicts: set[tuple[int, int]] = set()
    for r, c, k, side in zip(labels.rows[clicked], labels.cols[clicked], labels.classes[clicked], sides[clicked],
                             strict=True):  # fmt: skip
        size = 4 * int(side)
        row0, col0 = int(r) - size // 2, int(c) - size // 2
        image, valid = read(row0, col0, size)
        region = superpixel_region(image, valid, int(r) - row0, int(c) - col0, replace(options, region=int(side)))
        for rr, cc in zip(*np.nonzero(region), strict=True):
            key = (int(rr) + row0, int(cc) + col0)
            if spread.setdefault(key, int(k)) != int(k):
                conflicts.add(key)
    taken = set(zip(labels.rows.tolist(), labels.cols.tolist(), strict=True))
    keys = [key for key in spread if key not in conflicts and key not in taken]
    if not keys:
        return labels
    rows, cols = (np.array(v, np.int64) for v in zip(*keys, strict=True))
    classes = np.array([spread[key] for key in keys], np.int64)
    return labels.extend(rows, cols, classes, np.full(len(keys), options.weight, np.float32))
