"""Class-prior correction: the clicks' equal class balance against the map's."""

import numpy as np
import pytest

from engine.predict import predict_probabilities
from engine.predictor import load_any, make_inference
from engine.prior import KEY, WINDOW, adjust, factor_of, mean_probabilities, sample_windows
from tests.engine.test_hybrid import _image, _train
from tests.fixtures import clicks_per_class, write_raster


def test_the_factor_is_the_predicted_share_over_the_clicked_share():
    clicks = np.array([0, 0, 1, 1])  # half and half
    np.testing.assert_allclose(factor_of(np.array([0.8, 0.2, 0.0]), clicks, strength=1), [1.6, 0.4, 1.0])
    # a class never clicked keeps 1; the factors of the clicked classes average 1
    np.testing.assert_allclose(factor_of(np.array([0.6, 0.3, 0.1]), np.array([0, 0, 0, 1]), 1), [0.8, 1.2, 1.0])
    # by default, the square root of the ratio (half the EM step in log space), still averaging 1
    half = np.sqrt([1.6, 0.4]) / np.sqrt([1.6, 0.4]).mean()
    np.testing.assert_allclose(factor_of(np.array([0.8, 0.2]), clicks), half)
    assert factor_of(np.array([0.5, 0.5]), np.array([], np.int64)) is None


def test_adjust_renormalises_and_leaves_invalid_pixels_at_zero():
    probs = np.zeros((2, 1, 3), np.float32)
    probs[:, 0, :2] = [[0.5, 0.4], [0.5, 0.6]]  # the third pixel is invalid: 0 everywhere
    out = adjust(probs, [3.0, 1.0])
    np.testing.assert_allclose(out[:, 0, 0], [0.75, 0.25])
    np.testing.assert_allclose(out[:, 0, 1], [1.2 / 1.8, 0.6 / 1.8], rtol=1e-6)
    assert (out[:, 0, 2] == 0).all()
    assert adjust(probs, None) is probs


def test_mean_probabilities_average_the_valid_pixels_of_the_sampled_windows(tmp_path):
    data = np.zeros((1, 64, 64), np.uint8)
    data[0, :, :16] = 255  # a quarter of the raster
    path = write_raster(tmp_path / "r.tif", data)

    def predict(image, valid):  # class 1 where the band is bright
        bright = (image[0] > 128).astype(np.float32)
        return np.stack([1 - bright, bright])

    mean = mean_probabilities(predict, [path], [1], 2, np.random.default_rng(0))
    np.testing.assert_allclose(mean, [0.75, 0.25])  # one window: the whole 64 x 64 raster


def test_sampled_windows_are_distinct_and_inside_their_raster(tmp_path):
    small = write_raster(tmp_path / "small.tif", np.zeros((1, 100, 120), np.uint8))
    large = write_raster(tmp_path / "large.tif", np.zeros((1, 600, 520), np.uint8))
    assert sample_windows([small], np.random.default_rng(0)) == [(small, 0, 0, 100, 120)]  # once, not 8 times
    windows = sample_windows([small, large], np.random.default_rng(0), windows=8, side=256)
    assert len(windows) == len(set(windows)) == 8  # of the 1 + 3 x 3 grid windows
    for path, row, col, h, w in windows:
        height, width = (100, 120) if path == small else (600, 520)
        assert 0 <= row <= height - h and 0 <= col <= width - w


@pytest.mark.slow
def test_training_stores_the_factor_of_its_own_uncorrected_predictions_and_predictions_apply_it(tmp_path, scene):
    clicks = clicks_per_class(scene.label, 6)  # 6 per class: as if the classes covered equal shares
    _train(scene, tmp_path / "m", clicks, superpixel_smoothing=False)  # the correction alone
    model, config = load_any(tmp_path / "m")
    factor = np.array(config.trained[KEY])
    image, valid = _image(scene)
    corrected = predict_probabilities(model, config, image, valid, "cpu", tile_size=WINDOW, overlap=32).probs
    config.trained.pop(KEY)
    raw = predict_probabilities(model, config, image, valid, "cpu", tile_size=WINDOW, overlap=32).probs
    # the scene is smaller than a sampled window: every window is the whole scene
    np.testing.assert_allclose(factor, factor_of(raw[:, valid].mean(axis=1), clicks.classes), atol=1e-3)
    assert np.abs(factor - 1).max() > 0.05  # the test can tell a factor from none
    np.testing.assert_allclose(corrected, adjust(raw, factor), atol=1e-5)
    tiles = config.normalization.apply(image[:, :64, :64], valid[:64, :64])[None]  # the raster path's batches
    raw_tiles = make_inference(model, config, "cpu")(tiles)[0]
    config.trained[KEY] = factor.tolist()
    np.testing.assert_allclose(make_inference(model, config, "cpu")(tiles)[0], adjust(raw_tiles, factor), atol=1e-6)

    _train(scene, tmp_path / "n", clicks, prior_correction=False)
    assert KEY not in load_any(tmp_path / "n")[1].trained
