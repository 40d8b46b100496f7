"""Forest prior: weak labels for the network from a random forest fit on the same clicks.

From a few hundred clicks a random forest on multiscale features (engine/forest.py) already labels much of an image
correctly, and it learns in seconds; the network learns from its confident predictions as from extra, down-weighted
labels, and from the clicks themselves at full weight. Per raster, the forest predicts up to ``windows`` windows
(the whole raster when it is small); in each, up to ``per_class`` pixels per predicted class whose forest probability
reaches ``threshold`` become labels of weight ``weight``. Labelled pixels keep their labels.
"""

from dataclasses import dataclass

import numpy as np

from engine import cancel
from engine.features import FeatureSettings, compute_features
from engine.forest import ForestOptions, fit_forest, from_sklearn, predict_proba
from engine.points import PixelLabels
from engine.raster_io import fill_invalid


@dataclass(frozen=True)
class ForestPriorOptions:
    threshold: float = 0.6  # least forest probability of a weak label
    per_class: int = 300  # most weak labels per predicted class per window
    weight: float = 0.3  # loss weight of a weak label (a click weighs 1)
    window: int = 512  # side of the windows the forest predicts
    windows: int = 4  # most windows per raster (random ones when the raster is larger)
    trees: int = 50


def forest_labels(sources, labels: list[PixelLabels], n_classes: int, options: ForestPriorOptions, rng,
                  workers: int = 2) -> list[PixelLabels]:  # fmt: skip
    """``labels`` plus the forest's weak labels, per raster (``sources``: engine.sampling.RasterSource)."""
    settings = FeatureSettings()
    features, targets = [], []
    for source, lab in zip(sources, labels, strict=True):
        if len(lab):
            features.append(_features_at(source, lab, settings, workers))
            targets.append(lab.classes)
    if not features or len(np.unique(np.concatenate(targets))) < 2:
        return labels
    forest = fit_forest(np.concatenate(features), np.concatenate(targets),
                        ForestOptions(trees=options.trees, seed=int(rng.integers(2**31)), n_jobs=workers))  # fmt: skip
    model = from_sklearn(forest, n_classes)
    out = []
    for source, lab in zip(sources, labels, strict=True):
        cancel.check()
        taken = set(zip(lab.rows.tolist(), lab.cols.tolist(), strict=True))
        rows, cols, classes = [], [], []
        for row0, col0, h, w in _windows(source.height, source.width, options, rng):
            image, valid = source.read(row0, col0, max(h, w))
            image, valid = image[:, :h, :w], valid[:h, :w]
            probs = np.zeros((n_classes, h, w), np.float32)
            feats = compute_features(fill_invalid(image, valid), settings, workers)
            probs[:, valid] = predict_proba(model, feats[valid], workers=workers).T
            for r, c, k in _confident(probs, options, rng):
                if (r + row0, c + col0) not in taken:
                    rows.append(r + row0)
                    cols.append(c + col0)
                    classes.append(k)
        weights = np.full(len(rows), options.weight, np.float32)
        out.append(lab.extend(np.array(rows, np.int64), np.array(cols, np.int64), np.array(classes, np.int64), weights))
    return out


def _features_at(source, lab: PixelLabels, settings: FeatureSettings, workers: int) -> np.ndarray:
    """Features of the labelled pixels, from a window of context around each group of nearby labels."""
    out = np.empty((len(lab), settings.n_features(len(source.bands))), np.float32)
    side, margin = 256, settings.margin
    blocks = {}
    for i, (r, c) in enumerate(zip(lab.rows.tolist(), lab.cols.tolist(), strict=True)):
        blocks.setdefault((r // side, c // side), []).append(i)
    for (br, bc), members in blocks.items():
        row0, col0 = br * side - margin, bc * side - margin
        image, valid = source.read(row0, col0, side + 2 * margin)
        feats = compute_features(fill_invalid(image, valid), settings, workers)
        index = np.array(members)
        out[index] = feats[lab.rows[index] - row0, lab.cols[index] - col0]
    return out


def _windows(height: int, width: int, options: ForestPriorOptions, rng) -> list[tuple[int, int, int, int]]:
    """(row0, col0, height, width) of the windows the forest predicts."""
    h, w = min(height, options.window), min(width, options.window)
    every = [(r, c) for r in range(0, height - h + 1, h) for c in range(0, width - w + 1, w)]
    if len(every) > options.windows:
        every = [every[i] for i in rng.choice(len(every), options.windows, replace=False)]
    return [(r, c, h, w) for r, c in every]


def _confident(probs: np.ndarray, options: ForestPriorOptions, rng):
    """Up to ``per_class`` random (row, col, class) per predicted class with probability >= threshold."""
    best, top = probs.argmax(axis=0), probs.max(axis=0)
    for k in range(probs.shape[0]):
        rows, cols = np.nonzero((best == k) & (top >= options.threshold))
        if len(rows) > options.per_class:
            pick = rng.choice(len(rows), options.per_class, replace=False)
            rows, cols = rows[pick], cols[pick]
        yield from zip(rows.tolist(), cols.tolist(), [k] * len(rows), strict=True)
