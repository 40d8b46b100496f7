"""Flip averaging of the network's probabilities (test-time augmentation)."""

import numpy as np
import pytest
import torch

from engine.flips import KEY, VIEWS, flip_mean, views_of
from engine.predict import Inference, predict_probabilities
from engine.predictor import load_any, make_inference
from tests.engine.test_hybrid import _image, _train
from tests.fixtures import clicks_per_class


def _position_dependent(x: torch.Tensor) -> torch.Tensor:
    """Logits (2 classes) that depend on where a pixel is, so flipping the input changes the answer."""
    ramp = torch.linspace(-2, 2, x.shape[-1]).expand(x.shape[-2], -1)
    return torch.stack([x[:, 0] + ramp, -x[:, 0] + ramp.T], dim=1)


def test_each_view_is_flipped_back_before_the_mean():
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def view(dims):
        flipped = x.flip(dims) if dims else x
        out = torch.softmax(_position_dependent(flipped), dim=1)
        return out.flip(dims) if dims else out

    one = flip_mean(_position_dependent, x, 1)
    torch.testing.assert_close(one, view(()))
    torch.testing.assert_close(flip_mean(_position_dependent, x, 2), (view(()) + view((-1,))) / 2)
    four = flip_mean(_position_dependent, x, 4)
    torch.testing.assert_close(four, (view(()) + view((-1,)) + view((-2,)) + view((-2, -1))) / 4)
    torch.testing.assert_close(four.sum(1), torch.ones(2, 8, 8))
    assert (four - one).abs().max() > 0.05  # the views differ, so the test can tell averaging from none
    torch.testing.assert_close(flip_mean(_position_dependent, x, 4, first=view(())), four)
    with pytest.raises(ValueError, match="flip views"):
        flip_mean(_position_dependent, x, 3)


def test_a_pixelwise_network_is_unchanged_by_flips():
    network = torch.nn.Conv2d(3, 4, 1).eval()
    images = np.random.default_rng(1).normal(size=(2, 3, 32, 32)).astype(np.float32)
    plain, _ = Inference(network, "cpu")(images)
    flipped, _ = Inference(network, "cpu", views=4)(images)
    np.testing.assert_allclose(flipped, plain, atol=1e-6)


@pytest.mark.slow
def test_training_stores_the_views_and_every_prediction_path_averages_them(tmp_path, scene):
    clicks = clicks_per_class(scene.label, 6)
    plain = {"forest_ensemble": False, "prior_correction": False, "superpixel_smoothing": False}
    _train(scene, tmp_path / "m", clicks, **plain)
    model, config = load_any(tmp_path / "m")
    assert views_of(config.trained) == config.trained[KEY] == VIEWS == 4
    image, valid = _image(scene)
    whole = {"tile_size": image.shape[-1], "overlap": 0}  # one tile: no blending between the views' tiles
    averaged = predict_probabilities(model, config, image, valid, "cpu", **whole).probs
    tiles = config.normalization.apply(image, valid)[None]  # the raster path's batches
    averaged_tiles = make_inference(model, config, "cpu")(tiles)[0]
    torch.manual_seed(0)
    mc_probs, mc_bald = make_inference(model, config, "cpu", mc_samples=4)(tiles)
    np.testing.assert_allclose(mc_probs, averaged_tiles, atol=1e-5)  # MC dropout leaves the probabilities alone

    config.trained.pop(KEY)
    torch.manual_seed(0)
    np.testing.assert_allclose(make_inference(model, config, "cpu", mc_samples=4)(tiles)[1], mc_bald, atol=1e-6)
    raw = predict_probabilities(model, config, image, valid, "cpu", **whole).probs
    expected = np.zeros_like(raw)
    for axes in ((), (2,), (1,), (1, 2)):
        flipped = np.flip(image, axes) if axes else image
        flipped_valid = np.flip(valid, tuple(a - 1 for a in axes)) if axes else valid
        probs = predict_probabilities(model, config, flipped.copy(), flipped_valid.copy(), "cpu", **whole).probs
        expected += (np.flip(probs, axes) if axes else probs) / 4
    np.testing.assert_allclose(averaged, expected, atol=1e-5)
    assert np.abs(averaged - raw).max() > 0.01  # the test can tell averaging from none
    np.testing.assert_allclose(averaged_tiles[0], expected, atol=1e-5)

    _train(scene, tmp_path / "n", clicks, flip_views=1, **plain)
    assert KEY not in load_any(tmp_path / "n")[1].trained
