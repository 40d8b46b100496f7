"""The forest prior: weak labels from a forest fit on the clicks are mostly right, weigh less than a click, never
replace a click, and stay within their budget."""

import numpy as np

from engine.forest_prior import ForestPriorOptions, forest_labels
from engine.normalization import compute_normalization
from engine.points import PixelLabels
from engine.sampling import RasterSource
from tests.fixtures import clicks_per_class


def test_weak_labels_are_mostly_right_and_weigh_less_than_clicks(scene):
    source = RasterSource(scene.image, [1, 2, 3], compute_normalization([scene.image], [1, 2, 3]))
    clicks = clicks_per_class(scene.label, 4)
    options = ForestPriorOptions(per_class=200, window=64, windows=2, trees=20)
    try:
        (out,) = forest_labels([source], [clicks], 3, options, np.random.default_rng(1))
    finally:
        source.close()
    weights = out.weight_array()
    clicked = weights >= 1
    assert clicked.sum() == len(clicks)  # every click kept, at full weight
    weak = ~clicked
    assert 100 < weak.sum() <= 3 * 200 * 2  # per class, per window, two 64 px windows of the 128 px scene
    assert np.all(weights[weak] == options.weight)
    pixels = set(zip(out.rows.tolist(), out.cols.tolist(), strict=True))
    assert len(pixels) == len(out)  # no pixel labelled twice, no click overwritten
    right = scene.label[out.rows[weak], out.cols[weak]] == out.classes[weak]
    majority = np.bincount(scene.label.ravel()).max() / scene.label.size
    assert right.mean() > 0.9 > majority + 0.15
    assert len(np.unique(out.classes[weak])) == 3


def test_one_class_of_clicks_adds_nothing(scene):
    source = RasterSource(scene.image, [1, 2, 3], compute_normalization([scene.image], [1, 2, 3]))
    clicks = PixelLabels(np.array([5, 6]), np.array([5, 6]), np.array([0, 0]))
    try:
        (out,) = forest_labels([source], [clicks], 3, ForestPriorOptions(trees=5), np.random.default_rng(0))
    finally:
        source.close()
    assert len(out) == 2
