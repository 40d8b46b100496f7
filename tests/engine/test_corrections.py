"""The clicks that correct a continued model: spread over their own superpixel size (train --correction-region) or
not at all (train --no-expand-corrections), while they count as clicks."""

import numpy as np
import torch

from engine import train as train_module
from engine.classes import parse_classes
from engine.corrections import corrections
from engine.events import Events
from engine.expansion import ExpansionOptions, expand_clicks
from engine.points import PixelLabels
from engine.train import TrainOptions, train
from tests.engine.test_expansion import _reader, record_sampled
from tests.fixtures import clicks_per_class


class _Source:
    def __init__(self, image: np.ndarray):
        self.read = _reader(image)


def _constant(classes: int, favourite: int) -> torch.nn.Module:
    """A network that predicts ``favourite`` everywhere."""
    network = torch.nn.Conv2d(3, classes, 1)
    with torch.no_grad():
        network.weight.zero_()
        network.bias.zero_()
        network.bias[favourite] = 5.0
    return network.train()


def test_a_held_click_keeps_its_pixel_but_spreads_nothing():
    image = np.zeros((1, 40, 40), np.float32)  # uniform: both clicks' regions would overlap
    labels = PixelLabels(np.array([20, 20]), np.array([20, 22]), np.array([0, 1]))
    out = expand_clicks(_reader(image), labels, ExpansionOptions(region=20), regions=np.array([0, 20]))
    spread = out.weight_array() < 1
    assert spread.sum() > 20 and np.all(out.classes[spread] == 1)  # only the other click spread
    at = {(r, c): k for r, c, k in zip(out.rows.tolist(), out.cols.tolist(), out.classes.tolist(), strict=True)}
    assert at[(20, 20)] == 0 and len(out) == len(at)  # the held click's pixel is its own, once
    free = expand_clicks(_reader(image), labels, ExpansionOptions(region=20))
    assert set(free.classes[free.weight_array() < 1].tolist()) == {0, 1}  # unheld, both spread


def test_each_click_spreads_over_superpixels_of_its_own_size():
    image = np.zeros((1, 80, 80), np.float32)  # uniform: each click's superpixel is about its side squared
    labels = PixelLabels(np.array([20, 60]), np.array([20, 60]), np.array([0, 1]))
    out = expand_clicks(_reader(image), labels, ExpansionOptions(region=20), regions=np.array([4, 12]))
    spread = out.weight_array() < 1
    small, large = (np.nonzero(spread & (out.classes == k))[0] for k in (0, 1))
    assert 0 < len(small) <= 4 * 4**2 and 4 * 12**2 >= len(large) > 2 * len(small)
    assert np.abs(out.rows[small] - 20).max() <= 8 and np.abs(out.cols[small] - 20).max() <= 8  # its 4x side window


def test_corrections_are_the_clicks_the_network_predicts_another_class_for():
    image = np.random.default_rng(0).normal(size=(3, 50, 70)).astype(np.float32)
    labels = PixelLabels(np.array([0, 10, 25, 49, 30, 31]), np.array([0, 60, 35, 69, 5, 6]),
                         np.array([1, 0, 1, 2, 1, 0]), np.array([1, 1, 1, 1, 1, 0.3], np.float32))  # fmt: skip
    network = _constant(3, favourite=1)
    held = corrections(network, _Source(image), labels, torch.device("cpu"))
    assert held.tolist() == [False, True, False, True, False, False]  # the spread label (weight 0.3) never
    assert network.training  # left as it was


def test_a_continued_training_spreads_its_corrections_over_their_own_region(scene, monkeypatch, tmp_path):
    classes = parse_classes("background,red,blue")
    first = TrainOptions(epochs=2, batch_size=2, patch_size=64, patches_per_epoch=4, forest_ensemble=False,
                         prior_correction=False, superpixel_smoothing=False, flip_views=1)  # fmt: skip
    train([scene.image], [clicks_per_class(scene.label, 3)], [1, 2, 3], classes, first, torch.device("cpu"),
          Events("text"), out=tmp_path / "first")  # fmt: skip
    clicks = clicks_per_class(scene.label, 6, seed=1)
    sampled = record_sampled(monkeypatch)
    held = []
    found = train_module.corrections
    monkeypatch.setattr(train_module, "corrections", lambda *a: held.append(found(*a)) or held[-1])
    for spread_them, region in ((True, None), (True, 12), (True, 4), (False, None)):
        options = TrainOptions(epochs=1, batch_size=2, patch_size=64, patches_per_epoch=2, forest_ensemble=False,
                               prior_correction=False, expansion_region=12, expand_corrections=spread_them,
                               correction_region=region)  # fmt: skip
        train([scene.image], [clicks], [1, 2, 3], classes, options, torch.device("cpu"), Events("text"),
              init=tmp_path / "first")  # fmt: skip
    assert len(held) == 2 and 0 < held[0].sum() < len(clicks)  # asked when the sizes differ; some clicks correct it
    assert np.array_equal(held[0], held[1])
    everything, same, smaller, fewer = sampled
    assert all((s.weight_array() == 1).sum() == len(clicks) for s in sampled)
    assert len(same) == len(everything) and len(clicks) < len(fewer) < len(smaller) < len(everything)
