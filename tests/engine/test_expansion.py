"""Point-to-region expansion stays inside the clicked superpixel and never crosses a strong edge."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from engine import train as train_module
from engine.classes import parse_classes
from engine.events import Events
from engine.expansion import SCALES, VOTES, ExpansionOptions, expand_clicks, superpixel_region
from engine.points import PixelLabels
from engine.train import TrainOptions, train
from tests.fixtures import clicks_per_class


def _reader(image: np.ndarray):
    def read(row: int, col: int, size: int):
        out = np.zeros((image.shape[0], size, size), np.float32)
        valid = np.zeros((size, size), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + size, image.shape[1]), min(col + size, image.shape[2])
        out[:, r0 - row : r1 - row, c0 - col : c1 - col] = image[:, r0:r1, c0:c1]
        valid[r0 - row : r1 - row, c0 - col : c1 - col] = True
        return out, valid

    return read


def _two_halves(seed: int = 0) -> np.ndarray:
    """A 64 x 64 image: left half dark, right half bright (a strong vertical edge at column 32), mild noise."""
    rng = np.random.default_rng(seed)
    image = np.where(np.arange(64)[None, None, :] < 32, -1.5, 1.5) + rng.normal(0, 0.05, (3, 64, 64))
    return image.astype(np.float32)


def test_labels_spread_only_on_the_clicked_side_of_a_strong_edge():
    image = _two_halves()
    labels = PixelLabels(np.array([30]), np.array([29]), np.array([1]))  # 3 px left of the edge
    out = expand_clicks(_reader(image), labels, ExpansionOptions(region=10))
    assert len(out) > 20  # it spread
    assert np.all(out.cols < 32)  # and never crossed the edge
    assert np.all(out.classes == 1)
    assert out.weight_array()[0] == 1.0 and np.all(out.weight_array()[1:] == 0.3)


def test_spread_stays_inside_the_clicked_superpixel():
    image = _two_halves()
    labels = PixelLabels(np.array([10]), np.array([10]), np.array([2]))
    out = expand_clicks(_reader(image), labels, ExpansionOptions(region=8))
    # A superpixel of side ~8 holds far fewer pixels than the 32 x 64 uniform half around it.
    assert 10 < len(out) < 8 * 8 * 3
    assert np.abs(out.rows - 10).max() < 24 and np.abs(out.cols - 10).max() < 24


def test_pixels_claimed_by_two_classes_get_no_spread_label():
    image = np.zeros((1, 40, 40), np.float32)  # uniform: both clicks' regions overlap
    read, options = _reader(image), ExpansionOptions(region=20)

    def spread(labels):
        out = expand_clicks(read, labels, options)
        return {(r, c): k for r, c, k in zip(out.rows, out.cols, out.classes, strict=True)}

    alone = [spread(PixelLabels(np.array([r]), np.array([c]), np.array([k]))) for r, c, k in [(20, 20, 0), (20, 21, 1)]]
    both = spread(PixelLabels(np.array([20, 20]), np.array([20, 21]), np.array([0, 1])))
    contested = (set(alone[0]) & set(alone[1])) - {(20, 20), (20, 21)}
    assert contested  # the test means something only if the regions overlap
    assert not contested & set(both)
    assert both[(20, 20)] == 0 and both[(20, 21)] == 1
    assert set(both) == (set(alone[0]) | set(alone[1])) - contested


def test_dissimilar_pixels_inside_the_window_are_left_out():
    image = np.zeros((1, 40, 40), np.float32)
    image[0, 18:23, 18:23] = 3.0  # a small bright square in a uniform field
    labels = PixelLabels(np.array([20]), np.array([20]), np.array([1]))
    out = expand_clicks(_reader(image), labels, ExpansionOptions(region=10))
    assert set(zip(out.rows.tolist(), out.cols.tolist(), strict=True)) <= {
        (r, c) for r in range(18, 23) for c in range(18, 23)
    }


def _textured(seed: int = 0) -> np.ndarray:
    """A 40 x 40 image of smooth noise: superpixels of different sizes cut it differently."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(0, 1, (3, 40, 40)), (0, 2, 2)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consensus_keeps_the_pixels_most_superpixel_sizes_spread_to(seed):
    image, valid = _textured(seed), np.ones((40, 40), bool)
    singles = np.array([superpixel_region(image, valid, 20, 20, ExpansionOptions(region=round(10 * scale)))
                        for scale in SCALES])  # fmt: skip
    assert singles.all(axis=0).sum() < singles.any(axis=0).sum()  # the sizes disagree, so the rule is seen
    components, _ = ndimage.label(singles.sum(axis=0) >= VOTES)
    expected = components == components[20, 20]
    out = superpixel_region(image, valid, 20, 20, ExpansionOptions(region=10, consensus=True))
    assert np.array_equal(out, expected)
    assert out[20, 20]


def test_consensus_never_crosses_a_strong_edge():
    labels = PixelLabels(np.array([30]), np.array([29]), np.array([1]))
    out = expand_clicks(_reader(_two_halves()), labels, ExpansionOptions(region=10, consensus=True))
    assert len(out) > 20 and np.all(out.cols < 32)


def record_sampled(monkeypatch) -> list[PixelLabels]:
    """A list that each later training appends the labels of its first raster to, as its patch sampler gets them."""
    sampled = []
    sampler = train_module.PatchSampler

    def recording(sources, labels, *args, **kwargs):
        sampled.append(labels[0])
        return sampler(sources, labels, *args, **kwargs)

    monkeypatch.setattr(train_module, "PatchSampler", recording)
    return sampled


def _trained_labels(scene, monkeypatch, clicks, **options) -> PixelLabels:
    """The labels that training on ``clicks`` samples its patches from, with TrainOptions ``options``."""
    sampled = record_sampled(monkeypatch)
    options = TrainOptions(epochs=1, batch_size=2, patch_size=64, patches_per_epoch=2, forest_ensemble=False,
                           prior_correction=False, **options)  # fmt: skip
    train([scene.image], [clicks], [1, 2, 3], parse_classes("background,red,blue"), options, torch.device("cpu"),
          Events("text"))  # fmt: skip
    return sampled[0]


def test_training_gives_the_spread_labels_the_chosen_weight(scene, monkeypatch):
    clicks = clicks_per_class(scene.label, 4)
    weights = _trained_labels(scene, monkeypatch, clicks, expansion_weight=0.1).weight_array()
    assert (weights == 1.0).sum() == len(clicks)
    assert len(weights) > 2 * len(clicks) and np.allclose(weights[weights < 1], 0.1)


def test_training_spreads_by_consensus_when_asked(scene, monkeypatch):
    clicks = clicks_per_class(scene.label, 4)
    plain, consensus = ({(r, c) for r, c in zip(labels.rows.tolist(), labels.cols.tolist(), strict=True)}
                        for labels in (_trained_labels(scene, monkeypatch, clicks, expansion_consensus=flag)
                                       for flag in (False, True)))  # fmt: skip
    assert plain != consensus and len(consensus) > len(clicks)


def test_training_spreads_over_the_superpixel_size_asked(scene, monkeypatch):
    clicks = clicks_per_class(scene.label, 4)
    small, default, large = (len(_trained_labels(scene, monkeypatch, clicks, expansion_region=side))
                             for side in (4, 10, 16))  # fmt: skip
    assert len(clicks) < small < default < large
