"""Superpixel smoothing of the predicted probabilities."""

import numpy as np
import pytest

from engine.predict import predict_probabilities
from engine.predictor import load_any, make_inference
from engine.smoothing import KEY, settings, smooth, smooth_batch
from engine.superpixels import segment
from tests.engine.test_hybrid import _image, _train
from tests.fixtures import clicks_per_class


def _two_regions(seed=0):
    """A 64 x 64 image, dark left half and bright right half, and noisy probabilities of 2 classes that are right
    on average in each half (class 0 left, class 1 right) with speckle of the wrong class."""
    rng = np.random.default_rng(seed)
    image = np.zeros((3, 64, 64), np.float32)
    image[:, :, 32:] = 1.0
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    right = np.zeros((64, 64), bool)
    right[:, 32:] = True
    p1 = np.clip(np.where(right, 0.7, 0.3) + rng.normal(0, 0.3, (64, 64)), 0.01, 0.99).astype(np.float32)
    return image, np.stack([1 - p1, p1]), right


def test_each_pixel_moves_halfway_to_its_superpixels_mean_without_crossing_an_edge():
    image, probs, right = _two_regions()
    options = settings(region=8, weight=0.5)
    out = smooth(probs, image, None, options)
    segments = segment(image, np.ones((64, 64), bool), region_size=8, compactness=0.1)
    for sid in np.unique(segments):
        inside = segments == sid
        assert right[inside].all() or not right[inside].any()  # the edge bounds every superpixel
        expected = 0.5 * probs[1][inside] + 0.5 * probs[1][inside].mean()
        np.testing.assert_allclose(out[1][inside], expected, atol=1e-5)
        np.testing.assert_allclose(out[1][inside].sum(), probs[1][inside].sum(), rtol=1e-4)  # shares kept
    np.testing.assert_allclose(out.sum(0), 1, atol=1e-5)
    wrong_before = ((probs[1] > 0.5) != right).mean()
    wrong_after = ((out[1] > 0.5) != right).mean()
    assert wrong_after < wrong_before / 2  # the speckle is mostly gone


def test_invalid_pixels_keep_their_values_and_none_changes_nothing():
    image, probs, _ = _two_regions(1)
    valid = np.ones((64, 64), bool)
    valid[:10] = False
    probs[:, ~valid] = 0.0  # what predictions hold outside the raster
    out = smooth(probs, image, valid, settings())
    assert (out[:, ~valid] == 0).all() and not np.allclose(out[:, valid], probs[:, valid])
    assert smooth(probs, image, valid, None) is probs
    batch = smooth_batch(probs[None].repeat(2, 0), image[None].repeat(2, 0), [valid, valid], settings())
    np.testing.assert_array_equal(batch[1], out)


@pytest.mark.slow
def test_training_stores_the_smoothing_and_every_prediction_path_applies_it(tmp_path, scene):
    clicks = clicks_per_class(scene.label, 6)
    _train(scene, tmp_path / "m", clicks, prior_correction=False)
    model, config = load_any(tmp_path / "m")
    assert config.trained[KEY] == settings()
    image, valid = _image(scene)
    smoothed = predict_probabilities(model, config, image, valid, "cpu", tile_size=64, overlap=16).probs
    tiles = config.normalization.apply(image[:, :64, :64], valid[:64, :64])[None]  # the raster path's batches
    smoothed_tiles = make_inference(model, config, "cpu")(tiles)[0]
    config.trained.pop(KEY)
    raw = predict_probabilities(model, config, image, valid, "cpu", tile_size=64, overlap=16).probs
    np.testing.assert_allclose(smoothed, smooth(raw, image, valid, settings()), atol=1e-5)
    assert np.abs(smoothed - raw).max() > 0.01  # the test can tell smoothing from none
    raw_tiles = make_inference(model, config, "cpu")(tiles)[0]
    np.testing.assert_allclose(smoothed_tiles, smooth_batch(raw_tiles, tiles, None, settings()), atol=1e-5)

    _train(scene, tmp_path / "n", clicks, prior_correction=False, superpixel_smoothing=False)
    assert KEY not in load_any(tmp_path / "n")[1].trained
